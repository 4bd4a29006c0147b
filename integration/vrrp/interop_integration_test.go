//go:build integration

package vrrp

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// protocol is one VRRP flavour the interop tests run.
type protocol struct {
	name    string
	version int
	advert  string
	every   time.Duration
	pass    string
}

var (
	v2PASS = protocol{name: "v2-PASS-1s", version: 2, advert: "1", every: time.Second, pass: "s3cret"}
	v3Fast = protocol{name: "v3-100ms", version: 3, advert: "0.1", every: 100 * time.Millisecond}
)

// pair returns the master's and the backup's configuration.
func (p protocol) pair(r *rig, unicast bool) (master, backup vconf) {
	master = vconf{state: "MASTER", prio: 150, version: p.version, advert: p.advert, vrid: 51, pass: p.pass, vip: r.vip.String() + "/24"}
	backup = master
	backup.state, backup.prio = "BACKUP", 100
	if unicast {
		master.src, master.peers = "10.77.0.1", []string{"10.77.0.2"}
		backup.src, backup.peers = "10.77.0.2", []string{"10.77.0.1"}
	}
	return master, backup
}

// settle starts master on a and backup on b and waits until the VIP
// answers from a and b has had a whole Master_Down_Interval to hear a's
// adverts without taking over (so it is a backup that hears the master,
// not one still starting).
func (r *rig) settle(t *testing.T, p protocol, masterKind, backupKind string, mc, bc vconf) (ma, bk *director) {
	t.Helper()
	start := time.Now()
	ma = startDirector(t, masterKind, r.a, mc.String())
	r.startProbe(t)
	r.waitHolder(t, "a", start, 15*time.Second)
	bk = startDirector(t, backupKind, r.b, bc.String())
	deadline := time.Now().Add(masterDown(p.version, p.every, bc.prio) + 2*p.every)
	for time.Now().Before(deadline) {
		if holds(t, r.b, r.vip) {
			t.Fatalf("%s took the VIP while %s is master: it does not hear the master's adverts", bk, ma)
		}
		time.Sleep(p.every / 2)
	}
	return ma, bk
}

// TestFailoverAndFailback: the master's host dies (processes frozen, link
// cut, then killed) and the backup takes the VIP; the master comes back and
// takes it again (preempt), and the backup lets it go. Every combination of
// vipd and keepalived, for v2 with PASS auth and v3 with 100 ms adverts.
func TestFailoverAndFailback(t *testing.T) {
	for _, p := range []protocol{v2PASS, v3Fast} {
		for _, kinds := range [][2]string{{"vipd", "vipd"}, {"keepalived", "vipd"}, {"vipd", "keepalived"}} {
			t.Run(p.name+"/"+kinds[0]+"-master/"+kinds[1]+"-backup", func(t *testing.T) {
				r := newRig(t, false)
				mc, bc := p.pair(r, false)
				failoverAndBack(t, r, p, kinds[0], kinds[1], mc, bc)
			})
		}
	}
}

func TestUnicastPeers(t *testing.T) {
	for _, kinds := range [][2]string{{"keepalived", "vipd"}, {"vipd", "keepalived"}} {
		t.Run(kinds[0]+"-master/"+kinds[1]+"-backup", func(t *testing.T) {
			r := newRig(t, false)
			mc, bc := v2PASS.pair(r, true)
			failoverAndBack(t, r, v2PASS, kinds[0], kinds[1], mc, bc)
		})
	}
}

func failoverAndBack(t *testing.T, r *rig, p protocol, masterKind, backupKind string, mc, bc vconf) {
	ma, bk := r.settle(t, p, masterKind, backupKind, mc, bc)
	t0 := time.Now()
	if err := r.a.Crash(); err != nil {
		t.Fatal(err)
	}
	at := r.waitHolder(t, "b", t0, 10*masterDown(p.version, p.every, bc.prio))
	t.Logf("%s → %s takeover: %v (Master_Down_Interval %v)", ma, bk, at.Sub(t0).Round(time.Millisecond), masterDown(p.version, p.every, bc.prio))
	if !holds(t, r.b, r.vip) {
		t.Fatalf("the VIP answers from b but b does not hold it")
	}

	// The master's host returns; its VIP, left on eth0 by the crash, must
	// not confuse anyone: the restarted director removes it, then
	// preempts the backup.
	if err := r.a.Heal(); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	ma = startDirector(t, masterKind, r.a, mc.String())
	r.waitHolder(t, "a", t1, 15*time.Second)
	waitFor(t, "VIP released by "+bk.String(), 10*time.Second, func() bool { return !holds(t, r.b, r.vip) })
	if bk.kind == "vipd" {
		s := bk.status(t).Instances[0]
		if s.State != "BACKUP" || s.Counters.GARPs == 0 {
			t.Errorf("%s after failback: state %s, %d GARPs sent as master; want BACKUP and some", bk, s.State, s.Counters.GARPs)
		}
	}
}

// TestSIGTERMHandsOverAtOnce: vipd as master resigns with a priority-0
// advert on SIGTERM and removes the VIP, so the backup takes over after its
// skew time instead of a whole Master_Down_Interval.
func TestSIGTERMHandsOverAtOnce(t *testing.T) {
	for _, backupKind := range []string{"keepalived", "vipd"} {
		t.Run("vipd-master/"+backupKind+"-backup", func(t *testing.T) {
			r := newRig(t, false)
			mc, bc := v2PASS.pair(r, false)
			ma, bk := r.settle(t, v2PASS, "vipd", backupKind, mc, bc)
			t0 := time.Now()
			if err := ma.proc.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// The bound is loose on purpose (a vipd that exits without
			// resigning is taken over after Master_Down_Interval, 3.6 s,
			// and would pass it): what shows the resignation is the
			// backup's own account of why it took over, below.
			at := r.waitHolder(t, "b", t0, 10*time.Second)
			if err := ma.proc.Wait(10 * time.Second); err != nil {
				t.Fatalf("vipd did not exit after SIGTERM: %v", err)
			}
			if holds(t, r.a, r.vip) {
				t.Error("vipd exited and left the VIP on its interface")
			}
			switch bk.kind {
			case "keepalived":
				if !strings.Contains(bk.ka.Log(), "Backup received priority 0 advertisement") {
					t.Errorf("keepalived never saw a priority-0 advert:\n%s", bk.ka.Log())
				}
			case "vipd":
				// The backup says why it became master: "master down
				// timer expired" would mean no priority-0 advert came.
				if err := bk.proc.WaitOutput(`reason="master resigned (priority 0)"`, 5*time.Second); err != nil {
					t.Errorf("the vipd backup did not take over for a resignation: %v", err)
				}
			}
			t.Logf("SIGTERM → %s holds the VIP: %v (skew %v, Master_Down_Interval %v)", bk, at.Sub(t0).Round(time.Millisecond),
				time.Duration(256-bc.prio)*time.Second/256, masterDown(2, time.Second, bc.prio))
		})
	}
}

// TestForeignAdvertsIgnored: adverts with the wrong password or another
// VRID are dropped and counted; vipd, hearing no valid master, becomes
// master itself (as keepalived would: this is the split brain operators
// see when passwords differ, and the counters say why).
func TestForeignAdvertsIgnored(t *testing.T) {
	cases := []struct {
		name, reason string
		change       func(c *vconf)
	}{
		{"wrong-password", "auth", func(c *vconf) { c.pass = "other" }},
		{"wrong-vrid", "vrid", func(c *vconf) { c.vrid = 52 }},
		{"wrong-interval", "interval_mismatch", func(c *vconf) { c.advert = "2" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, false)
			mc, bc := v2PASS.pair(r, false)
			c.change(&bc)
			start := time.Now()
			startDirector(t, "keepalived", r.a, mc.String())
			r.startProbe(t)
			r.waitHolder(t, "a", start, 15*time.Second)
			bk := startDirector(t, "vipd", r.b, bc.String())
			waitFor(t, "vipd master with "+c.reason+" drops", 15*time.Second, func() bool {
				s := bk.status(t).Instances[0]
				return s.State == "MASTER" && s.Counters.Drops[c.reason] > 0 && s.Counters.AdvertsReceived == 0
			})
		})
	}
}
