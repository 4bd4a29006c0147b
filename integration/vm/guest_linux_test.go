package vm_test

// The guest side of TestIPVSInVM: these tests run inside the VM, as root,
// on the Debian kernel with IPVS, and skip anywhere else.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/ipvs"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/amqpha/amqpha/integration/vm"
)

func requireGuest(t *testing.T) {
	t.Helper()
	if !vm.InGuest() {
		t.Skip("runs inside the VM that TestIPVSInVM boots")
	}
}

// TestGuestIPVS checks, in order, what vipd needs from the kernel: IPVS
// loads on demand, moby/ipvs programs it, and traffic to a virtual service
// reaches real servers in NAT and DR mode.
func TestGuestIPVS(t *testing.T) {
	requireGuest(t)
	ok := t.Run("modprobe", guestModprobe) &&
		t.Run("service", guestService) &&
		t.Run("traffic", guestTraffic)
	if !ok {
		t.FailNow()
	}
	t.Run("iproute2", guestIPRoute2)
}

// guestModprobe: the VM booted with OnDemand modules, so IPVS is not there
// until modprobe loads it with its dependencies from the filtered
// modules.dep.
func guestModprobe(t *testing.T) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		t.Fatal("/proc/net/ip_vs exists before modprobe ip_vs; the VM was meant to load modules on demand")
	}
	if out, err := exec.Command("modprobe", "ip_vs").CombinedOutput(); err != nil {
		t.Fatalf("modprobe ip_vs: %v: %s", err, out)
	}
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		t.Fatalf("after modprobe ip_vs: %v", err)
	}
	mods, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"ip_vs", "nf_conntrack", "nf_defrag_ipv4", "nf_defrag_ipv6", "libcrc32c"} {
		if !strings.Contains(string(mods), m+" ") {
			t.Errorf("module %s not loaded after modprobe ip_vs; /proc/modules:\n%s", m, mods)
		}
	}
}

// guestService creates a virtual service with two real servers through
// moby/ipvs and reads it back, with moby/ipvs and with ipvsadm. Its
// scheduler, wrr, is not loaded: the kernel loads ip_vs_wrr itself.
func guestService(t *testing.T) {
	h, err := ipvs.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	t.Cleanup(func() { _ = h.Flush() })

	svc := &ipvs.Service{
		AddressFamily: syscall.AF_INET,
		Protocol:      syscall.IPPROTO_TCP,
		Address:       net.ParseIP("192.0.2.10").To4(),
		Port:          5672,
		SchedName:     "wrr",
		Netmask:       0xFFFFFFFF,
	}
	if err := h.NewService(svc); err != nil {
		t.Fatalf("NewService: %v", err)
	}
	dests := []*ipvs.Destination{
		{AddressFamily: syscall.AF_INET, Address: net.ParseIP("192.0.2.21").To4(), Port: 5672, Weight: 1, ConnectionFlags: ipvs.ConnectionFlagMasq},
		{AddressFamily: syscall.AF_INET, Address: net.ParseIP("192.0.2.22").To4(), Port: 5672, Weight: 3, ConnectionFlags: ipvs.ConnectionFlagDirectRoute},
	}
	for _, d := range dests {
		if err := h.NewDestination(svc, d); err != nil {
			t.Fatalf("NewDestination %v: %v", d.Address, err)
		}
	}

	svcs, err := h.GetServices()
	if err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 1 {
		t.Fatalf("GetServices: %d services, want 1", len(svcs))
	}
	got := svcs[0]
	if !got.Address.Equal(svc.Address) || got.Port != svc.Port || got.Protocol != svc.Protocol || got.SchedName != "wrr" {
		t.Errorf("service read back as %s:%d proto %d sched %q", got.Address, got.Port, got.Protocol, got.SchedName)
	}
	gotDests, err := h.GetDestinations(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotDests) != len(dests) {
		t.Fatalf("GetDestinations: %d, want %d", len(gotDests), len(dests))
	}
	for _, want := range dests {
		found := false
		for _, d := range gotDests {
			if d.Address.Equal(want.Address) {
				found = true
				if d.Port != want.Port || d.Weight != want.Weight ||
					d.ConnectionFlags&ipvs.ConnectionFlagFwdMask != want.ConnectionFlags {
					t.Errorf("destination %s read back as port %d weight %d flags %#x; want %d %d %#x",
						d.Address, d.Port, d.Weight, d.ConnectionFlags, want.Port, want.Weight, want.ConnectionFlags)
				}
			}
		}
		if !found {
			t.Errorf("destination %s missing", want.Address)
		}
	}

	// ipvsadm, shipped with its libraries through Config.Binaries, sees
	// the same table.
	out, err := exec.Command("ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -Ln: %v: %s", err, out)
	}
	for _, want := range []string{
		"TCP  192.0.2.10:5672 wrr",
		"-> 192.0.2.21:5672              Masq    1",
		"-> 192.0.2.22:5672              Route   3",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("ipvsadm -Ln lacks %q:\n%s", want, out)
		}
	}
	t.Logf("ipvsadm -Ln:\n%s", out)
}

// The traffic topology, all inside the VM. The root namespace is the
// director. The client and two real servers live in namespaces of their own:
//
//	director  c0 10.10.0.1/24, VIP_NAT 10.10.0.100  <- veth -> client eth0 10.10.0.2/24
//	          r1 10.20.1.1/24                       <- veth -> rs1 eth0 10.20.1.2/24, default via 10.20.1.1
//	          r2 10.20.2.1/24                       <- veth -> rs2 eth0 10.20.2.2/24, default via 10.20.2.1
//	          bridge lan0 10.30.0.1/24, VIP_DR 10.30.0.101, with ports to
//	            client eth1 10.30.0.2/24, rs1 eth1 10.30.0.11/24, rs2 eth1 10.30.0.12/24
//
// NAT (masquerading): VIP_NAT:80 -> 10.20.{1,2}.2:8080. The real servers'
// replies to the client's 10.10.0.2 follow their default route through the
// director (ip_forward=1), which rewrites them back. DR (direct routing):
// VIP_DR:80 -> 10.30.0.{11,12}:80 on the shared LAN. The director only
// rewrites the destination MAC; each real server holds VIP_DR on lo, with
// arp_ignore=1 and arp_announce=2 so that only the director answers ARP for
// it, and replies to the client's 10.30.0.2 straight over the LAN.
var (
	vipNAT = net.ParseIP("10.10.0.100").To4()
	vipDR  = net.ParseIP("10.30.0.101").To4()
)

func guestTraffic(t *testing.T) {
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lan := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "lan0"}}
	if err := netlink.LinkAdd(lan); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(lan) })
	addAddr(t, root, "lan0", "10.30.0.1/24")
	addAddr(t, root, "lan0", vipDR.String()+"/32")

	client := newNS(t, "client")
	veth(t, client, "c0", "eth0", nil, "10.10.0.1/24", "10.10.0.2/24")
	addAddr(t, root, "c0", vipNAT.String()+"/32")
	veth(t, client, "lc", "eth1", lan, "", "10.30.0.2/24")
	for i, name := range []string{"rs1", "rs2"} {
		ns := newNS(t, name)
		veth(t, ns, fmt.Sprintf("r%d", i+1), "eth0", nil, fmt.Sprintf("10.20.%d.1/24", i+1), fmt.Sprintf("10.20.%d.2/24", i+1))
		defaultRoute(t, ns, fmt.Sprintf("10.20.%d.1", i+1))
		veth(t, ns, fmt.Sprintf("l%d", i+1), "eth1", lan, "", fmt.Sprintf("10.30.0.1%d/24", i+1))
		if err := onThreadIn(ns, func() error {
			for k, v := range map[string]string{"arp_ignore": "1", "arp_announce": "2"} {
				if err := os.WriteFile("/proc/sys/net/ipv4/conf/all/"+k, []byte(v+"\n"), 0o644); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		if err != nil {
			t.Fatal(err)
		}
		addAddr(t, h, "lo", vipDR.String()+"/32")
		h.Close()
		serve(t, ns, name, ":8080")
		serve(t, ns, name, ":80")
	}

	h, err := ipvs.New("")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	t.Cleanup(func() { _ = h.Flush() })

	modes := []struct {
		name   string
		vip    net.IP
		rs     [2]string
		rsPort uint16
		flags  uint32
	}{
		{"nat", vipNAT, [2]string{"10.20.1.2", "10.20.2.2"}, 8080, ipvs.ConnectionFlagMasq},
		{"dr", vipDR, [2]string{"10.30.0.11", "10.30.0.12"}, 80, ipvs.ConnectionFlagDirectRoute},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			svc := &ipvs.Service{
				AddressFamily: syscall.AF_INET, Protocol: syscall.IPPROTO_TCP,
				Address: m.vip, Port: 80, SchedName: "rr", Netmask: 0xFFFFFFFF,
			}
			if err := h.NewService(svc); err != nil {
				t.Fatal(err)
			}
			for _, rs := range m.rs {
				d := &ipvs.Destination{
					AddressFamily: syscall.AF_INET, Address: net.ParseIP(rs).To4(),
					Port: m.rsPort, Weight: 1, ConnectionFlags: m.flags,
				}
				if err := h.NewDestination(svc, d); err != nil {
					t.Fatal(err)
				}
			}
			const dials = 6
			seen := map[string]int{}
			for range dials {
				seen[dialName(t, client, net.JoinHostPort(m.vip.String(), "80"))]++
			}
			want := map[string]bool{fmt.Sprintf("rs1:%d", m.rsPort): true, fmt.Sprintf("rs2:%d", m.rsPort): true}
			for name := range seen {
				if !want[name] {
					t.Errorf("answer %q from the wrong server or port", name)
				}
			}
			for name := range want {
				if seen[name] == 0 {
					t.Errorf("%s never answered; answers: %v", name, seen)
				}
			}
			total := connections(t, h, svc, dials)
			t.Logf("%s: answers %v; IPVS counted %d connections", m.name, seen, total)
		})
	}
}

// connections waits for IPVS's per-destination connection counters of svc
// to add up to want and returns the sum. The kernel (6.1) copies its
// per-CPU counters into what netlink reports only from its rate estimator,
// every 2 seconds, so a fresh count lags.
func connections(t *testing.T, h *ipvs.Handle, svc *ipvs.Service, want int) int {
	t.Helper()
	total := 0
	for range 20 { // up to 10 s, 5 estimator periods
		ds, err := h.GetDestinations(svc)
		if err != nil {
			t.Fatal(err)
		}
		total = 0
		for _, d := range ds {
			total += int(d.Stats.Connections)
		}
		if total >= want {
			break
		}
		time.Sleep(500 * time.Millisecond) // polling the kernel's counters; nothing to wait on
	}
	if total != want {
		t.Errorf("IPVS counted %d connections, want %d", total, want)
	}
	return total
}

// guestIPRoute2: the real ip command runs in the guest with its shared
// libraries, and ip netns works on the initramfs (/run is a tmpfs).
func guestIPRoute2(t *testing.T) {
	for _, args := range [][]string{
		{"ip", "netns", "add", "probe"},
		{"ip", "-n", "probe", "link", "set", "lo", "up"},
		{"ip", "netns", "exec", "probe", "ip", "-o", "link", "show", "lo"},
		{"ip", "netns", "del", "probe"},
	} {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}

// onThreadIn runs f on an OS thread switched into ns. Sockets made by f
// stay in ns whatever thread uses them later.
func onThreadIn(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err == nil {
			runtime.UnlockOSThread() // else the thread dies with the goroutine
		}
		errc <- ferr
	}()
	return <-errc
}

// newNS makes an unnamed network namespace with lo up; it goes away when
// its handle is closed and nothing is left in it.
func newNS(t *testing.T, name string) netns.NsHandle {
	t.Helper()
	var ns netns.NsHandle
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		ns, err = netns.New()
		if err == nil {
			if serr := netns.Set(orig); serr == nil {
				runtime.UnlockOSThread()
			}
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("namespace %s: %v", name, err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	return ns
}

// veth joins the director (the root namespace) to ns with a veth pair:
// hostSide stays with the director, enslaved to master if not nil or else
// given directorCIDR; the other end becomes peerName in ns with peerCIDR.
func veth(t *testing.T, ns netns.NsHandle, hostSide, peerName string, master netlink.Link, directorCIDR, peerCIDR string) {
	t.Helper()
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostSide}, PeerName: hostSide + "p", PeerNamespace: netlink.NsFd(ns)}
	if master != nil {
		v.MasterIndex = master.Attrs().Index
		if v.MasterIndex == 0 {
			l, err := netlink.LinkByName(master.Attrs().Name)
			if err != nil {
				t.Fatal(err)
			}
			v.MasterIndex = l.Attrs().Index
		}
	}
	if err := netlink.LinkAdd(v); err != nil {
		t.Fatalf("veth %s: %v", hostSide, err)
	}
	t.Cleanup(func() { _ = netlink.LinkDel(v) })
	if directorCIDR != "" {
		addAddr(t, root, hostSide, directorCIDR)
	} else if err := netlink.LinkSetUp(v); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	peer, err := h.LinkByName(hostSide + "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetName(peer, peerName); err != nil {
		t.Fatal(err)
	}
	addAddr(t, h, peerName, peerCIDR)
}

// defaultRoute points ns's default route at gw.
func defaultRoute(t *testing.T, ns netns.NsHandle, gw string) {
	t.Helper()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
		t.Fatalf("default route via %s: %v", gw, err)
	}
}

// root is a netlink handle on the namespace of the calling thread: the
// director's, the VM's initial one.
var root = &netlink.Handle{}

// addAddr adds cidr to the interface dev and sets it up.
func addAddr(t *testing.T, h *netlink.Handle, dev, cidr string) {
	t.Helper()
	l, err := h.LinkByName(dev)
	if err != nil {
		t.Fatalf("%s: %v", dev, err)
	}
	a, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddrAdd(l, a); err != nil {
		t.Fatalf("%s on %s: %v", cidr, dev, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatalf("%s up: %v", dev, err)
	}
}

// serve answers every TCP connection on addr inside ns with "name:port\n".
func serve(t *testing.T, ns netns.NsHandle, name, addr string) {
	t.Helper()
	var ln net.Listener
	if err := onThreadIn(ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("%s listen %s: %v", name, addr, err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = fmt.Fprintf(c, "%s:%s\n", name, port)
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
}

// dialName connects from inside ns to addr and returns the line the server
// sends.
func dialName(t *testing.T, ns netns.NsHandle, addr string) string {
	t.Helper()
	var c net.Conn
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := onThreadIn(ns, func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return strings.TrimSpace(line)
}
