package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link is one network interface whose addresses vipd manages.
// Its methods are safe for concurrent use: each is one netlink request.
type Link struct {
	name string
	link netlink.Link
}

// OpenLink finds the interface called name.
func OpenLink(name string) (*Link, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("vip: interface %q: %w", name, err)
	}
	return &Link{name: name, link: l}, nil
}

// Name is the interface's name.
func (l *Link) Name() string { return l.name }

// Index is the interface's index.
func (l *Link) Index() int { return l.link.Attrs().Index }

// MAC is the interface's hardware address.
func (l *Link) MAC() net.HardwareAddr { return l.link.Attrs().HardwareAddr }

// Up reports whether the interface is administratively up and has a carrier
// (or is a loopback or dummy interface, which has none to lose).
func (l *Link) Up() (bool, error) {
	fresh, err := netlink.LinkByIndex(l.Index())
	if err != nil {
		return false, fmt.Errorf("vip: interface %q: %w", l.name, err)
	}
	a := fresh.Attrs()
	if a.Flags&net.FlagUp == 0 {
		return false, nil
	}
	return a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown, nil
}

func toNetlink(p netip.Prefix, o AddrOptions) *netlink.Addr {
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Label: o.Label,
		Scope: int(o.Scope),
	}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	} else {
		// The zero address sends no broadcast (netlink would otherwise
		// compute one): keepalived sets one only when brd is given.
		a.Broadcast = net.IPv4zero
		if o.Broadcast.Is4() {
			a.Broadcast = o.Broadcast.AsSlice()
		}
	}
	return a
}

// Add puts the address p on the interface with the options o. An address
// that is there already is left as it is.
func (l *Link) Add(p netip.Prefix, o AddrOptions) error {
	err := netlink.AddrAdd(l.link, toNetlink(p, o))
	if err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("vip: add %s to %s: %w", p, l.name, err)
	}
	return nil
}

// Remove takes the address p off the interface. An absent address is not an
// error.
func (l *Link) Remove(p netip.Prefix) error {
	err := netlink.AddrDel(l.link, toNetlink(p, AddrOptions{}))
	if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("vip: remove %s from %s: %w", p, l.name, err)
	}
	return nil
}

// Has reports whether the address a (with any prefix length) is on the
// interface.
func (l *Link) Has(a netip.Addr) (bool, error) {
	family := netlink.FAMILY_V4
	if a.Is6() {
		family = netlink.FAMILY_V6
	}
	list, err := netlink.AddrList(l.link, family)
	if err != nil {
		return false, fmt.Errorf("vip: list addresses of %s: %w", l.name, err)
	}
	for _, x := range list {
		if got, ok := netip.AddrFromSlice(x.IP); ok && got.Unmap() == a {
			return true, nil
		}
	}
	return false, nil
}

// Addrs lists the interface's IPv6 addresses if v6, its IPv4 ones
// otherwise.
func (l *Link) Addrs(v6 bool) ([]netip.Prefix, error) {
	family := netlink.FAMILY_V4
	if v6 {
		family = netlink.FAMILY_V6
	}
	list, err := netlink.AddrList(l.link, family)
	if err != nil {
		return nil, fmt.Errorf("vip: list addresses of %s: %w", l.name, err)
	}
	out := make([]netip.Prefix, 0, len(list))
	for _, x := range list {
		a, ok := netip.AddrFromSlice(x.IP)
		if !ok {
			continue
		}
		bits, _ := x.Mask.Size()
		out = append(out, netip.PrefixFrom(a.Unmap(), bits))
	}
	return out, nil
}
