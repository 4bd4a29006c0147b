package ipvs_test

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// table is the kernel's IPVS table as /proc/net/ip_vs shows it: services
// by key ("TCP 10.30.0.100:5672", "FWM 7"), each with its destinations.
type table map[string]service

type service struct {
	Sched      string
	Persistent bool
	Dests      map[string]dest // by "address:port"
}

type dest struct {
	Fwd    string // Masq, Route, Tunnel or Local
	Weight int
}

func (s service) equal(o service) bool {
	return s.Sched == o.Sched && s.Persistent == o.Persistent && maps.Equal(s.Dests, o.Dests)
}

func (s service) String() string {
	var b strings.Builder
	b.WriteString(s.Sched)
	if s.Persistent {
		b.WriteString(" persistent")
	}
	for _, k := range slices.Sorted(maps.Keys(s.Dests)) {
		d := s.Dests[k]
		fmt.Fprintf(&b, "\n  -> %s %s %d", k, d.Fwd, d.Weight)
	}
	return b.String()
}

func (t table) String() string {
	if len(t) == 0 {
		return "(no services)"
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(t)) {
		fmt.Fprintf(&b, "%s %s\n", k, t[k])
	}
	return b.String()
}

// destinations counts the destinations of the services whose keys start
// with prefix, and the services.
func (t table) count(prefix string) (services, dests int) {
	for k, s := range t {
		if strings.HasPrefix(k, prefix) {
			services++
			dests += len(s.Dests)
		}
	}
	return services, dests
}

// parseTable reads the text of /proc/net/ip_vs: a service line is
// "TCP  0A1E0064:1628 rr " (IPv6 addresses in brackets, "FWM  00000007
// wrr" for a fwmark), optionally followed by "persistent TIMEOUT MASK";
// its destinations follow as "  -> 0A140102:1628      Masq    1 ...".
func parseTable(text string) (table, error) {
	t := table{}
	var cur string
	for n, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		bad := func(why string) error {
			return fmt.Errorf("/proc/net/ip_vs line %d %q: %s", n+1, line, why)
		}
		switch {
		case len(f) == 0, f[0] == "IP", f[0] == "Prot", len(f) > 1 && f[0] == "->" && f[1] == "RemoteAddress:Port":
			continue
		case f[0] == "->":
			if cur == "" {
				return nil, bad("destination before any service")
			}
			if len(f) < 4 {
				return nil, bad("short destination line")
			}
			ap, err := hexAddrPort(f[1])
			if err != nil {
				return nil, bad(err.Error())
			}
			w, err := strconv.Atoi(f[3])
			if err != nil {
				return nil, bad("weight: " + err.Error())
			}
			t[cur].Dests[ap.String()] = dest{Fwd: f[2], Weight: w}
		case f[0] == "TCP" || f[0] == "UDP" || f[0] == "SCTP" || f[0] == "FWM":
			if len(f) < 3 {
				return nil, bad("short service line")
			}
			if f[0] == "FWM" {
				mark, err := strconv.ParseUint(f[1], 16, 32)
				if err != nil {
					return nil, bad("fwmark: " + err.Error())
				}
				cur = fmt.Sprintf("FWM %d", mark)
			} else {
				ap, err := hexAddrPort(f[1])
				if err != nil {
					return nil, bad(err.Error())
				}
				cur = f[0] + " " + ap.String()
			}
			t[cur] = service{Sched: f[2], Persistent: slices.Contains(f[3:], "persistent"), Dests: map[string]dest{}}
		default:
			return nil, bad("not a service or destination")
		}
	}
	return t, nil
}

// hexAddrPort reads "0A1E0064:1628" or "[2001:db8::1]:1628" (the port in
// hex either way).
func hexAddrPort(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("%q: no port", s)
	}
	port, err := strconv.ParseUint(s[i+1:], 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: port: %w", s, err)
	}
	host := s[:i]
	var a netip.Addr
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		a, err = netip.ParseAddr(host[1 : len(host)-1])
	} else {
		var v uint64
		if len(host) != 8 {
			return netip.AddrPort{}, fmt.Errorf("%q: not 8 hex digits", s)
		}
		v, err = strconv.ParseUint(host, 16, 32)
		a = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: address: %w", s, err)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

func TestParseTable(t *testing.T) {
	const text = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A1E0064:1628 rr 
  -> 0A140302:1628      Masq    1      0          2         
  -> 0A140102:1628      Masq    1      1          0         
TCP  0A1E0064:3D38 wrr 
  -> 0A1E000B:3D38      Route   0      0          0         
TCP  0A1E0064:1627 rr persistent 50 FFFFFFFF
UDP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0035 sh 
  -> [2001:0db8:0000:0000:0000:0000:0000:0002]:0035      Tunnel  65535  0          0         
FWM  00000007 lc 
`
	got, err := parseTable(text)
	if err != nil {
		t.Fatal(err)
	}
	want := table{
		"TCP 10.30.0.100:5672": {Sched: "rr", Dests: map[string]dest{
			"10.20.3.2:5672": {"Masq", 1}, "10.20.1.2:5672": {"Masq", 1}}},
		"TCP 10.30.0.100:15672": {Sched: "wrr", Dests: map[string]dest{"10.30.0.11:15672": {"Route", 0}}},
		"TCP 10.30.0.100:5671":  {Sched: "rr", Persistent: true, Dests: map[string]dest{}},
		"UDP [2001:db8::1]:53": {Sched: "sh", Dests: map[string]dest{
			"[2001:db8::2]:53": {"Tunnel", 65535}}},
		"FWM 7": {Sched: "lc", Dests: map[string]dest{}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d services, want %d:\n%s", len(got), len(want), got)
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !g.equal(w) {
			t.Errorf("%s: got %v, want %v", k, g, w)
		}
	}
	if s, d := got.count("TCP 10.30.0.100:"); s != 3 || d != 3 {
		t.Errorf("count: %d services, %d destinations; want 3, 3", s, d)
	}

	for _, bad := range []string{
		"  -> 0A140302:1628      Masq    1      0          2\n",
		"TCP  0A1E0064 rr\n",
		"TCP  0A1E00:1628 rr\n",
		"TCP  0A1E0064:1628 rr\n  -> 0A140302:1628      Masq    x      0          2\n",
		"garbage\n",
	} {
		if _, err := parseTable(bad); err == nil {
			t.Errorf("parseTable(%q) = nil error", bad)
		}
	}
}
