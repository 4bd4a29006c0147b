package lvs

import (
	"fmt"
	"net/netip"
)

// Forward is how IPVS forwards packets to a destination, with the kernel's
// values (IP_VS_CONN_F_MASQ, _LOCALNODE, _TUNNEL, _DROUTE). The zero value
// is [Masq], keepalived's default (lvs_method NAT).
type Forward uint8

// Forwarding methods. ipvsadm lists them as Masq, Local, Tunnel, Route.
const (
	// Masq is NAT (lvs_method NAT, ipvsadm -m).
	Masq Forward = 0
	// Local: the destination is an address of the director itself. Old
	// kernels switched any method to Local when the destination's address
	// was local and reported Local from then on; Debian 12's 6.1 keeps
	// and reports the method it was given (seen by TestKernel in the VM).
	Local Forward = 1
	// Tunnel is IP-in-IP tunnelling (lvs_method TUN, ipvsadm -i).
	Tunnel Forward = 2
	// Route is direct routing (lvs_method DR, ipvsadm -g).
	Route Forward = 3
)

func (f Forward) String() string {
	switch f {
	case Masq:
		return "Masq"
	case Local:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case Route:
		return "Route"
	}
	return fmt.Sprintf("Forward(%d)", uint8(f))
}

// ParseForward returns the method keepalived calls s (NAT, DR, TUN) or
// ipvsadm lists as s (Masq, Route, Tunnel, Local; any case).
func ParseForward(s string) (Forward, error) {
	switch s {
	case "NAT", "Masq", "masq":
		return Masq, nil
	case "DR", "Route", "route":
		return Route, nil
	case "TUN", "Tunnel", "tunnel":
		return Tunnel, nil
	case "Local", "local":
		return Local, nil
	}
	return 0, invalidf("forwarding method %q: expected NAT, DR or TUN", s)
}

// MaxWeight is the largest weight a [Destination] may have. The kernel
// takes up to 2^31-1 and keepalived's real_server weight too, but the
// netlink library reads weights back in 16 bits, so a larger one would
// never compare equal; 65535 is also ipvsadm's limit.
const MaxWeight = 65535

// Destination is a real server of a service.
type Destination struct {
	Addr netip.Addr
	// Port 0 means the service's port (the kernel uses the virtual port
	// for a destination without one).
	Port uint16
	// Weight 0 takes no new connections; existing ones continue.
	Weight  int
	Forward Forward
	// Conns are the kernel's connection counts, filled in when the
	// destination is read from the kernel ([Kernel.Destinations]); they
	// are ignored when a destination is added or compared.
	Conns Conns
}

// Conns are a destination's connection counts as ipvsadm -L shows them.
type Conns struct {
	// Active connections are established (TCP ESTABLISHED); Inactive
	// are any other state (closing, TIME_WAIT, UDP).
	Active, Inactive int
	// Total counts the connections scheduled to the destination since it
	// was added (wrapping at 2^32, as the kernel keeps it).
	Total uint32
}

// Key returns the identity of d within its service.
func (d Destination) Key() netip.AddrPort { return netip.AddrPortFrom(d.Addr, d.Port) }

func (d Destination) String() string {
	return fmt.Sprintf("%s %s %d", d.Key(), d.Forward, d.Weight)
}

// Validate reports whether the kernel can take d in service s; the error
// wraps [ErrInvalid]. Only tunnelled destinations may be of another family
// than the service.
func (d Destination) Validate(s Service) error {
	if !d.Addr.IsValid() || d.Addr.Zone() != "" || d.Addr.Is4In6() || d.Addr.IsUnspecified() {
		return invalidf("%s: destination %s: bad address", s.Key(), d.Key())
	}
	if d.Weight < 0 || d.Weight > MaxWeight {
		return invalidf("%s: destination %s: weight %d out of range 0..%d", s.Key(), d.Key(), d.Weight, MaxWeight)
	}
	if d.Forward > Route {
		return invalidf("%s: destination %s: bad forwarding method %s", s.Key(), d.Key(), d.Forward)
	}
	if f := s.Key().Family; FamilyOf(d.Addr) != f && d.Forward != Tunnel {
		return invalidf("%s: destination %s is %s; only tunnelled destinations may differ from the service's family", s.Key(), d.Key(), FamilyOf(d.Addr))
	}
	return nil
}

// sameDest reports whether the kernel's destination have needs no update
// to become want: same weight and method, where the kernel's Local stands
// for any method (it replaces the method of local addresses).
func sameDest(have, want Destination) bool {
	return have.Weight == want.Weight && (have.Forward == want.Forward || have.Forward == Local)
}
