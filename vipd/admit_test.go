package main

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

// TestAdmit: what the IP layer says about a packet decides, before it is
// parsed, whether an instance takes it, as keepalived decides.
func TestAdmit(t *testing.T) {
	a := netip.MustParseAddr
	group := a("224.0.0.100")
	multicast := instanceSpec{Group: group}
	v6 := instanceSpec{Group: a("ff02::12")}
	unicast := instanceSpec{Peers: []peerSpec{{Addr: a("10.0.0.2"), MaxTTL: 255}}}
	checked := instanceSpec{CheckUnicastSrc: true, Peers: []peerSpec{
		{Addr: a("10.0.0.2"), MaxTTL: 255},
		{Addr: a("10.0.0.3"), MinTTL: 250, MaxTTL: 254},
	}}
	pkt := func(src, dst string, ttl int) vrrp.Packet {
		p := vrrp.Packet{Src: a(src), TTL: ttl}
		if dst != "" {
			p.Dst = a(dst)
		}
		return p
	}
	tests := []struct {
		name string
		spec instanceSpec
		p    vrrp.Packet
		want vrrp.DropReason // 0: taken
	}{
		{"to the group, TTL 255", multicast, pkt("10.0.0.2", "224.0.0.100", 255), 0},
		{"to the group, TTL unknown", multicast, pkt("10.0.0.2", "224.0.0.100", -1), 0},
		{"to the group, TTL 64", multicast, pkt("10.0.0.2", "224.0.0.100", 64), vrrp.DropTTL},
		{"to the host's address, TTL 255", multicast, pkt("10.0.0.9", "10.0.0.1", 255), vrrp.DropDestination},
		{"to the host's address, TTL 64", multicast, pkt("10.0.0.9", "10.0.0.1", 64), vrrp.DropDestination},
		{"to another group", multicast, pkt("10.0.0.2", "224.0.0.18", 255), vrrp.DropDestination},
		{"destination unknown", multicast, pkt("10.0.0.2", "", 255), vrrp.DropDestination},
		{"IPv6 to the group", v6, pkt("fe80::2", "ff02::12", 255), 0},
		{"IPv6 to the host, hop limit 255", v6, pkt("fe80::2", "fe80::1", 255), vrrp.DropDestination},
		{"IPv6 hop limit 1", v6, pkt("fe80::2", "ff02::12", 1), vrrp.DropTTL},
		{"unicast, any TTL", unicast, pkt("10.0.0.2", "10.0.0.1", 64), 0},
		{"unicast, any source unchecked", unicast, pkt("10.0.0.9", "10.0.0.1", 255), 0},
		{"unicast instance, multicast packet", unicast, pkt("10.0.0.2", "224.0.0.18", 255), vrrp.DropDestination},
		{"checked, a peer", checked, pkt("10.0.0.2", "10.0.0.1", 64), 0},
		{"checked, not a peer", checked, pkt("10.0.0.9", "10.0.0.1", 255), vrrp.DropSource},
		{"checked, TTL in range", checked, pkt("10.0.0.3", "10.0.0.1", 250), 0},
		{"checked, TTL above max", checked, pkt("10.0.0.3", "10.0.0.1", 255), vrrp.DropTTL},
		{"checked, TTL below min", checked, pkt("10.0.0.3", "10.0.0.1", 249), vrrp.DropTTL},
		{"checked, TTL unknown", checked, pkt("10.0.0.3", "10.0.0.1", -1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, ok := tt.spec.admit(tt.p)
			if ok != (tt.want == 0) || (!ok && reason != tt.want) {
				t.Errorf("admit = %v %v, want %v", reason, ok, tt.want)
			}
		})
	}
}

// TestResolveWireWords: the keywords that change the wire reach the
// instance's spec.
func TestResolveWireWords(t *testing.T) {
	cfg := parse(t, `
global_defs {
    vrrp_mcast_group4 224.0.0.100
    vrrp_strict
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    state MASTER
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    virtual_ipaddress {
        10.0.0.100/24
    }
    virtual_ipaddress_excluded {
        10.0.1.100/24 dev eth1
        2001:db8::100/64
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    unicast_peer {
        10.0.0.2 min_ttl 250
    }
    virtual_ipaddress {
        10.0.0.101/24
    }
    strict_mode off
}
`)
	lc, _, errs := resolve(cfg)
	if len(errs) > 0 {
		t.Fatalf("resolve: %v", errs)
	}
	s, u := lc.Instances[0], lc.Instances[1]
	if s.Group != netip.MustParseAddr("224.0.0.100") || len(s.Peers) != 0 {
		t.Errorf("group %v peers %v", s.Group, s.Peers)
	}
	if s.AuthType != vrrp.AuthNone || s.AuthData != [8]byte{} {
		t.Errorf("strict mode kept authentication %d", s.AuthType)
	}
	if !s.LowerPriorityNoAdvert || u.LowerPriorityNoAdvert {
		t.Errorf("lower priority no advert: strict %v, not strict %v", s.LowerPriorityNoAdvert, u.LowerPriorityNoAdvert)
	}
	if len(s.VIPs) != 1 || len(s.Excluded) != 2 || s.Excluded[0].Dev != "eth1" || len(s.held()) != 3 {
		t.Errorf("VIPs %v excluded %v", s.VIPs, s.Excluded)
	}
	if got := s.addresses(); len(got) != 1 || got[0] != netip.MustParseAddr("10.0.0.100") {
		t.Errorf("adverts carry %v", got)
	}
	if u.Group.IsValid() || !u.CheckUnicastSrc || len(u.Peers) != 1 || u.Peers[0] != (peerSpec{Addr: netip.MustParseAddr("10.0.0.2"), MinTTL: 250, MaxTTL: 255}) {
		t.Errorf("unicast instance: group %v check %v peers %v", u.Group, u.CheckUnicastSrc, u.Peers)
	}
}

// TestResolveRefusesAcceptOff: where keepalived would drop the traffic to
// the virtual addresses with nftables (accept mode off), vipd refuses, at
// the line that asked for it.
func TestResolveRefusesAcceptOff(t *testing.T) {
	inst := func(body string) string {
		return "vrrp_instance V {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n10.0.0.1\n}\n" + body + "\n}\n"
	}
	cases := []struct{ name, text, want string }{
		{"no_accept", inst("no_accept"), "test.conf:7: vrrp_instance V: no_accept: keepalived then drops all traffic"},
		{"vrrp_strict non-owner", "global_defs {\nvrrp_strict\n}\n" + inst("priority 100"),
			"test.conf:2: vrrp_instance V: strict mode turns accept mode off for priority 100"},
		{"strict_mode non-owner", inst("strict_mode\nstate MASTER\npriority 150"),
			"test.conf:7: vrrp_instance V: strict mode turns accept mode off for priority 150"},
		{"strict v2 with accept", inst("strict_mode\naccept"),
			"test.conf:7: vrrp_instance V: strict mode turns accept mode off"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, errs := resolve(parse(t, c.text))
			if err := errors.Join(errs...); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
	for _, ok := range []string{
		"global_defs {\nvrrp_strict\n}\n" + inst("priority 255"),
		inst("strict_mode\nversion 3\naccept"),
		inst("accept"),
	} {
		if _, _, errs := resolve(parse(t, ok)); len(errs) > 0 {
			t.Errorf("refused %q: %v", ok, errs)
		}
	}
}
