//go:build integration

package vrrp

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/amqpha/amqpha/integration/netns"
	vr "github.com/amqpha/amqpha/vipd/vrrp"
)

// Keywords of keepalived.conf that change what goes on the wire: each
// means in vipd what it means in keepalived 2.2.7.

// TestMulticastGroup: with vrrp_mcast_group4 224.0.0.100 on both sides,
// keepalived and vipd elect one master, in both directions; vipd on
// another group than keepalived's hears none of its adverts.
func TestMulticastGroup(t *testing.T) {
	const group = "    vrrp_mcast_group4 224.0.0.100\n"
	for _, kinds := range [][2]string{{"keepalived", "vipd"}, {"vipd", "keepalived"}} {
		t.Run("same-group/"+kinds[0]+"-master/"+kinds[1]+"-backup", func(t *testing.T) {
			r := newRig(t, false)
			mc, bc := v2PASS.pair(r, false)
			mc.global, bc.global = group, group
			ma, bk := r.settle(t, v2PASS, kinds[0], kinds[1], mc, bc)
			for _, d := range []*director{ma, bk} {
				if d.kind != "vipd" {
					continue
				}
				s := d.status(t).Instances[0]
				if s.Counters.Drops["destination"] > 0 || (d == bk && s.Counters.AdvertsReceived == 0) {
					t.Errorf("%s: %d adverts received, drops %v", d, s.Counters.AdvertsReceived, s.Counters.Drops)
				}
			}
			if err := sniffGroup(t, r.client, "224.0.0.100"); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("other-group", func(t *testing.T) {
		r := newRig(t, false)
		mc, bc := v2PASS.pair(r, false)
		bc.global = group // keepalived stays on 224.0.0.18
		start := time.Now()
		startDirector(t, "keepalived", r.a, mc.String())
		r.startProbe(t)
		r.waitHolder(t, "a", start, 15*time.Second)
		bk := startDirector(t, "vipd", r.b, bc.String())
		waitFor(t, "vipd master, deaf to keepalived's group", 15*time.Second, func() bool {
			s := bk.status(t).Instances[0]
			return s.State == "MASTER" && s.Counters.AdvertsReceived == 0
		})
	})
}

// sniffGroup is a cheap check that adverts really go to the group: the
// client joins nothing, so it sees the frames only because the bridge
// floods them; it reads one VRRP packet and returns an error unless it
// went to group.
func sniffGroup(t *testing.T, h *netns.Host, group string) error {
	t.Helper()
	var fd int
	err := h.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, vr.Protocol)
		if err != nil {
			return err
		}
		tv := unix.Timeval{Sec: 5}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// A raw socket gets multicast the host did not join only with
	// IP_MULTICAST_ALL and a membership; join the group on eth0.
	if err := h.Do(func() error {
		mreq := &unix.IPMreqn{Multiaddr: netip.MustParseAddr(group).As4()}
		ifi, err := netIfIndex("eth0")
		if err != nil {
			return err
		}
		mreq.Ifindex = int32(ifi)
		return unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq)
	}); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return err
	}
	if n < 20 {
		return syscall.EINVAL
	}
	dst := netip.AddrFrom4([4]byte(buf[16:20]))
	if dst.String() != group {
		t.Errorf("a VRRP packet went to %s, not %s", dst, group)
	}
	return nil
}

// netIfIndex looks an interface up in the calling thread's namespace (the
// net package caches names process-wide).
func netIfIndex(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}

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
