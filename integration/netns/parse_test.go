package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestLastState(t *testing.T) {
	tests := []struct {
		name, log, instance, state string
	}{
		{"empty", "", "", ""},
		{"init", "Sat Nov 28 11:16:46 2026: (VI_1) Entering BACKUP STATE (init)\n", "VI_1", "BACKUP"},
		{"last wins", "(VI_1) Entering BACKUP STATE (init)\n(VI_1) Receive advertisement timeout\n(VI_1) Entering MASTER STATE\n", "VI_1", "MASTER"},
		{"two instances", "(VI_1) Entering MASTER STATE\n(VI_6) Entering FAULT STATE\n", "VI_6", "FAULT"},
		{"no instance", "Entering MASTER STATE\n", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			instance, state := lastState(tc.log)
			if instance != tc.instance || state != tc.state {
				t.Errorf("lastState = %q, %q; want %q, %q", instance, state, tc.instance, tc.state)
			}
		})
	}
}

func TestParseAddrs(t *testing.T) {
	out := []byte(`[{"ifindex":2,"ifname":"eth0","addr_info":[` +
		`{"family":"inet","local":"10.9.0.1","prefixlen":24},` +
		`{"family":"inet","local":"10.9.0.100","prefixlen":24,"secondary":true},` +
		`{"family":"inet6","local":"fe80::301e:c2ff:fe59:ec56","prefixlen":64}]}]`)
	got, err := parseAddrs(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{
		netip.MustParsePrefix("10.9.0.1/24"),
		netip.MustParsePrefix("10.9.0.100/24"),
		netip.MustParsePrefix("fe80::301e:c2ff:fe59:ec56/64"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseAddrs = %v; want %v", got, want)
	}
	for _, bad := range []string{`{`, `[{"addr_info":[{"local":"x","prefixlen":1}]}]`, `[{"addr_info":[{"local":"10.0.0.1","prefixlen":33}]}]`} {
		if _, err := parseAddrs([]byte(bad)); err == nil {
			t.Errorf("parseAddrs(%s): no error", bad)
		}
	}
}

func TestParseMAC(t *testing.T) {
	tests := []struct {
		name, out, want string
		ok              bool
	}{
		{"link", `[{"ifname":"eth0","address":"32:1e:c2:59:ec:56"}]`, "32:1e:c2:59:ec:56", true},
		{"neighbour", `[{"dst":"10.9.0.100","dev":"eth0","lladdr":"96:9f:10:35:4c:67","state":["STALE"]}]`, "96:9f:10:35:4c:67", true},
		{"incomplete neighbour", `[{"dst":"10.9.0.100","dev":"eth0","state":["FAILED"]}]`, "", false},
		{"none", `[]`, "", false},
		{"bad", `[{"address":"zz"}]`, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mac, err := parseMAC([]byte(tc.out))
			if (err == nil) != tc.ok || (tc.ok && mac.String() != tc.want) {
				t.Errorf("parseMAC = %v, %v; want %s", mac, err, tc.want)
			}
		})
	}
}

func TestChecksum(t *testing.T) {
	// An echo request with its checksum filled in sums to zero.
	msg := echoRequest(8, 0x1234, 1, true)
	if c := checksum(msg); c != 0 {
		t.Errorf("checksum over a checksummed message = %#x; want 0", c)
	}
	if c := checksum([]byte{0xff}); c != 0x00ff {
		t.Errorf("checksum of an odd byte = %#x; want 0xff", c)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("(VI_1) Entering MASTER STATE\n")
	f.Add(`[{"ifname":"eth0","address":"32:1e:c2:59:ec:56","addr_info":[{"local":"10.0.0.1","prefixlen":8}]}]`)
	f.Add("aqh-123-abc-sw")
	f.Add("(VI_1) Entering BACKUP STATE (init)\n(VI_1) Entering MASTER STATE\n(VI_2) Entering")
	f.Add(`[{"dst":"10.9.0.100","lladdr":"96-9F-10-35-4C-67"}]`)
	f.Add(`[{"address":""},{"address":"0200.5e10.0000.0001"}]`)
	f.Fuzz(func(t *testing.T, s string) {
		// lastState reports a change the log holds, word for word; a
		// change logged after s is the last; one logged before s counts
		// only when s has none.
		instance, state := lastState(s)
		if (instance == "") != (state == "") {
			t.Fatalf("lastState(%q) = %q, %q: one without the other", s, instance, state)
		}
		if instance != "" && !strings.Contains(s, "("+instance+") Entering "+state+" STATE") {
			t.Fatalf("lastState(%q) = %q, %q: not a line of the log", s, instance, state)
		}
		if i, st := lastState(s + "\n(VI_9) Entering BACKUP STATE\n"); i != "VI_9" || st != "BACKUP" {
			t.Fatalf("lastState of %q and a later BACKUP line = %q, %q", s, i, st)
		}
		wantI, wantSt := instance, state
		if instance == "" {
			wantI, wantSt = "VI_0", "FAULT"
		}
		if i, st := lastState("(VI_0) Entering FAULT STATE\n" + s); i != wantI || st != wantSt {
			t.Fatalf("lastState of an earlier FAULT line and %q = %q, %q; want %q, %q", s, i, st, wantI, wantSt)
		}
		if prefixes, err := parseAddrs([]byte(s)); err == nil {
			for _, p := range prefixes {
				if !p.IsValid() {
					t.Errorf("parseAddrs returned invalid prefix %v", p)
				}
			}
		}
		// parseMAC's address has a length net.ParseMAC allows and reads
		// back the same from ip's link and neighbour output; a failure is
		// either "not found" or a parse error.
		mac, err := parseMAC([]byte(s))
		if err == nil {
			if n := len(mac); n != 6 && n != 8 && n != 20 {
				t.Fatalf("parseMAC(%q) = %v: %d bytes", s, mac, n)
			}
			for _, form := range []string{`[{"ifname":"eth0","address":%q}]`, `[{"dst":"10.0.0.1","dev":"eth0","lladdr":%q}]`} {
				out := fmt.Sprintf(form, mac.String())
				if again, err := parseMAC([]byte(out)); err != nil || !bytes.Equal(again, mac) {
					t.Fatalf("parseMAC(%q) = %v, which reads back from %s as %v, %v", s, mac, out, again, err)
				}
			}
		} else if !errors.Is(err, ErrNotFound) && !strings.HasPrefix(err.Error(), "netns: parse ip -j output: ") {
			t.Fatalf("parseMAC(%q): error %v", s, err)
		}
		if pid, ok := ownerPid(s); ok && pid <= 0 {
			t.Errorf("ownerPid(%q) = %d", s, pid)
		}
	})
}
