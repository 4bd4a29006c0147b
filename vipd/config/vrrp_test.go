package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestInstanceKeywords(t *testing.T) {
	sec := func(f float64) Duration { return Duration(time.Duration(f * float64(time.Second))) }
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, in *VRRPInstance)
	}{
		{"defaults", "", func(t *testing.T, in *VRRPInstance) {
			want := VRRPInstance{Name: "VI_1", State: StateBackup, Interface: "eth0", VirtualRouterID: 51,
				Priority: 100, AdvertInt: sec(1), Version: 2,
				VirtualIPAddress: []VirtualIP{{Pos: Pos{File: "keepalived.conf", Line: 5}, Address: netip.MustParsePrefix("192.168.1.10/32")}},
				GarpMasterDelay:  sec(5), GarpMasterRepeat: 5, GarpMasterRefreshRepeat: 1,
				McastDstIP: netip.MustParseAddr("224.0.0.18")}
			got := *in
			got.Pos, got.meta = Pos{}, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		}},
		{"state MASTER", "state MASTER\npriority 150", func(t *testing.T, in *VRRPInstance) {
			if in.State != StateMaster || !in.InitialMaster() || in.InitialBackup() || in.Priority != 150 {
				t.Errorf("state %q priority %d", in.State, in.Priority)
			}
		}},
		{"state MASTER without priority is owner", "state MASTER", func(t *testing.T, in *VRRPInstance) {
			if in.Priority != 255 {
				t.Errorf("priority %d, want 255", in.Priority)
			}
		}},
		{"priority 255 without state starts MASTER", "priority 255", func(t *testing.T, in *VRRPInstance) {
			if in.State != StateMaster {
				t.Errorf("state %q", in.State)
			}
		}},
		{"priority", "priority 1", func(t *testing.T, in *VRRPInstance) {
			if in.Priority != 1 {
				t.Errorf("priority %d", in.Priority)
			}
		}},
		{"advert_int", "advert_int 3", func(t *testing.T, in *VRRPInstance) {
			if in.Interval() != 3*time.Second {
				t.Errorf("interval %v", in.Interval())
			}
		}},
		{"advert_int sub-second v3", "advert_int 0.1\nversion 3", func(t *testing.T, in *VRRPInstance) {
			if in.Interval() != 100*time.Millisecond || in.EffectiveVersion() != 3 {
				t.Errorf("interval %v version %d", in.Interval(), in.EffectiveVersion())
			}
		}},
		{"version 3", "version 3", func(t *testing.T, in *VRRPInstance) {
			if in.Version != 3 {
				t.Errorf("version %d", in.Version)
			}
		}},
		{"nopreempt", "nopreempt", func(t *testing.T, in *VRRPInstance) {
			if !in.Nopreempt {
				t.Error("nopreempt not set")
			}
		}},
		{"preempt after nopreempt", "nopreempt\npreempt", func(t *testing.T, in *VRRPInstance) {
			if in.Nopreempt {
				t.Error("preempt did not clear nopreempt")
			}
		}},
		{"preempt_delay", "preempt_delay 2.5", func(t *testing.T, in *VRRPInstance) {
			if in.PreemptDelay != sec(2.5) {
				t.Errorf("preempt_delay %v", in.PreemptDelay)
			}
		}},
		{"authentication", "authentication {\n auth_type PASS\n auth_pass s3cret\n}", func(t *testing.T, in *VRRPInstance) {
			if a := in.Authentication; a == nil || a.AuthType != "PASS" || a.AuthPass.Reveal() != "s3cret" {
				t.Errorf("authentication %#v", a)
			}
		}},
		{"authentication AH", "authentication {\n auth_type AH\n}", func(t *testing.T, in *VRRPInstance) {
			if a := in.Authentication; a == nil || a.AuthType != "AH" {
				t.Errorf("authentication %#v", a)
			}
		}},
		{"virtual_ipaddress options", "virtual_ipaddress {\n192.168.1.11/24 dev eth1 label eth1:1 brd 192.168.1.255 scope global\n}",
			func(t *testing.T, in *VRRPInstance) {
				want := VirtualIP{Pos: Pos{File: "keepalived.conf", Line: 8}, Address: netip.MustParsePrefix("192.168.1.11/24"), Dev: "eth1", Label: "eth1:1",
					Brd: "192.168.1.255", Scope: "global"}
				if len(in.VirtualIPAddress) != 2 || !reflect.DeepEqual(in.VirtualIPAddress[1], want) {
					t.Errorf("vips %+v", in.VirtualIPAddress)
				}
				if got := in.VIPs(); len(got) != 2 || got[1] != want.Address {
					t.Errorf("VIPs() %v", got)
				}
			}},
		{"virtual_ipaddress_excluded mixed family", "virtual_ipaddress_excluded {\n2001:db8::1/64\n10.0.0.1\n}",
			func(t *testing.T, in *VRRPInstance) {
				got := in.ExcludedVIPs()
				if len(got) != 2 || got[0] != netip.MustParsePrefix("2001:db8::1/64") || got[1] != netip.MustParsePrefix("10.0.0.1/32") {
					t.Errorf("excluded %v", got)
				}
			}},
		{"unicast", "unicast_src_ip 192.168.1.2\nunicast_peer {\n192.168.1.3\n192.168.1.4 min_ttl 250 max_ttl 255\n}",
			func(t *testing.T, in *VRRPInstance) {
				want := []UnicastPeer{{Address: netip.MustParseAddr("192.168.1.3"), MaxTTL: 255},
					{Address: netip.MustParseAddr("192.168.1.4"), MinTTL: 250, MaxTTL: 255}}
				if in.UnicastSrcIP != netip.MustParseAddr("192.168.1.2") || !reflect.DeepEqual(in.UnicastPeer, want) || !in.Unicast() {
					t.Errorf("src %v peers %+v", in.UnicastSrcIP, in.UnicastPeer)
				}
			}},
		{"mcast_src_ip", "mcast_src_ip 192.168.1.2", func(t *testing.T, in *VRRPInstance) {
			if in.McastSrcIP != netip.MustParseAddr("192.168.1.2") || in.Unicast() {
				t.Errorf("mcast_src_ip %v", in.McastSrcIP)
			}
		}},
		{"track_interface", "track_interface {\neth1\neth2 weight -20\neth3 weight 10 reverse\n}", func(t *testing.T, in *VRRPInstance) {
			want := []TrackInterface{{Name: "eth1"}, {Name: "eth2", Weight: -20}, {Name: "eth3", Weight: 10, Reverse: true}}
			if !reflect.DeepEqual(in.TrackInterface, want) {
				t.Errorf("track_interface %+v", in.TrackInterface)
			}
		}},
		{"notify scripts", `notify_master "/etc/keepalived/master.sh 'a b' c" root wheel
notify_backup /etc/keepalived/backup.sh
notify_fault "/bin/fault"
notify_stop /bin/stop nobody
notify "/bin/notify x"`, func(t *testing.T, in *VRRPInstance) {
			m := in.NotifyMaster
			if m == nil || m.Raw != "/etc/keepalived/master.sh 'a b' c" || !reflect.DeepEqual(m.Argv, []string{"/etc/keepalived/master.sh", "a b", "c"}) ||
				m.User != "root" || m.Group != "wheel" {
				t.Errorf("notify_master %+v", m)
			}
			if in.NotifyBackup == nil || in.NotifyBackup.Argv[0] != "/etc/keepalived/backup.sh" ||
				in.NotifyFault == nil || in.NotifyFault.Raw != "/bin/fault" ||
				in.NotifyStop == nil || in.NotifyStop.User != "nobody" ||
				in.Notify == nil || len(in.Notify.Argv) != 2 {
				t.Errorf("notify %+v %+v %+v %+v", in.NotifyBackup, in.NotifyFault, in.NotifyStop, in.Notify)
			}
		}},
		{"garp", "garp_master_delay 10\ngarp_master_repeat 2\ngarp_master_refresh 60\ngarp_master_refresh_repeat 3", func(t *testing.T, in *VRRPInstance) {
			if in.GarpMasterDelay != sec(10) || in.GarpMasterRepeat != 2 || in.GarpMasterRefresh != sec(60) || in.GarpMasterRefreshRepeat != 3 {
				t.Errorf("garp %v %d %v %d", in.GarpMasterDelay, in.GarpMasterRepeat, in.GarpMasterRefresh, in.GarpMasterRefreshRepeat)
			}
		}},
		{"v3_checksum_as_v2", "version 3\nv3_checksum_as_v2", func(t *testing.T, in *VRRPInstance) {
			if !in.V3ChecksumAsV2 {
				t.Error("v3_checksum_as_v2 not set")
			}
		}},
		{"v3_checksum_as_v2 off", "v3_checksum_as_v2 off", func(t *testing.T, in *VRRPInstance) {
			if in.V3ChecksumAsV2 {
				t.Error("v3_checksum_as_v2 set")
			}
		}},
		{"no_virtual_ipaddress", "no_virtual_ipaddress", func(t *testing.T, in *VRRPInstance) {
			if !in.NoVirtualIPAddress {
				t.Error("no_virtual_ipaddress not set")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, instance(tt.body))
			if len(cfg.VRRPInstances) != 1 {
				t.Fatalf("%d instances", len(cfg.VRRPInstances))
			}
			tt.check(t, &cfg.VRRPInstances[0])
		})
	}
}

func TestInstanceIPv6(t *testing.T) {
	cfg := mustParse(t, `vrrp_instance V6 {
    interface eth0
    virtual_router_id 7
    version 2
    advert_int 0.5
    virtual_ipaddress {
        fe80::1/64
        2001:db8::10/64
    }
}`)
	in := &cfg.VRRPInstances[0]
	if !in.IPv6() || in.Version != 3 || in.EffectiveVersion() != 3 || in.Interval() != 500*time.Millisecond {
		t.Errorf("v6 %v version %d interval %v", in.IPv6(), in.Version, in.Interval())
	}
	requireNote(t, cfg, NoteCompat, "keepalived.conf:4:", "version 2 cannot carry IPv6")
}

func TestGlobalDefaultsFlowIntoInstances(t *testing.T) {
	cfg := mustParse(t, `global_defs {
    vrrp_version 3
    vrrp_garp_master_delay 1
    vrrp_garp_master_repeat 2
    vrrp_garp_master_refresh 30
    vrrp_garp_master_refresh_repeat 4
    v3_checksum_as_v2
}
`+instance("advert_int 0.05"))
	in := &cfg.VRRPInstances[0]
	if in.Version != 3 || in.GarpMasterDelay != Duration(time.Second) || in.GarpMasterRepeat != 2 ||
		in.GarpMasterRefresh != Duration(30*time.Second) || in.GarpMasterRefreshRepeat != 4 || !in.V3ChecksumAsV2 {
		t.Errorf("instance %+v", in)
	}
	cfg = mustParse(t, "global_defs {\n vrrp_min_garp\n}\n"+instance(""))
	in = &cfg.VRRPInstances[0]
	if in.GarpMasterRepeat != 1 || in.GarpMasterDelay != 0 {
		t.Errorf("vrrp_min_garp: repeat %d delay %v", in.GarpMasterRepeat, in.GarpMasterDelay)
	}
}

func TestGlobalKeywords(t *testing.T) {
	cfg := mustParse(t, `global_defs {
    router_id LVS_DEVEL
    enable_script_security
    script_user keepalived_script :scripts
    notification_email {
        a@example.com
        b@example.com
    }
    notification_email_from c@example.com
    smtp_server 127.0.0.1 25
    smtp_connect_timeout 30
    vrrp_version 3
    vrrp_garp_interval 0.001
    vrrp_gna_interval 0.002
    vrrp_mcast_group4 224.0.0.19
    vrrp_mcast_group6 ff02::13
    vrrp_strict
    vrrp_skip_check_adv_addr
    vrrp_check_unicast_src
    vrrp_startup_delay 5.5
    enable_snmp_vrrp
    smtp_alert
}`)
	g := cfg.GlobalDefs
	ms := func(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }
	if g.RouterID != "LVS_DEVEL" || !g.EnableScriptSecurity || g.ScriptUser != "keepalived_script" || g.ScriptGroup != "scripts" ||
		!reflect.DeepEqual(g.NotificationEmail, []string{"a@example.com", "b@example.com"}) ||
		g.NotificationEmailFrom != "c@example.com" || g.SMTPServer != "127.0.0.1 25" || g.SMTPConnectTimeout != ms(30000) ||
		g.VRRPVersion != 3 || g.VRRPGarpInterval != ms(1) || g.VRRPGnaInterval != ms(2) ||
		g.VRRPMcastGroup4 != netip.MustParseAddr("224.0.0.19") || g.VRRPMcastGroup6 != netip.MustParseAddr("ff02::13") ||
		!g.VRRPStrict || !g.VRRPSkipCheckAdvAddr || !g.VRRPCheckUnicastSrc || g.VRRPStartupDelay != ms(5500) {
		t.Errorf("global_defs %+v", g)
	}
	for _, want := range []struct {
		kind NoteKind
		subs []string
	}{
		{NoteIgnored, []string{":5:", "notification_email: ignored; vipd sends no mail"}},
		{NoteIgnored, []string{":9:", "notification_email_from"}},
		{NoteIgnored, []string{":10:", "smtp_server"}},
		{NoteIgnored, []string{":11:", "smtp_connect_timeout"}},
		{NoteIgnored, []string{":22:", "smtp_alert"}},
		{NoteIgnored, []string{":21:", "enable_snmp_vrrp: ignored; vipd has no SNMP"}},
		{NoteNotImplemented, []string{":4:", "supplementary groups"}},
	} {
		requireNote(t, cfg, want.kind, want.subs...)
	}
	cfg = mustParse(t, "global_defs {\n lvs_id OLD\n}")
	if cfg.GlobalDefs.RouterID != "OLD" {
		t.Errorf("lvs_id: router_id %q", cfg.GlobalDefs.RouterID)
	}
	requireNote(t, cfg, NoteDeprecated, "lvs_id is the old name of router_id")
}

func TestVRRPScript(t *testing.T) {
	cfg := mustParse(t, `vrrp_script chk_haproxy{
    script "/usr/bin/killall -0 haproxy"
    interval 2
    timeout 1.5
    weight -20 reverse
    rise 3
    fall 2
    user nobody nogroup
    init_fail
}
vrrp_script chk_default {
    script /bin/true
}
`+instance("track_script {\n chk_haproxy\n chk_default weight 5 reverse\n}"))
	sc := cfg.VRRPScript("chk_haproxy")
	if sc == nil {
		t.Fatal("no chk_haproxy")
	}
	want := VRRPScript{Name: "chk_haproxy",
		Script:   &Script{Raw: "/usr/bin/killall -0 haproxy", Argv: []string{"/usr/bin/killall", "-0", "haproxy"}},
		Interval: Duration(2 * time.Second), Timeout: Duration(1500 * time.Millisecond), Weight: -20, Reverse: true,
		Rise: 3, Fall: 2, User: "nobody", Group: "nogroup", InitFail: true}
	got := *sc
	got.Pos, got.meta = Pos{}, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	def := cfg.VRRPScript("chk_default")
	if def.Interval != Duration(time.Second) || def.Timeout != def.Interval || def.Rise != 1 || def.Fall != 1 || def.Weight != 0 {
		t.Errorf("defaults %+v", def)
	}
	ts := cfg.VRRPInstances[0].TrackScript
	if len(ts) != 2 || ts[0].Weight != -20 || !ts[0].Reverse || ts[1].Weight != 5 || !ts[1].Reverse {
		t.Errorf("track_script %+v", ts)
	}
	if cfg.VRRPScript("nope") != nil || cfg.VRRPInstance("VI_1") == nil || cfg.VRRPInstance("nope") != nil {
		t.Error("lookups")
	}
}

func TestVRRPScriptExtraWordsNote(t *testing.T) {
	cfg := mustParse(t, "vrrp_script s {\n script killall -0 haproxy\n}\n"+instance("track_script {\n s\n}"))
	if got := cfg.VRRPScript("s").Script.Argv; !reflect.DeepEqual(got, []string{"killall"}) {
		t.Errorf("argv %q", got)
	}
	requireNote(t, cfg, NoteNoEffect, "keepalived.conf:2:", "only the first word is the command")
}

func TestInstanceNotes(t *testing.T) {
	tests := []struct {
		name string
		src  string
		kind NoteKind
		subs []string
	}{
		{"undefined track_script", instance("track_script {\n chk_haproxy\n}"), NoteUndefined,
			[]string{"keepalived.conf:8:", `track_script "chk_haproxy": no vrrp_script chk_haproxy is defined; vrrp_instance VI_1 does not track it`}},
		{"unused vrrp_script", "vrrp_script lonely {\n script /bin/true\n}\n" + instance(""), NoteNoEffect,
			[]string{"keepalived.conf:1:", "vrrp_script lonely is not tracked"}},
		{"auth in v3", instance("version 3\nauthentication {\n auth_type PASS\n auth_pass x\n}"), NoteNoEffect,
			[]string{"keepalived.conf:8:", "version 3 has no authentication"}},
		{"long auth_pass", instance("authentication {\n auth_type PASS\n auth_pass 0123456789\n}"), NoteCompat,
			[]string{"keepalived.conf:9:", "only the first 8 are used"}},
		{"nopreempt with MASTER", instance("state MASTER\npriority 100\nnopreempt"), NoteNoEffect,
			[]string{"keepalived.conf:9:", "nopreempt has no effect with state MASTER"}},
		{"preempt_delay with nopreempt", instance("nopreempt\npreempt_delay 10"), NoteNoEffect,
			[]string{"keepalived.conf:8:", "reset to 0"}},
		{"owner priority", instance("state MASTER"), NoteCompat,
			[]string{"keepalived.conf:7:", "priority is 255"}},
		{"repeated keyword", instance("priority 10\npriority 20"), NoteNoEffect,
			[]string{"keepalived.conf:8:", "priority given again; it replaces the value from keepalived.conf:7"}},
		{"smtp_alert", instance("smtp_alert"), NoteIgnored, []string{"smtp_alert: ignored"}},
		{"vip options", instance("virtual_ipaddress {\n 10.0.0.1 home preferred_lft forever\n}"), NoteIgnored,
			[]string{"keepalived.conf:8:", "home, preferred_lft forever ignored"}},
		{"sync group of one", "vrrp_sync_group G {\n group {\n VI_1\n }\n}\n" + instance(""), NoteNoEffect,
			[]string{"keepalived.conf:2:", "vrrp_sync_group G has one member only"}},
		{"sync group old word", "vrrp_sync_group G {\n group {\n VI_1\n }\n global_tracking\n}\n" + instance(""), NoteDeprecated,
			[]string{"keepalived.conf:5:", "global_tracking is the old name of sync_group_tracking_weight"}},
		{"misspelt with the value in effect", instance("priorty 100"), NoteUnknown,
			[]string{"keepalived.conf:7:", `unknown keyword "priorty" in vrrp_instance VI_1 (did you mean "priority"?); ignored, priority stays 100, the default, which is what this line asks for`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, tt.src)
			requireNote(t, cfg, tt.kind, tt.subs...)
		})
	}
}

// TestLowerPrioNoAdvert: lower_prio_no_advert, else global_defs
// vrrp_lower_prio_no_advert, else off; strict mode turns it on, as
// keepalived does.
func TestLowerPrioNoAdvert(t *testing.T) {
	tests := []struct {
		name, src string
		want      bool
	}{
		{"default off", instance(""), false},
		{"instance", instance("lower_prio_no_advert"), true},
		{"instance off", "global_defs {\n vrrp_lower_prio_no_advert\n}\n" + instance("lower_prio_no_advert false"), false},
		{"global", "global_defs {\n vrrp_lower_prio_no_advert true\n}\n" + instance(""), true},
		{"strict owner", "global_defs {\n vrrp_strict\n}\n" + instance("priority 255\nlower_prio_no_advert off"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := mustParse(t, tt.src)
			if got := cfg.VRRPInstances[0].LowerPrioNoAdvert; got != tt.want {
				t.Errorf("LowerPrioNoAdvert %v, want %v", got, tt.want)
			}
		})
	}
}

// TestNativeIPv6: native_ipv6 goes with IPv6 addresses (where it changes
// nothing); with IPv4 addresses it is an error at its line.
func TestNativeIPv6(t *testing.T) {
	cfg := mustParse(t, "vrrp_instance V {\n interface eth0\n virtual_router_id 5\n native_ipv6\n virtual_ipaddress {\n fd00::5/64\n }\n}\n")
	if in := cfg.VRRPInstances[0]; !in.NativeIPv6 || !in.IPv6() || in.EffectiveVersion() != 3 {
		t.Errorf("instance %+v", in)
	}
	list := errorList(t, instance("native_ipv6"))
	if len(list) != 1 || !strings.Contains(list[0].Error(), "keepalived.conf:7: vrrp_instance VI_1: native_ipv6: the instance's virtual_ipaddress entries are not IPv6") {
		t.Errorf("errors %v", list)
	}
}
