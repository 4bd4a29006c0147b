//go:build integration

package vrrp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/netns"
)

// vipOptionLines are virtual_ipaddress lines with the options `ip addr`
// takes, each in a subnet of its own (the kernel refuses a secondary
// address whose scope differs from the primary's); X is the second
// octet, different on each host (replaced as text).
var vipOptionLines = []string{
	"10.X.10.1/24 brd +",
	"10.X.11.1/24 broadcast -",
	"10.X.12.1/24 brd 10.X.12.99 scope link",
	"10.X.13.1/24 scope host",
	"10.X.14.1/24",
	"10.X.15.1/24 label eth0:v",
}

// ipAddrInfo is what `ip -j addr` says of one address.
type ipAddrInfo struct {
	Local     string `json:"local"`
	Prefixlen int    `json:"prefixlen"`
	Broadcast string `json:"broadcast"`
	Scope     string `json:"scope"`
	Label     string `json:"label"`
}

// addrInfo returns eth0's IPv4 addresses on h by address.
func addrInfo(t *testing.T, h *netns.Host) map[string]ipAddrInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := h.Exec(ctx, "ip", "-j", "-4", "addr", "show", "dev", "eth0")
	if err != nil {
		t.Fatalf("ip addr on %s: %v\n%s", h.Name(), err, out)
	}
	var links []struct {
		AddrInfo []ipAddrInfo `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		t.Fatalf("ip -j addr: %v\n%s", err, out)
	}
	m := map[string]ipAddrInfo{}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			m[a.Local] = a
		}
	}
	return m
}

// TestVIPOptionsAsKeepalived: VIPs with brd (+, -, an address), scope and
// label are put on the interface by vipd exactly as keepalived puts them
// (as `ip addr` shows them), each as the master of its own instance on
// its own host; and a VIP without brd gets none, as with keepalived.
func TestVIPOptionsAsKeepalived(t *testing.T) {
	r := newRig(t, false)
	conf := func(octet, vrid int) string {
		var vips []string
		for _, l := range vipOptionLines {
			vips = append(vips, strings.ReplaceAll(l, "X", fmt.Sprint(octet)))
		}
		c := vconf{state: "MASTER", prio: 150, version: 2, advert: "1", vrid: vrid, vip: strings.Join(vips, "\n        ")}
		return c.String()
	}
	startDirector(t, "vipd", r.a, conf(81, 71))
	kb := startDirector(t, "keepalived", r.b, conf(82, 72))
	if err := kb.ka.WaitState("MASTER", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	addr := func(octet, k int) string { return fmt.Sprintf("10.%d.%d.1", octet, 10+k) }
	waitFor(t, "every VIP on both hosts", 15*time.Second, func() bool {
		a, b := addrInfo(t, r.a), addrInfo(t, r.b)
		for k := range vipOptionLines {
			if _, ok := a[addr(81, k)]; !ok {
				return false
			}
			if _, ok := b[addr(82, k)]; !ok {
				return false
			}
		}
		return true
	})
	a, b := addrInfo(t, r.a), addrInfo(t, r.b)
	same := func(x ipAddrInfo, octet int) ipAddrInfo {
		x.Local = strings.Replace(x.Local, fmt.Sprintf("10.%d.", octet), "10.X.", 1)
		x.Broadcast = strings.Replace(x.Broadcast, fmt.Sprintf("10.%d.", octet), "10.X.", 1)
		return x
	}
	for k, line := range vipOptionLines {
		va, vb := same(a[addr(81, k)], 81), same(b[addr(82, k)], 82)
		if va != vb {
			t.Errorf("%q: vipd put %+v, keepalived %+v", line, va, vb)
		}
	}
	if got := a[addr(81, 4)].Broadcast; got != "" {
		t.Errorf("a VIP without brd got broadcast %q from vipd", got)
	}
}

// TestDontTrackPrimary: with dont_track_primary vipd stays MASTER while its
// own interface is down (it keeps trying to advertise), as keepalived
// does; without it the instance goes to FAULT.
func TestDontTrackPrimary(t *testing.T) {
	for _, dont := range []bool{true, false} {
		t.Run(fmt.Sprintf("dont_track_primary=%v", dont), func(t *testing.T) {
			r := newRig(t, false)
			c := vconf{state: "MASTER", prio: 150, version: 2, advert: "1", vrid: 51, vip: r.vip.String() + "/24"}
			want := "FAULT"
			if dont {
				c.extra, want = "    dont_track_primary\n", "MASTER"
			}
			d := startDirector(t, "vipd", r.a, c.String())
			waitFor(t, "vipd master", 10*time.Second, func() bool { return d.status(t).Instances[0].State == "MASTER" })
			ipIn(t, r.a.Namespace(), "link", "set", "eth0", "down")
			// Either way vipd says so: FAULT's log line, or the advert that
			// could not leave.
			if err := d.proc.WaitOutput(map[bool]string{true: "the interface is down", false: "entering FAULT"}[dont], 10*time.Second); err != nil {
				t.Fatal(err)
			}
			if s := d.status(t).Instances[0].State; s != want {
				t.Fatalf("with eth0 down: %s, want %s", s, want)
			}
		})
	}
}
