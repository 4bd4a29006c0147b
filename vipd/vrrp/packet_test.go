package vrrp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	pktSrc4  = netip.MustParseAddr("192.0.2.1")
	pktPeer4 = netip.MustParseAddr("192.0.2.2")
	pktSrc6  = netip.MustParseAddr("fe80::1")
	pktPeer6 = netip.MustParseAddr("fe80::2")
)

func pktAddrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, x := range s {
		out[i] = netip.MustParseAddr(x)
	}
	return out
}

func pktPass(s string) (b [8]byte) {
	copy(b[:], s)
	return b
}

func TestRoundTrip(t *testing.T) {
	many := make([]netip.Addr, 255)
	for i := range many {
		many[i] = netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})
	}
	many6 := make([]netip.Addr, 255)
	for i := range many6 {
		many6[i] = netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 15: byte(i)})
	}
	tests := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		mode     ChecksumMode // passed to Marshal
		wantMode ChecksumMode // reported by Parse
	}{
		{
			name: "v2 pass multicast",
			a: Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second,
				Addresses: pktAddrs("192.0.2.100", "192.0.2.101"), AuthType: AuthPass, AuthData: pktPass("1111")},
			src: pktSrc4, dst: GroupIPv4, wantMode: ChecksumMessageOnly,
		},
		{
			name: "v2 no auth unicast, mode ignored",
			a:    Advert{Version: 2, VRID: 1, Priority: 255, Interval: 255 * time.Second, Addresses: pktAddrs("10.1.1.1")},
			src:  pktSrc4, dst: pktPeer4, mode: ChecksumPseudoHeader, wantMode: ChecksumMessageOnly,
		},
		{
			name: "v2 no addresses",
			a:    Advert{Version: 2, VRID: 9, Priority: 0, Interval: 3 * time.Second, AuthType: AuthAH, AuthData: pktPass("\x01\x02\x03\x04\x05\x06\x07\x08")},
			src:  pktSrc4, dst: GroupIPv4, wantMode: ChecksumMessageOnly,
		},
		{
			name: "v2 255 addresses",
			a:    Advert{Version: 2, VRID: 200, Priority: 50, Interval: time.Second, Addresses: many},
			src:  pktSrc4, dst: GroupIPv4, wantMode: ChecksumMessageOnly,
		},
		{
			name: "v3 ipv4 pseudo-header multicast",
			a:    Advert{Version: 3, VRID: 52, Priority: 200, Interval: 100 * time.Millisecond, Addresses: pktAddrs("192.0.2.110", "192.0.2.111")},
			src:  pktSrc4, dst: GroupIPv4, mode: ChecksumPseudoHeader, wantMode: ChecksumPseudoHeader,
		},
		{
			name: "v3 ipv4 pseudo-header unicast",
			a:    Advert{Version: 3, VRID: 52, Priority: 1, Interval: 40950 * time.Millisecond, Addresses: pktAddrs("192.0.2.110")},
			src:  pktSrc4, dst: pktPeer4, mode: ChecksumPseudoHeader, wantMode: ChecksumPseudoHeader,
		},
		{
			name: "v3 ipv4 message-only multicast",
			a:    Advert{Version: 3, VRID: 53, Priority: 150, Interval: 10 * time.Millisecond, Addresses: pktAddrs("192.0.2.130")},
			src:  pktSrc4, dst: GroupIPv4, mode: ChecksumMessageOnly, wantMode: ChecksumMessageOnly,
		},
		{
			name: "v3 ipv4 message-only unicast",
			a:    Advert{Version: 3, VRID: 53, Priority: 150, Interval: 2 * time.Second, Addresses: pktAddrs("192.0.2.130")},
			src:  pktSrc4, dst: pktPeer4, mode: ChecksumMessageOnly, wantMode: ChecksumMessageOnly,
		},
		{
			name: "v3 ipv4 pseudo-header group unicast",
			a:    Advert{Version: 3, VRID: 57, Priority: 100, Interval: time.Second, Addresses: pktAddrs("192.0.2.170")},
			src:  pktSrc4, dst: pktPeer4, mode: ChecksumPseudoHeaderGroup, wantMode: ChecksumPseudoHeaderGroup,
		},
		{
			name: "v3 ipv4 pseudo-header group multicast is plain pseudo-header",
			a:    Advert{Version: 3, VRID: 57, Priority: 100, Interval: time.Second, Addresses: pktAddrs("192.0.2.170")},
			src:  pktSrc4, dst: GroupIPv4, mode: ChecksumPseudoHeaderGroup, wantMode: ChecksumPseudoHeader,
		},
		{
			name: "v3 ipv4 no addresses",
			a:    Advert{Version: 3, VRID: 5, Priority: 100, Interval: time.Second},
			src:  pktSrc4, dst: GroupIPv4, wantMode: ChecksumPseudoHeader,
		},
		{
			name: "v3 ipv6 multicast, mode ignored",
			a:    Advert{Version: 3, VRID: 54, Priority: 100, Interval: time.Second, Addresses: pktAddrs("fe80::54", "2001:db8::54")},
			src:  pktSrc6, dst: GroupIPv6, mode: ChecksumMessageOnly, wantMode: ChecksumPseudoHeader,
		},
		{
			name: "v3 ipv6 unicast",
			a:    Advert{Version: 3, VRID: 54, Priority: 100, Interval: 1230 * time.Millisecond, Addresses: pktAddrs("fe80::54")},
			src:  pktSrc6, dst: pktPeer6, wantMode: ChecksumPseudoHeader,
		},
		{
			name: "v3 ipv6 255 addresses",
			a:    Advert{Version: 3, VRID: 54, Priority: 100, Interval: time.Second, Addresses: many6},
			src:  pktSrc6, dst: GroupIPv6, wantMode: ChecksumPseudoHeader,
		},
		{
			name: "v3 ipv4-mapped addresses count as ipv4",
			a:    Advert{Version: 3, VRID: 7, Priority: 100, Interval: time.Second, Addresses: pktAddrs("::ffff:192.0.2.7")},
			src:  netip.MustParseAddr("::ffff:192.0.2.1"), dst: GroupIPv4, wantMode: ChecksumPseudoHeader,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Marshal(&tt.a, tt.src, tt.dst, tt.mode)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			got, mode, err := Parse(b, tt.src, tt.dst)
			if err != nil {
				t.Fatalf("Parse(%x): %v", b, err)
			}
			want := tt.a
			for i, a := range want.Addresses {
				want.Addresses[i] = a.Unmap()
			}
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("Parse(Marshal(a)) = %+v, want %+v", *got, want)
			}
			if mode != tt.wantMode {
				t.Errorf("mode = %v, want %v", mode, tt.wantMode)
			}
		})
	}
}

// TestChecksumModesDiffer checks that the three IPv4 version 3 modes give
// different checksums for a unicast advert, and that a receiver told the
// wrong destination finds none of them.
func TestChecksumModesDiffer(t *testing.T) {
	a := &Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addresses: pktAddrs("192.0.2.9")}
	seen := map[uint16]ChecksumMode{}
	for m := range numChecksumModes {
		b, err := Marshal(a, pktSrc4, pktPeer4, m)
		if err != nil {
			t.Fatal(err)
		}
		c := binary.BigEndian.Uint16(b[6:])
		if prev, ok := seen[c]; ok {
			t.Errorf("%v and %v give the same checksum %#04x", prev, m, c)
		}
		seen[c] = m
	}
	b, err := Marshal(a, pktSrc4, pktPeer4, ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = Parse(b, pktSrc4, netip.MustParseAddr("192.0.2.3"))
	if pe := (*ParseError)(nil); !errors.As(err, &pe) || pe.Reason != DropChecksum {
		t.Errorf("Parse with another destination: %v, want %v", err, DropChecksum)
	}
}

func TestMarshalErrors(t *testing.T) {
	ok2 := Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second, Addresses: pktAddrs("192.0.2.10")}
	ok3 := Advert{Version: 3, VRID: 1, Priority: 100, Interval: time.Second, Addresses: pktAddrs("192.0.2.10")}
	with := func(a Advert, f func(*Advert)) *Advert { f(&a); return &a }
	tests := []struct {
		name     string
		a        *Advert
		src, dst netip.Addr
		mode     ChecksumMode
		want     string
	}{
		{"nil", nil, pktSrc4, GroupIPv4, 0, "nil advert"},
		{"version 1", with(ok2, func(a *Advert) { a.Version = 1 }), pktSrc4, GroupIPv4, 0, "version 1"},
		{"version 0", with(ok2, func(a *Advert) { a.Version = 0 }), pktSrc4, GroupIPv4, 0, "version 0"},
		{"mode", &ok3, pktSrc4, GroupIPv4, numChecksumModes, "checksum mode"},
		{"negative mode", &ok3, pktSrc4, GroupIPv4, -1, "checksum mode"},
		{"mixed src dst", &ok3, pktSrc4, GroupIPv6, 0, "one family"},
		{"zero src", &ok3, netip.Addr{}, GroupIPv4, 0, "one family"},
		{"zero dst", &ok3, pktSrc4, netip.Addr{}, 0, "one family"},
		{"v6 address over v4", with(ok3, func(a *Advert) { a.Addresses = pktAddrs("fe80::1") }), pktSrc4, GroupIPv4, 0, "family"},
		{"v4 address over v6", &ok3, pktSrc6, GroupIPv6, 0, "family"},
		{"zero address", with(ok3, func(a *Advert) { a.Addresses = []netip.Addr{{}} }), pktSrc4, GroupIPv4, 0, "family"},
		{"256 addresses", with(ok3, func(a *Advert) { a.Addresses = make([]netip.Addr, 256) }), pktSrc4, GroupIPv4, 0, "256 addresses"},
		{"v2 over v6", with(ok2, func(a *Advert) { a.Addresses = pktAddrs("fe80::1") }), pktSrc6, GroupIPv6, 0, "IPv4 only"},
		{"v2 interval fraction", with(ok2, func(a *Advert) { a.Interval = 1500 * time.Millisecond }), pktSrc4, GroupIPv4, 0, "whole seconds"},
		{"v2 interval zero", with(ok2, func(a *Advert) { a.Interval = 0 }), pktSrc4, GroupIPv4, 0, "whole seconds"},
		{"v2 interval 256s", with(ok2, func(a *Advert) { a.Interval = 256 * time.Second }), pktSrc4, GroupIPv4, 0, "whole seconds"},
		{"v2 interval negative", with(ok2, func(a *Advert) { a.Interval = -time.Second }), pktSrc4, GroupIPv4, 0, "whole seconds"},
		{"v3 interval 5ms", with(ok3, func(a *Advert) { a.Interval = 5 * time.Millisecond }), pktSrc4, GroupIPv4, 0, "centiseconds"},
		{"v3 interval 15ms", with(ok3, func(a *Advert) { a.Interval = 15 * time.Millisecond }), pktSrc4, GroupIPv4, 0, "centiseconds"},
		{"v3 interval zero", with(ok3, func(a *Advert) { a.Interval = 0 }), pktSrc4, GroupIPv4, 0, "centiseconds"},
		{"v3 interval 40.96s", with(ok3, func(a *Advert) { a.Interval = 40960 * time.Millisecond }), pktSrc4, GroupIPv4, 0, "centiseconds"},
		{"v3 auth type", with(ok3, func(a *Advert) { a.AuthType = AuthPass }), pktSrc4, GroupIPv4, 0, "no authentication"},
		{"v3 auth data", with(ok3, func(a *Advert) { a.AuthData = pktPass("x") }), pktSrc4, GroupIPv4, 0, "no authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Marshal(tt.a, tt.src, tt.dst, tt.mode)
			if err == nil {
				t.Fatalf("Marshal = %x, want an error", b)
			}
			if !errors.Is(err, ErrInvalidAdvert) {
				t.Errorf("error %v does not wrap ErrInvalidAdvert", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// pktWithChecksum recomputes the checksum of b in place, as mode says.
func pktWithChecksum(b []byte, version int, src, dst netip.Addr, mode ChecksumMode) []byte {
	binary.BigEndian.PutUint16(b[6:], checksumFor(b, version, src, dst, mode))
	return b
}

func pktHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := decodeGoldenHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseErrors(t *testing.T) {
	// Well-formed messages to break: v2 with one address, v3 with one.
	v2 := func() []byte {
		return pktHex(t, "21 01 64 01 00 01 0000 c0000a01 0000000000000000")
	}
	v3 := func() []byte {
		return pktHex(t, "31 01 64 01 0064 0000 c0000a01")
	}
	fix2 := func(b []byte) []byte { return pktWithChecksum(b, 2, pktSrc4, GroupIPv4, 0) }
	fix3 := func(b []byte) []byte { return pktWithChecksum(b, 3, pktSrc4, GroupIPv4, 0) }
	set := func(b []byte, i int, v byte) []byte { b[i] = v; return b }

	tests := []struct {
		name     string
		b        []byte
		src, dst netip.Addr
		want     DropReason
	}{
		{"empty", nil, pktSrc4, GroupIPv4, DropShort},
		{"7 bytes", v3()[:7], pktSrc4, GroupIPv4, DropShort},
		{"v2 without auth data", fix2(v2()[:15]), pktSrc4, GroupIPv4, DropShort},
		{"version 0", set(v3(), 0, 0x01), pktSrc4, GroupIPv4, DropVersion},
		{"version 1", set(v3(), 0, 0x11), pktSrc4, GroupIPv4, DropVersion},
		{"version 4", set(v3(), 0, 0x41), pktSrc4, GroupIPv4, DropVersion},
		{"version 15", set(v3(), 0, 0xf1), pktSrc4, GroupIPv4, DropVersion},
		{"type 0", set(v3(), 0, 0x30), pktSrc4, GroupIPv4, DropType},
		{"type 2", set(v2(), 0, 0x22), pktSrc4, GroupIPv4, DropType},
		{"mixed families", fix3(v3()), pktSrc4, GroupIPv6, DropFamily},
		{"zero source", fix3(v3()), netip.Addr{}, GroupIPv4, DropFamily},
		{"zero destination", fix3(v3()), pktSrc4, netip.Addr{}, DropFamily},
		{"v2 over ipv6", fix2(v2()), pktSrc6, GroupIPv6, DropFamily},
		{"v2 count too high", fix2(set(v2(), 3, 2)), pktSrc4, GroupIPv4, DropLength},
		{"v2 count zero", fix2(set(v2(), 3, 0)), pktSrc4, GroupIPv4, DropLength},
		{"v2 trailing byte", fix2(append(v2(), 0)), pktSrc4, GroupIPv4, DropLength},
		{"v3 count 255", fix3(set(v3(), 3, 255)), pktSrc4, GroupIPv4, DropLength},
		{"v3 ipv4 read as ipv6", v3(), pktSrc6, GroupIPv6, DropLength},
		{"v3 truncated address", v3()[:10], pktSrc4, GroupIPv4, DropLength},
		{"v2 bad checksum", v2(), pktSrc4, GroupIPv4, DropChecksum},
		{"v3 bad checksum", v3(), pktSrc4, GroupIPv4, DropChecksum},
		{"v2 checksum with pseudo-header", pktWithChecksum(v2(), 3, pktSrc4, GroupIPv4, ChecksumPseudoHeader), pktSrc4, GroupIPv4, DropChecksum},
		{"v3 checksum for other source", pktWithChecksum(v3(), 3, pktPeer4, GroupIPv4, ChecksumPseudoHeader), pktSrc4, GroupIPv4, DropChecksum},
		{"v2 interval zero", fix2(set(v2(), 5, 0)), pktSrc4, GroupIPv4, DropInterval},
		{"v3 interval zero", fix3(set(set(v3(), 4, 0), 5, 0)), pktSrc4, GroupIPv4, DropInterval},
		{"v3 interval zero, reserved bits set", fix3(set(set(v3(), 4, 0xf0), 5, 0)), pktSrc4, GroupIPv4, DropInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _, err := Parse(tt.b, tt.src, tt.dst)
			if err == nil {
				t.Fatalf("Parse(%x) = %+v, want %v", tt.b, a, tt.want)
			}
			if a != nil {
				t.Errorf("Parse returned an advert with error %v", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Reason != tt.want {
				t.Errorf("Reason = %v (%v), want %v", pe.Reason, err, tt.want)
			}
		})
	}
}

// TestParseIgnoresReserved checks that version 3's reserved bits and version
// 2's auth data for AuthNone are taken as they come.
func TestParseIgnoresReserved(t *testing.T) {
	b := pktHex(t, "31 01 64 01 f064 0000 c0000a01")
	pktWithChecksum(b, 3, pktSrc4, GroupIPv4, ChecksumPseudoHeader)
	a, _, err := Parse(b, pktSrc4, GroupIPv4)
	if err != nil {
		t.Fatal(err)
	}
	if a.Interval != time.Second {
		t.Errorf("Interval = %v, want 1s", a.Interval)
	}
}

func TestDropReasonLabels(t *testing.T) {
	want := map[DropReason]string{
		DropShort: "short", DropVersion: "version", DropType: "type", DropChecksum: "checksum",
		DropLength: "length", DropInterval: "interval", DropFamily: "family", DropTTL: "ttl",
		DropVRID: "vrid", DropAuth: "auth", DropIntervalMismatch: "interval_mismatch", DropAddresses: "addresses",
		DropDestination: "destination", DropSource: "source",
	}
	seen := map[string]bool{}
	for r := DropReason(0); r < DropReason(len(dropLabels)+2); r++ {
		s := r.String()
		if w, ok := want[r]; ok {
			if s != w {
				t.Errorf("%d.String() = %q, want %q", int(r), s, w)
			}
			if seen[s] {
				t.Errorf("label %q used twice", s)
			}
			seen[s] = true
		} else if s != "unknown" {
			t.Errorf("%d.String() = %q, want unknown", int(r), s)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d labels, want %d", len(seen), len(want))
	}
	err := &ParseError{Reason: DropVRID, Detail: "vrid 7"}
	if got := err.Error(); got != "vrrp: dropped (vrid): vrid 7" {
		t.Errorf("Error() = %q", got)
	}
}

func TestChecksumModeString(t *testing.T) {
	for m, want := range map[ChecksumMode]string{
		ChecksumPseudoHeader:      "pseudo-header",
		ChecksumMessageOnly:       "message-only",
		ChecksumPseudoHeaderGroup: "pseudo-header-group",
		numChecksumModes:          "ChecksumMode(3)",
	} {
		if got := m.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(m), got, want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	cases := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
		mode     ChecksumMode
	}{
		{"v2", Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second, Addresses: pktAddrs("192.0.2.100", "192.0.2.101"), AuthType: AuthPass, AuthData: pktPass("1111")}, pktSrc4, GroupIPv4, 0},
		{"v3-ipv4", Advert{Version: 3, VRID: 52, Priority: 100, Interval: time.Second, Addresses: pktAddrs("192.0.2.100", "192.0.2.101")}, pktSrc4, GroupIPv4, ChecksumPseudoHeader},
		// The last mode Parse tries: the most work for a valid packet.
		{"v3-ipv4-group", Advert{Version: 3, VRID: 52, Priority: 100, Interval: time.Second, Addresses: pktAddrs("192.0.2.100", "192.0.2.101")}, pktSrc4, pktPeer4, ChecksumPseudoHeaderGroup},
		{"v3-ipv6", Advert{Version: 3, VRID: 54, Priority: 100, Interval: time.Second, Addresses: pktAddrs("fe80::54", "2001:db8::54")}, pktSrc6, GroupIPv6, 0},
	}
	for _, c := range cases {
		pkt, err := Marshal(&c.a, c.src, c.dst, c.mode)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				if _, _, err := Parse(pkt, c.src, c.dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
