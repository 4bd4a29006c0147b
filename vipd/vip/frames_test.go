package vip

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

var testMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x20, 0x30}

func TestGratuitousARP(t *testing.T) {
	ip := netip.MustParseAddr("192.168.8.100")
	f, err := GratuitousARP(testMAC, ip)
	if err != nil {
		t.Fatal(err)
	}
	if len(f) != minFrame {
		t.Fatalf("frame is %d bytes, want %d", len(f), minFrame)
	}
	checks := []struct {
		name      string
		got, want []byte
	}{
		{"destination", f[0:6], broadcastMAC},
		{"source", f[6:12], testMAC},
		{"ethertype", f[12:14], []byte{0x08, 0x06}},
		{"htype/ptype/lengths", f[14:20], []byte{0, 1, 8, 0, 6, 4}},
		{"operation request", f[20:22], []byte{0, 1}},
		{"sender MAC", f[22:28], testMAC},
		{"sender IP", f[28:32], ip.AsSlice()},
		{"target MAC", f[32:38], broadcastMAC},
		{"target IP", f[38:42], ip.AsSlice()},
		{"padding", f[42:], make([]byte, minFrame-42)},
	}
	for _, c := range checks {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: % x, want % x", c.name, c.got, c.want)
		}
	}
}

func TestUnsolicitedNA(t *testing.T) {
	ip := netip.MustParseAddr("fe80::5")
	for _, router := range []bool{false, true} {
		f, err := UnsolicitedNA(testMAC, ip, router)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f[0:6], allNodesMAC) || !bytes.Equal(f[6:12], testMAC) {
			t.Fatalf("ethernet addresses % x", f[0:12])
		}
		h, m := f[14:54], f[54:]
		if h[6] != 58 || h[7] != 255 {
			t.Errorf("next header %d hop limit %d, want 58 255", h[6], h[7])
		}
		if int(binary.BigEndian.Uint16(h[4:6])) != len(m) {
			t.Errorf("payload length %d, message is %d", binary.BigEndian.Uint16(h[4:6]), len(m))
		}
		if m[0] != 136 {
			t.Errorf("type %d, want 136", m[0])
		}
		wantFlags := byte(0x20)
		if router {
			wantFlags |= 0x80
		}
		if m[4] != wantFlags {
			t.Errorf("flags %#x, want %#x", m[4], wantFlags)
		}
		if !bytes.Equal(m[8:24], ip.AsSlice()) || !bytes.Equal(m[26:32], testMAC) {
			t.Errorf("target or option wrong: % x", m[8:])
		}
		// A correct checksum makes the sum over the pseudo-header and the
		// message, checksum included, come out as zero.
		src, dst := ip.As16(), allNodesIPv6.As16()
		if sum := icmpv6Checksum(src, dst, m); sum != 0 {
			t.Errorf("checksum does not verify: residue %#x", sum)
		}
	}
}

func TestFramesRefuseBadInput(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("fe80::1")
	if _, err := GratuitousARP(testMAC, v6); err == nil {
		t.Error("GratuitousARP took an IPv6 address")
	}
	if _, err := GratuitousARP(testMAC[:4], v4); err == nil {
		t.Error("GratuitousARP took a 4-byte MAC")
	}
	if _, err := UnsolicitedNA(testMAC, v4, false); err == nil {
		t.Error("UnsolicitedNA took an IPv4 address")
	}
}
