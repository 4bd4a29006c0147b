package config

import (
	"net/netip"
	"strings"
	"testing"
)

// Keywords that change what goes on the wire and what is taken from it:
// multicast groups, strict mode, accept mode, unicast peers' checks.

func global(body string) string { return "global_defs {\n" + body + "\n}\n" }

// instance6 is an IPv6 vrrp_instance called V6 with body.
func instance6(body string) string {
	return "vrrp_instance V6 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n fe80::1\n }\n" + body + "\n}\n"
}

// globalInstance is a global_defs block whose body is one line (line 2),
// then the minimal instance with body (from line 10).
func globalInstance(g, body string) string { return global(g) + instance(body) }

// requireError parses src and fails unless one error is exactly want
// ("file:line: msg").
func requireError(t *testing.T, src, want string) {
	t.Helper()
	list := errorList(t, src)
	for _, e := range list {
		if e.Error() == want {
			return
		}
	}
	t.Fatalf("errors:\n%v\nwant one: %s", list, want)
}

func TestMulticastGroups(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		cfg := mustParse(t, instance("")+instance6(""))
		if g := cfg.VRRPInstances[0].McastDstIP; g != netip.MustParseAddr("224.0.0.18") {
			t.Errorf("IPv4 group %v", g)
		}
		if g := cfg.VRRPInstances[1].McastDstIP; g != netip.MustParseAddr("ff02::12") {
			t.Errorf("IPv6 group %v", g)
		}
	})
	t.Run("global groups", func(t *testing.T) {
		cfg := mustParse(t, global("vrrp_mcast_group4 224.0.0.100\nvrrp_mcast_group6 ff02::100")+
			instance("")+instance6(""))
		if g := cfg.VRRPInstances[0].McastDstIP; g != netip.MustParseAddr("224.0.0.100") {
			t.Errorf("IPv4 group %v", g)
		}
		if g := cfg.VRRPInstances[1].McastDstIP; g != netip.MustParseAddr("ff02::100") {
			t.Errorf("IPv6 group %v", g)
		}
	})
	t.Run("mcast_dst_ip overrides the global group", func(t *testing.T) {
		cfg := mustParse(t, globalInstance("vrrp_mcast_group4 224.0.0.100", "mcast_dst_ip 239.1.2.3"))
		if g := cfg.VRRPInstances[0].McastDstIP; g != netip.MustParseAddr("239.1.2.3") {
			t.Errorf("group %v", g)
		}
	})
	t.Run("unicast has no group", func(t *testing.T) {
		cfg := mustParse(t, instance("mcast_dst_ip 224.0.0.100\nunicast_peer {\n 192.168.1.2\n}"))
		if g := cfg.VRRPInstances[0].McastDstIP; g.IsValid() {
			t.Errorf("group %v with unicast peers", g)
		}
		requireNote(t, cfg, NoteNoEffect, "keepalived.conf:7:", "mcast_dst_ip has no effect with unicast_peer")
	})
	t.Run("IPv6 group not link-local", func(t *testing.T) {
		cfg := mustParse(t, global("vrrp_mcast_group6 ff05::12"))
		requireNote(t, cfg, NoteCompat, "keepalived.conf:2:", "ff05::12 is not a link-local multicast address")
		if cfg.GlobalDefs.VRRPMcastGroup6 != netip.MustParseAddr("ff05::12") {
			t.Errorf("group %v", cfg.GlobalDefs.VRRPMcastGroup6)
		}
	})
	t.Run("given twice", func(t *testing.T) {
		cfg := mustParse(t, global("vrrp_mcast_group4 224.0.0.100\nvrrp_mcast_group4 224.0.0.101"))
		requireNote(t, cfg, NoteNoEffect, "keepalived.conf:3:", "vrrp_mcast_group4 given again")
		if cfg.GlobalDefs.VRRPMcastGroup4 != netip.MustParseAddr("224.0.0.101") {
			t.Errorf("group %v", cfg.GlobalDefs.VRRPMcastGroup4)
		}
	})
	bad := []struct{ name, src, want string }{
		{"group4 not multicast", global("vrrp_mcast_group4 10.0.0.1"),
			`keepalived.conf:2: vrrp_mcast_group4: expected an IPv4 multicast address, got "10.0.0.1"`},
		{"group4 IPv6", global("vrrp_mcast_group4 ff02::12"),
			`keepalived.conf:2: vrrp_mcast_group4: expected an IPv4 multicast address, got "ff02::12"`},
		{"group4 mapped", global("vrrp_mcast_group4 ::ffff:224.0.0.18"),
			`keepalived.conf:2: vrrp_mcast_group4: expected an IPv4 multicast address, got "::ffff:224.0.0.18"`},
		{"group4 broadcast", global("vrrp_mcast_group4 255.255.255.255"),
			`keepalived.conf:2: vrrp_mcast_group4: expected an IPv4 multicast address, got "255.255.255.255"`},
		{"group4 garbage", global("vrrp_mcast_group4 224.0.0"),
			`keepalived.conf:2: vrrp_mcast_group4: expected an IPv4 or IPv6 address, got "224.0.0"`},
		{"group4 two arguments", global("vrrp_mcast_group4 224.0.0.18 224.0.0.19"),
			`keepalived.conf:2: vrrp_mcast_group4: expected one argument, got 2`},
		{"group6 not multicast", global("vrrp_mcast_group6 fe80::12"),
			`keepalived.conf:2: vrrp_mcast_group6: expected an IPv6 multicast address, got "fe80::12"`},
		{"group6 IPv4", global("vrrp_mcast_group6 224.0.0.18"),
			`keepalived.conf:2: vrrp_mcast_group6: expected an IPv6 multicast address, got "224.0.0.18"`},
		{"group6 with zone", global("vrrp_mcast_group6 ff02::12%eth0"),
			`keepalived.conf:2: vrrp_mcast_group6: expected an IPv4 or IPv6 address, got "ff02::12%eth0"`},
		{"mcast_dst_ip not multicast", instance("mcast_dst_ip 10.0.0.1"),
			`keepalived.conf:7: mcast_dst_ip: expected an IPv4 multicast or an IPv6 link-local multicast address, got "10.0.0.1"`},
		{"mcast_dst_ip IPv6 not link-local", instance("mcast_dst_ip ff05::12"),
			`keepalived.conf:7: mcast_dst_ip: expected an IPv4 multicast or an IPv6 link-local multicast address, got "ff05::12"`},
		{"mcast_dst_ip wrong family", instance("mcast_dst_ip ff02::12"),
			"keepalived.conf:7: vrrp_instance VI_1: mcast_dst_ip ff02::12 is IPv6 but the virtual addresses are IPv4"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) { requireError(t, tt.src, tt.want) })
	}
}

// keepalived allows one VRID twice on an interface when the instances hear
// different adverts: other groups, or one unicast and one multicast.
func TestSameVRIDOtherGroup(t *testing.T) {
	two := func(a, b string) string {
		return instance(a) + strings.Replace(instance(b), "VI_1", "VI_2", 1)
	}
	mustParse(t, two("", "mcast_dst_ip 224.0.0.100"))
	mustParse(t, two("unicast_peer {\n 192.168.1.2\n}", ""))
	requireError(t, two("mcast_dst_ip 224.0.0.18", ""),
		"keepalived.conf:11: vrrp_instance VI_2: virtual_router_id 51 on eth0 (IPv4) is already used by vrrp_instance VI_1 at keepalived.conf:1")
}

func TestStrictMode(t *testing.T) {
	const auth = "authentication {\n auth_type PASS\n auth_pass s3cret\n}"
	t.Run("authentication is dropped", func(t *testing.T) {
		cfg := mustParse(t, globalInstance("vrrp_strict", "priority 255\n"+auth))
		in := &cfg.VRRPInstances[0]
		if !in.StrictMode || in.Authentication != nil {
			t.Fatalf("strict %v authentication %+v", in.StrictMode, in.Authentication)
		}
		requireNote(t, cfg, NoteCompat, "keepalived.conf:11:", "strict mode (vrrp_strict at keepalived.conf:2) allows no authentication")
	})
	t.Run("AH is dropped too", func(t *testing.T) {
		cfg := mustParse(t, globalInstance("vrrp_strict", "priority 255\nauthentication {\n auth_type AH\n auth_pass x\n}"))
		if cfg.VRRPInstances[0].Authentication != nil {
			t.Fatal("AH kept in strict mode")
		}
	})
	t.Run("strict_mode on one instance", func(t *testing.T) {
		cfg := mustParse(t, instance("strict_mode\npriority 255\n"+auth))
		requireNote(t, cfg, NoteCompat, "keepalived.conf:9:", "strict_mode allows no authentication")
	})
	t.Run("strict_mode off overrides vrrp_strict", func(t *testing.T) {
		cfg := mustParse(t, globalInstance("vrrp_strict", "strict_mode off\n"+auth))
		in := &cfg.VRRPInstances[0]
		if in.StrictMode || in.Authentication == nil || in.NoAccept {
			t.Fatalf("strict %v authentication %+v no_accept %v", in.StrictMode, in.Authentication, in.NoAccept)
		}
	})
	t.Run("state MASTER needs priority 255", func(t *testing.T) {
		cfg := mustParse(t, globalInstance("vrrp_strict", "state MASTER\npriority 100"))
		if in := &cfg.VRRPInstances[0]; in.State != StateBackup {
			t.Fatalf("state %s", in.State)
		}
		requireNote(t, cfg, NoteCompat, "keepalived.conf:10:", "state MASTER goes only with priority 255", "starts as BACKUP")
	})
	t.Run("state BACKUP of the owner", func(t *testing.T) {
		cfg := mustParse(t, globalInstance("vrrp_strict", "state BACKUP\npriority 255"))
		if in := &cfg.VRRPInstances[0]; in.State != StateMaster {
			t.Fatalf("state %s", in.State)
		}
	})
	t.Run("state MASTER without priority is the owner", func(t *testing.T) {
		cfg := mustParse(t, globalInstance("vrrp_strict", "state MASTER"))
		if in := &cfg.VRRPInstances[0]; in.State != StateMaster || in.Priority != 255 || in.NoAccept {
			t.Fatalf("state %s priority %d no_accept %v", in.State, in.Priority, in.NoAccept)
		}
	})
	t.Run("preempt_delay is reset", func(t *testing.T) {
		cfg := mustParse(t, globalInstance("vrrp_strict", "preempt_delay 5"))
		if in := &cfg.VRRPInstances[0]; in.PreemptDelay != 0 {
			t.Fatalf("preempt_delay %v", in.PreemptDelay)
		}
		requireNote(t, cfg, NoteCompat, "keepalived.conf:10:", "allows no preempt_delay")
	})
	t.Run("IPv6 runs version 3", func(t *testing.T) {
		cfg := mustParse(t, global("vrrp_strict")+instance6("version 2"))
		if v := cfg.VRRPInstances[0].Version; v != 3 {
			t.Fatalf("version %d", v)
		}
	})
	t.Run("unicast peers refused", func(t *testing.T) {
		requireError(t, globalInstance("vrrp_strict", "unicast_peer {\n 192.168.1.2\n}"),
			"keepalived.conf:10: vrrp_instance VI_1: unicast_peer: strict mode (vrrp_strict or strict_mode) allows no unicast peers; keepalived refuses the instance too")
	})
	t.Run("no addresses refused", func(t *testing.T) {
		requireError(t, global("vrrp_strict")+"vrrp_instance V {\n interface eth0\n virtual_router_id 1\n no_virtual_ipaddress\n}\n",
			"keepalived.conf:7: vrrp_instance V: no_virtual_ipaddress: strict mode (vrrp_strict or strict_mode) needs at least one virtual address; keepalived refuses the instance too")
	})
	t.Run("bad strict_mode", func(t *testing.T) {
		requireError(t, instance("strict_mode maybe"), `keepalived.conf:7: strict_mode: expected on|off|true|false|yes|no, got "maybe"`)
	})
	t.Run("vrrp_strict takes no argument", func(t *testing.T) {
		requireError(t, global("vrrp_strict on"), "keepalived.conf:2: vrrp_strict: expected no argument, got 1")
	})
}

func TestAcceptMode(t *testing.T) {
	tests := []struct {
		name, g, body string
		want          bool
	}{
		{"default", "", "", true},
		{"no_accept", "", "no_accept", false},
		{"accept after no_accept", "", "no_accept\naccept", true},
		{"strict non-owner", "vrrp_strict", "", false},
		{"strict owner", "vrrp_strict", "priority 255", true},
		{"strict v2 non-owner with accept", "vrrp_strict", "accept", false},
		{"strict v3 non-owner with accept", "vrrp_strict", "version 3\naccept", true},
		{"strict v3 non-owner", "vrrp_strict", "version 3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := instance(tt.body)
			if tt.g != "" {
				src = globalInstance(tt.g, tt.body)
			}
			cfg := mustParse(t, src)
			if got := !cfg.VRRPInstances[0].NoAccept; got != tt.want {
				t.Errorf("accept %v, want %v", got, tt.want)
			}
		})
	}
	cfg := mustParse(t, globalInstance("vrrp_strict", "accept"))
	requireNote(t, cfg, NoteCompat, "keepalived.conf:10:", "accept does not comply with RFC 3768 in strict mode")
}

func TestUnicastPeerChecks(t *testing.T) {
	const peers = "unicast_peer {\n 192.168.1.2\n 192.168.1.3 min_ttl 250 max_ttl 255\n}"
	t.Run("ttl range", func(t *testing.T) {
		in := &mustParse(t, instance(peers)).VRRPInstances[0]
		want := []UnicastPeer{
			{Address: netip.MustParseAddr("192.168.1.2"), MaxTTL: 255},
			{Address: netip.MustParseAddr("192.168.1.3"), MinTTL: 250, MaxTTL: 255},
		}
		if len(in.UnicastPeer) != 2 || in.UnicastPeer[0] != want[0] || in.UnicastPeer[1] != want[1] {
			t.Fatalf("peers %+v", in.UnicastPeer)
		}
		if !in.CheckUnicastSrc {
			t.Error("a min_ttl does not turn on check_unicast_src, as it does in keepalived")
		}
	})
	for _, tt := range []struct {
		name, src string
		want      bool
	}{
		{"plain peers", instance("unicast_peer {\n 192.168.1.2\n}"), false},
		{"max_ttl 255 alone", instance("unicast_peer {\n 192.168.1.2 max_ttl 255\n}"), true},
		{"check_unicast_src", instance("check_unicast_src\nunicast_peer {\n 192.168.1.2\n}"), true},
		{"vrrp_check_unicast_src", globalInstance("vrrp_check_unicast_src", "unicast_peer {\n 192.168.1.2\n}"), true},
		{"multicast", globalInstance("vrrp_check_unicast_src", "check_unicast_src"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := mustParse(t, tt.src).VRRPInstances[0].CheckUnicastSrc; got != tt.want {
				t.Errorf("check_unicast_src %v, want %v", got, tt.want)
			}
		})
	}
	bad := []struct{ name, src, want string }{
		{"min_ttl out of range", instance("unicast_peer {\n 192.168.1.2 min_ttl 256\n}"),
			`keepalived.conf:8: unicast_peer min_ttl: expected an integer 0..255, got "256"`},
		{"max_ttl negative", instance("unicast_peer {\n 192.168.1.2 max_ttl -1\n}"),
			`keepalived.conf:8: unicast_peer max_ttl: expected an integer 0..255, got "-1"`},
		{"min_ttl without value", instance("unicast_peer {\n 192.168.1.2 min_ttl\n}"),
			`keepalived.conf:8: unicast_peer: expected min_ttl N or max_ttl N after 192.168.1.2, got "min_ttl"`},
		{"min above max", instance("unicast_peer {\n 192.168.1.2 min_ttl 255 max_ttl 250\n}"),
			"keepalived.conf:7: vrrp_instance VI_1: unicast_peer 192.168.1.2: expected 0 <= min_ttl <= max_ttl <= 255, got 255 and 250"},
		{"peer twice", instance("unicast_peer {\n 192.168.1.2\n 192.168.1.2 min_ttl 250\n}"),
			"keepalived.conf:7: vrrp_instance VI_1: unicast_peer 192.168.1.2 is listed twice"},
		{"check_unicast_src takes no argument", instance("check_unicast_src yes"),
			"keepalived.conf:7: check_unicast_src: expected no argument, got 1"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) { requireError(t, tt.src, tt.want) })
	}
}

func TestExcludedAddresses(t *testing.T) {
	in := &mustParse(t, instance("virtual_ipaddress_excluded {\n 2001:db8::5/64 dev eth1\n 192.168.2.1/24\n}")).VRRPInstances[0]
	want := []netip.Prefix{netip.MustParsePrefix("2001:db8::5/64"), netip.MustParsePrefix("192.168.2.1/24")}
	if got := in.ExcludedVIPs(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("excluded %v", got)
	}
	if in.VirtualIPAddressExcluded[0].Dev != "eth1" || len(in.VIPs()) != 1 {
		t.Fatalf("instance %+v", in)
	}
	requireError(t, instance("virtual_ipaddress_excluded {\n 192.168.2.300\n}"),
		`keepalived.conf:8: virtual_ipaddress_excluded: expected an address ADDR or ADDR/PREFIX, got "192.168.2.300"`)
}
