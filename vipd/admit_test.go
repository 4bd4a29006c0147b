package main

import (
	"net/netip"
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
