package vrrp

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Machine is the VRRP state machine of one instance (RFC 3768 §6, RFC 5798
// §6), with the keepalived behaviours that interoperation depends on. It is
// pure logic: it is fed events with the time they happened and returns the
// actions to take, in order. It starts no goroutine, does no I/O and never
// reads the clock.
//
// A Machine is not safe for concurrent use: one goroutine (the instance's
// loop) makes every call. No method blocks. The loop calls [Machine.Timer]
// whenever the clock reaches [Machine.Deadline], which any call may move.
//
// # Timers
//
// Skew_Time is (256 − Priority)/256 s in version 2 and
// (256 − Priority) × Master_Adver_Interval / 256 in version 3;
// Master_Down_Interval is 3 × Master_Adver_Interval + Skew_Time, with the
// effective priority. Master_Adver_Interval is our own interval, except
// that a version 3 backup adopts the interval of the master it accepts
// adverts from. A master advertises every interval, counted from the last
// advert it sent (late calls to Timer push the next advert back rather
// than bunching adverts up, as keepalived does).
//
// # Start
//
// An address owner (priority 255) whose initial state is Master becomes
// master at once. Every other instance starts as backup. Its master down
// timer is Master_Down_Interval, or, for initial state Master, one advert
// interval plus the skew of priority 255: keepalived's rule, which lets an
// instance configured MASTER take over quickly when nobody advertises
// while still deferring to a running master of higher priority. (An owner
// explicitly configured BACKUP waits, as in keepalived; RFC 5798 would
// have it take over at once.)
//
// # Backup
//
// A priority 0 advert sets the down timer to Skew_Time. An advert of
// priority at least ours, or any advert with NoPreempt, resets it to
// Master_Down_Interval. A lower priority advert is ignored, so the backup
// takes over Master_Down_Interval after the last advert it accepted;
// with PreemptDelay it keeps accepting lower priority adverts for that long
// after the first one (keepalived's preempt_delay).
//
// # Master
//
// An advert of higher priority, or of equal priority from a higher primary
// address, makes the master a backup. A priority 0 advert is answered at
// once with an advert. So is a lower priority one (keepalived's "forcing
// new election", unless LowerPriorityNoAdvert): a dual-master episode
// ends on the first advert either side hears. Taking over, the machine
// asks for an advert first (so that a preempted master drops the
// addresses), then the addresses, one announcement, and the transition,
// in keepalived's order.
//
// # Fault and shutdown
//
// [Machine.SetFault] takes the instance out of service: a master sends a
// priority 0 advert and releases the addresses. Clearing the fault makes
// it a backup (an owner configured MASTER becomes master again).
// [Machine.Shutdown] does the same and stops the machine for good.
//
// # Sync groups, reloads, startup delay
//
// A daemon running keepalived's vrrp_sync_group drives several machines
// together: [Machine.TimerDue] and [Machine.Hold] keep a backup from
// taking over until every member [Machine.WantsMaster];
// [Machine.ForceMaster] and [Machine.ForceBackup] make a member follow
// another. [Machine.Reconfigure] applies a reloaded configuration without
// losing the state, and [Machine.DelayStart] is vrrp_startup_delay.
type Machine struct {
	cfg Config

	state          State
	prio           uint8         // effective priority
	masterInterval time.Duration // Master_Adver_Interval
	deadline       time.Time
	preemptAt      time.Time // end of a running preempt_delay
	master         netip.Addr
	masterPrio     uint8
	lastTransition time.Time
	nextReason     string // why the backup will take over when its timer fires
	// skewed: the backup's down timer includes Skew_Time of the effective
	// priority (not so the quick timer of initial state MASTER).
	skewed       bool
	pendingFault bool // SetFault before Start
	counters     Counters
	// wantMaster: a backup whose down timer ran out while its sync group
	// held it back ([Machine.Hold]); cleared by an advert it accepts.
	wantMaster bool
	// holdUntil: before this time no backup timer runs out
	// (vrrp_startup_delay; [Machine.DelayStart]).
	holdUntil time.Time
}

// Reasons a backup takes over.
const (
	reasonMasterDown   = "master down timer expired"
	reasonResigned     = "master resigned (priority 0)"
	reasonInitMaster   = "initial state MASTER, no master heard"
	reasonAddressOwner = "address owner"
)

// NewMachine returns a machine for cfg, in state Initialize; nothing
// happens until [Machine.Start]. Zero fields of cfg are filled as
// [Config] describes; an invalid cfg gives a *[ConfigError].
func NewMachine(cfg Config) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cfg.PrimaryIP = cfg.PrimaryIP.WithZone("")
	return &Machine{
		cfg:            cfg,
		state:          Initialize,
		prio:           cfg.Priority,
		masterInterval: cfg.Interval,
	}, nil
}

// Config returns the machine's configuration with zero fields filled.
func (m *Machine) Config() Config {
	c := m.cfg
	c.Addresses = slices.Clone(c.Addresses)
	return c
}

// State returns the current state.
func (m *Machine) State() State { return m.state }

// Deadline returns when [Machine.Timer] must next be called: the master
// down timer of a backup, the advert timer of a master; zero when no timer
// runs (before Start, in Fault, once Stopped).
func (m *Machine) Deadline() time.Time { return m.deadline }

// Status returns a snapshot of the machine.
func (m *Machine) Status() Status {
	return Status{
		State:          m.state,
		Priority:       m.prio,
		BasePriority:   m.cfg.Priority,
		Interval:       m.cfg.Interval,
		MasterInterval: m.masterInterval,
		Skew:           m.skew(),
		MasterDown:     m.masterDown(),
		Master:         m.master,
		MasterPriority: m.masterPrio,
		Deadline:       m.deadline,
		PreemptAt:      m.preemptAt,
		LastTransition: m.lastTransition,
		Counters:       m.counters,
	}
}

// Start starts the machine at now: see "Start" in the [Machine]
// documentation. A machine faulted before Start starts in Fault. Start
// does nothing once the machine has started.
func (m *Machine) Start(now time.Time) []Action {
	if m.state != Initialize {
		return nil
	}
	if m.pendingFault {
		return m.transition(nil, now, Fault, "fault at start")
	}
	if m.owner() && m.cfg.InitialState == Master && !now.Before(m.holdUntil) {
		return m.becomeMaster(now, reasonAddressOwner)
	}
	m.masterInterval = m.cfg.Interval
	wait, reason, skewed := m.masterDown(), reasonMasterDown, true
	switch {
	case m.owner() && m.cfg.InitialState == Master:
		wait, reason, skewed = 0, reasonAddressOwner, false
	case m.cfg.InitialState == Master:
		wait, reason, skewed = m.cfg.Interval+m.skewFor(PriorityOwner), reasonInitMaster, false
	}
	m.deadline = m.backupDeadline(now, wait)
	m.preemptAt = time.Time{}
	m.nextReason, m.skewed = reason, skewed
	return m.transition(nil, now, Backup, "start")
}

// Timer handles the machine's timer at now. It is due when now reaches
// [Machine.Deadline]; earlier calls do nothing. A backup takes over; a
// master sends its advert.
func (m *Machine) Timer(now time.Time) []Action {
	if m.deadline.IsZero() || now.Before(m.deadline) {
		return nil
	}
	switch m.state {
	case Backup:
		return m.becomeMaster(now, m.nextReason)
	case Master:
		m.deadline = now.Add(m.cfg.Interval)
		return []Action{m.advert(m.prio)}
	}
	return nil
}

// Receive handles an advert from src, received at now. The advert has
// passed the codec's checks and authentication; the machine still drops
// (with a [DropAdvert] action) one for another VRID or version, a version
// 2 advert whose interval differs from ours (unless
// Config.AcceptIntervalMismatch), and one from our own primary address.
// Adverts are ignored outside Backup and Master.
func (m *Machine) Receive(now time.Time, src netip.Addr, a *Advert) []Action {
	if a == nil || (m.state != Backup && m.state != Master) {
		return nil
	}
	src = src.Unmap().WithZone("")
	m.counters.AdvertsReceived++
	if act, ok := m.check(src, a); !ok {
		m.counters.Dropped++
		if act.Drop == DropIntervalMismatch {
			m.counters.IntervalMismatch++
		}
		return []Action{act}
	}
	if len(m.cfg.Addresses) > 0 && !sameAddresses(m.cfg.Addresses, a.Addresses) {
		m.counters.AddressMismatch++
	}
	if a.Priority == PriorityResign {
		m.counters.PriorityZeroReceived++
	}
	if m.state == Backup {
		m.receiveBackup(now, src, a)
		return nil
	}
	return m.receiveMaster(now, src, a)
}

// check returns a DropAdvert action and false for an advert the machine
// does not take.
func (m *Machine) check(src netip.Addr, a *Advert) (Action, bool) {
	drop := func(r DropReason, format string, args ...any) (Action, bool) {
		return Action{Kind: DropAdvert, Drop: r, Peer: src, Priority: a.Priority,
			Reason: fmt.Sprintf(format, args...)}, false
	}
	switch {
	case a.VRID != m.cfg.VRID:
		return drop(DropVRID, "VRID %d, ours %d", a.VRID, m.cfg.VRID)
	case a.Version != m.cfg.Version:
		return drop(DropVersion, "version %d, ours %d", a.Version, m.cfg.Version)
	case a.Interval <= 0:
		return drop(DropInterval, "advert interval %v", a.Interval)
	case m.cfg.Version == 2 && a.Interval != m.cfg.Interval && !m.cfg.AcceptIntervalMismatch:
		return drop(DropIntervalMismatch, "advert interval %v, ours %v", a.Interval, m.cfg.Interval)
	case src == m.cfg.PrimaryIP:
		// Multicast loopback is off, so this is another router using our
		// address: a misconfiguration worth a log line, not an election.
		return drop(0, "advert from our own primary address")
	}
	return Action{}, true
}

func (m *Machine) receiveBackup(now time.Time, src netip.Addr, a *Advert) {
	p := a.Priority
	delay := m.cfg.preemptDelay()
	switch {
	case p == PriorityResign:
		m.deadline = m.backupDeadline(now, m.skew())
		m.nextReason, m.skewed = reasonResigned, true
	case !m.cfg.preempts() || p >= m.prio ||
		(delay > 0 && (m.preemptAt.IsZero() || m.preemptAt.After(now))):
		// Accept the advert: this master stays.
		if m.cfg.Version == 3 {
			m.masterInterval = a.Interval
		}
		m.deadline = m.backupDeadline(now, m.masterDown())
		m.wantMaster = false
		m.master, m.masterPrio = src, p
		m.nextReason, m.skewed = reasonMasterDown, true
		if delay > 0 {
			if p >= m.prio {
				m.preemptAt = time.Time{}
			} else if m.preemptAt.IsZero() {
				m.preemptAt = now.Add(delay)
			}
		}
	default:
		// A lower priority master and we preempt: let the timer run out.
		m.master, m.masterPrio = src, p
		m.nextReason = fmt.Sprintf("preempting lower priority master %v (%d < %d)", src, p, m.prio)
	}
}

func (m *Machine) receiveMaster(now time.Time, src netip.Addr, a *Advert) []Action {
	p := a.Priority
	if p == PriorityResign {
		// Another master resigned: make sure the backups hear us now,
		// before their skew runs out.
		m.deadline = now.Add(m.cfg.Interval)
		return []Action{m.advert(m.prio)}
	}
	if cmp := src.Compare(m.cfg.PrimaryIP); p > m.prio || (p == m.prio && cmp > 0) {
		var acts []Action
		if m.cfg.HigherPrioritySendAdvert {
			acts = append(acts, m.advert(m.prio))
		}
		acts = append(acts, Action{Kind: RemoveAddresses})
		m.masterInterval = m.cfg.Interval
		if m.cfg.Version == 3 {
			m.masterInterval = a.Interval
		}
		m.master, m.masterPrio = src, p
		reason := fmt.Sprintf("higher priority advert from %v (%d > %d)", src, p, m.prio)
		if p == m.prio {
			reason = fmt.Sprintf("equal priority advert (%d) from higher address %v", p, src)
		}
		return m.enterBackup(acts, now, reason)
	}
	// Lower priority, or equal priority from a lower address: another
	// router thinks it is master.
	m.counters.LowerPriorityReceived++
	var acts []Action
	if !m.cfg.LowerPriorityNoAdvert {
		m.deadline = now.Add(m.cfg.Interval)
		acts = append(acts, m.advert(m.prio))
	}
	return append(acts, Action{Kind: LowerPriorityHeard, Priority: p, Peer: src})
}

// SetPriority sets the effective priority to total, the base priority
// plus the weights of track_script and track_interface entries, clamped to
// 1..254 as keepalived does. An address owner's priority never changes. A
// master's next advert carries the new priority (the peers decide whether
// to preempt); a backup's running down timer moves by the change in
// Skew_Time, but not before now (then Timer is due at once). It returns no actions today; the daemon should carry them out
// all the same.
func (m *Machine) SetPriority(now time.Time, total int) []Action {
	if m.owner() {
		return nil
	}
	p := uint8(min(max(total, 1), PriorityOwner-1))
	if p == m.prio {
		return nil
	}
	old := m.skew()
	m.prio = p
	if m.state == Backup && m.skewed {
		m.deadline = m.deadline.Add(m.skew() - old)
		if m.deadline.Before(now) {
			m.deadline = now
		}
	}
	return nil
}

// SetFault puts the instance into Fault (a tracked interface is down, a
// tracked script without weight fails) or takes it out. Entering Fault, a
// master sends a priority 0 advert and releases the addresses; leaving it,
// the instance becomes a backup with a fresh Master_Down_Interval (an
// address owner configured MASTER becomes master at once, as keepalived
// does). Before Start it only records the fault, so that Start enters
// Fault. Once stopped it does nothing.
func (m *Machine) SetFault(now time.Time, fault bool) []Action {
	switch {
	case m.state == Initialize:
		m.pendingFault = fault
		return nil
	case m.state == Stopped, fault == (m.state == Fault):
		return nil
	}
	if fault {
		var acts []Action
		if m.state == Master {
			acts = append(acts, m.advert(PriorityResign), Action{Kind: RemoveAddresses})
		}
		m.deadline, m.preemptAt, m.master, m.masterPrio = time.Time{}, time.Time{}, netip.Addr{}, 0
		m.wantMaster = false
		return m.transition(acts, now, Fault, "fault")
	}
	if m.owner() && m.cfg.InitialState == Master {
		return m.becomeMaster(now, "fault cleared, "+reasonAddressOwner)
	}
	m.masterInterval = m.cfg.Interval
	return m.enterBackup(nil, now, "fault cleared")
}

// Shutdown stops the machine for good: a master sends a priority 0 advert
// (so that a backup takes over after Skew_Time) and releases the
// addresses; every state ends in Stopped.
func (m *Machine) Shutdown(now time.Time) []Action {
	if m.state == Stopped {
		return nil
	}
	var acts []Action
	if m.state == Master {
		acts = append(acts, m.advert(PriorityResign), Action{Kind: RemoveAddresses})
	}
	m.deadline, m.preemptAt, m.master, m.masterPrio = time.Time{}, time.Time{}, netip.Addr{}, 0
	return m.transition(acts, now, Stopped, "shutdown")
}

func (m *Machine) owner() bool { return m.cfg.Priority == PriorityOwner }

// skew is Skew_Time for the effective priority.
func (m *Machine) skew() time.Duration { return m.skewFor(m.prio) }

func (m *Machine) skewFor(p uint8) time.Duration {
	unit := time.Second
	if m.cfg.Version == 3 {
		unit = m.masterInterval
	}
	return time.Duration(256-int(p)) * unit / 256
}

// masterDown is Master_Down_Interval.
func (m *Machine) masterDown() time.Duration { return 3*m.masterInterval + m.skew() }

func (m *Machine) advert(p uint8) Action {
	m.counters.AdvertsSent++
	if p == PriorityResign {
		m.counters.PriorityZeroSent++
	}
	return Action{Kind: SendAdvert, Priority: p, Interval: m.cfg.Interval}
}

func (m *Machine) becomeMaster(now time.Time, reason string) []Action {
	acts := []Action{m.advert(m.prio), {Kind: AddAddresses}, {Kind: Announce}}
	m.masterInterval = m.cfg.Interval
	m.deadline = now.Add(m.cfg.Interval)
	m.preemptAt = time.Time{}
	m.master, m.masterPrio = m.cfg.PrimaryIP, m.prio
	return m.transition(acts, now, Master, reason)
}

// enterBackup makes the machine a backup with a fresh down timer computed
// from the Master_Adver_Interval the caller set.
func (m *Machine) enterBackup(acts []Action, now time.Time, reason string) []Action {
	m.deadline = m.backupDeadline(now, m.masterDown())
	m.wantMaster = false
	m.preemptAt = time.Time{}
	m.nextReason, m.skewed = reasonMasterDown, true
	return m.transition(acts, now, Backup, reason)
}

func (m *Machine) transition(acts []Action, now time.Time, to State, reason string) []Action {
	from := m.state
	m.state = to
	m.lastTransition = now
	if to == Master {
		m.counters.BecameMaster++
	} else if from == Master {
		m.counters.ReleasedMaster++
	}
	if to != Backup && to != Master {
		m.deadline = time.Time{}
	}
	return append(acts, Action{Kind: Transition, From: from, To: to, Reason: reason})
}

// sameAddresses reports whether a and b hold the same addresses, in any
// order.
func sameAddresses(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}
