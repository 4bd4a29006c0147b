package ipvs_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The guest's network; doc.go draws it.
const (
	bridgeName = "lan0"
	vipAddr    = "10.30.0.100"
	clientLAN  = "10.30.0.2"
	natTable   = 100 // the real servers' routing table for NAT replies
)

// lab is the network of one guest test: the director is the calling
// process's own (root) namespace.
type lab struct {
	client  netns.NsHandle
	servers []*backend
}

// backend is a real server: a namespace with TCP listeners that answer
// with "rsN:port".
type backend struct {
	name string
	ns   netns.NsHandle
	nat  netip.Addr // on eth0, linked to the director alone
	lan  netip.Addr // on eth1, on the bridge

	mu        sync.Mutex
	listeners map[uint16]*nameServer
}

// newLab builds the network with n real servers, each running `vipd
// realserver start` for the VIP and listening on ports. Everything goes
// away in t.Cleanup.
func newLab(t *testing.T, n int, ports ...uint16) *lab {
	t.Helper()
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName}}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("bridge %s: %v", bridgeName, err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(br) })
	brLink, err := netlink.LinkByName(bridgeName)
	if err != nil {
		t.Fatal(err)
	}
	root, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := upWithAddr(root, bridgeName, "10.30.0.1/24"); err != nil {
		t.Fatal(err)
	}

	l := &lab{client: makeNS(t)}
	link(t, "lanc", brLink, "", l.client, "eth0", clientLAN+"/24")
	for i := 1; i <= n; i++ {
		b := &backend{
			name:      fmt.Sprintf("rs%d", i),
			ns:        makeNS(t),
			nat:       netip.MustParseAddr(fmt.Sprintf("10.20.%d.2", i)),
			lan:       netip.MustParseAddr(fmt.Sprintf("10.30.0.1%d", i)),
			listeners: map[uint16]*nameServer{},
		}
		gw := fmt.Sprintf("10.20.%d.1", i)
		link(t, fmt.Sprintf("nat%d", i), nil, gw+"/24", b.ns, "eth0", b.nat.String()+"/24")
		link(t, fmt.Sprintf("lan%d", i), brLink, "", b.ns, "eth1", b.lan.String()+"/24")
		if err := natReturnRoute(b.ns, b.nat, netip.MustParseAddr(gw)); err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		// The DR side: what the seeds' realserver.sh does, by vipd's
		// own command, run inside the real server's namespace.
		out, err := runIn(b.ns, guestVipd, "realserver", "--vip", vipAddr, "--state-dir", "/run/vipd-"+b.name, "start")
		if err != nil {
			t.Fatalf("%s: vipd realserver start: %v\n%s", b.name, err, out)
		}
		for _, p := range ports {
			b.listen(t, p)
		}
		t.Cleanup(b.close)
		l.servers = append(l.servers, b)
	}
	return l
}

// makeNS creates an anonymous network namespace with lo up. It lives as
// long as its handle, closed in t.Cleanup, or a process inside.
func makeNS(t *testing.T) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	err := onThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		if ns, err = netns.New(); err != nil { // switches the thread
			return err
		}
		return netns.Set(orig)
	})
	if err != nil {
		t.Fatalf("new namespace: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("lo up: %v", err)
	}
	return ns
}

// onThread runs f on a locked OS thread of its own and returns its error.
// f may switch the thread's namespace; it must switch it back before
// returning nil, or else the thread is thrown away with its goroutine.
func onThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := f()
		if err == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// inNS runs f on a thread switched into ns. Sockets f opens belong to ns
// for good, whichever thread uses them later; a process f starts runs in
// ns.
func inNS(ns netns.NsHandle, f func() error) error {
	var ferr error
	err := onThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			return err
		}
		ferr = f()
		return netns.Set(orig)
	})
	return errors.Join(err, ferr)
}

// runIn runs a command inside ns and returns its combined output.
func runIn(ns netns.NsHandle, name string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := inNS(ns, cmd.Start); err != nil {
		return nil, err
	}
	err := cmd.Wait()
	return out.Bytes(), err
}

// link makes a veth pair from the director to ns: hostName stays in the
// root namespace, a port of bridge if not nil, else with hostCIDR; its
// peer is peerName in ns with peerCIDR. Deleting hostName in t.Cleanup
// deletes both ends.
func link(t *testing.T, hostName string, bridge netlink.Link, hostCIDR string, ns netns.NsHandle, peerName, peerCIDR string) {
	t.Helper()
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: hostName},
		PeerName:      peerName,
		PeerNamespace: netlink.NsFd(int(ns)),
	}
	if bridge != nil {
		v.MasterIndex = bridge.Attrs().Index
	}
	if err := netlink.LinkAdd(v); err != nil {
		t.Fatalf("veth %s-%s: %v", hostName, peerName, err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(hostName); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	root, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := upWithAddr(root, hostName, hostCIDR); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := upWithAddr(h, peerName, peerCIDR); err != nil {
		t.Fatal(err)
	}
}

// upWithAddr gives dev the address cidr (none if empty) and sets it up.
func upWithAddr(h *netlink.Handle, dev, cidr string) error {
	l, err := h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	if cidr != "" {
		a, err := netlink.ParseAddr(cidr)
		if err != nil {
			return err
		}
		if err := h.AddrAdd(l, a); err != nil {
			return fmt.Errorf("%s on %s: %w", cidr, dev, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("%s up: %w", dev, err)
	}
	return nil
}

// natReturnRoute makes ns send whatever leaves from src through gw: the
// replies of a NAT real server must pass the director, which rewrites
// them, although the client is on a LAN the real server shares.
func natReturnRoute(ns netns.NsHandle, src, gw netip.Addr) error {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	r := netlink.NewRule()
	r.Src = &net.IPNet{IP: src.AsSlice(), Mask: net.CIDRMask(32, 32)}
	r.Table = natTable
	r.Priority = 100
	if err := h.RuleAdd(r); err != nil {
		return fmt.Errorf("rule from %s: %w", src, err)
	}
	if err := h.RouteAdd(&netlink.Route{Gw: gw.AsSlice(), Table: natTable}); err != nil {
		return fmt.Errorf("default via %s in table %d: %w", gw, natTable, err)
	}
	return nil
}

// nameServer answers every TCP connection with one line, "name:port",
// and closes it when the client does (so a client can hold a connection
// open), or after holdMax.
type nameServer struct {
	ln   net.Listener
	done chan struct{}

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

const holdMax = time.Minute

func (s *nameServer) serve(line []byte) {
	defer close(s.done)
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			_ = c.SetDeadline(time.Now().Add(holdMax))
			if _, err := c.Write(line); err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c) // until the client closes
		}()
	}
}

func (s *nameServer) close() {
	s.ln.Close()
	<-s.done
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// listen starts answering on port (all addresses) in b's namespace.
func (b *backend) listen(t *testing.T, port uint16) {
	t.Helper()
	var ln net.Listener
	err := inNS(b.ns, func() (err error) {
		ln, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		t.Fatalf("%s: listen on %d: %v", b.name, port, err)
	}
	s := &nameServer{ln: ln, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	go s.serve(fmt.Appendf(nil, "%s:%d\n", b.name, port))
	b.mu.Lock()
	defer b.mu.Unlock()
	if old := b.listeners[port]; old != nil {
		old.close()
	}
	b.listeners[port] = s
}

// stop closes the listener on port: connections to it are refused.
func (b *backend) stop(port uint16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s := b.listeners[port]; s != nil {
		s.close()
		delete(b.listeners, port)
	}
}

func (b *backend) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for p, s := range b.listeners {
		s.close()
		delete(b.listeners, p)
	}
}

// ask connects from the client to addr and returns the line that comes
// back: the name of the real server that answered.
func (l *lab) ask(addr string) (string, error) {
	c, name, err := l.open(addr)
	if err == nil {
		c.Close()
	}
	return name, err
}

// open connects from the client to addr, reads the name of the real
// server that answered, and leaves the connection open.
func (l *lab) open(addr string) (net.Conn, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c net.Conn
	err := inNS(l.client, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp4", addr)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		c.Close()
		return nil, "", fmt.Errorf("read from %s: %w", addr, err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, strings.TrimSpace(line), nil
}

// askN asks addr n times and counts the answers by name; any failure
// fails t.
func (l *lab) askN(t *testing.T, addr string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		name, err := l.ask(addr)
		if err != nil {
			t.Fatalf("connection to %s (answers so far %v): %v", addr, seen, err)
		}
		seen[name]++
	}
	return seen
}

// hasVIP reports whether the director's lan0 holds the VIP.
func hasVIP() (bool, error) {
	l, err := netlink.LinkByName(bridgeName)
	if err != nil {
		return false, err
	}
	addrs, err := netlink.AddrList(l, unix.AF_INET)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a.IP.String() == vipAddr {
			return true, nil
		}
	}
	return false, nil
}
