package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"regexp"
)

// Iface is the name of every host's interface onto the segment, as in the
// configurations vipd and keepalived are tested with (`interface eth0`).
const Iface = "eth0"

// hostName is what a host may be called: it becomes part of a namespace name
// and of an interface name.
var hostName = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// Host is one machine on a [Segment]: a network namespace with a loopback
// and an interface [Iface] plugged into the segment's bridge. Its methods are
// safe for concurrent use.
type Host struct {
	seg   *Segment
	name  string // as given to Segment.Host
	ns    string // namespace name
	port  string // the bridge port in the switch namespace
	mac   net.HardwareAddr
	addrs []netip.Prefix // as configured
}

// Host adds a host called name to the segment and returns it once its
// interfaces are up: a namespace with lo up and [Iface] up, holding addrs
// (IPv4 or IPv6, given with their prefix length) besides its IPv6 link-local
// address. Duplicate address detection is off, so every address is usable at
// once. name must be 1 to 16 lower-case letters or digits, starting with a
// letter, and unique within the segment.
//
// The host's IPv4 settings are the kernel's defaults whatever the machine's
// own are: no forwarding, no reverse-path filter, arp_accept, arp_ignore and
// arp_announce 0. A test that needs others sets them with [Host.Exec]
// (sysctl -w) or [Host.Do].
//
// Host fails the test given to [New] on error, so call it from that test's
// goroutine; elsewhere (a subtest, another goroutine) use [Segment.AddHost].
// It blocks for some tens of milliseconds.
func (s *Segment) Host(name string, addrs ...netip.Prefix) *Host {
	s.t.Helper()
	h, err := s.AddHost(name, addrs...)
	if err != nil {
		s.t.Fatalf("netns: adding host %q: %v", name, err)
	}
	return h
}

// AddHost is [Segment.Host] returning its error instead of failing the test.
// After [Segment.Close] it returns an error wrapping [ErrClosed].
func (s *Segment) AddHost(name string, addrs ...netip.Prefix) (*Host, error) {
	if !hostName.MatchString(name) {
		return nil, fmt.Errorf("netns: bad host name %q: want %s", name, hostName)
	}
	for _, a := range addrs {
		if !a.IsValid() || a.Addr().Zone() != "" {
			return nil, fmt.Errorf("netns: bad address %v for host %q", a, name)
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("netns: adding host %q: %w", name, ErrClosed)
	}
	for _, h := range s.hosts {
		if h.name == name {
			s.mu.Unlock()
			return nil, fmt.Errorf("netns: host %q exists", name)
		}
	}
	port := fmt.Sprintf("p%d-%s", len(s.hosts), name)
	if len(port) > 15 { // IFNAMSIZ - 1
		port = port[:15]
	}
	h := &Host{seg: s, name: name, ns: s.id + "-" + name, port: port, addrs: append([]netip.Prefix(nil), addrs...)}
	// Registered before it exists, so that Close removes whatever part of
	// it gets built.
	s.hosts = append(s.hosts, h)
	s.mu.Unlock()

	if _, err := ip("netns", "add", h.ns); err != nil {
		return nil, err
	}
	// Before eth0 exists, so that it inherits the defaults: no duplicate
	// address detection (addresses, link-local ones included, are usable at
	// once) and no router advertisements. A new namespace copies the
	// machine's IPv4 settings: pin those that decide who answers ARP and
	// what is accepted to the kernel's defaults. arp_accept stays 0: a
	// gratuitous ARP updates an existing neighbour entry anyway, and that is
	// all a client needs to follow a moving VIP.
	if err := writeSysctls(h.ns, map[string]string{
		"net/ipv6/conf/all/accept_dad":     "0",
		"net/ipv6/conf/default/accept_dad": "0",
		"net/ipv6/conf/all/accept_ra":      "0",
		"net/ipv6/conf/default/accept_ra":  "0",
		"net/ipv4/ip_forward":              "0",
	}); err != nil {
		return nil, err
	}
	ipv4 := map[string]string{}
	for _, conf := range []string{"all", "default"} {
		for _, k := range []string{"arp_accept", "arp_ignore", "arp_announce", "rp_filter"} {
			ipv4["net/ipv4/conf/"+conf+"/"+k] = "0"
		}
	}
	if err := writeSysctls(h.ns, ipv4); err != nil {
		return nil, err
	}
	// The veth pair is made in the switch namespace with its peer born in
	// the host's: it never appears in the caller's namespace.
	if err := ipBatch(s.sw,
		"link add "+port+" type veth peer name "+Iface+" netns "+h.ns,
		"link set "+port+" master "+Bridge+" up",
	); err != nil {
		return nil, err
	}
	lines := []string{"link set lo up"}
	for _, a := range addrs {
		line := "address add " + a.String() + " dev " + Iface
		if a.Addr().Is6() {
			line += " nodad"
		}
		lines = append(lines, line)
	}
	lines = append(lines, "link set "+Iface+" up")
	if err := ipBatch(h.ns, lines...); err != nil {
		return nil, err
	}
	out, err := ip("-n", h.ns, "-j", "link", "show", "dev", Iface)
	if err != nil {
		return nil, err
	}
	if h.mac, err = parseMAC(out); err != nil {
		return nil, err
	}
	return h, nil
}

// Name returns the host's name as given to [Segment.Host].
func (h *Host) Name() string { return h.name }

// Namespace returns the name of the host's network namespace, for
// `ip netns exec NAME …` or `ip -n NAME …`.
func (h *Host) Namespace() string { return h.ns }

// Segment returns the segment h belongs to.
func (h *Host) Segment() *Segment { return h.seg }

// MAC returns the hardware address of the host's [Iface].
func (h *Host) MAC() net.HardwareAddr { return append(net.HardwareAddr(nil), h.mac...) }

// Prefixes returns the addresses h was created with.
func (h *Host) Prefixes() []netip.Prefix { return append([]netip.Prefix(nil), h.addrs...) }

func (h *Host) nsPath() string { return filepath.Join(netnsDir, h.ns) }

// Exec runs argv inside h's namespace (ip netns exec) and returns its
// combined output. It blocks until the command ends or ctx does; a failure
// is a *[CmdError].
func (h *Host) Exec(ctx context.Context, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("netns: Exec: empty command")
	}
	args := append([]string{"netns", "exec", h.ns}, argv...)
	cmd := exec.CommandContext(ctx, "ip", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, &CmdError{Args: append([]string{"ip"}, args...), Output: string(out), Err: err}
	}
	return out, nil
}

// Addrs returns the addresses on interface ifname inside h, IPv4 and IPv6,
// link-local ones included, each with its prefix length; e.g. to see whether
// a VIP is configured. It blocks for an ip command.
func (h *Host) Addrs(ifname string) ([]netip.Prefix, error) {
	out, err := ip("-n", h.ns, "-j", "address", "show", "dev", ifname)
	if err != nil {
		return nil, err
	}
	return parseAddrs(out)
}

// HasAddr reports whether addr is configured on interface ifname inside h.
func (h *Host) HasAddr(ifname string, addr netip.Addr) (bool, error) {
	prefixes, err := h.Addrs(ifname)
	if err != nil {
		return false, err
	}
	for _, p := range prefixes {
		if p.Addr() == addr.WithZone("") {
			return true, nil
		}
	}
	return false, nil
}

// Neighbor returns the hardware address h's neighbour table holds for addr on
// [Iface], whatever the entry's state, or an error wrapping [ErrNotFound].
// It shows which box h would send to, e.g. after a gratuitous ARP.
func (h *Host) Neighbor(addr netip.Addr) (net.HardwareAddr, error) {
	out, err := ip("-n", h.ns, "-j", "neighbor", "show", addr.WithZone("").String(), "dev", Iface)
	if err != nil {
		return nil, err
	}
	mac, err := parseMAC(out)
	if err != nil {
		return nil, fmt.Errorf("neighbour %s on %s: %w", addr, h.name, err)
	}
	return mac, nil
}

// Cut unplugs h from the segment: its bridge port goes down, so h's [Iface]
// loses its carrier and nothing passes either way. Addresses stay. Heal plugs
// it back in.
func (h *Host) Cut() error {
	_, err := ip("-n", h.seg.sw, "link", "set", h.port, "down")
	return err
}

// Heal undoes [Host.Cut].
func (h *Host) Heal() error {
	_, err := ip("-n", h.seg.sw, "link", "set", h.port, "up")
	return err
}

// Crash models a box losing power: every process inside h is stopped
// (SIGSTOP) so that none of them can react, h is cut from the segment
// ([Host.Cut]), and the processes are killed (SIGKILL). Whatever they had
// configured, a VIP included, stays on h's interfaces, but h is silent. The
// namespace remains until the segment is closed.
func (h *Host) Crash() error {
	pids, err := nsPids(h.ns)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := freezePid(pid); err != nil {
			return err
		}
	}
	if err := h.Cut(); err != nil {
		return err
	}
	for _, pid := range pids {
		if err := killPid(pid); err != nil {
			return err
		}
	}
	return nil
}

// Pids lists the processes running inside h, whoever started them.
func (h *Host) Pids() ([]int, error) { return nsPids(h.ns) }

// String returns the host's name and namespace.
func (h *Host) String() string {
	return h.name + " (" + h.ns + ")"
}
