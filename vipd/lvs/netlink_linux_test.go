package lvs

import (
	"encoding/binary"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/moby/ipvs"
)

// kernelEcho returns what the kernel reports for a service the library
// sent: the hashed flag added, no protocol, address or port for a
// firewall-mark service, an IPv4 address in 4 bytes.
func kernelEcho(is *ipvs.Service) *ipvs.Service {
	out := *is
	out.Flags |= uint32(flagHashed)
	if out.FWMark != 0 {
		out.Protocol, out.Address, out.Port = 0, nil, 0
	} else if v4 := out.Address.To4(); v4 != nil && out.AddressFamily == syscall.AF_INET {
		out.Address = v4
	}
	return &out
}

func TestIPVSServiceMapping(t *testing.T) {
	native := func(b ...byte) uint32 { return binary.NativeEndian.Uint32(b) }
	cases := []struct {
		name    string
		s       Service
		flags   uint32
		timeout uint32
		netmask uint32
		af      uint16
	}{
		{"IPv4 plain", Service{Addr: mustAddr("10.0.0.1"), Port: 80, Protocol: TCP, Scheduler: "rr"}, 0, 0, 0xffffffff, syscall.AF_INET},
		{"IPv4 persistent /24", Service{Addr: mustAddr("10.0.0.1"), Port: 80, Protocol: UDP, Persistence: 50 * time.Second, Netmask: mustAddr("255.255.255.0")},
			1, 50, native(255, 255, 255, 0), syscall.AF_INET},
		{"IPv6 plain", Service{Addr: mustAddr("2001:db8::1"), Port: 443, Protocol: SCTP, Scheduler: "mh", Flags: FlagMHPort}, 0x10, 0, 128, syscall.AF_INET6},
		{"IPv6 persistent /64", Service{Addr: mustAddr("2001:db8::1"), Port: 443, Protocol: TCP, Persistence: 1500 * time.Millisecond, Netmask: PrefixMask(IPv6, 64)},
			1, 2, 64, syscall.AF_INET6},
		{"fwmark IPv4", Service{FWMark: 7, Protocol: TCP, Scheduler: "sh", Flags: FlagSHFallback}, 0x8, 0, 0xffffffff, syscall.AF_INET},
		{"fwmark IPv6 persistent", Service{FWMark: 8, Family: IPv6, Persistence: time.Hour}, 1, 3600, 128, syscall.AF_INET6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			is := toIPVSService(c.s)
			if is.Flags != c.flags || is.Timeout != c.timeout || is.Netmask != c.netmask || is.AddressFamily != c.af {
				t.Errorf("flags %#x timeout %d netmask %#x af %d; want %#x %d %#x %d", is.Flags, is.Timeout, is.Netmask, is.AddressFamily, c.flags, c.timeout, c.netmask, c.af)
			}
			if c.s.FWMark != 0 {
				if is.FWMark != c.s.FWMark || is.Address != nil || is.Protocol != 0 {
					t.Errorf("fwmark service sent as %+v", is)
				}
			} else if !is.Address.Equal(net.IP(c.s.Addr.AsSlice())) || is.Port != c.s.Port || is.Protocol != uint16(c.s.Protocol) {
				t.Errorf("address service sent as %+v", is)
			}
			if is.SchedName == "" {
				t.Errorf("no scheduler name sent")
			}
			back, err := fromIPVSService(kernelEcho(is))
			if err != nil {
				t.Fatal(err)
			}
			want := c.s.normalized()
			if got := back.normalized(); got != want {
				t.Errorf("read back as %#v\nwant %#v", got, want)
			}
		})
	}
}

func TestIPVSForwardValues(t *testing.T) {
	for f, v := range map[Forward]int{Masq: ipvs.ConnectionFlagMasq, Local: ipvs.ConnectionFlagLocalNode, Tunnel: ipvs.ConnectionFlagTunnel, Route: ipvs.ConnectionFlagDirectRoute} {
		if int(f) != v {
			t.Errorf("%s = %d, the library's is %d", f, f, v)
		}
	}
}

func TestIPVSDestinationMapping(t *testing.T) {
	for _, d := range []Destination{
		{Addr: mustAddr("10.0.0.2"), Port: 80, Weight: 7, Forward: Route},
		{Addr: mustAddr("10.0.0.2"), Weight: MaxWeight, Forward: Masq},
		{Addr: mustAddr("2001:db8::2"), Port: 443, Weight: 0, Forward: Tunnel},
	} {
		id := toIPVSDest(d)
		if id.ConnectionFlags != uint32(d.Forward) || id.Weight != d.Weight || id.Port != d.Port {
			t.Errorf("%v sent as %+v", d, id)
		}
		echo := *id
		echo.ConnectionFlags |= 0x0100 // kernel-internal bits above the method
		if v4 := echo.Address.To4(); v4 != nil {
			echo.Address = v4
		}
		back, err := fromIPVSDest(&echo)
		if err != nil || back != d {
			t.Errorf("%v read back as %v, %v", d, back, err)
		}
	}
}

func TestIPVSNetmaskReadBack(t *testing.T) {
	if m := netmaskAddr(IPv4, 0); m != mustAddr("0.0.0.0") {
		t.Errorf("IPv4 netmask 0 (all clients on one template) read as %s", m)
	}
	if m := netmaskAddr(IPv4, 0xffffffff); m.IsValid() {
		t.Errorf("full IPv4 netmask read as %s, want the zero Addr", m)
	}
	if m := netmaskAddr(IPv6, 128); m.IsValid() {
		t.Errorf("IPv6 /128 read as %s, want the zero Addr", m)
	}
	if m := netmaskAddr(IPv6, 48); m != PrefixMask(IPv6, 48) {
		t.Errorf("IPv6 /48 read as %s", m)
	}
}

func TestKernelErr(t *testing.T) {
	cases := []struct {
		op   Op
		err  error
		want error
	}{
		{OpAddService, syscall.EEXIST, ErrExist},
		{OpAddDestination, syscall.EEXIST, ErrExist},
		{OpUpdateService, syscall.ESRCH, ErrNotFound},
		{OpAddDestination, syscall.ESRCH, ErrNotFound},
		{OpAddService, syscall.ENOENT, ErrNoScheduler},
		{OpUpdateService, syscall.ENOENT, ErrNoScheduler},
		{OpDeleteDestination, syscall.ENOENT, ErrNotFound},
		{OpUpdateDestination, syscall.ENOENT, ErrNotFound},
	}
	for _, c := range cases {
		got := kernelErr(c.op, c.err)
		if !errors.Is(got, c.want) || !errors.Is(got, c.err) {
			t.Errorf("%s %v -> %v, want %v wrapping the errno", c.op, c.err, got, c.want)
		}
	}
	if err := kernelErr(OpAddService, syscall.EINVAL); err != syscall.EINVAL {
		t.Errorf("EINVAL -> %v", err)
	}
	if kernelErr(OpAddService, nil) != nil {
		t.Error("nil error mapped to non-nil")
	}
}

func TestNetlinkMixedFamilyUnsupported(t *testing.T) {
	n := &Netlink{} // closed: the check comes first
	err := n.AddDestination(t.Context(), Service{Addr: mustAddr("10.0.0.1"), Port: 80, Protocol: TCP}, Destination{Addr: mustAddr("2001:db8::1"), Forward: Tunnel})
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("mixed-family destination: %v", err)
	}
	if err := n.AddService(t.Context(), Service{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("closed handle: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Error(err)
	}
}
