package lvs

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Family is an address family: [IPv4] or [IPv6].
type Family uint8

// Address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// FamilyOf returns the family of a: [IPv6] for IPv6 addresses (IPv4-mapped
// ones included), [IPv4] for IPv4 ones, 0 for the zero Addr.
func FamilyOf(a netip.Addr) Family {
	switch {
	case a.Is4():
		return IPv4
	case a.Is6():
		return IPv6
	}
	return 0
}

// Protocol is the transport protocol of a service, by its IP protocol
// number.
type Protocol uint8

// Protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "TCP"
	case UDP:
		return "UDP"
	case SCTP:
		return "SCTP"
	}
	return fmt.Sprintf("Protocol(%d)", uint8(p))
}

// ParseProtocol returns the protocol called s ("TCP", "udp", ...).
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToUpper(s) {
	case "TCP":
		return TCP, nil
	case "UDP":
		return UDP, nil
	case "SCTP":
		return SCTP, nil
	}
	return 0, invalidf("protocol %q: expected TCP, UDP or SCTP", s)
}

// Flags are the service flags of IPVS that a [Service] sets directly. The
// persistence flag (IP_VS_SVC_F_PERSISTENT) follows [Service.Persistence]
// and the kernel's own "hashed" flag is hidden; neither is a Flags value.
type Flags uint32

// Service flags, with the kernel's values (include/uapi/linux/ip_vs.h).
const (
	// FlagOnePacket is one-packet scheduling (ipvsadm -o, keepalived
	// "ops"): UDP and fwmark services only.
	FlagOnePacket Flags = 0x0004
	FlagSched1    Flags = 0x0008
	FlagSched2    Flags = 0x0010
	FlagSched3    Flags = 0x0020

	// Scheduler flags of sh and mh (keepalived sh-fallback, sh-port,
	// mh-fallback, mh-port).
	FlagSHFallback = FlagSched1
	FlagSHPort     = FlagSched2
	FlagMHFallback = FlagSched1
	FlagMHPort     = FlagSched2
)

const (
	flagPersistent Flags = 0x0001 // IP_VS_SVC_F_PERSISTENT
	flagHashed     Flags = 0x0002 // IP_VS_SVC_F_HASHED, set by the kernel
	userFlags            = FlagOnePacket | FlagSched1 | FlagSched2 | FlagSched3
)

func (f Flags) String() string {
	var parts []string
	for _, x := range []struct {
		f    Flags
		name string
	}{{flagPersistent, "persistent"}, {flagHashed, "hashed"}, {FlagOnePacket, "ops"},
		{FlagSched1, "sched1"}, {FlagSched2, "sched2"}, {FlagSched3, "sched3"}} {
		if f&x.f != 0 {
			parts = append(parts, x.name)
			f &^= x.f
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", uint32(f)))
	}
	return strings.Join(parts, "|")
}

// Schedulers are the scheduler names of the Linux kernel (modules
// ip_vs_NAME), which are also ipvsadm's and keepalived's names for them.
// twos needs Linux 6.2 or later.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// DefaultScheduler is the scheduler of a [Service] whose Scheduler is
// empty: wlc, the default of ipvsadm and keepalived.
const DefaultScheduler = "wlc"

// MaxPersistence is the longest persistence timeout the kernel takes
// (seconds in 32 bits).
const MaxPersistence = math.MaxUint32 * time.Second

// Service is an IPVS virtual service: either an address service
// (Protocol, Addr, Port) or a firewall-mark service (FWMark, Family), with
// its settings. Two services with the same [ServiceKey] are the same
// kernel object.
type Service struct {
	// Addr, Port and Protocol identify an address service. Port 0 is
	// allowed for persistent services only (as ipvsadm insists).
	Addr     netip.Addr
	Port     uint16
	Protocol Protocol
	// FWMark, when not 0, makes this a firewall-mark service: Addr and
	// Port must be unset; Protocol is ignored (the kernel reports none).
	FWMark uint32
	// Family is the address family of a firewall-mark service; 0 is IPv4.
	// For an address service it is the family of Addr (0 or that family).
	Family Family

	// Scheduler is a kernel scheduler name ([Schedulers]); empty is
	// [DefaultScheduler].
	Scheduler string
	// Persistence is the persistence timeout, 0 for none. The kernel keeps
	// whole seconds: a fraction is rounded up.
	Persistence time.Duration
	// Netmask is the persistence granularity: client addresses masked
	// with it share a persistence template. The zero Addr is a full mask
	// (one template per client address). An IPv6 mask must be a prefix
	// (ffff:ffff:ffff:ffff:: for /64). Only with Persistence.
	Netmask netip.Addr
	Flags   Flags
}

// ServiceKey identifies a service in the kernel: family, protocol, address
// and port of an address service, or family and firewall mark.
type ServiceKey struct {
	Family   Family
	Protocol Protocol
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
}

// Key returns the identity of s.
func (s Service) Key() ServiceKey {
	if s.FWMark != 0 {
		f := s.Family
		if f == 0 {
			f = IPv4
		}
		return ServiceKey{Family: f, FWMark: s.FWMark}
	}
	return ServiceKey{Family: FamilyOf(s.Addr), Protocol: s.Protocol, Addr: s.Addr, Port: s.Port}
}

// Compare orders keys: by family, then address services before
// firewall-mark ones, then by mark, protocol, address and port.
func (k ServiceKey) Compare(o ServiceKey) int {
	return cmp.Or(
		cmp.Compare(k.Family, o.Family),
		cmp.Compare(k.FWMark, o.FWMark),
		cmp.Compare(k.Protocol, o.Protocol),
		k.Addr.Compare(o.Addr),
		cmp.Compare(k.Port, o.Port),
	)
}

// String formats k as ipvsadm lists it: "TCP 192.0.2.1:80",
// "UDP [2001:db8::1]:53", "FWM 7 IPv4".
func (k ServiceKey) String() string {
	if k.FWMark != 0 {
		return fmt.Sprintf("FWM %d %s", k.FWMark, k.Family)
	}
	return fmt.Sprintf("%s %s", k.Protocol, netip.AddrPortFrom(k.Addr, k.Port))
}

func (s Service) String() string {
	var b strings.Builder
	b.WriteString(s.Key().String())
	b.WriteByte(' ')
	b.WriteString(cmp.Or(s.Scheduler, DefaultScheduler))
	if s.Persistence > 0 {
		fmt.Fprintf(&b, " persistent %d", persistSeconds(s.Persistence))
		if s.Netmask.IsValid() && !isFullMask(s.Netmask) {
			if s.Netmask.Is4() {
				fmt.Fprintf(&b, " mask %s", s.Netmask)
			} else if n, ok := maskBits(s.Netmask); ok {
				fmt.Fprintf(&b, " mask %d", n)
			}
		}
	}
	if f := s.Flags & userFlags; f != 0 {
		fmt.Fprintf(&b, " flags %s", f)
	}
	return b.String()
}

// Validate reports whether the kernel can take s; the error wraps
// [ErrInvalid].
func (s Service) Validate() error {
	fam := s.Family
	if s.FWMark != 0 {
		if s.Addr.IsValid() || s.Port != 0 {
			return invalidf("fwmark %d: a firewall-mark service has no address or port", s.FWMark)
		}
		if fam == 0 {
			fam = IPv4
		}
		if fam != IPv4 && fam != IPv6 {
			return invalidf("fwmark %d: bad family %s", s.FWMark, fam)
		}
	} else {
		if !s.Addr.IsValid() {
			return invalidf("service without address or firewall mark")
		}
		if s.Addr.Zone() != "" || s.Addr.Is4In6() {
			return invalidf("service %s: no zone or IPv4-mapped address allowed", s.Addr)
		}
		if fam != 0 && fam != FamilyOf(s.Addr) {
			return invalidf("service %s: family %s does not match the address", s.Addr, fam)
		}
		fam = FamilyOf(s.Addr)
		switch s.Protocol {
		case TCP, UDP, SCTP:
		default:
			return invalidf("service %s: protocol %s: expected TCP, UDP or SCTP", s.Addr, s.Protocol)
		}
		if s.Port == 0 && s.Persistence <= 0 {
			return invalidf("%s: port 0 is allowed for persistent services only", s.Key())
		}
	}
	if s.Flags&^userFlags != 0 {
		return invalidf("%s: flags %s: only %s may be set", s.Key(), s.Flags, userFlags)
	}
	if s.Flags&FlagOnePacket != 0 && s.FWMark == 0 && s.Protocol != UDP {
		return invalidf("%s: one-packet scheduling is for UDP and firewall-mark services only", s.Key())
	}
	if len(s.Scheduler) > 15 || strings.ContainsRune(s.Scheduler, 0) {
		return invalidf("%s: scheduler name %q too long", s.Key(), s.Scheduler)
	}
	if s.Persistence < 0 || s.Persistence > MaxPersistence {
		return invalidf("%s: persistence %s out of range 0..%s", s.Key(), s.Persistence, MaxPersistence)
	}
	if s.Netmask.IsValid() {
		if s.Persistence == 0 {
			return invalidf("%s: netmask %s without persistence", s.Key(), s.Netmask)
		}
		if FamilyOf(s.Netmask) != fam || s.Netmask.Is4In6() || s.Netmask.Zone() != "" {
			return invalidf("%s: netmask %s is not an %s mask", s.Key(), s.Netmask, fam)
		}
		if fam == IPv6 {
			if n, ok := maskBits(s.Netmask); !ok || n == 0 {
				return invalidf("%s: IPv6 netmask %s is not a prefix of 1..128 bits", s.Key(), s.Netmask)
			}
		}
	}
	return nil
}

// normalized returns s in the one form the reconciler compares: family
// set, fields a firewall-mark service ignores cleared, scheduler defaulted,
// persistence in whole seconds, a full netmask as the zero Addr, kernel-
// internal flags dropped.
func (s Service) normalized() Service {
	if s.FWMark != 0 {
		s.Addr, s.Port, s.Protocol = netip.Addr{}, 0, 0
		if s.Family == 0 {
			s.Family = IPv4
		}
	} else {
		s.Family = FamilyOf(s.Addr)
	}
	s.Scheduler = cmp.Or(s.Scheduler, DefaultScheduler)
	if s.Persistence > 0 {
		s.Persistence = time.Duration(persistSeconds(s.Persistence)) * time.Second
	} else {
		s.Persistence = 0
	}
	if s.Persistence == 0 || isFullMask(s.Netmask) {
		s.Netmask = netip.Addr{}
	}
	s.Flags &= userFlags
	return s
}

// sameSettings reports whether a and b, both normalized, have the same
// settings (the kernel needs no update from one to the other).
func sameSettings(a, b Service) bool {
	return a.Scheduler == b.Scheduler && a.Persistence == b.Persistence && a.Netmask == b.Netmask && a.Flags == b.Flags
}

// persistSeconds rounds d up to whole seconds.
func persistSeconds(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	s := (d + time.Second - 1) / time.Second
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

func isFullMask(m netip.Addr) bool {
	if !m.IsValid() {
		return false
	}
	return !slices.ContainsFunc(m.AsSlice(), func(b byte) bool { return b != 0xff })
}

// maskBits returns the prefix length of a solid mask.
func maskBits(m netip.Addr) (int, bool) {
	b := m.AsSlice()
	n := 0
	for i, x := range b {
		if x == 0xff {
			n += 8
			continue
		}
		ones := 0
		for x&0x80 != 0 {
			ones++
			x <<= 1
		}
		if x != 0 {
			return 0, false
		}
		n += ones
		if slices.ContainsFunc(b[i+1:], func(y byte) bool { return y != 0 }) {
			return 0, false
		}
		break
	}
	return n, true
}

// PrefixMask returns the mask of a prefix of bits bits in family f:
// PrefixMask(IPv4, 24) is 255.255.255.0, PrefixMask(IPv6, 64) is
// ffff:ffff:ffff:ffff::. bits is clamped to the family's size.
func PrefixMask(f Family, bits int) netip.Addr {
	size := 4
	if f == IPv6 {
		size = 16
	}
	bits = max(0, min(bits, size*8))
	b := make([]byte, size)
	for i := range bits {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func secondsDuration(s uint32) time.Duration { return time.Duration(s) * time.Second }
