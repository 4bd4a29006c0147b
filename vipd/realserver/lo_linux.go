package realserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func loopbackAddr(vip netip.Addr) (netlink.Link, *netlink.Addr, error) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return nil, nil, fmt.Errorf("realserver: lo: %w", err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: vip.AsSlice(), Mask: net.CIDRMask(vip.BitLen(), vip.BitLen())}}
	if vip.Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return lo, a, nil
}

func hasLoopbackAddr(vip netip.Addr) (bool, error) {
	lo, _, err := loopbackAddr(vip)
	if err != nil {
		return false, err
	}
	family := netlink.FAMILY_V4
	if vip.Is6() {
		family = netlink.FAMILY_V6
	}
	list, err := netlink.AddrList(lo, family)
	if err != nil {
		return false, fmt.Errorf("realserver: addresses of lo: %w", err)
	}
	for _, x := range list {
		if a, ok := netip.AddrFromSlice(x.IP); ok && a.Unmap() == vip {
			return true, nil
		}
	}
	return false, nil
}

func addLoopbackAddr(vip netip.Addr) error {
	lo, a, err := loopbackAddr(vip)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(lo, a); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("realserver: add %s to lo: %w", vip, err)
	}
	return nil
}

func removeLoopbackAddr(vip netip.Addr) error {
	lo, a, err := loopbackAddr(vip)
	if err != nil {
		return err
	}
	if err := netlink.AddrDel(lo, a); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("realserver: remove %s from lo: %w", vip, err)
	}
	return nil
}
