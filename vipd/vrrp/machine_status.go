package vrrp

import (
	"net/netip"
	"time"
)

// Status is a snapshot of a [Machine], for status pages, metrics and
// tests.
type Status struct {
	State State
	// Priority is the effective priority: the base priority moved by
	// track weights ([Machine.SetPriority]).
	Priority     uint8
	BasePriority uint8
	// Interval is our advertisement interval; MasterInterval is
	// Master_Adver_Interval, the interval the down timer is computed from
	// (a version 3 backup adopts the master's).
	Interval       time.Duration
	MasterInterval time.Duration
	// Skew and MasterDown are Skew_Time and Master_Down_Interval for the
	// current priority and MasterInterval.
	Skew       time.Duration
	MasterDown time.Duration
	// Master and MasterPriority are the master as last heard; ourselves
	// while we are master. Master is the zero Addr when none was heard.
	Master         netip.Addr
	MasterPriority uint8
	// Deadline is when [Machine.Timer] is next due; zero if never.
	Deadline time.Time
	// PreemptAt is when a running preempt_delay ends; zero if none runs.
	PreemptAt time.Time
	// LastTransition is when the state last changed.
	LastTransition time.Time
	Counters       Counters
}

// Counters count what a [Machine] has seen and done since it was made.
type Counters struct {
	BecameMaster   uint64 // transitions to Master
	ReleasedMaster uint64 // transitions from Master to another state
	AdvertsSent    uint64 // SendAdvert actions, priority 0 ones included
	// AdvertsReceived counts adverts handed to Receive while running
	// (Backup or Master), dropped ones included.
	AdvertsReceived      uint64
	PriorityZeroSent     uint64
	PriorityZeroReceived uint64
	// Dropped counts DropAdvert actions; IntervalMismatch is the part of
	// them for a version 2 interval that differs from ours.
	Dropped          uint64
	IntervalMismatch uint64
	// LowerPriorityReceived counts adverts of lower priority heard while
	// master (each one is a LowerPriorityHeard action).
	LowerPriorityReceived uint64
	// AddressMismatch counts adverts that passed the checks but whose
	// address list differs from ours (keepalived logs these; older versions dropped them).
	AddressMismatch uint64
}
