package lvs_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/lvs"
)

func TestFromConfigSeed000(t *testing.T) {
	tab := fromConfig(t, loadSeed(t, "seed000-master.conf"), nil)
	want := lvs.Table{}
	for _, port := range []uint16{5672, 15672} {
		want.Add(lvs.Service{Addr: ip("192.168.0.10"), Port: port, Protocol: lvs.TCP, Scheduler: "wrr", Persistence: 50 * time.Second},
			lvs.Destination{Addr: ip("192.168.0.2"), Port: port, Weight: 1, Forward: lvs.Route},
			lvs.Destination{Addr: ip("192.168.0.3"), Port: port, Weight: 1, Forward: lvs.Route},
			lvs.Destination{Addr: ip("192.168.0.4"), Port: port, Weight: 1, Forward: lvs.Route})
	}
	requireTable(t, tab, want)
}

func TestFromConfigSeed002(t *testing.T) {
	tab := fromConfig(t, loadSeed(t, "seed002-backup.conf"), nil)
	want := lvs.Table{}.Add(lvs.Service{Addr: ip("192.168.1.120"), Port: 80, Protocol: lvs.TCP, Scheduler: "wrr", Persistence: 50 * time.Second},
		lvs.Destination{Addr: ip("192.168.1.103"), Port: 80, Weight: 1, Forward: lvs.Route},
		lvs.Destination{Addr: ip("192.168.1.104"), Port: 80, Weight: 5, Forward: lvs.Route})
	requireTable(t, tab, want)
}

// healthConf has three real servers, b with inhibit_on_failure, and a
// sorry server.
const healthConf = `
virtual_server 10.0.0.100 5672 {
    lvs_sched wlc
    lvs_method NAT
    protocol TCP
    sorry_server 10.0.9.9 5672
    real_server 10.0.0.1 5672 {
        weight 3
    }
    real_server 10.0.0.2 5672 {
        weight 2
        inhibit_on_failure
    }
    real_server 10.0.0.3 5672 {
        weight 1
    }
}
`

// healthOf returns a HealthFunc reporting st[last octet of the real
// server's address], Up when absent.
func healthOf(st map[byte]lvs.Status) lvs.HealthFunc {
	return func(vs *config.VirtualServer, rs *config.RealServer) lvs.Status {
		return st[rs.IP.As4()[3]]
	}
}

// weights renders the destinations of the one service of tab as
// "addr:weight" in address order.
func weights(t *testing.T, tab lvs.Table) []string {
	t.Helper()
	if len(tab) != 1 {
		t.Fatalf("%d services, want 1:\n%s", len(tab), tab)
	}
	var out []string
	for _, st := range tab {
		for _, d := range st.Destinations {
			out = append(out, fmt.Sprintf("%s:%d", d.Addr, d.Weight))
		}
	}
	slices.Sort(out)
	return out
}

func TestFromConfigHealth(t *testing.T) {
	down := lvs.Status{State: lvs.Down}
	drain := lvs.Status{State: lvs.Drain}
	cases := []struct {
		name   string
		health map[byte]lvs.Status
		want   []string
	}{
		{"all up", nil, []string{"10.0.0.1:3", "10.0.0.2:2", "10.0.0.3:1"}},
		{"down is removed", map[byte]lvs.Status{1: down}, []string{"10.0.0.2:2", "10.0.0.3:1"}},
		{"down with inhibit_on_failure is weight 0", map[byte]lvs.Status{2: down}, []string{"10.0.0.1:3", "10.0.0.2:0", "10.0.0.3:1"}},
		{"drain is weight 0", map[byte]lvs.Status{1: drain}, []string{"10.0.0.1:0", "10.0.0.2:2", "10.0.0.3:1"}},
		{"dynamic weight", map[byte]lvs.Status{3: lvs.WithWeight(7)}, []string{"10.0.0.1:3", "10.0.0.2:2", "10.0.0.3:7"}},
		{"dynamic weight of a down server is ignored", map[byte]lvs.Status{2: {State: lvs.Down, Weight: 9, WeightSet: true}}, []string{"10.0.0.1:3", "10.0.0.2:0", "10.0.0.3:1"}},
		{"one up keeps the sorry server out", map[byte]lvs.Status{1: down, 2: down}, []string{"10.0.0.2:0", "10.0.0.3:1"}},
		{"all down brings the sorry server", map[byte]lvs.Status{1: down, 2: down, 3: down}, []string{"10.0.0.2:0", "10.0.9.9:1"}},
		{"all drained brings the sorry server", map[byte]lvs.Status{1: drain, 2: drain, 3: drain}, []string{"10.0.0.1:0", "10.0.0.2:0", "10.0.0.3:0", "10.0.9.9:1"}},
		{"up with dynamic weight 0 counts as not up", map[byte]lvs.Status{1: lvs.WithWeight(0), 2: down, 3: drain}, []string{"10.0.0.1:0", "10.0.0.2:0", "10.0.0.3:0", "10.0.9.9:1"}},
	}
	cfg := parse(t, healthConf)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := fromConfig(t, cfg, healthOf(c.health))
			if got := weights(t, tab); !slices.Equal(got, c.want) {
				t.Errorf("destinations %v, want %v", got, c.want)
			}
		})
	}
}

func TestFromConfigSorryServerIsARealServer(t *testing.T) {
	cfg := parse(t, `
virtual_server 10.0.0.100 80 {
    lvs_method DR
    sorry_server 10.0.0.2 80
    real_server 10.0.0.1 80 { weight 4 }
    real_server 10.0.0.2 80 {
        weight 4
        inhibit_on_failure
    }
}
`)
	tab := fromConfig(t, cfg, healthOf(map[byte]lvs.Status{1: {State: lvs.Down}, 2: {State: lvs.Down}}))
	if got, want := weights(t, tab), []string{"10.0.0.2:1"}; !slices.Equal(got, want) {
		t.Errorf("destinations %v, want %v", got, want)
	}
	for _, st := range tab {
		if d := st.Destinations[ap("10.0.0.2:80")]; d.Forward != lvs.Route {
			t.Errorf("sorry server forwarding %s, want Route", d.Forward)
		}
	}
}

func TestFromConfigGroupsAndFwmarks(t *testing.T) {
	cfg := parse(t, `
virtual_server_group G {
    10.0.0.1-3 80
    fwmark 9 inet6
    2001:db8::1 443
}
virtual_server group G {
    lvs_sched rr
    protocol UDP
    persistence_timeout 60
    real_server 10.1.0.1 80 { weight 2 }
    real_server 2001:db8::5 80 { weight 3 }
}
virtual_server fwmark 7 {
    lb_kind DR
    lb_algo sh
    real_server 10.1.0.2 { }
}
virtual_server fwmark 8 {
    lb_kind TUN
    real_server 2001:db8::8 { }
}
`)
	tab, errs := lvs.FromConfig(cfg, nil)
	requireErrors(t, errs,
		"UDP 10.0.0.1:80: destination [2001:db8::5]:80 is IPv6",
		"UDP 10.0.0.2:80: destination [2001:db8::5]:80 is IPv6",
		"UDP 10.0.0.3:80: destination [2001:db8::5]:80 is IPv6",
		"FWM 9 IPv6: destination 10.1.0.1:80 is IPv4",
		"UDP [2001:db8::1]:443: destination 10.1.0.1:80 is IPv4",
	)
	for _, err := range errs {
		if !errors.Is(err, lvs.ErrInvalid) {
			t.Errorf("%v does not wrap ErrInvalid", err)
		}
	}
	v4 := lvs.Destination{Addr: ip("10.1.0.1"), Port: 80, Weight: 2}
	v6 := lvs.Destination{Addr: ip("2001:db8::5"), Port: 80, Weight: 3}
	grp := lvs.Service{Protocol: lvs.UDP, Scheduler: "rr", Persistence: time.Minute}
	want := lvs.Table{}
	for _, a := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
		s := grp
		s.Addr, s.Port = ip(a), 80
		want.Add(s, v4)
	}
	s := grp
	s.Addr, s.Port = ip("2001:db8::1"), 443
	want.Add(s, v6)
	s = grp
	s.Protocol, s.FWMark, s.Family = 0, 9, lvs.IPv6
	want.Add(s, v6)
	want.Add(lvs.Service{FWMark: 7, Family: lvs.IPv4, Scheduler: "sh"},
		lvs.Destination{Addr: ip("10.1.0.2"), Weight: 1, Forward: lvs.Route})
	want.Add(lvs.Service{FWMark: 8, Family: lvs.IPv6, Scheduler: "wlc"},
		lvs.Destination{Addr: ip("2001:db8::8"), Weight: 1, Forward: lvs.Tunnel})
	requireTable(t, tab, want)
}

func TestFromConfigPersistenceGranularity(t *testing.T) {
	cases := []struct {
		vs, gran string
		want     netip.Addr
		err      string
	}{
		{"10.0.0.1 80", "255.255.255.0", ip("255.255.255.0"), ""},
		{"10.0.0.1 80", "255.255.255.255", ip("255.255.255.255"), ""},
		{"10.0.0.1 80", "24", ip("255.255.255.0"), ""},
		{"10.0.0.1 80", "64", netip.Addr{}, "prefix length 1..32; a full mask is used"},
		{"2001:db8::1 80", "64", ip("ffff:ffff:ffff:ffff::"), ""},
		{"2001:db8::1 80", "255.255.0.0", netip.Addr{}, "IPv4 netmask or a prefix length for an IPv6 service"},
	}
	for _, c := range cases {
		t.Run(c.vs+" "+c.gran, func(t *testing.T) {
			rs := "10.0.0.9"
			if ip(c.vs[:len(c.vs)-3]).Is6() {
				rs = "2001:db8::9"
			}
			cfg := parse(t, fmt.Sprintf("virtual_server %s {\n protocol TCP\n persistence_granularity %s\n real_server %s 80 { }\n}\n", c.vs, c.gran, rs))
			tab, errs := lvs.FromConfig(cfg, nil)
			if c.err != "" {
				requireErrors(t, errs, c.err)
			} else {
				requireErrors(t, errs)
			}
			for _, st := range tab {
				if st.Service.Netmask != c.want || st.Service.Persistence != 360*time.Second {
					t.Errorf("netmask %s persistence %s, want %s and 6m0s", st.Service.Netmask, st.Service.Persistence, c.want)
				}
			}
			if len(tab) != 1 {
				t.Errorf("%d services, want 1", len(tab))
			}
		})
	}
}

func TestFromConfigProblems(t *testing.T) {
	cfg := parse(t, `
virtual_server 10.0.0.1 80 {
    protocol TCP
    real_server 10.0.0.2 80 { weight 70000 }
}
virtual_server 10.0.0.1 80 {
    protocol UDP
    real_server 10.0.0.3 80 { }
}
`)
	// A second block for the same service (the configuration's validator
	// rejects it in a file; FromConfig must not rely on that).
	dup := cfg.VirtualServers[0]
	dup.LVSSched, dup.Pos.Line = "rr", 9
	cfg.VirtualServers = append(cfg.VirtualServers, dup)
	tab, errs := lvs.FromConfig(cfg, nil)
	requireErrors(t, errs,
		"keepalived.conf:2: virtual_server 10.0.0.1 80: real_server 10.0.0.2:80: weight 70000 is above 65535",
		"keepalived.conf:9: virtual_server 10.0.0.1 80: real_server 10.0.0.2:80: weight 70000 is above 65535",
		"keepalived.conf:9: virtual_server 10.0.0.1 80: service TCP 10.0.0.1:80 is already defined",
	)
	want := lvs.Table{}.
		Add(lvs.Service{Addr: ip("10.0.0.1"), Port: 80, Protocol: lvs.TCP, Scheduler: "wlc"},
			lvs.Destination{Addr: ip("10.0.0.2"), Port: 80, Weight: lvs.MaxWeight}).
		Add(lvs.Service{Addr: ip("10.0.0.1"), Port: 80, Protocol: lvs.UDP, Scheduler: "wlc"},
			lvs.Destination{Addr: ip("10.0.0.3"), Port: 80, Weight: 1})
	requireTable(t, tab, want)
}

func TestFromConfigPortlessServiceIsPersistent(t *testing.T) {
	cfg := parse(t, "virtual_server 10.0.0.1 {\n protocol TCP\n real_server 10.0.0.2 { }\n}\n")
	tab := fromConfig(t, cfg, nil)
	want := lvs.Table{}.Add(lvs.Service{Addr: ip("10.0.0.1"), Protocol: lvs.TCP, Scheduler: "wlc", Persistence: 360 * time.Second},
		lvs.Destination{Addr: ip("10.0.0.2"), Weight: 1})
	requireTable(t, tab, want)
}

// TestSchedulersOneToOne checks that the names the configuration accepts
// are exactly the kernel's, and pass through unchanged.
func TestSchedulersOneToOne(t *testing.T) {
	a, b := slices.Sorted(slices.Values(config.Schedulers)), slices.Sorted(slices.Values(lvs.Schedulers))
	if !slices.Equal(a, b) {
		t.Fatalf("config accepts %v, the kernel has %v", a, b)
	}
	for _, name := range lvs.Schedulers {
		cfg := parse(t, fmt.Sprintf("virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo %s\n real_server 10.0.0.2 80 { }\n}\n", name))
		for _, st := range fromConfig(t, cfg, nil) {
			if st.Service.Scheduler != name {
				t.Errorf("lb_algo %s: scheduler %q", name, st.Service.Scheduler)
			}
		}
	}
}

func TestFromConfigTunnelMixedFamily(t *testing.T) {
	cfg := parse(t, `
virtual_server 10.0.0.1 80 {
    protocol TCP
    lvs_method TUN
    real_server 2001:db8::2 80 { }
}
`)
	tab := fromConfig(t, cfg, nil)
	for _, st := range tab {
		if d, ok := st.Destinations[ap("[2001:db8::2]:80")]; !ok || d.Forward != lvs.Tunnel {
			t.Errorf("destinations %v", st.Destinations)
		}
	}
}

func TestServiceKeys(t *testing.T) {
	cfg := parse(t, `
virtual_server_group G {
    10.0.0.1-2 80
    fwmark 9 inet6
}
virtual_server group G {
    protocol UDP
    real_server 10.1.0.1 80 { }
}
virtual_server fwmark 7 {
    real_server 10.1.0.2 { }
}
virtual_server 10.0.0.5 5672 {
    real_server 10.1.0.3 5672 { }
}
`)
	tab, _ := lvs.FromConfig(cfg, nil)
	var all []string
	for i := range cfg.VirtualServers {
		var keys []string
		for _, k := range lvs.ServiceKeys(cfg, &cfg.VirtualServers[i]) {
			keys = append(keys, k.String())
			if _, ok := tab[k]; !ok {
				t.Errorf("virtual_server %d: key %s is not in FromConfig's table", i, k)
			}
		}
		all = append(all, strings.Join(keys, ","))
	}
	got := strings.Join(all, " | ")
	want := "UDP 10.0.0.1:80,UDP 10.0.0.2:80,FWM 9 IPv6 | FWM 7 IPv4 | TCP 10.0.0.5:5672"
	if got != want {
		t.Fatalf("ServiceKeys:\n got %s\nwant %s", got, want)
	}
}

// TestFromConfigIPFamily: a fwmark service takes its family from a group
// entry's own, then from ip_family, then from its real servers.
func TestFromConfigIPFamily(t *testing.T) {
	cfg, err := config.Parse("t.conf", []byte(`virtual_server_group g {
    fwmark 4
    fwmark 5 inet
}
virtual_server fwmark 1 {
    ip_family inet6
    lvs_method TUN
    real_server 10.0.0.2 80 {
    }
}
virtual_server fwmark 2 {
    real_server 10.0.0.2 80 {
    }
}
virtual_server group g {
    ip_family inet6
    lvs_method TUN
    real_server 10.0.0.3 80 {
    }
}`))
	if err != nil {
		t.Fatal(err)
	}
	tab, errs := lvs.FromConfig(cfg, nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	got := map[uint32]lvs.Family{}
	for k := range tab {
		got[k.FWMark] = k.Family
	}
	want := map[uint32]lvs.Family{1: lvs.IPv6, 2: lvs.IPv4, 4: lvs.IPv6, 5: lvs.IPv4}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("families %v, want %v", got, want)
	}
	_, err = config.Parse("t.conf", []byte("virtual_server 10.0.0.1 80 {\n ip_family inet6\n real_server 10.0.0.2 80 {\n }\n}\n"))
	if err == nil || !strings.Contains(err.Error(), "t.conf:2: virtual_server 10.0.0.1 80: ip_family inet6, but 10.0.0.1 is IPv4") {
		t.Errorf("error %v", err)
	}
}
