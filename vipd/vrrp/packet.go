package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Layout of a VRRP message (RFC 3768 §5.1, RFC 9568 §5.1).
const (
	headerLen   = 8 // version/type, VRID, priority, count, auth/interval, checksum
	authDataLen = 8 // version 2 only, after the addresses
	typeAdvert  = 1 // the only message type
	maxAddrs    = 255
	maxV2Secs   = 255  // 8-bit interval, whole seconds
	maxV3Centis = 4095 // 12-bit interval, centiseconds
	centisecond = 10 * time.Millisecond
)

// Marshal encodes a as a VRRP message, the IP payload only, to be sent from
// src to dst. The addresses pick the IP family and, for version 3, go into
// the checksum; mode says how a version 3 message over IPv4 is checksummed
// and is ignored otherwise (see [ChecksumMode]). IPv4-mapped IPv6
// addresses count as IPv4.
//
// Version 2 needs IPv4 and an Interval of whole seconds from 1 to 255 s; it
// carries AuthType and the 8 bytes of AuthData. Version 3 needs an Interval
// of whole centiseconds from 10 ms to 40.95 s, and AuthType and AuthData
// zero. Every address must be of src's family, src and dst alike, and
// there may be at most 255. Errors wrap [ErrInvalidAdvert].
//
// Marshal does not modify a and is safe for concurrent use.
func Marshal(a *Advert, src, dst netip.Addr, mode ChecksumMode) ([]byte, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: nil advert", ErrInvalidAdvert)
	}
	if mode < 0 || mode >= numChecksumModes {
		return nil, fmt.Errorf("%w: unknown checksum mode %d", ErrInvalidAdvert, int(mode))
	}
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return nil, fmt.Errorf("%w: source %v and destination %v are not of one family", ErrInvalidAdvert, src, dst)
	}
	v4 := src.Is4()
	if len(a.Addresses) > maxAddrs {
		return nil, fmt.Errorf("%w: %d addresses, at most %d fit", ErrInvalidAdvert, len(a.Addresses), maxAddrs)
	}
	for _, ad := range a.Addresses {
		if ad = ad.Unmap(); !ad.IsValid() || ad.Is4() != v4 {
			return nil, fmt.Errorf("%w: address %v is not of the family of source %v", ErrInvalidAdvert, ad, src)
		}
	}
	addrLen := 16
	if v4 {
		addrLen = 4
	}

	var word uint16 // bytes 4 and 5: auth type and interval (v2), interval (v3)
	n := headerLen + len(a.Addresses)*addrLen
	switch a.Version {
	case 2:
		if !v4 {
			return nil, fmt.Errorf("%w: version 2 is IPv4 only", ErrInvalidAdvert)
		}
		if a.Interval%time.Second != 0 || a.Interval < time.Second || a.Interval > maxV2Secs*time.Second {
			return nil, fmt.Errorf("%w: version 2 interval %v is not whole seconds from 1s to 255s", ErrInvalidAdvert, a.Interval)
		}
		word = uint16(a.AuthType)<<8 | uint16(a.Interval/time.Second)
		n += authDataLen
	case 3:
		if a.Interval%centisecond != 0 || a.Interval < centisecond || a.Interval > maxV3Centis*centisecond {
			return nil, fmt.Errorf("%w: version 3 interval %v is not whole centiseconds from 10ms to 40.95s", ErrInvalidAdvert, a.Interval)
		}
		if a.AuthType != AuthNone || a.AuthData != [8]byte{} {
			return nil, fmt.Errorf("%w: version 3 has no authentication", ErrInvalidAdvert)
		}
		word = uint16(a.Interval / centisecond)
	default:
		return nil, fmt.Errorf("%w: version %d, want 2 or 3", ErrInvalidAdvert, a.Version)
	}

	b := make([]byte, n)
	b[0] = byte(a.Version)<<4 | typeAdvert
	b[1] = a.VRID
	b[2] = a.Priority
	b[3] = byte(len(a.Addresses))
	binary.BigEndian.PutUint16(b[4:], word)
	off := headerLen
	for _, ad := range a.Addresses {
		ad = ad.Unmap()
		if v4 {
			x := ad.As4()
			off += copy(b[off:], x[:])
		} else {
			x := ad.As16()
			off += copy(b[off:], x[:])
		}
	}
	if a.Version == 2 {
		copy(b[off:], a.AuthData[:])
	}
	binary.BigEndian.PutUint16(b[6:], checksumFor(b, a.Version, src, dst, mode))
	return b, nil
}

// checksumFor computes the checksum of message b (checksum field ignored)
// as the version, family and mode call for.
func checksumFor(b []byte, version int, src, dst netip.Addr, mode ChecksumMode) uint16 {
	s := messageSum(b)
	switch {
	case version == 2:
	case src.Is6():
		s += pseudoSum(src, dst, len(b))
	case mode == ChecksumPseudoHeader:
		s += pseudoSum(src, dst, len(b))
	case mode == ChecksumPseudoHeaderGroup:
		s += pseudoSum(src, GroupIPv4, len(b))
	}
	return fold(s)
}

// Parse decodes a VRRP message, the IP payload only, received from src for
// dst (the packet's own destination: the group, or this host for unicast).
// IPv4-mapped IPv6 addresses count as IPv4.
//
// It checks what belongs to the packet alone: length, version, type, that
// the address count fits the length, that the interval is not zero, and the
// checksum. For version 3 over IPv4 it accepts every [ChecksumMode] and
// returns the one that matched (trying them in the order the constants are
// declared, so a checksum that more than one mode gives is reported as the
// first); for version 2 it returns [ChecksumMessageOnly], for IPv6
// [ChecksumPseudoHeader]. The reserved bits of version 3 are ignored, as RFC
// 9568 asks. The TTL, the VRID, authentication and the interval are for the
// receiving instance to check.
//
// A packet that is not a valid advertisement gives a [*ParseError] whose
// Reason says why. Parse never panics; it allocates the Advert and its
// address list, never more than the input's length calls for. It does not
// keep b and is safe for concurrent use.
func Parse(b []byte, src, dst netip.Addr) (*Advert, ChecksumMode, error) {
	if len(b) < headerLen {
		return nil, 0, dropn(DropShort, "length", len(b))
	}
	version := int(b[0] >> 4)
	if version != 2 && version != 3 {
		return nil, 0, dropn(DropVersion, "version", version)
	}
	if t := int(b[0] & 0x0f); t != typeAdvert {
		return nil, 0, dropn(DropType, "type", t)
	}
	src, dst = src.Unmap(), dst.Unmap()
	if !src.IsValid() || !dst.IsValid() || src.Is4() != dst.Is4() {
		return nil, 0, dropf(DropFamily, "source "+src.String()+", destination "+dst.String())
	}
	v4 := src.Is4()
	if version == 2 && !v4 {
		return nil, 0, dropf(DropFamily, "version 2 over IPv6")
	}
	addrLen := 16
	if v4 {
		addrLen = 4
	}
	count := int(b[3])
	want := headerLen + count*addrLen
	if version == 2 {
		want += authDataLen
		if len(b) < headerLen+authDataLen {
			return nil, 0, dropn(DropShort, "length", len(b))
		}
	}
	if len(b) != want {
		return nil, 0, dropf(DropLength, fmt.Sprintf("%d addresses need %d bytes, have %d", count, want, len(b)))
	}

	got := binary.BigEndian.Uint16(b[6:])
	mode, ok := matchChecksum(b, got, version, src, dst)
	if !ok {
		return nil, 0, dropf(DropChecksum, fmt.Sprintf("checksum %#04x", got))
	}

	a := &Advert{Version: version, VRID: b[1], Priority: b[2]}
	if version == 2 {
		a.AuthType = b[4]
		a.Interval = time.Duration(b[5]) * time.Second
		copy(a.AuthData[:], b[want-authDataLen:])
	} else {
		a.Interval = time.Duration(binary.BigEndian.Uint16(b[4:])&0x0fff) * centisecond
	}
	if a.Interval == 0 {
		return nil, 0, dropf(DropInterval, "interval 0")
	}
	if count > 0 {
		a.Addresses = make([]netip.Addr, count)
		for i := range a.Addresses {
			p := b[headerLen+i*addrLen:]
			if v4 {
				a.Addresses[i] = netip.AddrFrom4([4]byte(p[:4]))
			} else {
				a.Addresses[i] = netip.AddrFrom16([16]byte(p[:16]))
			}
		}
	}
	return a, mode, nil
}

// matchChecksum reports which mode gives checksum got for message b.
func matchChecksum(b []byte, got uint16, version int, src, dst netip.Addr) (ChecksumMode, bool) {
	msg := messageSum(b)
	switch {
	case version == 2:
		return ChecksumMessageOnly, fold(msg) == got
	case src.Is6():
		return ChecksumPseudoHeader, fold(msg+pseudoSum(src, dst, len(b))) == got
	}
	if fold(msg+pseudoSum(src, dst, len(b))) == got {
		return ChecksumPseudoHeader, true
	}
	if fold(msg) == got {
		return ChecksumMessageOnly, true
	}
	if dst != GroupIPv4 && fold(msg+pseudoSum(src, GroupIPv4, len(b))) == got {
		return ChecksumPseudoHeaderGroup, true
	}
	return 0, false
}
