package realserver

import (
	"errors"
	"net/netip"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/amqpha/amqpha/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartStopUndoesExactly(t *testing.T) {
	testenv.InFreshNetns(t, func() {
		c := Config{StateDir: t.TempDir()}
		// An operator's own values, which must survive start/stop.
		before := map[string]string{
			"net/ipv4/conf/lo/arp_ignore":    "0",
			"net/ipv4/conf/lo/arp_announce":  "1",
			"net/ipv4/conf/all/arp_ignore":   "2",
			"net/ipv4/conf/all/arp_announce": "0",
		}
		for k, v := range before {
			if err := c.writeSysctl(k, v); err != nil {
				t.Error(err)
				return
			}
		}
		vip := netip.MustParseAddr("10.77.0.100")
		vip2 := netip.MustParseAddr("10.77.0.101")
		if s, _ := GetStatus(c, vip); s.Ready() || s.Started {
			t.Errorf("ready before start: %+v", s)
		}
		for i := 0; i < 2; i++ { // the second start changes nothing
			if err := Start(c, vip); err != nil {
				t.Errorf("start #%d: %v", i+1, err)
				return
			}
		}
		if err := Start(c, vip2); err != nil {
			t.Error(err)
			return
		}
		s, err := GetStatus(c, vip)
		if err != nil || !s.Ready() || !s.Started {
			t.Errorf("after start: %+v, %v", s, err)
		}
		for _, want := range Sysctls {
			if v, _ := c.readSysctl(want.Key); v != want.Value {
				t.Errorf("after start %s = %s, want %s", want.Key, v, want.Value)
			}
		}

		// Stopping one of two VIPs keeps the ARP settings for the other.
		if err := Stop(c, vip); err != nil {
			t.Error(err)
			return
		}
		if has, _ := hasLoopbackAddr(vip); has {
			t.Error("the VIP is still on lo after stop")
		}
		if s, _ := GetStatus(c, vip2); !s.Ready() {
			t.Errorf("stopping %s broke %s: %+v", vip, vip2, s)
		}
		if err := Stop(c, vip2); err != nil {
			t.Error(err)
			return
		}
		for k, v := range before {
			if got, _ := c.readSysctl(k); got != v {
				t.Errorf("after stop %s = %s, want the operator's %s", k, got, v)
			}
		}
		if has, _ := hasLoopbackAddr(vip2); has {
			t.Error("the second VIP is still on lo after stop")
		}
		if err := Stop(c, vip); !errors.Is(err, ErrNotStarted) {
			t.Errorf("second stop: %v, want ErrNotStarted", err)
		}
		if left, _ := c.startedVIPs(); len(left) != 0 {
			t.Errorf("state left behind: %v", left)
		}
	})
}

// An address the operator had on lo already stays there after stop.
func TestStopKeepsAnAddressItDidNotAdd(t *testing.T) {
	testenv.InFreshNetns(t, func() {
		c := Config{StateDir: t.TempDir()}
		vip := netip.MustParseAddr("10.77.0.100")
		if err := addLoopbackAddr(vip); err != nil {
			t.Error(err)
			return
		}
		if err := Start(c, vip); err != nil {
			t.Error(err)
			return
		}
		if err := Stop(c, vip); err != nil {
			t.Error(err)
			return
		}
		if has, _ := hasLoopbackAddr(vip); !has {
			t.Error("stop removed an address it had not added")
		}
	})
}

func TestIPv6VIPNeedsNoSysctls(t *testing.T) {
	testenv.InFreshNetns(t, func() {
		c := Config{StateDir: t.TempDir()}
		vip := netip.MustParseAddr("fd00:77::100")
		if err := Start(c, vip); err != nil {
			t.Error(err)
			return
		}
		if s, err := GetStatus(c, vip); err != nil || !s.Ready() {
			t.Errorf("status %+v, %v", s, err)
		}
		if _, err := os.Stat(c.sysctlFile()); !errors.Is(err, os.ErrNotExist) {
			t.Error("an IPv6 VIP recorded IPv4 ARP sysctls")
		}
		if err := Stop(c, vip); err != nil {
			t.Error(err)
		}
		if has, _ := hasLoopbackAddr(vip); has {
			t.Error("the IPv6 VIP is still on lo")
		}
	})
}
