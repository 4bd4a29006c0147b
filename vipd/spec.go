package main

import (
	"net/netip"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

// instanceSpec is what one vrrp_instance asks for, resolved from the
// configuration: defaults filled, names of scripts turned into commands.
// Two equal specs describe the same running instance (reload compares
// them).
type instanceSpec struct {
	Name         string
	Interface    string
	VRID         uint8
	Version      int
	Priority     uint8
	Interval     time.Duration
	InitialState vrrp.State
	Preempt      bool
	PreemptDelay time.Duration
	AuthType     uint8
	AuthData     [8]byte
	VIPs         []vipSpec
	// Excluded are virtual_ipaddress_excluded: held with the VIPs, never
	// advertised.
	Excluded []vipSpec
	Source   netip.Addr // unicast_src_ip; zero: the interface's address
	Peers    []peerSpec
	// Group is the multicast group (vrrp_mcast_group4/6, mcast_dst_ip);
	// zero with Peers.
	Group netip.Addr
	// CheckUnicastSrc drops adverts from anyone but Peers, and those from
	// a peer with a TTL outside its MinTTL..MaxTTL.
	CheckUnicastSrc bool
	// LowerPriorityNoAdvert: a master does not answer a lower priority
	// advert (strict mode).
	LowerPriorityNoAdvert bool
	Checksum              vrrp.ChecksumMode

	TrackScripts    []trackScript
	TrackInterfaces []trackInterface

	NotifyState map[vrrp.State]script.Command
	Notify      *script.Command

	GARPDelay         time.Duration
	GARPRepeat        int
	GARPRefresh       time.Duration
	GARPRefreshRepeat int
}

type vipSpec struct {
	Prefix netip.Prefix
	Dev    string // empty: the instance's interface
	Label  string
}

// peerSpec is one unicast_peer.
type peerSpec struct {
	Addr           netip.Addr
	MinTTL, MaxTTL int
}

type trackScript struct {
	Name    string
	Weight  int  // 0: a failure puts the instance in FAULT
	Reverse bool // the weight applies the other way round
}

type trackInterface struct {
	Name    string
	Weight  int // 0: down puts the instance in FAULT
	Reverse bool
}

// scriptSpec is one vrrp_script.
type scriptSpec struct {
	Name     string
	Command  script.Command
	Interval time.Duration
	Weight   int
	Rise     int
	Fall     int
}

// held are the addresses a master holds: VIPs, then Excluded.
func (s *instanceSpec) held() []vipSpec {
	return append(append([]vipSpec(nil), s.VIPs...), s.Excluded...)
}

func (s *instanceSpec) peerAddrs() []netip.Addr {
	out := make([]netip.Addr, len(s.Peers))
	for i, p := range s.Peers {
		out[i] = p.Addr
	}
	return out
}

// addresses are the VIPs adverts carry.
func (s *instanceSpec) addresses() []netip.Addr {
	out := make([]netip.Addr, len(s.VIPs))
	for i, v := range s.VIPs {
		out[i] = v.Prefix.Addr()
	}
	return out
}
