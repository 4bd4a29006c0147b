package vip

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"

	"github.com/amqpha/amqpha/internal/testenv"
)

// inFreshNetns runs fn in a fresh network namespace holding a veth pair
// "vipa" (up) ↔ "vipb" (up).
func inFreshNetns(t *testing.T, fn func()) {
	t.Helper()
	testenv.InFreshNetns(t, func() {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "vipa"}, PeerName: "vipb"}
		if err := netlink.LinkAdd(veth); err != nil {
			t.Error(err)
			return
		}
		for _, name := range []string{"vipa", "vipb"} {
			l, err := netlink.LinkByName(name)
			if err == nil {
				err = netlink.LinkSetUp(l)
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
		// Frames sent before the kernel sees the carrier (its link watch
		// runs up to a second later under load) are dropped: wait for it.
		for _, name := range []string{"vipa", "vipb"} {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				l, err := netlink.LinkByName(name)
				if err == nil && l.Attrs().OperState == netlink.OperUp {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("%s: no carrier within 10 s (%v)", name, err)
					return
				}
			}
		}
		fn()
	})
}

func TestLinkAddRemove(t *testing.T) {
	inFreshNetns(t, func() {
		l, err := OpenLink("vipa")
		if err != nil {
			t.Error(err)
			return
		}
		for _, p := range []netip.Prefix{
			netip.MustParsePrefix("192.168.8.100/24"),
			netip.MustParsePrefix("2001:db8::100/64"),
		} {
			for i := 0; i < 2; i++ { // the second Add finds it there
				if err := l.Add(p, AddrOptions{}); err != nil {
					t.Errorf("Add #%d: %v", i+1, err)
				}
			}
			if has, err := l.Has(p.Addr()); err != nil || !has {
				t.Errorf("after Add: Has(%s) = %v, %v", p.Addr(), has, err)
			}
			addrs, _ := l.Addrs(p.Addr().Is6())
			found := false
			for _, a := range addrs {
				found = found || a == p
			}
			if !found {
				t.Errorf("Addrs = %v, want %s among them", addrs, p)
			}
			for i := 0; i < 2; i++ { // the second Remove finds it gone
				if err := l.Remove(p); err != nil {
					t.Errorf("Remove #%d: %v", i+1, err)
				}
			}
			if has, _ := l.Has(p.Addr()); has {
				t.Errorf("after Remove: %s still there", p.Addr())
			}
		}
		if err := l.Add(netip.MustParsePrefix("10.1.2.3/32"), AddrOptions{Label: "vipa:vip"}); err != nil {
			t.Errorf("Add with label: %v", err)
		}
		// brd and scope as keepalived sets them; without brd, none (the
		// netlink library would compute one).
		for _, c := range []struct {
			p     netip.Prefix
			o     AddrOptions
			brd   string
			scope int
		}{
			{netip.MustParsePrefix("10.9.0.1/24"), AddrOptions{}, "", 0},
			{netip.MustParsePrefix("10.9.1.1/24"), AddrOptions{Broadcast: netip.MustParseAddr("10.9.1.255"), Scope: 253}, "10.9.1.255", 253},
			{netip.MustParsePrefix("10.9.2.1/24"), AddrOptions{Scope: 254}, "", 254},
		} {
			if err := l.Add(c.p, c.o); err != nil {
				t.Errorf("Add %v %+v: %v", c.p, c.o, err)
				continue
			}
			list, err := netlink.AddrList(l.link, netlink.FAMILY_V4)
			if err != nil {
				t.Error(err)
				return
			}
			found := false
			for _, a := range list {
				if !a.IP.Equal(c.p.Addr().AsSlice()) {
					continue
				}
				found = true
				brd := ""
				if a.Broadcast != nil && !a.Broadcast.IsUnspecified() {
					brd = a.Broadcast.String()
				}
				if brd != c.brd || a.Scope != c.scope {
					t.Errorf("%v added with %+v: brd %q scope %d; want %q %d", c.p, c.o, brd, a.Scope, c.brd, c.scope)
				}
			}
			if !found {
				t.Errorf("%v not on the interface after Add", c.p)
			}
		}
		if up, err := l.Up(); err != nil || !up {
			t.Errorf("Up() = %v, %v, want true", up, err)
		}
	})
}

func TestAnnounceReachesTheSegment(t *testing.T) {
	inFreshNetns(t, func() {
		peer, err := net.InterfaceByName("vipb")
		if err != nil {
			t.Error(err)
			return
		}
		capture, err := packet.Listen(peer, packet.Raw, 0x0003 /* ETH_P_ALL */, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer capture.Close()

		a, err := NewAnnouncer("vipa")
		if err != nil {
			t.Error(err)
			return
		}
		defer a.Close()
		addrs := []netip.Addr{netip.MustParseAddr("192.168.8.100"), netip.MustParseAddr("fe80::100")}
		if n, err := a.Announce(addrs); err != nil || n != 2 {
			t.Errorf("Announce = %d, %v; want 2, nil", n, err)
			return
		}
		wantARP, _ := GratuitousARP(a.ifi.HardwareAddr, addrs[0])
		wantNA, _ := UnsolicitedNA(a.ifi.HardwareAddr, addrs[1], false)
		var gotARP, gotNA bool
		buf := make([]byte, 1500)
		deadline := time.Now().Add(5 * time.Second)
		for !(gotARP && gotNA) {
			_ = capture.SetReadDeadline(deadline)
			n, _, err := capture.ReadFrom(buf)
			if err != nil {
				t.Errorf("captured ARP %v NA %v, then: %v", gotARP, gotNA, err)
				return
			}
			// The peer also sees the kernel's own IPv6 traffic: pick ours.
			gotARP = gotARP || bytes.Equal(buf[:n], wantARP)
			gotNA = gotNA || bytes.Equal(buf[:n], wantNA)
		}
	})
}
