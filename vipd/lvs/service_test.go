package lvs

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

var mustAddr = netip.MustParseAddr

func TestServiceValidate(t *testing.T) {
	v4 := Service{Addr: mustAddr("10.0.0.1"), Port: 80, Protocol: TCP}
	with := func(f func(*Service)) Service {
		s := v4
		f(&s)
		return s
	}
	cases := []struct {
		name string
		s    Service
		ok   bool
	}{
		{"plain", v4, true},
		{"ipv6 persistent /64", Service{Addr: mustAddr("2001:db8::1"), Port: 443, Protocol: SCTP, Persistence: time.Minute, Netmask: PrefixMask(IPv6, 64)}, true},
		{"fwmark", Service{FWMark: 3, Family: IPv6}, true},
		{"fwmark ignores protocol", Service{FWMark: 3, Protocol: UDP, Flags: FlagOnePacket}, true},
		{"port 0 persistent", with(func(s *Service) { s.Port, s.Persistence = 0, time.Second }), true},
		{"non-solid IPv4 mask", with(func(s *Service) { s.Persistence, s.Netmask = time.Second, mustAddr("255.0.255.0") }), true},
		{"UDP one-packet", with(func(s *Service) { s.Protocol, s.Flags = UDP, FlagOnePacket }), true},
		{"sh flags", with(func(s *Service) { s.Scheduler, s.Flags = "sh", FlagSHFallback|FlagSHPort }), true},

		{"no address", Service{Port: 80, Protocol: TCP}, false},
		{"no protocol", with(func(s *Service) { s.Protocol = 0 }), false},
		{"bad protocol", with(func(s *Service) { s.Protocol = 1 }), false},
		{"port 0 not persistent", with(func(s *Service) { s.Port = 0 }), false},
		{"zone", with(func(s *Service) { s.Addr = mustAddr("fe80::1%eth0") }), false},
		{"IPv4-mapped", with(func(s *Service) { s.Addr = mustAddr("::ffff:10.0.0.1") }), false},
		{"family mismatch", with(func(s *Service) { s.Family = IPv6 }), false},
		{"fwmark with address", Service{FWMark: 3, Addr: mustAddr("10.0.0.1")}, false},
		{"fwmark with port", Service{FWMark: 3, Port: 80}, false},
		{"fwmark bad family", Service{FWMark: 3, Family: 5}, false},
		{"persistent flag", with(func(s *Service) { s.Flags = flagPersistent }), false},
		{"one-packet TCP", with(func(s *Service) { s.Flags = FlagOnePacket }), false},
		{"negative persistence", with(func(s *Service) { s.Persistence = -time.Second }), false},
		{"persistence too long", with(func(s *Service) { s.Persistence = MaxPersistence + time.Second }), false},
		{"netmask without persistence", with(func(s *Service) { s.Netmask = mustAddr("255.255.255.0") }), false},
		{"IPv6 mask on IPv4", with(func(s *Service) { s.Persistence, s.Netmask = time.Second, PrefixMask(IPv6, 64) }), false},
		{"non-prefix IPv6 mask", Service{Addr: mustAddr("2001:db8::1"), Port: 1, Protocol: TCP, Persistence: time.Second, Netmask: mustAddr("ffff::ffff")}, false},
		{"long scheduler", with(func(s *Service) { s.Scheduler = "abcdefghijklmnop" }), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.s.Validate()
			if (err == nil) != c.ok {
				t.Fatalf("Validate(%#v) = %v, want ok=%v", c.s, err, c.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestDestinationValidate(t *testing.T) {
	v4 := Service{Addr: mustAddr("10.0.0.1"), Port: 80, Protocol: TCP}
	fw6 := Service{FWMark: 1, Family: IPv6}
	cases := []struct {
		name string
		s    Service
		d    Destination
		ok   bool
	}{
		{"plain", v4, Destination{Addr: mustAddr("10.0.0.2"), Port: 80, Weight: 1}, true},
		{"weight 0 and max", v4, Destination{Addr: mustAddr("10.0.0.2"), Weight: MaxWeight, Forward: Route}, true},
		{"IPv6 in fwmark IPv6", fw6, Destination{Addr: mustAddr("2001:db8::2"), Forward: Local}, true},
		{"tunnel across families", v4, Destination{Addr: mustAddr("2001:db8::2"), Forward: Tunnel}, true},
		{"route across families", v4, Destination{Addr: mustAddr("2001:db8::2"), Forward: Route}, false},
		{"IPv4 in fwmark IPv6", fw6, Destination{Addr: mustAddr("10.0.0.2")}, false},
		{"no address", v4, Destination{Port: 80}, false},
		{"unspecified", v4, Destination{Addr: mustAddr("0.0.0.0")}, false},
		{"negative weight", v4, Destination{Addr: mustAddr("10.0.0.2"), Weight: -1}, false},
		{"weight too big", v4, Destination{Addr: mustAddr("10.0.0.2"), Weight: MaxWeight + 1}, false},
		{"bad method", v4, Destination{Addr: mustAddr("10.0.0.2"), Forward: 4}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.d.Validate(c.s); (err == nil) != c.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestNormalized(t *testing.T) {
	cases := []struct {
		in, want Service
	}{
		{Service{Addr: mustAddr("10.0.0.1"), Port: 1, Protocol: TCP},
			Service{Addr: mustAddr("10.0.0.1"), Port: 1, Protocol: TCP, Family: IPv4, Scheduler: "wlc"}},
		{Service{FWMark: 2, Protocol: UDP, Scheduler: "rr", Flags: flagHashed | FlagOnePacket},
			Service{FWMark: 2, Family: IPv4, Scheduler: "rr", Flags: FlagOnePacket}},
		{Service{Addr: mustAddr("10.0.0.1"), Protocol: TCP, Persistence: 1001 * time.Millisecond, Netmask: mustAddr("255.255.255.255")},
			Service{Addr: mustAddr("10.0.0.1"), Protocol: TCP, Family: IPv4, Scheduler: "wlc", Persistence: 2 * time.Second}},
		{Service{Addr: mustAddr("2001:db8::1"), Protocol: TCP, Persistence: time.Second, Netmask: PrefixMask(IPv6, 128)},
			Service{Addr: mustAddr("2001:db8::1"), Protocol: TCP, Family: IPv6, Scheduler: "wlc", Persistence: time.Second}},
		{Service{Addr: mustAddr("10.0.0.1"), Protocol: TCP, Netmask: mustAddr("255.255.0.0")},
			Service{Addr: mustAddr("10.0.0.1"), Protocol: TCP, Family: IPv4, Scheduler: "wlc"}},
	}
	for _, c := range cases {
		if got := c.in.normalized(); got != c.want {
			t.Errorf("normalized(%#v)\n = %#v\nwant %#v", c.in, got, c.want)
		}
		if got := c.in.normalized().normalized(); got != c.want {
			t.Errorf("normalized is not idempotent for %#v", c.in)
		}
	}
}

func TestMasks(t *testing.T) {
	for _, c := range []struct {
		f    Family
		bits int
		want string
	}{
		{IPv4, 0, "0.0.0.0"}, {IPv4, 24, "255.255.255.0"}, {IPv4, 20, "255.255.240.0"}, {IPv4, 32, "255.255.255.255"}, {IPv4, 40, "255.255.255.255"},
		{IPv6, 64, "ffff:ffff:ffff:ffff::"}, {IPv6, 1, "8000::"}, {IPv6, 128, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
	} {
		m := PrefixMask(c.f, c.bits)
		if m.String() != c.want {
			t.Errorf("PrefixMask(%s, %d) = %s, want %s", c.f, c.bits, m, c.want)
		}
		if n, ok := maskBits(m); !ok || n != min(c.bits, len(m.AsSlice())*8) {
			t.Errorf("maskBits(%s) = %d, %v", m, n, ok)
		}
	}
	for _, bad := range []string{"255.0.255.0", "255.255.255.1", "ffff::1"} {
		if _, ok := maskBits(mustAddr(bad)); ok {
			t.Errorf("maskBits(%s) ok, want not a prefix", bad)
		}
	}
}

func TestKeyStringAndOrder(t *testing.T) {
	keys := []ServiceKey{
		Service{Addr: mustAddr("10.0.0.1"), Port: 80, Protocol: TCP}.Key(),
		Service{Addr: mustAddr("10.0.0.1"), Port: 80, Protocol: UDP}.Key(),
		Service{FWMark: 5}.Key(),
		Service{Addr: mustAddr("2001:db8::1"), Port: 443, Protocol: SCTP}.Key(),
		Service{FWMark: 5, Family: IPv6}.Key(),
	}
	want := []string{"TCP 10.0.0.1:80", "UDP 10.0.0.1:80", "FWM 5 IPv4", "SCTP [2001:db8::1]:443", "FWM 5 IPv6"}
	for i, k := range keys {
		if k.String() != want[i] {
			t.Errorf("key %d = %q, want %q", i, k, want[i])
		}
		if i > 0 && keys[i-1].Compare(k) >= 0 {
			t.Errorf("%s does not sort before %s", keys[i-1], k)
		}
	}
}

func TestParseNames(t *testing.T) {
	for in, want := range map[string]Forward{"NAT": Masq, "DR": Route, "TUN": Tunnel, "masq": Masq, "Route": Route, "tunnel": Tunnel, "Local": Local} {
		if got, err := ParseForward(in); err != nil || got != want {
			t.Errorf("ParseForward(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseForward("FNAT"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseForward(FNAT) = %v", err)
	}
	for in, want := range map[string]Protocol{"TCP": TCP, "udp": UDP, "Sctp": SCTP} {
		if got, err := ParseProtocol(in); err != nil || got != want {
			t.Errorf("ParseProtocol(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseProtocol("ICMP"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseProtocol(ICMP) = %v", err)
	}
	if s := (Flags(0x3f)).String(); s != "persistent|hashed|ops|sched1|sched2|sched3" {
		t.Errorf("Flags string %q", s)
	}
	if s := Forward(9).String() + " " + Protocol(1).String() + " " + Family(0).String() + " " + Op(0).String() + " " + State(7).String(); s != "Forward(9) Protocol(1) Family(0) Op(0) State(7)" {
		t.Errorf("unknown values print as %q", s)
	}
}
