//go:build integration

package vrrp

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/netns"
)

// Keywords of keepalived.conf that change what goes on the wire: each
// means in vipd what it means in keepalived 2.2.7.

// TestExcludedAddresses: virtual_ipaddress_excluded addresses (of either
// family) are held by the master only, and never carried in adverts:
// keepalived 2.2.7 drops an advert whose address count differs from its
// own, so a keepalived backup that stays backup shows vipd's adverts
// carry the VIP alone.
func TestExcludedAddresses(t *testing.T) {
	excl := []netip.Addr{netip.MustParseAddr("10.77.1.100"), netip.MustParseAddr("fd00:78::100")}
	const block = "    virtual_ipaddress_excluded {\n        10.77.1.100/24\n        fd00:78::100/64\n    }\n"
	holdsAll := func(h *netns.Host) (all, none bool) {
		all, none = true, true
		for _, a := range excl {
			has := holds(t, h, a)
			all, none = all && has, none && !has
		}
		return all, none
	}
	for _, kinds := range [][2]string{{"vipd", "keepalived"}, {"keepalived", "vipd"}} {
		t.Run(kinds[0]+"-master/"+kinds[1]+"-backup", func(t *testing.T) {
			r := newRig(t, false)
			mc, bc := v2PASS.pair(r, false)
			mc.extra, bc.extra = block, block
			ma, bk := r.settle(t, v2PASS, kinds[0], kinds[1], mc, bc)
			waitFor(t, "the excluded addresses on the master", 5*time.Second, func() bool { all, _ := holdsAll(r.a); return all })
			if _, none := holdsAll(r.b); !none {
				t.Fatalf("the backup %s holds excluded addresses", bk)
			}
			if ma.kind == "vipd" {
				s := ma.status(t).Instances[0]
				if len(s.VIPs) != 1 || len(s.Excluded) != 2 {
					t.Errorf("vipd status: VIPs %v excluded %v", s.VIPs, s.Excluded)
				}
			}
			// The master resigns (vipd) or dies (keepalived): the backup
			// takes all, the old master keeps none.
			t0 := time.Now()
			if ma.kind == "vipd" {
				if err := ma.proc.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				if err := ma.proc.Wait(10 * time.Second); err != nil {
					t.Fatal(err)
				}
			} else if err := r.a.Crash(); err != nil {
				t.Fatal(err)
			}
			r.waitHolder(t, "b", t0, 10*time.Second)
			waitFor(t, "the excluded addresses on the new master", 5*time.Second, func() bool { all, _ := holdsAll(r.b); return all })
			if ma.kind == "vipd" {
				if _, none := holdsAll(r.a); !none {
					t.Error("vipd left excluded addresses behind on SIGTERM")
				}
			}
		})
	}
}
