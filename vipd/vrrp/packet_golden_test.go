package vrrp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// goldenPacket is one advert captured from keepalived by
// scripts/capture-vrrp-golden.sh.
type goldenPacket struct {
	src, dst netip.Addr
	ttl      int
	payload  []byte
}

func decodeGoldenHex(s string) ([]byte, error) {
	return hex.DecodeString(strings.Join(strings.Fields(s), ""))
}

func readGolden(path string) (goldenPacket, error) {
	var g goldenPacket
	data, err := os.ReadFile(path)
	if err != nil {
		return g, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	seen := map[string]bool{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		seen[key] = true
		switch key {
		case "src":
			g.src, err = netip.ParseAddr(val)
		case "dst":
			g.dst, err = netip.ParseAddr(val)
		case "ttl":
			g.ttl, err = strconv.Atoi(val)
		case "payload":
			g.payload, err = decodeGoldenHex(val)
		default:
			err = fmt.Errorf("unknown key %q", key)
		}
		if err != nil {
			return g, fmt.Errorf("%s: %w", path, err)
		}
	}
	for _, k := range []string{"src", "dst", "ttl", "payload"} {
		if !seen[k] {
			return g, fmt.Errorf("%s: no %s line", path, k)
		}
	}
	return g, nil
}

// goldenWant is what each capture holds; it repeats the keepalived
// configuration in the file's comments.
var goldenWant = map[string]struct {
	advert Advert
	mode   ChecksumMode
	// missingOK says why the file may be absent: the keepalived that made
	// the captures could not produce it.
	missingOK string
}{
	"v2-pass": {
		advert: Advert{Version: 2, VRID: 51, Priority: 100, Interval: time.Second,
			Addresses: pktAddrs("192.0.2.100", "192.0.2.101"), AuthType: AuthPass, AuthData: pktPass("1111")},
		mode: ChecksumMessageOnly,
	},
	"v2-unicast": {
		advert: Advert{Version: 2, VRID: 55, Priority: 120, Interval: 2 * time.Second, Addresses: pktAddrs("192.0.2.150")},
		mode:   ChecksumMessageOnly,
	},
	"v3-ipv4": {
		advert: Advert{Version: 3, VRID: 52, Priority: 200, Interval: 100 * time.Millisecond, Addresses: pktAddrs("192.0.2.110", "192.0.2.111")},
		mode:   ChecksumPseudoHeader,
	},
	"v3-ipv4-as-v2": {
		advert:    Advert{Version: 3, VRID: 53, Priority: 150, Interval: 500 * time.Millisecond, Addresses: pktAddrs("192.0.2.130")},
		mode:      ChecksumMessageOnly,
		missingOK: "v3_checksum_as_v2 needs keepalived 2.2.8 or later",
	},
	"v3-ipv4-unicast": {
		advert: Advert{Version: 3, VRID: 56, Priority: 254, Interval: 1500 * time.Millisecond, Addresses: pktAddrs("192.0.2.160")},
		mode:   ChecksumPseudoHeader,
	},
	"v3-ipv4-unicast-old": {
		advert: Advert{Version: 3, VRID: 57, Priority: 100, Interval: time.Second, Addresses: pktAddrs("192.0.2.170")},
		mode:   ChecksumPseudoHeaderGroup,
	},
	"v3-ipv6": {
		advert: Advert{Version: 3, VRID: 54, Priority: 100, Interval: time.Second, Addresses: pktAddrs("fe80::54", "2001:db8::54")},
		mode:   ChecksumPseudoHeader,
	},
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".golden")
		have[name] = true
		t.Run(name, func(t *testing.T) {
			want, ok := goldenWant[name]
			if !ok {
				t.Fatalf("%s has no expectations in goldenWant", f)
			}
			g, err := readGolden(f)
			if err != nil {
				t.Fatal(err)
			}
			if g.ttl != 255 {
				t.Errorf("captured TTL %d, want 255", g.ttl)
			}
			a, mode, err := Parse(g.payload, g.src, g.dst)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(*a, want.advert) {
				t.Errorf("Parse = %+v, want %+v", *a, want.advert)
			}
			if mode != want.mode {
				t.Errorf("mode = %v, want %v", mode, want.mode)
			}
			b, err := Marshal(&want.advert, g.src, g.dst, want.mode)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(b, g.payload) {
				t.Errorf("Marshal =\n%x, keepalived sent\n%x", b, g.payload)
			}
		})
	}
	for name, w := range goldenWant {
		if have[name] {
			continue
		}
		if w.missingOK == "" {
			t.Errorf("testdata/%s.golden is missing; run scripts/capture-vrrp-golden.sh", name)
		} else {
			t.Logf("no testdata/%s.golden: %s", name, w.missingOK)
		}
	}
}

// TestGoldenMessageOnly checks the message-only checksum against a value
// computed apart from this package (Python, RFC 1071) for keepalived's
// v3-ipv4 capture: the advert keepalived 2.2.8's v3_checksum_as_v2 would
// send for the same configuration.
func TestGoldenMessageOnly(t *testing.T) {
	g, err := readGolden(filepath.Join("testdata", "v3-ipv4.golden"))
	if err != nil {
		t.Fatal(err)
	}
	a, _, err := Parse(g.payload, g.src, g.dst)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(a, g.src, g.dst, ChecksumMessageOnly)
	if err != nil {
		t.Fatal(err)
	}
	want := pktHex(t, "3134c802000a81e0c000026ec000026f")
	if !bytes.Equal(b, want) {
		t.Errorf("Marshal message-only = %x, want %x", b, want)
	}
	if _, mode, err := Parse(want, g.src, g.dst); err != nil || mode != ChecksumMessageOnly {
		t.Errorf("Parse = %v, %v; want message-only", mode, err)
	}
}
