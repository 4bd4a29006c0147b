package lvs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/moby/ipvs"
)

// Netlink is the kernel's IPVS, reached over generic netlink with
// github.com/moby/ipvs. It is safe for concurrent use (calls are
// serialized) and every call blocks on the kernel; a call in flight cannot
// be cancelled (the library has no context; its socket has a 30 s send
// and 3 s receive timeout).
//
// Limits of the library (v1.1.0) that show here: a destination cannot be
// of another family than its service (no destination family attribute is
// sent), so tunnelled mixed-family destinations fail with
// [errors.ErrUnsupported]; weights are read back in 16 bits (see
// [MaxWeight]); persistence engines and destination thresholds are not
// handled.
type Netlink struct {
	mu sync.Mutex
	h  *ipvs.Handle // nil once closed
}

var _ Kernel = (*Netlink)(nil)

// NewNetlink opens the IPVS of the network namespace at netnsPath (a file
// such as /var/run/netns/NAME or /proc/PID/ns/net), or of the caller's
// namespace when netnsPath is empty, and checks that the kernel answers.
// The error wraps [ErrNoIPVS] when it does not.
//
// The first call in a process runs "modprobe -va ip_vs" and looks up the
// IPVS netlink family once for the life of the process (that is how the
// library works): load the ip_vs modules before, or this process cannot
// use IPVS at all (NewNetlink detects that and fails rather than let every
// call be silently ignored). The library logs that step's failures with
// logrus to stderr. Without CAP_NET_ADMIN the kernel answers EPERM.
func NewNetlink(netnsPath string) (*Netlink, error) {
	h, err := ipvs.New(netnsPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoIPVS, err)
	}
	if err := probe(h); err != nil {
		h.Close()
		return nil, fmt.Errorf("%w: %w", ErrNoIPVS, err)
	}
	return &Netlink{h: h}, nil
}

// probe asks the kernel for a service that should not exist (fwmark
// 2^32-1). IPVS answers ESRCH (or the service). When the library failed to
// look up the IPVS netlink family, it sends to family 0, which the kernel
// acknowledges without doing anything: every call would then "succeed"
// silently, and listing returns nothing. The library then reports that it
// got no service, which is not an errno.
func probe(h *ipvs.Handle) error {
	_, err := h.GetService(&ipvs.Service{AddressFamily: syscall.AF_INET, FWMark: math.MaxUint32, SchedName: DefaultScheduler})
	var errno syscall.Errno
	if err == nil || errors.As(err, &errno) && errno == syscall.ESRCH {
		return nil
	}
	if errno == 0 {
		return fmt.Errorf("no answer from the IPVS netlink family (is ip_vs loaded? it must be before the process first opens IPVS): %w", err)
	}
	return err
}

// Close releases the netlink socket. It is safe to call twice; later
// calls of the other methods fail with an error wrapping net.ErrClosed.
func (n *Netlink) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.h != nil {
		n.h.Close()
		n.h = nil
	}
	return nil
}

// call runs f with the handle, serialized, after checking ctx.
func (n *Netlink) call(ctx context.Context, f func(h *ipvs.Handle) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.h == nil {
		return fmt.Errorf("lvs: netlink: %w", net.ErrClosed)
	}
	return f(n.h)
}

// Services lists the kernel's services.
func (n *Netlink) Services(ctx context.Context) ([]Service, error) {
	var out []Service
	err := n.call(ctx, func(h *ipvs.Handle) error {
		svcs, err := h.GetServices()
		if err != nil {
			return err
		}
		out = make([]Service, 0, len(svcs))
		for _, is := range svcs {
			s, err := fromIPVSService(is)
			if err != nil {
				return err
			}
			out = append(out, s)
		}
		return nil
	})
	return out, err
}

// Destinations lists the destinations of s.
func (n *Netlink) Destinations(ctx context.Context, s Service) ([]Destination, error) {
	var out []Destination
	err := n.call(ctx, func(h *ipvs.Handle) error {
		ds, err := h.GetDestinations(toIPVSService(s))
		if err != nil {
			return kernelErr(0, err)
		}
		out = make([]Destination, 0, len(ds))
		for _, id := range ds {
			d, err := fromIPVSDest(id)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// AddService adds s.
func (n *Netlink) AddService(ctx context.Context, s Service) error {
	return n.call(ctx, func(h *ipvs.Handle) error { return kernelErr(OpAddService, h.NewService(toIPVSService(s))) })
}

// UpdateService sets the scheduler, persistence, netmask and flags of s.
func (n *Netlink) UpdateService(ctx context.Context, s Service) error {
	return n.call(ctx, func(h *ipvs.Handle) error { return kernelErr(OpUpdateService, h.UpdateService(toIPVSService(s))) })
}

// DeleteService deletes s and its destinations.
func (n *Netlink) DeleteService(ctx context.Context, s Service) error {
	return n.call(ctx, func(h *ipvs.Handle) error { return kernelErr(OpDeleteService, h.DelService(toIPVSService(s))) })
}

// AddDestination adds d to s.
func (n *Netlink) AddDestination(ctx context.Context, s Service, d Destination) error {
	return n.destCall(ctx, OpAddDestination, s, d, (*ipvs.Handle).NewDestination)
}

// UpdateDestination sets the weight and forwarding method of d in s.
func (n *Netlink) UpdateDestination(ctx context.Context, s Service, d Destination) error {
	return n.destCall(ctx, OpUpdateDestination, s, d, (*ipvs.Handle).UpdateDestination)
}

// DeleteDestination deletes d from s.
func (n *Netlink) DeleteDestination(ctx context.Context, s Service, d Destination) error {
	return n.destCall(ctx, OpDeleteDestination, s, d, (*ipvs.Handle).DelDestination)
}

func (n *Netlink) destCall(ctx context.Context, op Op, s Service, d Destination, f func(*ipvs.Handle, *ipvs.Service, *ipvs.Destination) error) error {
	if FamilyOf(d.Addr) != s.Key().Family {
		return fmt.Errorf("lvs: %s %s of %s: a destination of another family than its service: %w", op, d.Key(), s.Key(), errors.ErrUnsupported)
	}
	return n.call(ctx, func(h *ipvs.Handle) error { return kernelErr(op, f(h, toIPVSService(s), toIPVSDest(d))) })
}

// kernelErr wraps the kernel's errno for op in this package's sentinels.
func kernelErr(op Op, err error) error {
	var errno syscall.Errno
	if err == nil || !errors.As(err, &errno) {
		return err
	}
	switch errno {
	case syscall.EEXIST:
		return fmt.Errorf("%w: %w", ErrExist, err)
	case syscall.ESRCH:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case syscall.ENOENT:
		if op == OpAddService || op == OpUpdateService {
			return fmt.Errorf("%w: %w", ErrNoScheduler, err)
		}
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

func addressFamily(f Family) uint16 {
	if f == IPv6 {
		return syscall.AF_INET6
	}
	return syscall.AF_INET
}

// toIPVSService maps s to the library's service: IP_VS_SVC_F_PERSISTENT
// and the timeout in seconds when persistent; the netmask as the kernel
// takes it (IPv4: the mask's 4 bytes as sent on the wire, which the
// library encodes in host order, hence NativeEndian; IPv6: the prefix
// length, which the kernel requires to be 1..128 even without
// persistence).
func toIPVSService(s Service) *ipvs.Service {
	s = s.normalized()
	fam := s.Key().Family
	out := &ipvs.Service{
		AddressFamily: addressFamily(fam),
		SchedName:     s.Scheduler,
		Flags:         uint32(s.Flags),
		Netmask:       netmaskValue(fam, s.Netmask),
	}
	if s.FWMark != 0 {
		out.FWMark = s.FWMark
	} else {
		out.Address = net.IP(s.Addr.AsSlice())
		out.Protocol = uint16(s.Protocol)
		out.Port = s.Port
	}
	if s.Persistence > 0 {
		out.Flags |= uint32(flagPersistent)
		out.Timeout = persistSeconds(s.Persistence)
	}
	return out
}

// fromIPVSService maps a service read from the kernel back.
func fromIPVSService(is *ipvs.Service) (Service, error) {
	var s Service
	switch is.AddressFamily {
	case syscall.AF_INET:
		s.Family = IPv4
	case syscall.AF_INET6:
		s.Family = IPv6
	default:
		return s, fmt.Errorf("lvs: kernel service with address family %d", is.AddressFamily)
	}
	if is.FWMark != 0 {
		s.FWMark = is.FWMark
	} else {
		a, err := addrOf(is.Address, s.Family)
		if err != nil {
			return s, fmt.Errorf("lvs: kernel service: %w", err)
		}
		s.Addr, s.Port, s.Protocol = a, is.Port, Protocol(is.Protocol)
	}
	s.Scheduler = is.SchedName
	s.Flags = Flags(is.Flags) & userFlags
	if Flags(is.Flags)&flagPersistent != 0 {
		s.Persistence = secondsDuration(is.Timeout)
	}
	s.Netmask = netmaskAddr(s.Family, is.Netmask)
	return s, nil
}

func toIPVSDest(d Destination) *ipvs.Destination {
	return &ipvs.Destination{
		Address:         net.IP(d.Addr.AsSlice()),
		Port:            d.Port,
		Weight:          d.Weight,
		ConnectionFlags: uint32(d.Forward),
		AddressFamily:   addressFamily(FamilyOf(d.Addr)),
	}
}

func fromIPVSDest(id *ipvs.Destination) (Destination, error) {
	f := IPv4
	if id.AddressFamily == syscall.AF_INET6 {
		f = IPv6
	}
	a, err := addrOf(id.Address, f)
	if err != nil {
		return Destination{}, fmt.Errorf("lvs: kernel destination: %w", err)
	}
	return Destination{
		Addr:    a,
		Port:    id.Port,
		Weight:  id.Weight,
		Forward: Forward(id.ConnectionFlags & ipvs.ConnectionFlagFwdMask),
		Conns:   Conns{Active: id.ActiveConnections, Inactive: id.InactiveConnections, Total: id.Stats.Connections},
	}, nil
}

// addrOf converts an address the library read (4 bytes for IPv4, 16 for
// IPv6).
func addrOf(ip net.IP, f Family) (netip.Addr, error) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, fmt.Errorf("bad address %v", []byte(ip))
	}
	if f == IPv4 {
		a = a.Unmap()
	}
	return a, nil
}

// netmaskValue is the kernel's netmask attribute for mask m (zero: full).
func netmaskValue(f Family, m netip.Addr) uint32 {
	if f == IPv6 {
		if n, ok := maskBits(m); ok && m.Is6() && n > 0 {
			return uint32(n)
		}
		return 128
	}
	if !m.Is4() {
		return 0xffffffff
	}
	b := m.As4()
	return binary.NativeEndian.Uint32(b[:])
}

// netmaskAddr is the mask the kernel's netmask attribute v stands for.
func netmaskAddr(f Family, v uint32) netip.Addr {
	if f == IPv6 {
		if v == 0 || v >= 128 {
			return netip.Addr{}
		}
		return PrefixMask(IPv6, int(v))
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], v)
	if a := netip.AddrFrom4(b); !isFullMask(a) {
		return a
	}
	return netip.Addr{}
}
