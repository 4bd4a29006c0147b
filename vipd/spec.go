package main

import (
	"fmt"
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
	// GARPInterval and GNAInterval pace gratuitous ARPs and unsolicited
	// NAs on each interface (vrrp_garp_interval, vrrp_gna_interval): at
	// most one each so often, whichever instance sends them.
	GARPInterval time.Duration
	GNAInterval  time.Duration

	// group: this spec stands for a vrrp_sync_group's notify scripts
	// (the generic notify gets "GROUP" rather than "INSTANCE").
	group bool
}

type vipSpec struct {
	Prefix netip.Prefix
	Dev    string // empty: the instance's interface
	Label  string
	// Broadcast is the IPv4 broadcast address set with the address (brd);
	// the zero Addr sets none, as keepalived does.
	Broadcast netip.Addr
	// Scope is the address's scope (rtnetlink's numbers: 0 global, 200
	// site, 253 link, 254 host, 255 nowhere).
	Scope uint8
}

// groupSpec is one vrrp_sync_group, resolved: its members by name, in
// the configuration's order, and its notify scripts.
type groupSpec struct {
	Name    string
	Members []string
	Notify  instanceSpec // Name, NotifyState, Notify; group set
}

// identity is what keeps an instance the same one across a reload, as
// keepalived matches them: interface, VRID, address family, unicast or
// not, the configured source address and the multicast group. An
// instance whose identity is unchanged keeps its state whatever else
// changed.
func (s *instanceSpec) identity() string {
	v6 := len(s.VIPs) > 0 && s.VIPs[0].Prefix.Addr().Is6()
	return fmt.Sprintf("%s|%d|v6=%v|unicast=%v|%v|%v", s.Interface, s.VRID, v6, len(s.Peers) > 0, s.Source, s.Group)
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
