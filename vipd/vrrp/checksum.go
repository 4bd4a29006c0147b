package vrrp

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// ChecksumMode is how the checksum of a version 3 advertisement over IPv4
// is computed. Implementations disagree here, and a router drops every
// advert whose checksum it computes differently, so the mode must match the
// peers'. Version 2 never uses a pseudo-header and version 3 over IPv6
// always uses the IPv6 one (RFC 8200 §8.1); for those the mode is ignored
// by [Marshal], and [Parse] reports what the rules imply
// ([ChecksumMessageOnly] for version 2, [ChecksumPseudoHeader] for IPv6).
//
// The zero value is keepalived's default.
type ChecksumMode int

const (
	// ChecksumPseudoHeader sums an IPv4 pseudo-header (source, destination,
	// a zero byte, protocol 112, the VRRP message length) and the message.
	// The destination is the packet's own: the group for multicast, the
	// peer for unicast. This is keepalived's default for VRRPv3 over IPv4
	// (every version since 1.3.6, verified against 2.2.7), and how RFC 5798
	// §5.2.8 was commonly read.
	ChecksumPseudoHeader ChecksumMode = iota
	// ChecksumMessageOnly sums the VRRP message alone, as version 2 does.
	// RFC 9568 §5.2.8 (which replaces RFC 5798) says so explicitly; Cisco
	// and FRR (by default since 2022) do it, and keepalived does it when
	// configured with v3_checksum_as_v2 (keepalived 2.2.8 and later).
	ChecksumMessageOnly
	// ChecksumPseudoHeaderGroup is ChecksumPseudoHeader with the IPv4 VRRP
	// group 224.0.0.18 in the pseudo-header whatever the real destination:
	// what keepalived before 1.3.6 put on unicast adverts, and what later
	// versions send with old_unicast_checksum. It differs from
	// ChecksumPseudoHeader only for unicast.
	ChecksumPseudoHeaderGroup

	numChecksumModes
)

// String returns a stable label for logs and status output: "pseudo-header",
// "message-only" or "pseudo-header-group".
func (m ChecksumMode) String() string {
	switch m {
	case ChecksumPseudoHeader:
		return "pseudo-header"
	case ChecksumMessageOnly:
		return "message-only"
	case ChecksumPseudoHeaderGroup:
		return "pseudo-header-group"
	}
	return "ChecksumMode(" + strconv.Itoa(int(m)) + ")"
}

// sum adds b to the running 32-bit one's complement accumulator s as
// big-endian 16-bit words, an odd last byte padded with zero (RFC 1071).
// Carries are folded at the end by fold; 32 bits cannot overflow for
// anything shorter than 128 KiB, and VRRP messages are at most 4 KiB.
func sum(s uint32, b []byte) uint32 {
	for len(b) >= 2 {
		s += uint32(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	return s
}

// fold reduces the accumulator to 16 bits and complements it.
func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// pseudoSum is the sum of the pseudo-header for a VRRP message of length n
// from src to dst: RFC 791-style for IPv4 (src, dst, 0, 112, 16-bit length),
// RFC 8200 §8.1 for IPv6 (src, dst, 32-bit length, 3 zero bytes, 112).
// Both add up to the same words apart from the addresses.
func pseudoSum(src, dst netip.Addr, n int) uint32 {
	var s uint32
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = sum(sum(0, a[:]), b[:])
	} else {
		a, b := src.As16(), dst.As16()
		s = sum(sum(0, a[:]), b[:])
	}
	return s + Protocol + uint32(n>>16) + uint32(n&0xffff)
}

// messageSum sums a VRRP message with its checksum field (bytes 6 and 7)
// taken as zero.
func messageSum(b []byte) uint32 {
	return sum(sum(0, b[:6]), b[8:])
}
