package vip

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
)

// Ethernet types used here.
const (
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
)

// minFrame is the shortest Ethernet frame without its FCS; shorter frames
// are padded with zeros.
const minFrame = 60

var (
	broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// allNodesMAC is ff02::1's multicast MAC (33:33 + its low 32 bits).
	allNodesMAC  = net.HardwareAddr{0x33, 0x33, 0x00, 0x00, 0x00, 0x01}
	allNodesIPv6 = netip.MustParseAddr("ff02::1")
)

var errBadInput = errors.New("vip: need a 6-byte MAC and an address of the right family")

// GratuitousARP returns the Ethernet frame that announces ip at mac: an ARP
// request broadcast to the segment whose sender and target addresses are
// both ip, and whose target hardware address is the broadcast address, as
// keepalived sends it. Hosts and switches that know ip update the MAC they
// hold for it.
func GratuitousARP(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	if len(mac) != 6 || !ip.Is4() {
		return nil, errBadInput
	}
	f := make([]byte, minFrame)
	copy(f[0:6], broadcastMAC)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], etherTypeARP)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:2], 1)      // hardware type: Ethernet
	binary.BigEndian.PutUint16(a[2:4], 0x0800) // protocol type: IPv4
	a[4], a[5] = 6, 4                          // address lengths
	binary.BigEndian.PutUint16(a[6:8], 1)      // operation: request
	copy(a[8:14], mac)
	ip4 := ip.As4()
	copy(a[14:18], ip4[:])
	copy(a[18:24], broadcastMAC)
	copy(a[24:28], ip4[:])
	return f, nil
}

// UnsolicitedNA returns the Ethernet frame that announces ip at mac to every
// node of the link (RFC 4861 §7.2.6): a neighbour advertisement from ip to
// ff02::1 with hop limit 255, the override flag, the router flag when router
// is true, and a target link-layer address option.
func UnsolicitedNA(mac net.HardwareAddr, ip netip.Addr, router bool) ([]byte, error) {
	if len(mac) != 6 || !ip.Is6() || ip.Is4In6() {
		return nil, errBadInput
	}
	const icmpLen = 4 + 4 + 16 + 8 // header, flags, target, option
	f := make([]byte, 14+40+icmpLen)
	copy(f[0:6], allNodesMAC)
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:14], etherTypeIPv6)

	h := f[14:54]
	h[0] = 6 << 4
	binary.BigEndian.PutUint16(h[4:6], icmpLen)
	h[6] = 58  // next header: ICMPv6
	h[7] = 255 // hop limit
	src, dst := ip.As16(), allNodesIPv6.As16()
	copy(h[8:24], src[:])
	copy(h[24:40], dst[:])

	m := f[54:]
	m[0] = 136          // neighbour advertisement
	flags := byte(0x20) // override
	if router {
		flags |= 0x80
	}
	m[4] = flags
	copy(m[8:24], src[:])
	m[24], m[25] = 2, 1 // option: target link-layer address, 8 bytes
	copy(m[26:32], mac)
	binary.BigEndian.PutUint16(m[2:4], icmpv6Checksum(src, dst, m))
	return f, nil
}

// icmpv6Checksum is the ones' complement checksum of msg with the IPv6
// pseudo-header of src and dst (RFC 8200 §8.1); msg's checksum field must
// be zero.
func icmpv6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += uint32(len(msg))
	sum += 58
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// AddrOptions are what keepalived's virtual_ipaddress lines may set on an
// address besides its prefix, as `ip addr add` takes them.
type AddrOptions struct {
	// Label is an IPv4 alias such as "eth0:vip"; empty for none.
	Label string
	// Broadcast is the IPv4 broadcast address; the zero Addr sets none.
	Broadcast netip.Addr
	// Scope is rtnetlink's scope: 0 global, 200 site, 253 link, 254 host,
	// 255 nowhere.
	Scope uint8
}
