package vrrp

import (
	"net/netip"
	"testing"
)

func TestSumFold(t *testing.T) {
	tests := []struct {
		name string
		b    string
		want uint16
	}{
		// RFC 1071 §3's worked example: the sum is 0xddf2.
		{"rfc1071", "0001 f203 f4f5 f6f7", ^uint16(0xddf2)},
		{"odd length pads with zero", "0001 f203 f4f5 f6f7 01", ^uint16(0xdef2)},
		{"carry folds", "ffff 0001", ^uint16(0x0001)},
		{"empty", "", 0xffff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fold(sum(0, pktHex(t, tt.b))); got != tt.want {
				t.Errorf("checksum = %#04x, want %#04x", got, tt.want)
			}
		})
	}
}

// TestPseudoSum checks the pseudo-headers against the sums of their bytes
// laid out as RFC 791/768 and RFC 8200 §8.1 draw them.
func TestPseudoSum(t *testing.T) {
	tests := []struct {
		name     string
		src, dst string
		n        int
		header   string
	}{
		{"ipv4", "192.0.2.1", "224.0.0.18", 16, "c0000201 e0000012 00 70 0010"},
		{"ipv6", "fe80::1", "ff02::12", 40,
			"fe800000000000000000000000000001 ff020000000000000000000000000012 00000028 000000 70"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fold(pseudoSum(netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst), tt.n))
			if want := fold(sum(0, pktHex(t, tt.header))); got != want {
				t.Errorf("pseudo-header checksum = %#04x, want %#04x", got, want)
			}
		})
	}
}
