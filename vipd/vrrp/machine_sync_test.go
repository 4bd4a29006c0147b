package vrrp_test

import (
	"slices"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

// TestHoldAndForce: what a sync group does with its members' machines. A
// backup whose timer ran out and was held wants master and restarts its
// timer; an advert it accepts ends that; ForceMaster takes over as its
// own takeover does; ForceBackup releases the addresses without a
// priority-0 advert (as keepalived's vrrp_sync_backup).
func TestHoldAndForce(t *testing.T) {
	m := mtMachine(t, mtConfig(100))
	m.Start(simEpoch)
	if m.WantsMaster() {
		t.Fatal("a fresh backup wants master")
	}
	due := m.Deadline()
	if m.TimerDue(due.Add(-time.Millisecond)) || !m.TimerDue(due) {
		t.Fatal("TimerDue does not follow the deadline")
	}
	m.Hold(due)
	if !m.WantsMaster() || m.State() != vrrp.Backup || !m.Deadline().After(due) {
		t.Fatalf("held: wants %v, state %v, deadline %v (was %v)", m.WantsMaster(), m.State(), m.Deadline(), due)
	}
	m.Receive(due.Add(time.Millisecond), mtHigh, mtAdvert(150))
	if m.WantsMaster() {
		t.Fatal("still wants master after accepting a higher priority advert")
	}
	m.Hold(m.Deadline())
	acts := m.ForceMaster(m.Deadline(), "sync group")
	if m.State() != vrrp.Master || !slices.Equal(kinds(acts), []vrrp.ActionKind{vrrp.SendAdvert, vrrp.AddAddresses, vrrp.Announce, vrrp.Transition}) {
		t.Fatalf("ForceMaster: %v, %v", m.State(), acts)
	}
	if acts := m.ForceMaster(m.Deadline(), "again"); acts != nil {
		t.Fatalf("ForceMaster on a master: %v", acts)
	}
	acts = m.ForceBackup(m.Deadline(), "sync group")
	if m.State() != vrrp.Backup || !slices.Equal(kinds(acts), []vrrp.ActionKind{vrrp.RemoveAddresses, vrrp.Transition}) {
		t.Fatalf("ForceBackup: %v, %v", m.State(), acts)
	}
	if m.WantsMaster() {
		t.Fatal("a forced backup wants master")
	}
	m.SetFault(m.Deadline(), true)
	if m.Hold(m.Deadline()); m.WantsMaster() {
		t.Fatal("Hold in FAULT made it want master")
	}
}

// TestReconfigureKeepsState: a reloaded configuration keeps a master
// master (advertising the new priority at once) and a backup backup.
func TestReconfigureKeepsState(t *testing.T) {
	m, now := mtMaster(t, mtConfig(150))
	cfg := mtConfig(120)
	cfg.Interval = 2 * time.Second
	acts, err := m.Reconfigure(now, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if m.State() != vrrp.Master || len(acts) != 1 || acts[0].Kind != vrrp.SendAdvert || acts[0].Priority != 120 || acts[0].Interval != 2*time.Second {
		t.Fatalf("master after Reconfigure: %v, %v", m.State(), acts)
	}
	if d := m.Deadline(); !d.Equal(now.Add(2 * time.Second)) {
		t.Fatalf("next advert at %v, want %v", d, now.Add(2*time.Second))
	}

	b := mtMachine(t, mtConfig(100))
	b.Start(simEpoch)
	at := simEpoch.Add(time.Second)
	if acts, err := b.Reconfigure(at, mtConfig(90)); err != nil || acts != nil || b.State() != vrrp.Backup {
		t.Fatalf("backup after Reconfigure: %v, %v, %v", b.State(), acts, err)
	}
	if want := at.Add(b.Status().MasterDown); !b.Deadline().Equal(want) {
		t.Fatalf("down timer %v, want a fresh one %v", b.Deadline(), want)
	}
	bad := mtConfig(90)
	bad.VRID = 0
	if _, err := b.Reconfigure(at, bad); err == nil || b.Status().BasePriority != 90 {
		t.Fatalf("an invalid configuration: err %v, base priority %d (want the old 90)", err, b.Status().BasePriority)
	}
}

// TestDelayStart: with vrrp_startup_delay no backup timer runs out before
// the delay has passed plus the timer's own length, the address owner's
// included; adverts are still taken.
func TestDelayStart(t *testing.T) {
	until := simEpoch.Add(10 * time.Second)
	m := mtMachine(t, mtConfig(100))
	m.DelayStart(until)
	m.Start(simEpoch)
	if want := until.Add(m.Status().MasterDown); !m.Deadline().Equal(want) {
		t.Fatalf("down timer %v, want %v", m.Deadline(), want)
	}
	m.Receive(simEpoch.Add(time.Second), mtHigh, mtAdvert(0))
	if want := until.Add(m.Status().Skew); !m.Deadline().Equal(want) {
		t.Fatalf("after a priority-0 advert: %v, want %v", m.Deadline(), want)
	}

	o := mtMachine(t, mtConfig(255))
	o.DelayStart(until)
	acts := o.Start(simEpoch)
	if o.State() != vrrp.Backup || !o.Deadline().Equal(until) {
		t.Fatalf("owner during the delay: %v until %v (%v)", o.State(), o.Deadline(), acts)
	}
	o.Timer(until)
	if o.State() != vrrp.Master {
		t.Fatalf("owner after the delay: %v", o.State())
	}

	late := mtMachine(t, mtConfig(255))
	late.DelayStart(simEpoch.Add(-time.Second))
	if late.Start(simEpoch); late.State() != vrrp.Master {
		t.Fatalf("a delay already over held the owner back: %v", late.State())
	}
}
