package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// ActionKind says what an [Action] asks the daemon to do, or reports.
type ActionKind int

const (
	// SendAdvert: send one advertisement with Action.Priority (0 when
	// resigning) and Action.Interval, carrying the configured addresses.
	SendAdvert ActionKind = iota + 1
	// AddAddresses: put the virtual addresses on the interface.
	AddAddresses
	// RemoveAddresses: take the virtual addresses off the interface.
	RemoveAddresses
	// Announce: send gratuitous ARP / unsolicited neighbour advertisements
	// for the virtual addresses. The machine asks once per takeover;
	// repeats (garp_master_repeat, garp_master_delay, refresh) are the
	// daemon's business.
	Announce
	// Transition: the state changed from Action.From to Action.To, for
	// Action.Reason. For notify scripts, logs and metrics.
	Transition
	// DropAdvert reports a received advert the machine discarded
	// (Action.Drop, Action.Reason, from Action.Peer). Nothing to do but
	// count and log, rate-limited.
	DropAdvert
	// LowerPriorityHeard reports that the master heard an advert of lower
	// priority (Action.Priority) from Action.Peer: another router thinks it
	// is master. keepalived's notify_master_rx_lower_pri and
	// garp_lower_prio_repeat hang off this event.
	LowerPriorityHeard
)

func (k ActionKind) String() string {
	switch k {
	case SendAdvert:
		return "SendAdvert"
	case AddAddresses:
		return "AddAddresses"
	case RemoveAddresses:
		return "RemoveAddresses"
	case Announce:
		return "Announce"
	case Transition:
		return "Transition"
	case DropAdvert:
		return "DropAdvert"
	case LowerPriorityHeard:
		return "LowerPriorityHeard"
	}
	return fmt.Sprintf("ActionKind(%d)", int(k))
}

// Action is one thing a [Machine] asks of the daemon, or reports to it.
// The daemon carries out a call's actions in the order given.
type Action struct {
	Kind ActionKind
	// Priority: for SendAdvert, the priority to advertise; for DropAdvert
	// and LowerPriorityHeard, the received advert's priority.
	Priority uint8
	// Interval: for SendAdvert, the advertisement interval to advertise
	// (the configured one).
	Interval time.Duration
	// From and To: for Transition.
	From, To State
	// Reason: for Transition and DropAdvert, a short human explanation.
	Reason string
	// Drop: for DropAdvert, the metric label.
	Drop DropReason
	// Peer: for DropAdvert and LowerPriorityHeard, the advert's source.
	Peer netip.Addr
}

// String formats the action for logs and examples.
func (a Action) String() string {
	switch a.Kind {
	case SendAdvert:
		return fmt.Sprintf("SendAdvert priority=%d interval=%v", a.Priority, a.Interval)
	case Transition:
		return fmt.Sprintf("Transition %v->%v (%s)", a.From, a.To, a.Reason)
	case DropAdvert:
		return fmt.Sprintf("DropAdvert from %v priority=%d: %s", a.Peer, a.Priority, a.Reason)
	case LowerPriorityHeard:
		return fmt.Sprintf("LowerPriorityHeard from %v priority=%d", a.Peer, a.Priority)
	}
	return a.Kind.String()
}
