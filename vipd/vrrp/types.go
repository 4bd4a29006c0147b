package vrrp

import (
	"net/netip"
	"time"
)

// Protocol is VRRP's IP protocol number.
const Protocol = 112

// Multicast groups VRRP advertisements are sent to.
var (
	GroupIPv4 = netip.MustParseAddr("224.0.0.18")
	GroupIPv6 = netip.MustParseAddr("ff02::12")
)

// Priorities with a meaning of their own.
const (
	PriorityResign = 0   // the master is leaving: backups take over after Skew
	PriorityOwner  = 255 // the address owner
)

// Auth types of VRRPv2 (RFC 3768 §5.3.6). Version 3 has no authentication.
const (
	AuthNone = 0
	AuthPass = 1
	AuthAH   = 2
)

// Advert is one decoded VRRP advertisement.
type Advert struct {
	Version  int // 2 or 3
	VRID     uint8
	Priority uint8
	// Interval is the advertisement interval: whole seconds in version 2,
	// centiseconds (Max_Advertise_Interval) in version 3.
	Interval  time.Duration
	Addresses []netip.Addr
	// AuthType and AuthData are version 2 only; AuthData holds the
	// password's first 8 bytes, zero padded, for AuthPass.
	AuthType uint8
	AuthData [8]byte
}

// State is a VRRP router state (RFC 5798 §6.4), plus Fault as keepalived
// has it: the instance cannot serve (a tracked interface is down or a
// tracked script with no weight fails) and neither advertises nor holds
// the addresses.
type State int

const (
	Initialize State = iota
	Backup
	Master
	Fault
	Stopped
)

func (s State) String() string {
	switch s {
	case Initialize:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	case Fault:
		return "FAULT"
	case Stopped:
		return "STOP"
	}
	return "UNKNOWN"
}
