package netns

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// namespaces lists the named network namespaces.
func namespaces(t *testing.T) []string {
	t.Helper()
	out, err := ip("netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}

func TestSegmentConnectivity(t *testing.T) {
	var created []string
	t.Run("hosts", func(t *testing.T) {
		s := New(t)
		a := s.Host("a", netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64"))
		b := s.Host("b", netip.MustParsePrefix("10.77.0.2/24"), netip.MustParsePrefix("fd77::2/64"))
		created = []string{s.SwitchNamespace(), a.Namespace(), b.Namespace()}
		for _, ns := range created {
			if !strings.HasPrefix(ns, s.Name()) || !strings.HasPrefix(ns, Prefix) {
				t.Errorf("namespace %q lacks prefix %q", ns, s.Name())
			}
		}
		if a.MAC().String() == b.MAC().String() {
			t.Errorf("hosts share MAC %v", a.MAC())
		}
		const port = 7001
		a.ServeName(t, port)
		b.ServeName(t, port)

		tests := []struct {
			name     string
			from, to *Host
			addr     netip.Addr
		}{
			{"a to b ipv4", a, b, netip.MustParseAddr("10.77.0.2")},
			{"b to a ipv4", b, a, netip.MustParseAddr("10.77.0.1")},
			{"a to b ipv6", a, b, netip.MustParseAddr("fd77::2")},
			{"b to a ipv6", b, a, netip.MustParseAddr("fd77::1")},
			{"a to b ipv6 link-local", a, b, linkLocal(t, b).WithZone(Iface)},
			{"b to a ipv6 link-local", b, a, linkLocal(t, a).WithZone(Iface)},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				ctx, cancel := contextWithTimeout(t, 5*time.Second)
				defer cancel()
				if err := tc.from.Ping(ctx, tc.addr); err != nil {
					t.Fatalf("ping: %v", err)
				}
				conn, err := tc.from.DialTCP(ctx, netip.AddrPortFrom(tc.addr, port))
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				defer conn.Close()
				line, err := bufio.NewReader(conn).ReadString('\n')
				if err != nil || strings.TrimSpace(line) != tc.to.Name() {
					t.Fatalf("read %q, %v; want %q", line, err, tc.to.Name())
				}
				if mac, err := tc.from.Neighbor(tc.addr); err != nil || mac.String() != tc.to.MAC().String() {
					t.Errorf("neighbour entry: %v, %v; want %v", mac, err, tc.to.MAC())
				}
			})
		}

		if _, err := a.Neighbor(netip.MustParseAddr("10.77.0.99")); !errors.Is(err, ErrNotFound) {
			t.Errorf("neighbour entry for an unused address: %v; want ErrNotFound", err)
		}
		// DAD is off: no address waits as tentative.
		out, err := a.Exec(t.Context(), "sh", "-c", "cat /proc/sys/net/ipv6/conf/eth0/accept_dad; ip -6 address show dev eth0 tentative")
		if err != nil || strings.TrimSpace(string(out)) != "0" {
			t.Errorf("DAD in a host: %q, %v; want accept_dad 0 and no tentative address", out, err)
		}
		// Nothing of the segment shows in our own namespace.
		for _, h := range s.Hosts() {
			if _, err := os.Stat(filepath.Join("/sys/class/net", h.port)); err == nil {
				t.Errorf("bridge port %s visible in the root namespace", h.port)
			}
		}
	})
	if len(created) == 0 {
		return // skipped
	}
	left := namespaces(t)
	for _, ns := range created {
		if slices.Contains(left, ns) {
			t.Errorf("namespace %s left after cleanup", ns)
		}
	}
}

// linkLocal returns h's IPv6 link-local address on Iface.
func linkLocal(t *testing.T, h *Host) netip.Addr {
	t.Helper()
	prefixes, err := h.Addrs(Iface)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range prefixes {
		if p.Addr().IsLinkLocalUnicast() {
			return p.Addr()
		}
	}
	t.Fatalf("%s has no link-local address: %v", h.name, prefixes)
	return netip.Addr{}
}

func TestHostAddrs(t *testing.T) {
	s := New(t)
	want := []netip.Prefix{netip.MustParsePrefix("192.168.0.5/24"), netip.MustParsePrefix("2001:db8::5/64")}
	h := s.Host("h", want...)
	got, err := h.Addrs(Iface)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		ok, err := h.HasAddr(Iface, w.Addr())
		if err != nil || !ok {
			t.Errorf("HasAddr(%v) = %v, %v; addresses %v", w, ok, err, got)
		}
	}
	if ok, _ := h.HasAddr(Iface, netip.MustParseAddr("192.168.0.6")); ok {
		t.Errorf("HasAddr of an absent address")
	}
	if _, err := h.Addrs("nonexistent0"); err == nil {
		t.Errorf("Addrs of a missing interface: no error")
	}
}

func TestSegmentClose(t *testing.T) {
	s := New(t)
	h := s.Host("h", netip.MustParsePrefix("10.1.0.1/24"))
	p := h.Start(t, "sleep", "60")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(5 * time.Second); err == nil {
		t.Errorf("process in a closed segment exited cleanly")
	}
	for _, ns := range namespaces(t) {
		if strings.HasPrefix(ns, s.Name()) {
			t.Errorf("namespace %s left after Close", ns)
		}
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.AddHost("late"); !errors.Is(err, ErrClosed) {
		t.Errorf("adding a host to a closed segment: no error")
	}
}

func TestSweep(t *testing.T) {
	Require(t)
	// A pid that is surely gone: a process that has been reaped.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	leftover := fmt.Sprintf("%s%d-dead00-sw", Prefix, dead.Process.Pid)
	if _, err := ip("netns", "add", leftover); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeNamespace(leftover) })
	// Something still running inside it, as keepalived would be.
	sleeper := exec.Command("ip", "netns", "exec", leftover, "sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	// Sweep only once the sleeper is inside: `ip netns exec` enters the
	// namespace a moment after it starts (bounded wait, no event exists).
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pids, _ := nsPids(leftover); len(pids) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the sleeper never entered the leftover namespace")
		}
		time.Sleep(10 * time.Millisecond)
	}

	New(t) // sweeps
	for _, ns := range namespaces(t) {
		if ns == leftover {
			t.Errorf("leftover %s not swept", ns)
		}
	}
	if err := sleeper.Wait(); err == nil {
		t.Errorf("process in the leftover namespace survived the sweep")
	}
}

func TestOwnerPid(t *testing.T) {
	tests := []struct {
		name string
		pid  int
		ok   bool
	}{
		{"aqh-123-abcdef-sw", 123, true},
		{"aqh-9-x-master", 9, true},
		{"aqh-0-x-sw", 0, false},
		{"aqh-12", 0, false},
		{"aqh--x", 0, false},
		{"other-123-x", 0, false},
		{"aqh-12a-x", 0, false},
	}
	for _, tc := range tests {
		pid, ok := ownerPid(tc.name)
		if pid != tc.pid || ok != tc.ok {
			t.Errorf("ownerPid(%q) = %d, %v; want %d, %v", tc.name, pid, ok, tc.pid, tc.ok)
		}
	}
}
