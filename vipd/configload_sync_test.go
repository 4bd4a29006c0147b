package main

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

// instanceText is a vrrp_instance named name on ifname with body inside.
func instanceText(name, ifname string, vrid, prio int, body string) string {
	return "vrrp_instance " + name + " {\n    state MASTER\n    interface " + ifname + "\n    virtual_router_id " +
		strconv.Itoa(vrid) + "\n    priority " + strconv.Itoa(prio) + "\n" + body + "}\n"
}

// TestResolveVIPOptions: brd and scope as keepalived reads them (brd + and
// - from the prefix, an address as given, none when not given; scope by
// name), and what keepalived rejects or ignores refused with file:line.
func TestResolveVIPOptions(t *testing.T) {
	cfg := parse(t, instanceText("VI_1", "eth0", 51, 100, `    virtual_ipaddress {
        10.0.0.100/24 brd +
        10.0.1.100/24 broadcast -
        10.0.2.100/24 brd 10.0.2.7 scope link
        10.0.3.100/24 scope host
        10.0.4.100/24
    }
`))
	lc, _, errs := resolve(cfg)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []vipSpec{
		{Prefix: netip.MustParsePrefix("10.0.0.100/24"), Broadcast: netip.MustParseAddr("10.0.0.255")},
		{Prefix: netip.MustParsePrefix("10.0.1.100/24"), Broadcast: netip.MustParseAddr("10.0.1.0")},
		{Prefix: netip.MustParsePrefix("10.0.2.100/24"), Broadcast: netip.MustParseAddr("10.0.2.7"), Scope: 253},
		{Prefix: netip.MustParsePrefix("10.0.3.100/24"), Scope: 254},
		{Prefix: netip.MustParsePrefix("10.0.4.100/24")},
	}
	for k, w := range want {
		if got := lc.Instances[0].VIPs[k]; got != w {
			t.Errorf("VIP %d: %+v, want %+v", k, got, w)
		}
	}

	for _, c := range []struct{ line, want string }{
		{"10.0.0.100/31 brd +", "brd + needs a prefix of /30 or shorter"},
		{"10.0.0.100 brd -", "brd - needs a prefix of /30 or shorter"},
		{"fd00::100/64 brd fd00::ffff", "brd on an IPv6 address"},
		{"fd00::100/64 scope link", "scope on an IPv6 address"},
	} {
		cfg := parse(t, instanceText("VI_1", "eth0", 51, 100, "    virtual_ipaddress {\n        "+c.line+"\n    }\n"))
		_, _, errs := resolve(cfg)
		if err := errors.Join(errs...); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "test.conf:7:") {
			t.Errorf("%q: %v; want test.conf:7: ... %q", c.line, err, c.want)
		}
	}
}

// TestResolveDontTrackPrimary: by default the instance's own interface is
// tracked (down is FAULT); dont_track_primary stops that, and a
// track_interface naming the own interface is dropped with a warning, as
// keepalived drops it. The interface of a VIP given with dev is tracked
// too, unless no_track.
func TestResolveDontTrackPrimary(t *testing.T) {
	vips := "    virtual_ipaddress {\n        10.0.0.100/24\n    }\n"
	for _, c := range []struct {
		body string
		want []trackInterface
		warn string
	}{
		{vips, []trackInterface{{Name: "eth0"}}, ""},
		{vips + "    dont_track_primary\n", nil, ""},
		{vips + "    dont_track_primary\n    track_interface {\n        eth0 weight -20\n        eth1\n    }\n", []trackInterface{{Name: "eth1"}}, "track_interface eth0 is the instance's own interface; ignored"},
		// A VIP's interface is tracked as keepalived tracks it, also with
		// dont_track_primary, unless no_track; the own interface is not
		// tracked again for a VIP on it.
		{"    dont_track_primary\n    virtual_ipaddress {\n        10.0.0.100/24 dev eth0\n        10.0.1.100/24 dev eth3\n        10.0.2.100/24 dev eth4 no_track\n    }\n", []trackInterface{{Name: "eth3"}}, ""},
	} {
		lc, warnings, errs := resolve(parse(t, instanceText("VI_1", "eth0", 51, 100, c.body)))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		got := lc.Instances[0].TrackInterfaces
		if len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) {
			t.Errorf("%q: tracks %+v, want %+v", c.body, got, c.want)
		}
		if w := strings.Join(warnings, "\n"); (c.warn == "") != (w == "") || !strings.Contains(w, c.warn) {
			t.Errorf("%q: warnings %q, want %q", c.body, w, c.warn)
		}
	}
}

// TestResolveSyncGroup: a group's members start as BACKUP (keepalived does
// so unless every member is an address owner), the group's tracking
// applies to every member with its weight, the members' own weighted
// tracking is dropped (scripts) or loses its weight (interfaces) unless
// sync_group_tracking_weight, and the group's notify scripts are kept.
func TestResolveSyncGroup(t *testing.T) {
	text := `
global_defs {
    vrrp_startup_delay 2.5
}
vrrp_script chk {
    script "/bin/true"
    weight -20
}
vrrp_script own {
    script "/bin/true"
}
vrrp_sync_group NAT {
    group {
        VI_1
        VI_2
    }
    track_script {
        chk
    }
    track_interface {
        eth9 weight -5
    }
    notify_master "/bin/echo group master"
    notify "/bin/echo group"
}
` + instanceText("VI_1", "eth0", 51, 150, "    nopreempt\n    virtual_ipaddress {\n        10.0.0.100/24\n    }\n    track_script {\n        own weight 10\n    }\n    track_interface {\n        eth2 weight 7\n    }\n") +
		instanceText("VI_2", "eth1", 52, 150, "    virtual_ipaddress {\n        10.0.1.100/24\n    }\n") +
		instanceText("VI_3", "eth1", 53, 150, "    virtual_ipaddress {\n        10.0.2.100/24\n    }\n")
	lc, warnings, errs := resolve(parse(t, text))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if lc.StartupDelay != 2500*time.Millisecond {
		t.Errorf("startup delay %v", lc.StartupDelay)
	}
	if len(lc.Groups) != 1 || strings.Join(lc.Groups[0].Members, ",") != "VI_1,VI_2" {
		t.Fatalf("groups %+v", lc.Groups)
	}
	g := lc.Groups[0]
	if !g.Notify.group || g.Notify.Name != "NAT" || strings.Join(g.Notify.NotifyState[vrrp.Master].Argv, " ") != "/bin/echo group master" || g.Notify.Notify == nil {
		t.Errorf("group notify %+v", g.Notify)
	}
	v1, v3 := lc.Instances[0], lc.Instances[2]
	if v1.InitialState != vrrp.Backup || !v1.Preempt || v3.InitialState != vrrp.Master {
		t.Errorf("initial states: VI_1 %v preempt %v, VI_3 (no group) %v", v1.InitialState, v1.Preempt, v3.InitialState)
	}
	if len(v1.TrackScripts) != 1 || v1.TrackScripts[0] != (trackScript{Name: "chk", Weight: -20}) {
		t.Errorf("VI_1 scripts %+v: want the group's chk only (own has a weight)", v1.TrackScripts)
	}
	wantIfs := []trackInterface{{Name: "eth0"}, {Name: "eth2"}, {Name: "eth9", Weight: -5}}
	if len(v1.TrackInterfaces) != 3 || v1.TrackInterfaces[0] != wantIfs[0] || v1.TrackInterfaces[1] != wantIfs[1] || v1.TrackInterfaces[2] != wantIfs[2] {
		t.Errorf("VI_1 interfaces %+v, want %+v", v1.TrackInterfaces, wantIfs)
	}
	w := strings.Join(warnings, "\n")
	for _, want := range []string{"track_script own has a weight in vrrp_sync_group NAT; dropped", "track_interface eth2 has a weight in vrrp_sync_group NAT; tracked without it"} {
		if !strings.Contains(w, want) {
			t.Errorf("no warning %q in:\n%s", want, w)
		}
	}

	kept, warnings, _ := resolve(parse(t, strings.Replace(text, "    notify \"/bin/echo group\"\n", "    notify \"/bin/echo group\"\n    sync_group_tracking_weight\n", 1)))
	if len(kept.Instances[0].TrackScripts) != 2 || kept.Instances[0].TrackInterfaces[1].Weight != 7 || strings.Contains(strings.Join(warnings, "\n"), "has a weight") {
		t.Errorf("with sync_group_tracking_weight: %+v %+v %v", kept.Instances[0].TrackScripts, kept.Instances[0].TrackInterfaces, warnings)
	}
}

// TestReloadIdentity: what keeps an instance (and a sync group) the same
// across a reload, as keepalived matches them: everything may change but
// the interface, VRID, family, unicast or not, source and group; a sync
// group is one unit, in its members' order.
func TestReloadIdentity(t *testing.T) {
	base := "vrrp_sync_group G {\n    group {\n        VI_2\n        VI_1\n    }\n}\n"
	vip := func(a string) string { return "    virtual_ipaddress {\n        " + a + "\n    }\n" }
	conf := func(prio int, extra string) string {
		return base + instanceText("VI_1", "eth0", 51, prio, vip("10.0.0.100/24")+extra) +
			instanceText("VI_2", "eth1", 52, 100, vip("10.0.1.100/24")) +
			instanceText("VI_3", "eth1", 53, 100, vip("10.0.2.100/24"))
	}
	keys := func(text string) []string {
		t.Helper()
		lc, _, errs := resolve(parse(t, text))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		var out []string
		for _, u := range lc.units() {
			out = append(out, u.key())
		}
		return out
	}
	before := keys(conf(150, ""))
	if len(before) != 2 || !strings.HasPrefix(before[0], "group G\neth1|52|") || !strings.HasPrefix(before[1], "alone\neth1|53|") {
		t.Fatalf("units %q", before)
	}
	same := keys(conf(120, "    notify_master \"/bin/true\"\n    advert_int 2\n    garp_master_delay 1\n    virtual_ipaddress {\n        10.0.0.101/24\n    }\n"))
	if strings.Join(same, "|") != strings.Join(before, "|") {
		t.Errorf("priority, notify, interval, GARP, VIPs changed the identity:\n%q\n%q", before, same)
	}
	for _, change := range []string{"    unicast_src_ip 10.0.0.1\n    unicast_peer {\n        10.0.0.2\n    }\n", "    mcast_dst_ip 224.0.0.100\n"} {
		if got := keys(conf(150, change)); got[0] == before[0] {
			t.Errorf("%q kept the identity", change)
		}
	}
}
