package vrrp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// TransportConfig says where a [Transport] sends and receives.
type TransportConfig struct {
	Interface string
	// Source is the address adverts are sent from: unicast_src_ip, or the
	// interface's primary address (its link-local address for IPv6).
	Source netip.Addr
	// Peers are the unicast peers; none means multicast to Group.
	Peers []netip.Addr
	// Group is the multicast group adverts go to and the socket joins
	// (keepalived's vrrp_mcast_group4/6, mcast_dst_ip) when there are no
	// Peers; zero means [GroupIPv4] or [GroupIPv6], by Source's family.
	Group netip.Addr
}

// Transport is a raw IP socket for protocol 112 bound to one interface,
// sending with TTL (hop limit) 255. Send may be called from any goroutine;
// Recv from one goroutine at a time.
type Transport struct {
	cfg  TransportConfig
	ifi  *net.Interface
	v4   *ipv4.PacketConn
	v6   *ipv6.PacketConn
	conn net.PacketConn
}

// Packet is one received datagram's VRRP message and what the IP layer
// said about it.
type Packet struct {
	Data     []byte
	Src, Dst netip.Addr
	TTL      int // TTL or hop limit; -1 when the kernel did not say
}

// Listen opens the socket. It needs CAP_NET_RAW.
func Listen(cfg TransportConfig) (*Transport, error) {
	if !cfg.Source.IsValid() {
		return nil, errors.New("vrrp: transport needs a source address")
	}
	if !cfg.Group.IsValid() {
		cfg.Group = GroupIPv4
		if cfg.Source.Is6() {
			cfg.Group = GroupIPv6
		}
	}
	if len(cfg.Peers) == 0 && (!cfg.Group.IsMulticast() || cfg.Group.Is6() != cfg.Source.Is6()) {
		return nil, fmt.Errorf("vrrp: group %s is not a multicast address of the source's family", cfg.Group)
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("vrrp: interface %q: %w", cfg.Interface, err)
	}
	v6 := cfg.Source.Is6()
	network, any := "ip4:112", "0.0.0.0"
	if v6 {
		network, any = "ip6:112", "::"
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, cfg.Interface)
			// Only groups joined on this socket, not every socket's.
			if serr == nil && !v6 {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
			}
			if serr == nil && v6 {
				// Linux 4.20 and later; the receiver checks the
				// destination anyway.
				_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := lc.ListenPacket(context.Background(), network, any)
	if err != nil {
		return nil, fmt.Errorf("vrrp: raw socket on %s: %w", cfg.Interface, err)
	}
	t := &Transport{cfg: cfg, ifi: ifi, conn: c}
	if err := t.setup(v6); err != nil {
		c.Close()
		return nil, fmt.Errorf("vrrp: socket options on %s: %w", cfg.Interface, err)
	}
	return t, nil
}

// groupConn is what setup needs of an ipv4.PacketConn or ipv6.PacketConn
// beyond the family's own options.
type groupConn interface {
	SetMulticastLoopback(bool) error
	SetMulticastInterface(*net.Interface) error
	JoinGroup(*net.Interface, net.Addr) error
}

// setup sets the socket's options: control messages with the TTL (hop
// limit) and destination, TTL 255 for unicast and multicast, no loopback
// of our own adverts, and with no unicast peers the group joined on the
// interface.
func (t *Transport) setup(v6 bool) error {
	var (
		p     groupConn
		group = t.cfg.Group
		steps []func() error
	)
	if v6 {
		c := ipv6.NewPacketConn(t.conn)
		t.v6, p = c, c
		steps = []func() error{
			func() error { return c.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true) },
			func() error { return c.SetHopLimit(255) },
			func() error { return c.SetMulticastHopLimit(255) },
		}
	} else {
		c := ipv4.NewPacketConn(t.conn)
		t.v4, p = c, c
		steps = []func() error{
			func() error { return c.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true) },
			func() error { return c.SetTTL(255) },
			func() error { return c.SetMulticastTTL(255) },
		}
	}
	steps = append(steps, func() error { return p.SetMulticastLoopback(false) })
	if len(t.cfg.Peers) == 0 {
		steps = append(steps,
			func() error { return p.SetMulticastInterface(t.ifi) },
			func() error { return p.JoinGroup(t.ifi, &net.IPAddr{IP: group.AsSlice()}) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// Destinations are where an advert goes: the peers, or the group.
func (t *Transport) Destinations() []netip.Addr {
	if len(t.cfg.Peers) > 0 {
		return t.cfg.Peers
	}
	return []netip.Addr{t.cfg.Group}
}

// Group is the multicast group the socket joined and sends to; the zero
// Addr with unicast peers.
func (t *Transport) Group() netip.Addr {
	if len(t.cfg.Peers) > 0 {
		return netip.Addr{}
	}
	return t.cfg.Group
}

// Source is the address adverts are sent from.
func (t *Transport) Source() netip.Addr { return t.cfg.Source }

// Send sends one VRRP message to dst.
func (t *Transport) Send(b []byte, dst netip.Addr) error {
	var err error
	if t.v6 != nil {
		zone := ""
		if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() {
			zone = t.ifi.Name
		}
		cm := &ipv6.ControlMessage{Src: t.cfg.Source.AsSlice(), IfIndex: t.ifi.Index}
		_, err = t.v6.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: zone})
	} else {
		cm := &ipv4.ControlMessage{Src: t.cfg.Source.AsSlice(), IfIndex: t.ifi.Index}
		_, err = t.v4.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice()})
	}
	if err != nil {
		return fmt.Errorf("vrrp: send to %s on %s: %w", dst, t.ifi.Name, err)
	}
	return nil
}

// Recv reads the next datagram into buf. It returns net.ErrClosed after
// Close.
func (t *Transport) Recv(buf []byte) (Packet, error) {
	if t.v6 != nil {
		n, cm, src, err := t.v6.ReadFrom(buf)
		if err != nil {
			return Packet{}, err
		}
		p := Packet{Data: buf[:n], Src: addrOf(src), TTL: -1}
		if cm != nil {
			p.TTL = cm.HopLimit
			p.Dst, _ = netip.AddrFromSlice(cm.Dst)
		}
		return p, nil
	}
	n, cm, src, err := t.v4.ReadFrom(buf)
	if err != nil {
		return Packet{}, err
	}
	p := Packet{Data: buf[:n], Src: addrOf(src), TTL: -1}
	if cm != nil {
		p.TTL = cm.TTL
		d, _ := netip.AddrFromSlice(cm.Dst)
		p.Dst = d.Unmap()
	}
	return p, nil
}

func addrOf(a net.Addr) netip.Addr {
	ip, ok := a.(*net.IPAddr)
	if !ok {
		return netip.Addr{}
	}
	x, _ := netip.AddrFromSlice(ip.IP)
	return x.Unmap()
}

// Close closes the socket; a blocked Recv returns.
func (t *Transport) Close() error { return t.conn.Close() }
