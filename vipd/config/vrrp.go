package config

import (
	"net/netip"
	"time"
)

// VRRPScript is a vrrp_script block: a check run every Interval whose
// result changes the priority of the instances tracking it, or puts them
// in FAULT when its weight is 0.
type VRRPScript struct {
	Pos  Pos    `json:"-"`
	Name string `json:"name"`

	Script   *Script  `json:"script"`
	Interval Duration `json:"interval"` // default 1s
	Timeout  Duration `json:"timeout"`  // default: Interval
	// Weight is added to (positive) or subtracted from (negative) the
	// priority, -253..253; Reverse turns the direction round.
	Weight   int    `json:"weight"`
	Reverse  bool   `json:"reverse,omitempty"`
	Rise     int    `json:"rise"` // successes before OK, default 1
	Fall     int    `json:"fall"` // failures before KO, default 1
	User     string `json:"user,omitempty"`
	Group    string `json:"group,omitempty"`
	InitFail bool   `json:"init_fail"`

	meta *meta
}

// DefaultVRRPScript returns a vrrp_script with keepalived's defaults.
func DefaultVRRPScript() VRRPScript {
	return VRRPScript{Interval: Duration(DefaultScriptInterval), Rise: 1, Fall: 1}
}

// State is the initial state of a vrrp_instance.
type State string

// Initial states.
const (
	StateMaster State = "MASTER"
	StateBackup State = "BACKUP"
)

// VRRPInstance is a vrrp_instance block. After Parse every field holds the
// value in effect: defaults and global_defs are filled in.
type VRRPInstance struct {
	Pos  Pos    `json:"-"`
	Name string `json:"name"`

	// State is the initial state. Unset, keepalived (and vipd) start as
	// MASTER when the priority is 255 and as BACKUP otherwise.
	State     State  `json:"state"`
	Interface string `json:"interface"`
	// VirtualRouterID is the VRID, 1..255.
	VirtualRouterID int `json:"virtual_router_id"`
	// Priority is 1..255; 255 is the address owner. Unset, it is 100, or
	// 255 with state MASTER, as keepalived 2.0 and later have it.
	Priority int `json:"priority"`
	// AdvertInt is the advertisement interval: whole seconds 1..255 in
	// version 2, 0.01..40.95 s in steps of 0.01 s in version 3.
	AdvertInt Duration `json:"advert_int"`
	// Version is the VRRP version, 2 or 3: the instance's version keyword,
	// else global_defs vrrp_version; IPv6 instances always run 3.
	Version      int      `json:"version"`
	Nopreempt    bool     `json:"nopreempt"`
	PreemptDelay Duration `json:"preempt_delay"`
	// Authentication is version 2 only; nil when not configured (or when
	// set on a version 3 instance, which ignores it).
	Authentication *Authentication `json:"authentication,omitempty"`

	VirtualIPAddress         []VirtualIP `json:"virtual_ipaddress"`
	VirtualIPAddressExcluded []VirtualIP `json:"virtual_ipaddress_excluded,omitempty"`
	// NoVirtualIPAddress allows an instance without addresses.
	NoVirtualIPAddress bool `json:"no_virtual_ipaddress,omitempty"`

	McastSrcIP   netip.Addr    `json:"mcast_src_ip,omitzero"`
	UnicastSrcIP netip.Addr    `json:"unicast_src_ip,omitzero"`
	UnicastPeer  []UnicastPeer `json:"unicast_peer,omitempty"`
	// McastDstIP is the multicast group adverts go to and are taken from:
	// mcast_dst_ip, else global_defs vrrp_mcast_group4 or
	// vrrp_mcast_group6 (224.0.0.18, ff02::12). Unset for an instance
	// with unicast peers. Adverts sent anywhere else are dropped.
	McastDstIP netip.Addr `json:"mcast_dst_ip,omitzero"`
	// CheckUnicastSrc: adverts whose source is not one of UnicastPeer, or
	// whose TTL / hop limit lies outside that peer's min_ttl..max_ttl, are
	// dropped. Set by check_unicast_src, by global_defs
	// vrrp_check_unicast_src, and, as in keepalived, by a min_ttl or
	// max_ttl on any peer. Unicast instances only.
	CheckUnicastSrc bool `json:"check_unicast_src"`

	// StrictMode is strict_mode, else global_defs vrrp_strict: keepalived's
	// strict RFC compliance. Parse applies its rules: no authentication
	// (adverts carrying it are then dropped), state MASTER only for the
	// address owner, no preempt_delay, no unicast peers, at least one
	// virtual address, accept mode off for version 2 non-owners, and a
	// master that does not answer a lower priority advert.
	StrictMode bool `json:"strict_mode"`
	// NoAccept is accept mode off (no_accept; accept turns it on): the
	// virtual addresses take no traffic while this router is master and
	// not the address owner. Unset, accept mode is on, except in strict
	// mode for a non-owner; strict mode turns it off for version 2
	// non-owners even with accept. keepalived then drops that traffic with
	// a firewall (nftables); vipd has none and refuses to run such an
	// instance.
	NoAccept bool `json:"no_accept"`

	TrackInterface []TrackInterface `json:"track_interface,omitempty"`
	// DontTrackPrimary is dont_track_primary: the instance's own interface
	// going down does not put it in FAULT (by default it does).
	DontTrackPrimary bool `json:"dont_track_primary,omitempty"`
	// TrackScript names vrrp_scripts; entries naming no vrrp_script are
	// dropped with a note.
	TrackScript []TrackScript `json:"track_script,omitempty"`

	NotifyMaster *Script `json:"notify_master,omitempty"`
	NotifyBackup *Script `json:"notify_backup,omitempty"`
	NotifyFault  *Script `json:"notify_fault,omitempty"`
	NotifyStop   *Script `json:"notify_stop,omitempty"`
	// Notify runs on every transition, with "INSTANCE", the name, the new
	// state and the priority appended to its arguments.
	Notify *Script `json:"notify,omitempty"`

	// Gratuitous ARP / unsolicited NA after becoming master: Repeat
	// messages at once, then Repeat more after Delay (0: no second round);
	// while master, RefreshRepeat messages every Refresh (0: never).
	GarpMasterDelay         Duration `json:"garp_master_delay"`
	GarpMasterRepeat        int      `json:"garp_master_repeat"`
	GarpMasterRefresh       Duration `json:"garp_master_refresh"`
	GarpMasterRefreshRepeat int      `json:"garp_master_refresh_repeat"`

	// V3ChecksumAsV2: for version 3 over IPv4, leave the pseudo-header out
	// of the checksum, as RFC 9568, Cisco and Juniper do. keepalived
	// includes it by default.
	V3ChecksumAsV2 bool `json:"v3_checksum_as_v2"`

	// LowerPrioNoAdvert: as master, do not answer an advert of lower
	// priority with an advert at once. lower_prio_no_advert, else global_defs
	// vrrp_lower_prio_no_advert; always on in strict mode, as in keepalived.
	LowerPrioNoAdvert bool `json:"lower_prio_no_advert"`

	// NativeIPv6 (native_ipv6) makes the instance IPv6, as its
	// virtual_ipaddress entries already do; with an IPv4 address or none,
	// it is an error.
	NativeIPv6 bool `json:"native_ipv6,omitempty"`

	meta    *meta
	peerTTL bool // a unicast_peer has min_ttl or max_ttl
}

// DefaultVRRPInstance returns a vrrp_instance with keepalived's defaults.
// State is left unset (see [VRRPInstance.InitialMaster]); Parse settles
// State, Priority and Version, which depend on each other, on the
// addresses and on global_defs.
func DefaultVRRPInstance() VRRPInstance {
	return VRRPInstance{
		Priority:                DefaultPriority,
		Version:                 DefaultVersion,
		AdvertInt:               Duration(DefaultAdvertInt),
		GarpMasterDelay:         Duration(DefaultGarpMasterDelay),
		GarpMasterRepeat:        DefaultGarpMasterRepeat,
		GarpMasterRefreshRepeat: DefaultGarpRefreshRepeat,
	}
}

// IPv6 reports whether the instance's virtual addresses are IPv6.
func (in *VRRPInstance) IPv6() bool {
	return len(in.VirtualIPAddress) > 0 && in.VirtualIPAddress[0].Address.Addr().Is6()
}

// EffectiveVersion returns the VRRP version the instance runs: Version when
// set, otherwise 3 for IPv6 and 2 for IPv4.
func (in *VRRPInstance) EffectiveVersion() int {
	if in.IPv6() {
		return 3
	}
	if in.Version == 2 || in.Version == 3 {
		return in.Version
	}
	return DefaultVersion
}

// Interval returns the advertisement interval, 1s when unset.
func (in *VRRPInstance) Interval() time.Duration {
	if in.AdvertInt <= 0 {
		return DefaultAdvertInt
	}
	return time.Duration(in.AdvertInt)
}

// InitialMaster reports whether the instance starts as MASTER; it starts
// as BACKUP otherwise. With no state set, it starts as MASTER only when its
// priority is 255.
func (in *VRRPInstance) InitialMaster() bool {
	if in.State == "" {
		return in.Priority == 255
	}
	return in.State == StateMaster
}

// InitialBackup reports whether the instance starts as BACKUP.
func (in *VRRPInstance) InitialBackup() bool { return !in.InitialMaster() }

// VIPs returns the virtual addresses carried in adverts, in order.
func (in *VRRPInstance) VIPs() []netip.Prefix { return prefixes(in.VirtualIPAddress) }

// ExcludedVIPs returns the virtual_ipaddress_excluded addresses.
func (in *VRRPInstance) ExcludedVIPs() []netip.Prefix { return prefixes(in.VirtualIPAddressExcluded) }

// Unicast reports whether adverts go to unicast peers instead of the
// multicast group.
func (in *VRRPInstance) Unicast() bool { return len(in.UnicastPeer) > 0 }

// KeywordPos returns where the instance's keyword kw was given, or the
// position of the vrrp_instance line when it was not.
func (in *VRRPInstance) KeywordPos(kw string) Pos { return in.meta.pos(kw, in.Pos) }

// Given reports whether the instance's block gave the keyword kw.
func (in *VRRPInstance) Given(kw string) bool { return in.meta.has(kw) }

func prefixes(vs []VirtualIP) []netip.Prefix {
	out := make([]netip.Prefix, len(vs))
	for i, v := range vs {
		out[i] = v.Address
	}
	return out
}

func (d *decoder) vrrpScript(s *stmt) (VRRPScript, bool) {
	sc := DefaultVRRPScript()
	sc.Pos, sc.meta = s.pos(), newMeta()
	if !d.nargs(s, 1, 1) {
		return sc, false
	}
	sc.Name = s.args[0].val
	d.walk("vrrp_script", s, d.scriptKeywords(&sc), sc.meta, func() any { return &sc })
	if !sc.meta.has("timeout") {
		sc.Timeout = sc.Interval
	}
	return sc, true
}

func (d *decoder) scriptKeywords(sc *VRRPScript) keywords {
	count := func(p *int) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.intArg(s, 1, 1<<30); ok {
				*p = v
			}
		}
	}
	secs := func(p *Duration) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.secondsArg(s, time.Millisecond, 24*time.Hour); ok {
				*p = v
			}
		}
	}
	return keywords{
		"script": value(func(s *stmt) {
			if v, ok := d.commandArg(s); ok {
				sc.Script = v
			}
		}),
		"interval": value(secs(&sc.Interval)),
		"timeout":  value(secs(&sc.Timeout)),
		"weight": value(func(s *stmt) {
			if !d.nargs(s, 1, 2) {
				return
			}
			if v, ok := d.intVal(s, s.args[0], -253, 253); ok {
				sc.Weight = v
			}
			if len(s.args) == 2 {
				if s.args[1].val != "reverse" {
					d.errorf(s, s.args[1].line, "weight: expected \"reverse\" after the weight, got %q", s.args[1].val)
					return
				}
				sc.Reverse = true
			}
		}),
		"rise": value(count(&sc.Rise)),
		"fall": value(count(&sc.Fall)),
		"user": value(func(s *stmt) {
			if d.nargs(s, 1, 2) {
				sc.User = s.args[0].val
				if len(s.args) == 2 {
					sc.Group = d.group(s, s.args[1].val)
				}
			}
		}),
		"init_fail": value(func(s *stmt) {
			if d.flag(s) {
				sc.InitFail = true
			}
		}),
	}
}

func (d *decoder) vrrpInstance(s *stmt) (VRRPInstance, bool) {
	in := DefaultVRRPInstance()
	in.Pos, in.meta = s.pos(), newMeta()
	if !d.nargs(s, 1, 1) {
		return in, false
	}
	in.Name = s.args[0].val
	d.walk("vrrp_instance", s, d.instanceKeywords(&in), in.meta, func() any { return &in })
	return in, true
}

func (d *decoder) instanceKeywords(in *VRRPInstance) keywords {
	notify := func(p **Script) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.notifyArg(s); ok {
				*p = v
			}
		}
	}
	garpSecs := func(p *Duration) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.wholeSecondsArg(s, 0, 86400); ok {
				*p = v
			}
		}
	}
	repeat := func(p *int) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.intArg(s, 1, 1000); ok {
				*p = v
			}
		}
	}
	return keywords{
		"state": value(func(s *stmt) {
			v, ok := d.strArg(s)
			if !ok {
				return
			}
			switch State(v) {
			case StateMaster, StateBackup:
				in.State = State(v)
			default:
				d.errorf(s, s.args[0].line, "state: expected MASTER or BACKUP, got %q", v)
			}
		}),
		"interface": value(func(s *stmt) {
			if v, ok := d.strArg(s); ok {
				if len(v) == 0 || len(v) > 15 {
					d.errorf(s, s.args[0].line, "interface: expected an interface name of 1..15 characters, got %q", v)
					return
				}
				in.Interface = v
			}
		}),
		"virtual_router_id": value(func(s *stmt) {
			if v, ok := d.intArg(s, 1, 255); ok {
				in.VirtualRouterID = v
			}
		}),
		"priority": value(func(s *stmt) {
			if v, ok := d.intArg(s, 1, 255); ok {
				in.Priority = v
			}
		}),
		"advert_int": value(func(s *stmt) {
			// The range depends on the version, known only at the end.
			if v, ok := d.secondsArg(s, 10*time.Millisecond, 255*time.Second); ok {
				in.AdvertInt = v
			}
		}),
		"version": value(func(s *stmt) {
			if v, ok := d.intArg(s, 2, 3); ok {
				in.Version = v
			}
		}),
		"nopreempt": value(func(s *stmt) {
			if d.flag(s) {
				in.Nopreempt = true
			}
		}),
		"preempt": value(func(s *stmt) {
			if d.flag(s) {
				in.Nopreempt = false
			}
		}),
		"preempt_delay": value(func(s *stmt) {
			if v, ok := d.secondsArg(s, 0, 1000*time.Second); ok {
				in.PreemptDelay = v
			}
		}),
		"authentication": block(func(s *stmt) {
			if len(s.args) > 0 {
				d.errorf(s, s.kw.line, "authentication: expected no argument before '{', got %d", len(s.args))
			}
			a := &Authentication{}
			d.walk("authentication", s, d.authKeywords(a), in.meta, func() any { return a })
			in.Authentication = a
		}),
		"virtual_ipaddress": block(func(s *stmt) {
			in.VirtualIPAddress = append(in.VirtualIPAddress, d.vipBlock(s)...)
		}),
		"virtual_ipaddress_excluded": block(func(s *stmt) {
			in.VirtualIPAddressExcluded = append(in.VirtualIPAddressExcluded, d.vipBlock(s)...)
		}),
		"no_virtual_ipaddress": value(func(s *stmt) {
			if d.flag(s) {
				in.NoVirtualIPAddress = true
			}
		}),
		"mcast_src_ip": value(func(s *stmt) {
			if v, ok := d.addrArg(s); ok {
				in.McastSrcIP = v
			}
		}),
		"unicast_src_ip": value(func(s *stmt) {
			if v, ok := d.addrArg(s); ok {
				in.UnicastSrcIP = v
			}
		}),
		"unicast_peer": block(func(s *stmt) {
			peers, ttl := d.peerBlock(s)
			in.UnicastPeer = append(in.UnicastPeer, peers...)
			in.peerTTL = in.peerTTL || ttl
		}),
		"mcast_dst_ip": value(func(s *stmt) {
			a, ok := d.addrArg(s)
			if !ok {
				return
			}
			if !(a.Is4() && a.IsMulticast()) && !a.IsLinkLocalMulticast() {
				d.errorf(s, s.args[0].line, "mcast_dst_ip: expected an IPv4 multicast or an IPv6 link-local multicast address, got %q", s.args[0].val)
				return
			}
			in.McastDstIP = a
		}),
		"check_unicast_src": value(func(s *stmt) {
			if d.flag(s) {
				in.CheckUnicastSrc = true
			}
		}),
		"strict_mode": value(func(s *stmt) {
			if v, ok := d.boolArg(s); ok {
				in.StrictMode = v
			}
		}),
		"accept": value(func(s *stmt) {
			if d.flag(s) {
				in.NoAccept = false
			}
		}),
		"no_accept": value(func(s *stmt) {
			if d.flag(s) {
				in.NoAccept = true
			}
		}),
		"track_interface": block(func(s *stmt) {
			in.TrackInterface = append(in.TrackInterface, d.trackInterfaceBlock(s)...)
		}),
		"track_script": block(func(s *stmt) {
			in.TrackScript = append(in.TrackScript, d.trackScriptBlock(s)...)
		}),
		"dont_track_primary": value(func(s *stmt) {
			if d.flag(s) {
				in.DontTrackPrimary = true
			}
		}),
		"notify_master":              value(notify(&in.NotifyMaster)),
		"notify_backup":              value(notify(&in.NotifyBackup)),
		"notify_fault":               value(notify(&in.NotifyFault)),
		"notify_stop":                value(notify(&in.NotifyStop)),
		"notify":                     value(notify(&in.Notify)),
		"garp_master_delay":          value(garpSecs(&in.GarpMasterDelay)),
		"garp_master_repeat":         value(repeat(&in.GarpMasterRepeat)),
		"garp_master_refresh":        value(garpSecs(&in.GarpMasterRefresh)),
		"garp_master_refresh_repeat": value(repeat(&in.GarpMasterRefreshRepeat)),
		"v3_checksum_as_v2": value(func(s *stmt) {
			if v, ok := d.boolArg(s); ok {
				in.V3ChecksumAsV2 = v
			}
		}),
		"native_ipv6": value(func(s *stmt) {
			if d.flag(s) {
				in.NativeIPv6 = true
			}
		}),
		"lower_prio_no_advert": value(func(s *stmt) {
			if v, ok := d.boolArg(s); ok {
				in.LowerPrioNoAdvert = v
			}
		}),
	}
}
