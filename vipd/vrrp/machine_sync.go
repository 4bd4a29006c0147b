package vrrp

import (
	"time"
)

// This file holds what a daemon needs beyond one instance's election:
// keepalived's vrrp_sync_group (instances that change state together),
// vrrp_startup_delay, and a configuration reloaded without losing the
// state.

// DelayStart makes every backup timer that starts before until run out no
// sooner than its full length after until: no instance becomes master
// before until (keepalived's vrrp_startup_delay, which also holds back an
// address owner). Adverts are taken and answered meanwhile. Call it
// before [Machine.Start].
func (m *Machine) DelayStart(until time.Time) { m.holdUntil = until }

// backupDeadline is when a backup timer of length d started at now runs
// out: counted from the end of the startup delay while that runs.
func (m *Machine) backupDeadline(now time.Time, d time.Duration) time.Time {
	if now.Before(m.holdUntil) {
		return m.holdUntil.Add(d)
	}
	return now.Add(d)
}

// WantsMaster reports whether the instance would be master but for its
// sync group: it is master, or a backup whose down timer ran out and that
// was held back ([Machine.Hold]) and has accepted no advert since.
func (m *Machine) WantsMaster() bool {
	return m.state == Master || (m.state == Backup && m.wantMaster)
}

// TimerDue reports whether a backup's down timer has run out at now, so
// that [Machine.Timer] would make it master.
func (m *Machine) TimerDue(now time.Time) bool {
	return m.state == Backup && !m.deadline.IsZero() && !now.Before(m.deadline)
}

// Hold keeps a backup whose down timer ran out in Backup, because its sync
// group is not ready to become master: it now wants to be master
// ([Machine.WantsMaster]) and its down timer starts again, as keepalived
// does. It does nothing in other states.
func (m *Machine) Hold(now time.Time) {
	if m.state != Backup {
		return
	}
	m.wantMaster = true
	m.deadline = m.backupDeadline(now, m.masterDown())
}

// ForceMaster makes a backup master because another member of its sync
// group became master (keepalived's vrrp_sync_master): the same actions
// as a takeover of its own. It does nothing in other states.
func (m *Machine) ForceMaster(now time.Time, reason string) []Action {
	if m.state != Backup {
		return nil
	}
	return m.becomeMaster(now, reason)
}

// ForceBackup makes a master a backup because another member of its sync
// group became one (keepalived's vrrp_sync_backup): it releases the
// addresses without a priority 0 advert, as keepalived does, and starts a
// fresh down timer. It does nothing in other states.
func (m *Machine) ForceBackup(now time.Time, reason string) []Action {
	if m.state != Master {
		return nil
	}
	m.masterInterval = m.cfg.Interval
	return m.enterBackup([]Action{{Kind: RemoveAddresses}}, now, reason)
}

// Reconfigure applies a reloaded configuration to a running machine and
// keeps its state, as keepalived does on a reload: a master stays master
// and advertises at once with the new settings (the election then runs as
// usual: a peer of higher priority takes over); a backup stays backup with
// a fresh down timer; Fault stays Fault until [Machine.SetFault] says
// otherwise. The effective priority becomes cfg's priority: call
// [Machine.SetPriority] afterwards with the tracked weights. Changing the
// addresses on the interface is the daemon's business. cfg is checked as
// [NewMachine] checks it; on error nothing changes.
func (m *Machine) Reconfigure(now time.Time, cfg Config) ([]Action, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.PrimaryIP = cfg.PrimaryIP.WithZone("")
	m.cfg = cfg
	m.prio = cfg.Priority
	m.preemptAt = time.Time{}
	switch m.state {
	case Master:
		m.masterInterval = cfg.Interval
		m.master, m.masterPrio = cfg.PrimaryIP, m.prio
		m.deadline = now.Add(cfg.Interval)
		return []Action{m.advert(m.prio)}, nil
	case Backup:
		if cfg.Version == 2 || m.masterInterval == 0 {
			m.masterInterval = cfg.Interval
		}
		m.deadline = m.backupDeadline(now, m.masterDown())
		m.nextReason, m.skewed = reasonMasterDown, true
	}
	return nil, nil
}
