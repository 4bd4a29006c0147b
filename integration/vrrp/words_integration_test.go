//go:build integration

package vrrp

import (
	"encoding/binary"
	"net/netip"
	"strings"
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

// TestStrictModeWithPASS: both sides run vrrp_strict with PASS
// authentication, as keepalived's own shipped keepalived.conf has it.
// keepalived drops the authentication in strict mode; so does vipd, so
// they hear each other and one is master. vipd is the address owner
// (priority 255): for any other priority keepalived's strict mode drops
// the traffic to the VIPs with nftables, which vipd refuses to run (see
// TestResolveRefusesAcceptOff). vipd's SIGTERM then hands over to
// keepalived with a priority-0 advert keepalived accepts.
func TestStrictModeWithPASS(t *testing.T) {
	r := newRig(t, false)
	mc, bc := v2PASS.pair(r, false)
	mc.prio = 255
	mc.global, bc.global = "    vrrp_strict\n", "    vrrp_strict\n"
	ma, bk := r.settle(t, v2PASS, "vipd", "keepalived", mc, bc)
	if !strings.Contains(bk.ka.Log(), "Strict mode does not support authentication") {
		t.Errorf("keepalived did not run in strict mode:\n%s", bk.ka.Log())
	}
	s := ma.status(t).Instances[0]
	if s.State != "MASTER" || s.Counters.Drops["auth"] > 0 {
		t.Errorf("vipd: state %s, drops %v", s.State, s.Counters.Drops)
	}
	if !strings.Contains(ma.proc.Output(), "strict mode (vrrp_strict at") {
		t.Errorf("vipd did not say it drops the authentication:\n%s", ma.proc.Output())
	}
	t0 := time.Now()
	if err := ma.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "keepalived to take the VIP", 10*time.Second, func() bool { return holds(t, r.b, r.vip) })
	if !strings.Contains(bk.ka.Log(), "Backup received priority 0 advertisement") {
		t.Errorf("keepalived never took vipd's priority-0 advert:\n%s", bk.ka.Log())
	}
	t.Logf("SIGTERM → keepalived holds the VIP after %v", time.Since(t0).Round(time.Millisecond))
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

// TestSpoofedAdvertsDropped: adverts a host on the segment crafts (raw IP,
// its own header, the master's address as source) are dropped and counted
// by a vipd backup beside a keepalived master, which stays master:
//
//   - multicast instance: priority 0 sent to vipd's own unicast address,
//     TTL 64 and TTL 255 ("destination"; keepalived drops these too), and
//     to the group with TTL 64 ("ttl");
//   - unicast instance with unicast_peer { 10.77.0.1 min_ttl 250 }: from
//     an address that is no peer ("source", keepalived's
//     check_unicast_src) and from the peer's address with TTL 64 ("ttl").
//
// Before vipd checked the destination, the first of these made it master
// again and again.
func TestSpoofedAdvertsDropped(t *testing.T) {
	type attack struct {
		src, dst string
		ttl      int
		reason   string
	}
	cases := []struct {
		name    string
		unicast bool
		vipdExt string
		attacks []attack
	}{
		{"multicast", false, "", []attack{
			{"10.77.0.1", "10.77.0.2", 64, "destination"},
			{"10.77.0.1", "10.77.0.2", 255, "destination"},
			{"10.77.0.1", "224.0.0.18", 64, "ttl"},
		}},
		{"unicast-check-src", true, "", []attack{
			{"10.77.0.9", "10.77.0.2", 255, "source"},
			{"10.77.0.1", "10.77.0.2", 64, "ttl"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, false)
			mc, bc := v2PASS.pair(r, c.unicast)
			if c.unicast {
				bc.peers = []string{"10.77.0.1 min_ttl 250"}
			}
			_, bk := r.settle(t, v2PASS, "keepalived", "vipd", mc, bc)
			before := bk.status(t).Instances[0]
			if before.State != "BACKUP" {
				t.Fatalf("vipd is %s before the attack", before.State)
			}
			att := openAttacker(t, r.client)
			const rounds = 10
			for i := 0; i < rounds; i++ {
				for _, a := range c.attacks {
					att.send(t, a.src, a.dst, a.ttl, r.vip)
				}
				// Longer than the skew time (0.6 s), and not in step
				// with keepalived's 1 s adverts: a priority-0 advert
				// taken would make vipd master whenever no advert of
				// keepalived's came within the skew time after it.
				time.Sleep(700 * time.Millisecond)
			}
			// A priority-0 advert taken would make vipd master after its
			// skew time (0.6 s); give it a whole Master_Down_Interval.
			time.Sleep(masterDown(2, time.Second, bc.prio))
			after := bk.status(t).Instances[0]
			if after.State != "BACKUP" || after.Counters.Transitions["MASTER"] != 0 {
				t.Errorf("vipd took the spoofed adverts: state %s, transitions %v", after.State, after.Counters.Transitions)
			}
			want := map[string]uint64{}
			for _, a := range c.attacks {
				want[a.reason] += rounds
			}
			for reason, n := range want {
				if got := after.Counters.Drops[reason] - before.Counters.Drops[reason]; got < n {
					t.Errorf("drops %q: %d, want %d (all drops %v)", reason, got, n, after.Counters.Drops)
				}
			}
			if after.Counters.AdvertsReceived <= before.Counters.AdvertsReceived {
				t.Error("vipd stopped taking keepalived's adverts")
			}
			if !holds(t, r.a, r.vip) || holds(t, r.b, r.vip) {
				t.Error("keepalived is no longer the only holder of the VIP")
			}
		})
	}
}

// attacker sends hand-made IPv4 packets (IP_HDRINCL) from a host.
type attacker struct{ fd int }

func openAttacker(t *testing.T, h *netns.Host) *attacker {
	t.Helper()
	var fd int
	err := h.Do(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		return unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, "eth0")
	})
	if err != nil {
		t.Fatalf("attacker socket in %s: %v", h.Name(), err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &attacker{fd: fd}
}

// send sends a VRRPv2 priority-0 advert for VRID 51 with the rig's
// password and interval, as the master at src would, with the given TTL.
func (a *attacker) send(t *testing.T, src, dst string, ttl int, vip netip.Addr) {
	t.Helper()
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	adv := &vr.Advert{Version: 2, VRID: 51, Priority: 0, Interval: time.Second,
		Addresses: []netip.Addr{vip}, AuthType: vr.AuthPass}
	copy(adv.AuthData[:], v2PASS.pass)
	body, err := vr.Marshal(adv, s, d, vr.ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 20+len(body))
	pkt[0] = 0x45
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	pkt[8], pkt[9] = byte(ttl), vr.Protocol
	s4, d4 := s.As4(), d.As4()
	copy(pkt[12:16], s4[:])
	copy(pkt[16:20], d4[:])
	copy(pkt[20:], body)
	// The kernel fills in the header checksum (and the ID) for IP_HDRINCL.
	if err := unix.Sendto(a.fd, pkt, 0, &unix.SockaddrInet4{Addr: d4}); err != nil {
		t.Fatalf("sending to %s: %v", dst, err)
	}
}
