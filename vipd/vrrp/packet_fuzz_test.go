package vrrp

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse feeds Parse arbitrary messages and addresses. Parse must not
// panic, and whatever it accepts must marshal back into bytes that parse to
// the same advert with the same checksum mode, or, when two modes give the
// same checksum, a mode that gives it too. Random bytes seldom carry a good
// checksum, so fix (1 to 3) first puts in the one of mode fix-1, letting the
// fuzzer explore what lies behind the checksum test.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		g, err := readGolden(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(g.payload, g.src.AsSlice(), g.dst.AsSlice(), uint8(0))
	}
	f.Add([]byte{}, pktSrc4.AsSlice(), GroupIPv4.AsSlice(), uint8(0))
	f.Add([]byte{0x31, 1, 100, 0, 0, 100, 0, 0}, pktSrc6.AsSlice(), pktPeer6.AsSlice(), uint8(1))
	f.Add([]byte{0x31, 1, 100, 1, 0, 100, 0, 0, 10, 0, 0, 1}, pktSrc4.AsSlice(), pktPeer4.AsSlice(), uint8(2))
	f.Add([]byte{0x31, 1, 100, 1, 0, 100, 0, 0, 10, 0, 0, 1}, pktSrc4.AsSlice(), pktPeer4.AsSlice(), uint8(3))
	f.Add([]byte{0x21, 1, 100, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, pktSrc4.AsSlice(), pktPeer4.AsSlice(), uint8(1))

	f.Fuzz(func(t *testing.T, b, srcb, dstb []byte, fix uint8) {
		src, _ := netip.AddrFromSlice(srcb)
		dst, _ := netip.AddrFromSlice(dstb)
		if s, d := src.Unmap(), dst.Unmap(); fix >= 1 && fix <= 3 && len(b) >= 8 && s.IsValid() && d.IsValid() && s.Is4() == d.Is4() {
			b = pktWithChecksum(append([]byte(nil), b...), int(b[0]>>4), s, d, ChecksumMode(fix-1))
		}
		a, mode, err := Parse(b, src, dst)
		if err != nil {
			if a != nil {
				t.Fatalf("advert with error %v", err)
			}
			return
		}
		// What parsed fits the wire exactly.
		if want := len(b); want > 8+255*16+8 {
			t.Fatalf("accepted %d bytes", want)
		}
		out, err := Marshal(a, src, dst, mode)
		if err != nil {
			t.Fatalf("Marshal(Parse(%x)) = %v", b, err)
		}
		if len(out) != len(b) {
			t.Fatalf("re-marshalled %d bytes, parsed %d", len(out), len(b))
		}
		a2, mode2, err := Parse(out, src, dst)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(%x))) = %v", b, err)
		}
		if !reflect.DeepEqual(a, a2) {
			t.Fatalf("advert changed: %+v, then %+v", a, a2)
		}
		if mode2 != mode {
			// Only possible when the pseudo-header adds nothing (sums to
			// zero in one's complement), so the modes agree.
			again, err := Marshal(a, src, dst, mode2)
			if err != nil || string(again) != string(out) {
				t.Fatalf("mode %v re-parsed as %v with a different checksum", mode, mode2)
			}
		}
	})
}
