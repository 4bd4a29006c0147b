package lvs_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/lvs/lvstest"
)

func svc(addrPort string, sched string) lvs.Service {
	a := ap(addrPort)
	return lvs.Service{Addr: a.Addr(), Port: a.Port(), Protocol: lvs.TCP, Scheduler: sched}
}

func dst(addrPort string, w int) lvs.Destination {
	a := ap(addrPort)
	return lvs.Destination{Addr: a.Addr(), Port: a.Port(), Weight: w, Forward: lvs.Route}
}

// baseTable is two address services with three destinations each and a
// firewall-mark service.
func baseTable() lvs.Table {
	return lvs.Table{}.
		Add(svc("192.168.0.10:5672", "wrr"), dst("192.168.0.2:5672", 1), dst("192.168.0.3:5672", 1), dst("192.168.0.4:5672", 1)).
		Add(svc("192.168.0.10:15672", "rr"), dst("192.168.0.2:15672", 1), dst("192.168.0.3:15672", 2), dst("192.168.0.4:15672", 3)).
		Add(lvs.Service{FWMark: 7, Protocol: lvs.TCP, Scheduler: "sh", Flags: lvs.FlagSHPort}, dst("192.168.0.5:0", 1))
}

type rig struct {
	t   *testing.T
	ctx context.Context
	k   *lvstest.Kernel
	r   *lvs.Reconciler
}

func newRig(t *testing.T) *rig {
	k := lvstest.New()
	return &rig{t: t, ctx: context.Background(), k: k, r: lvs.NewReconciler(k, nil)}
}

// apply applies want, fails on error, and checks that the kernel holds
// want afterwards.
func (g *rig) apply(want lvs.Table) lvs.Changes {
	g.t.Helper()
	cs, err := g.r.Apply(g.ctx, want)
	if err != nil {
		g.t.Fatalf("Apply: %v\nchanges:\n%s", err, cs)
	}
	g.requireKernel(want)
	return cs
}

// requireKernel checks that the owned part of the kernel equals want.
func (g *rig) requireKernel(want lvs.Table) {
	g.t.Helper()
	got := g.k.Table()
	owned := lvs.Table{}
	for _, k := range g.r.Owned() {
		if st, ok := got[k]; ok {
			owned[k] = st
		}
	}
	if !owned.Equal(want) {
		g.t.Fatalf("kernel holds:\n%s\nwant:\n%s", owned, want)
	}
}

// requireIdle checks that another Apply of want does nothing at all.
func (g *rig) requireIdle(want lvs.Table) {
	g.t.Helper()
	g.k.ResetCounts()
	cs, err := g.r.Apply(g.ctx, want)
	if err != nil || len(cs) != 0 {
		g.t.Fatalf("second Apply: %v\n%s", err, cs)
	}
	if _, writes := g.k.Counts(); writes != 0 {
		g.t.Fatalf("second Apply made %d kernel writes", writes)
	}
}

// requireChanges checks the changes against lines of Change.String.
func requireChanges(t *testing.T, cs lvs.Changes, want ...string) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(cs.String(), "\n"), "\n")
	if len(cs) == 0 {
		got = nil
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestApplyAddsAndIsIdempotent(t *testing.T) {
	g := newRig(t)
	want := baseTable()
	cs := g.apply(want)
	if n, d := cs.Count(lvs.OpAddService), cs.Count(lvs.OpAddDestination); n != 3 || d != 7 || len(cs) != 10 || cs.Drifts() != 0 {
		t.Fatalf("%d services and %d destinations added, %d changes, %d drifts:\n%s", n, d, len(cs), cs.Drifts(), cs)
	}
	if cs[0].Op != lvs.OpAddService || cs[1].Op != lvs.OpAddDestination {
		t.Errorf("a service's destinations must follow it:\n%s", cs)
	}
	g.requireIdle(want)
	if got := len(g.r.Owned()); got != 3 {
		t.Errorf("owns %d services, want 3", got)
	}
}

func TestApplyUpdates(t *testing.T) {
	cases := []struct {
		name   string
		change func(lvs.Table)
		want   []string
	}{
		{"weight", func(w lvs.Table) {
			w.Add(svc("192.168.0.10:5672", "wrr"), dst("192.168.0.3:5672", 5))
		}, []string{"update destination 192.168.0.3:5672 Route 5 of TCP 192.168.0.10:5672 (was Route 1)"}},
		{"forwarding method", func(w lvs.Table) {
			d := dst("192.168.0.3:5672", 1)
			d.Forward = lvs.Masq
			w.Add(svc("192.168.0.10:5672", "wrr"), d)
		}, []string{"update destination 192.168.0.3:5672 Masq 1 of TCP 192.168.0.10:5672 (was Route 1)"}},
		{"scheduler", func(w lvs.Table) {
			w.Add(svc("192.168.0.10:5672", "lc"))
		}, []string{"update service TCP 192.168.0.10:5672 lc (was TCP 192.168.0.10:5672 wrr)"}},
		{"persistence and netmask", func(w lvs.Table) {
			s := svc("192.168.0.10:5672", "wrr")
			s.Persistence, s.Netmask = 50*time.Second, ip("255.255.255.0")
			w.Add(s)
		}, []string{"update service TCP 192.168.0.10:5672 wrr persistent 50 mask 255.255.255.0 (was TCP 192.168.0.10:5672 wrr)"}},
		{"flags", func(w lvs.Table) {
			w.Add(lvs.Service{FWMark: 7, Scheduler: "sh", Flags: lvs.FlagSHPort | lvs.FlagSHFallback})
		}, []string{"update service FWM 7 IPv4 sh flags sched1|sched2 (was FWM 7 IPv4 sh flags sched2)"}},
		{"destination removed", func(w lvs.Table) {
			delete(w[svc("192.168.0.10:5672", "").Key()].Destinations, ap("192.168.0.4:5672"))
		}, []string{"delete destination 192.168.0.4:5672 Route 1 from TCP 192.168.0.10:5672"}},
		{"destination added", func(w lvs.Table) {
			w.Add(svc("192.168.0.10:5672", "wrr"), dst("192.168.0.6:5672", 1))
		}, []string{"add destination 192.168.0.6:5672 Route 1 to TCP 192.168.0.10:5672"}},
		{"service removed", func(w lvs.Table) {
			delete(w, svc("192.168.0.10:15672", "").Key())
		}, []string{"delete service TCP 192.168.0.10:15672 rr"}},
		{"service added", func(w lvs.Table) {
			s := svc("[2001:db8::10]:443", "mh")
			s.Persistence, s.Netmask = 90*time.Second, lvs.PrefixMask(lvs.IPv6, 64)
			w.Add(s, dst("[2001:db8::2]:443", 1))
		}, []string{
			"add service TCP [2001:db8::10]:443 mh persistent 90 mask 64",
			"add destination [2001:db8::2]:443 Route 1 to TCP [2001:db8::10]:443",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t)
			g.apply(baseTable())
			want := baseTable()
			c.change(want)
			cs := g.apply(want)
			requireChanges(t, cs, c.want...)
			if cs.Drifts() != 0 {
				t.Errorf("wanted changes reported as drift:\n%s", cs)
			}
			g.requireIdle(want)
		})
	}
}

func TestApplyRepairsDrift(t *testing.T) {
	s5672 := svc("192.168.0.10:5672", "wrr")
	cases := []struct {
		name string
		hand func(ctx context.Context, k *lvstest.Kernel) error
		want []string
	}{
		{"hand-added destination is removed", func(ctx context.Context, k *lvstest.Kernel) error {
			return k.AddDestination(ctx, s5672, dst("10.9.9.9:5672", 9))
		}, []string{"delete destination 10.9.9.9:5672 Route 9 from TCP 192.168.0.10:5672 [drift]"}},
		{"hand-changed weight is restored", func(ctx context.Context, k *lvstest.Kernel) error {
			return k.UpdateDestination(ctx, s5672, dst("192.168.0.2:5672", 0))
		}, []string{"update destination 192.168.0.2:5672 Route 1 of TCP 192.168.0.10:5672 (was Route 0) [drift]"}},
		{"hand-deleted destination is re-added", func(ctx context.Context, k *lvstest.Kernel) error {
			return k.DeleteDestination(ctx, s5672, dst("192.168.0.2:5672", 1))
		}, []string{"add destination 192.168.0.2:5672 Route 1 to TCP 192.168.0.10:5672 [drift]"}},
		{"hand-changed scheduler is restored", func(ctx context.Context, k *lvstest.Kernel) error {
			return k.UpdateService(ctx, svc("192.168.0.10:5672", "rr"))
		}, []string{"update service TCP 192.168.0.10:5672 wrr (was TCP 192.168.0.10:5672 rr) [drift]"}},
		{"hand-deleted service is re-added", func(ctx context.Context, k *lvstest.Kernel) error {
			return k.DeleteService(ctx, s5672)
		}, []string{
			"add service TCP 192.168.0.10:5672 wrr [drift]",
			"add destination 192.168.0.2:5672 Route 1 to TCP 192.168.0.10:5672 [drift]",
			"add destination 192.168.0.3:5672 Route 1 to TCP 192.168.0.10:5672 [drift]",
			"add destination 192.168.0.4:5672 Route 1 to TCP 192.168.0.10:5672 [drift]",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newRig(t)
			want := baseTable()
			g.apply(want)
			if err := c.hand(g.ctx, g.k); err != nil {
				t.Fatal(err)
			}
			cs := g.apply(want)
			requireChanges(t, cs, c.want...)
			if cs.Drifts() != len(cs) {
				t.Errorf("repairs not reported as drift:\n%s", cs)
			}
			g.requireIdle(want)
		})
	}
}

func TestApplyLeavesForeignServices(t *testing.T) {
	g := newRig(t)
	foreign := svc("10.10.10.10:80", "rr")
	// A service at another address, set up by hand before vipd starts.
	if err := g.k.AddService(g.ctx, foreign); err != nil {
		t.Fatal(err)
	}
	if err := g.k.AddDestination(g.ctx, foreign, dst("10.10.10.11:80", 4)); err != nil {
		t.Fatal(err)
	}
	before := g.k.Table()[foreign.Key()]
	want := baseTable()
	g.apply(want)
	g.k.ResetCounts()
	g.requireIdle(want)
	if reads, _ := g.k.Counts(); reads != 1+len(want) {
		t.Errorf("%d reads, want %d: the foreign service's destinations must not be read", reads, 1+len(want))
	}
	g.apply(lvs.Table{}) // everything vipd owned goes
	if _, err := g.r.Remove(g.ctx); err != nil {
		t.Fatal(err)
	}
	after := g.k.Table()
	if len(after) != 1 || !(lvs.Table{foreign.Key(): before}).Equal(after) {
		t.Fatalf("kernel after vipd left:\n%s\nwant only the foreign service:\n%s", after, lvs.Table{foreign.Key(): before})
	}
}

func TestApplyAdoptsExistingService(t *testing.T) {
	g := newRig(t)
	s := svc("192.168.0.10:5672", "rr")
	if err := g.k.AddService(g.ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := g.k.AddDestination(g.ctx, s, dst("10.9.9.9:5672", 1)); err != nil {
		t.Fatal(err)
	}
	want := lvs.Table{}.Add(svc("192.168.0.10:5672", "wrr"), dst("192.168.0.2:5672", 1))
	cs := g.apply(want)
	requireChanges(t, cs,
		"update service TCP 192.168.0.10:5672 wrr (was TCP 192.168.0.10:5672 rr)",
		"add destination 192.168.0.2:5672 Route 1 to TCP 192.168.0.10:5672",
		"delete destination 10.9.9.9:5672 Route 1 from TCP 192.168.0.10:5672",
	)
	cs = g.apply(lvs.Table{})
	requireChanges(t, cs, "delete service TCP 192.168.0.10:5672 wrr")
	if len(g.k.Table()) != 0 || len(g.r.Owned()) != 0 {
		t.Errorf("kernel %v, owned %v", g.k.Table(), g.r.Owned())
	}
}

func TestApplyForgetsServicesDeletedByHand(t *testing.T) {
	g := newRig(t)
	g.apply(baseTable())
	s := svc("192.168.0.10:5672", "")
	if err := g.k.DeleteService(g.ctx, s); err != nil {
		t.Fatal(err)
	}
	want := baseTable()
	delete(want, s.Key())
	requireChanges(t, g.apply(want))
	for _, k := range g.r.Owned() {
		if k == s.Key() {
			t.Errorf("still owns %s", k)
		}
	}
	// Added again by hand, it is now foreign.
	if err := g.k.AddService(g.ctx, s); err != nil {
		t.Fatal(err)
	}
	g.requireIdle(want)
}

func TestApplyHealthFlow(t *testing.T) {
	g := newRig(t)
	cfg := parse(t, healthConf)
	health := map[byte]lvs.Status{}
	step := func(change map[byte]lvs.Status, want ...string) {
		t.Helper()
		for k, v := range change {
			health[k] = v
		}
		cs := g.apply(fromConfig(t, cfg, healthOf(health)))
		requireChanges(t, cs, want...)
	}
	down, up := lvs.Status{State: lvs.Down}, lvs.Status{}
	step(nil,
		"add service TCP 10.0.0.100:5672 wlc",
		"add destination 10.0.0.1:5672 Masq 3 to TCP 10.0.0.100:5672",
		"add destination 10.0.0.2:5672 Masq 2 to TCP 10.0.0.100:5672",
		"add destination 10.0.0.3:5672 Masq 1 to TCP 10.0.0.100:5672")
	step(map[byte]lvs.Status{2: down},
		"update destination 10.0.0.2:5672 Masq 0 of TCP 10.0.0.100:5672 (was Masq 2)")
	step(map[byte]lvs.Status{1: down},
		"delete destination 10.0.0.1:5672 Masq 3 from TCP 10.0.0.100:5672")
	step(map[byte]lvs.Status{3: {State: lvs.Drain}},
		"update destination 10.0.0.3:5672 Masq 0 of TCP 10.0.0.100:5672 (was Masq 1)",
		"add destination 10.0.9.9:5672 Masq 1 to TCP 10.0.0.100:5672")
	step(map[byte]lvs.Status{1: up, 2: up, 3: up},
		"add destination 10.0.0.1:5672 Masq 3 to TCP 10.0.0.100:5672",
		"update destination 10.0.0.2:5672 Masq 2 of TCP 10.0.0.100:5672 (was Masq 0)",
		"update destination 10.0.0.3:5672 Masq 1 of TCP 10.0.0.100:5672 (was Masq 0)",
		"delete destination 10.0.9.9:5672 Masq 1 from TCP 10.0.0.100:5672")
	step(map[byte]lvs.Status{3: lvs.WithWeight(10)},
		"update destination 10.0.0.3:5672 Masq 10 of TCP 10.0.0.100:5672 (was Masq 1)")
}

func TestApplyFwmarkIgnoresProtocol(t *testing.T) {
	g := newRig(t)
	// The kernel reports no protocol for firewall-mark services; a wanted
	// one with a protocol must not be updated forever.
	want := lvs.Table{}.
		Add(lvs.Service{FWMark: 1, Protocol: lvs.UDP, Scheduler: "rr"}, dst("10.0.0.1:0", 1)).
		Add(lvs.Service{FWMark: 1, Family: lvs.IPv6, Scheduler: "rr"}, dst("[2001:db8::1]:0", 1))
	cs := g.apply(want)
	requireChanges(t, cs,
		"add service FWM 1 IPv4 rr",
		"add destination 10.0.0.1:0 Route 1 to FWM 1 IPv4",
		"add service FWM 1 IPv6 rr",
		"add destination [2001:db8::1]:0 Route 1 to FWM 1 IPv6")
	g.requireIdle(want)
}

func TestApplyLocalDestination(t *testing.T) {
	g := newRig(t)
	g.k.SetLocal(ip("192.168.0.3"))
	want := baseTable()
	g.apply(want)
	if d := g.k.Table()[svc("192.168.0.10:5672", "").Key()].Destinations[ap("192.168.0.3:5672")]; d.Forward != lvs.Local {
		t.Fatalf("the kernel keeps local destinations as Local, got %v", d)
	}
	g.requireIdle(want)
}

func TestApplyNormalizes(t *testing.T) {
	g := newRig(t)
	s := svc("10.0.0.1:80", "")
	s.Persistence = 1500 * time.Millisecond
	s.Netmask = ip("255.255.255.255")
	want := lvs.Table{}.Add(s, dst("10.0.0.2:80", 1))
	requireChanges(t, g.apply(want),
		"add service TCP 10.0.0.1:80 wlc persistent 2",
		"add destination 10.0.0.2:80 Route 1 to TCP 10.0.0.1:80")
	g.requireIdle(want)
}

func TestApplyRejectsInvalidTable(t *testing.T) {
	g := newRig(t)
	bad := []lvs.Table{
		lvs.Table{}.Add(lvs.Service{Addr: ip("10.0.0.1"), Port: 80}),                              // no protocol
		lvs.Table{}.Add(svc("10.0.0.1:0", "rr")),                                                  // port 0 without persistence
		lvs.Table{}.Add(svc("10.0.0.1:80", "rr"), dst("[2001:db8::1]:80", 1)),                     // family
		lvs.Table{}.Add(svc("10.0.0.1:80", "rr"), dst("10.0.0.2:80", lvs.MaxWeight+1)),            // weight
		lvs.Table{}.Add(lvs.Service{FWMark: 1, Addr: ip("10.0.0.1")}),                             // fwmark with address
		lvs.Table{svc("10.0.0.1:80", "").Key(): {Service: svc("10.0.0.2:80", "")}},                // filed under another key
		lvs.Table{}.Add(lvs.Service{Addr: ip("10.0.0.1"), Port: 80, Protocol: lvs.TCP, Flags: 1}), // kernel-only flag
	}
	for i, w := range bad {
		cs, err := g.r.Apply(g.ctx, w)
		if !errors.Is(err, lvs.ErrInvalid) || cs != nil {
			t.Errorf("table %d: Apply = %v, %v; want ErrInvalid", i, cs, err)
		}
	}
	if _, writes := g.k.Counts(); writes != 0 {
		t.Errorf("%d kernel writes for invalid tables", writes)
	}
}

func TestApplyKernelFailures(t *testing.T) {
	g := newRig(t)
	boom := errors.New("boom")
	failing := svc("192.168.0.10:5672", "")
	g.k.FailWith(func(op lvs.Op, s lvs.Service, d lvs.Destination) error {
		if s.Key() == failing.Key() || d.Addr == ip("192.168.0.3") {
			return boom
		}
		return nil
	})
	want := baseTable()
	cs, err := g.r.Apply(g.ctx, want)
	var oe *lvs.OpError
	if !errors.Is(err, boom) || !errors.As(err, &oe) || oe.Op != lvs.OpAddService || oe.Service != failing.Key() {
		t.Fatalf("Apply error %v, want an OpError adding %s", err, failing.Key())
	}
	if !strings.Contains(err.Error(), "lvs: add destination 192.168.0.3:15672 of TCP 192.168.0.10:15672: boom") {
		t.Errorf("error %q does not name the failed destination", err)
	}
	// The failing service's destinations were not attempted; the rest went in.
	if n := cs.Count(lvs.OpAddService); n != 2 || cs.Count(lvs.OpAddDestination) != 3 {
		t.Errorf("changes:\n%s", cs)
	}
	g.k.FailWith(nil)
	cs = g.apply(want)
	if len(cs) != 5 || cs.Drifts() != 0 {
		t.Errorf("completing changes (no drift expected):\n%s", cs)
	}
	g.requireIdle(want)
}

func TestApplyReadFailure(t *testing.T) {
	g := newRig(t)
	g.k.FailReads(errors.New("netlink down"))
	cs, err := g.r.Apply(g.ctx, baseTable())
	if err == nil || cs != nil || !strings.Contains(err.Error(), "netlink down") {
		t.Fatalf("Apply = %v, %v", cs, err)
	}
	if _, writes := g.k.Counts(); writes != 0 {
		t.Errorf("%d writes after a failed read", writes)
	}
}

func TestApplyStopsWhenContextEnds(t *testing.T) {
	g := newRig(t)
	ctx, cancel := context.WithCancel(g.ctx)
	n := 0
	g.k.FailWith(func(lvs.Op, lvs.Service, lvs.Destination) error {
		if n++; n == 2 {
			cancel()
		}
		return nil
	})
	cs, err := g.r.Apply(ctx, baseTable())
	if !errors.Is(err, context.Canceled) || len(cs) != 2 {
		t.Fatalf("Apply = %d changes, %v; want 2 and context.Canceled", len(cs), err)
	}
	if _, writes := g.k.Counts(); writes != 2 {
		t.Errorf("%d writes after cancel, want 2", writes)
	}
	g.k.FailWith(nil)
	cs = g.apply(baseTable())
	if len(cs) != 8 {
		t.Errorf("resumed with %d changes, want 8:\n%s", len(cs), cs)
	}
}

func TestApplyDeleteOfVanishedService(t *testing.T) {
	g := newRig(t)
	g.apply(baseTable())
	gone := svc("192.168.0.10:5672", "")
	g.k.FailWith(func(op lvs.Op, s lvs.Service, _ lvs.Destination) error {
		if op == lvs.OpDeleteService {
			return lvs.ErrNotFound // deleted by hand between read and delete
		}
		return nil
	})
	want := baseTable()
	delete(want, gone.Key())
	cs, err := g.r.Apply(g.ctx, want)
	if err != nil || len(cs) != 0 {
		t.Fatalf("Apply = %v, %v; a vanished service is no error and no change", cs, err)
	}
	for _, k := range g.r.Owned() {
		if k == gone.Key() {
			t.Errorf("still owns %s", k)
		}
	}
}

func TestRemove(t *testing.T) {
	g := newRig(t)
	foreign := svc("10.10.10.10:80", "rr")
	if err := g.k.AddService(g.ctx, foreign); err != nil {
		t.Fatal(err)
	}
	g.apply(baseTable())
	cs, err := g.r.Remove(g.ctx)
	if err != nil || cs.Count(lvs.OpDeleteService) != 3 || len(cs) != 3 {
		t.Fatalf("Remove = %v\n%s", err, cs)
	}
	if tab := g.k.Table(); len(tab) != 1 || len(g.r.Owned()) != 0 {
		t.Fatalf("kernel after Remove:\n%s", tab)
	}
	if cs, err := g.r.Remove(g.ctx); err != nil || len(cs) != 0 {
		t.Fatalf("second Remove = %v, %v", cs, err)
	}
}

func TestRemoveKeepsWhatFails(t *testing.T) {
	g := newRig(t)
	g.apply(baseTable())
	keep := svc("192.168.0.10:15672", "")
	g.k.FailWith(func(op lvs.Op, s lvs.Service, _ lvs.Destination) error {
		if s.Key() == keep.Key() {
			return errors.New("busy")
		}
		return nil
	})
	cs, err := g.r.Remove(g.ctx)
	if err == nil || len(cs) != 2 {
		t.Fatalf("Remove = %v\n%s", err, cs)
	}
	if owned := g.r.Owned(); len(owned) != 1 || owned[0] != keep.Key() {
		t.Fatalf("owned after failed Remove: %v", owned)
	}
	g.k.FailWith(nil)
	if cs, err := g.r.Remove(g.ctx); err != nil || len(cs) != 1 {
		t.Fatalf("Remove again = %v\n%s", err, cs)
	}
}

func TestReadTable(t *testing.T) {
	g := newRig(t)
	want := baseTable()
	g.apply(want)
	got, err := lvs.ReadTable(g.ctx, g.k)
	if err != nil || !got.Equal(want) {
		t.Fatalf("ReadTable = %v:\n%s\nwant:\n%s", err, got, want)
	}
	for k, st := range got {
		if st.Service.Key() != k || st.Service.Family == 0 {
			t.Errorf("%s: read back as %#v (not normalized)", k, st.Service)
		}
	}
}

func TestConcurrentApply(t *testing.T) {
	g := newRig(t)
	want := baseTable()
	done := make(chan error, 4)
	for range 4 {
		go func() {
			_, err := g.r.Apply(g.ctx, want)
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	g.requireKernel(want)
	g.requireIdle(want)
}

func TestOwnedIsSorted(t *testing.T) {
	g := newRig(t)
	g.apply(baseTable())
	owned := g.r.Owned()
	for i := 1; i < len(owned); i++ {
		if owned[i-1].Compare(owned[i]) >= 0 {
			t.Fatalf("Owned not sorted: %v", owned)
		}
	}
	if owned[len(owned)-1].FWMark != 7 {
		t.Errorf("firewall-mark services sort after address services of their family: %v", owned)
	}
}

func TestReadReturnsOnlyOwnedServices(t *testing.T) {
	g := newRig(t)
	foreign := svc("192.168.9.9:80", "rr")
	if err := g.k.AddService(g.ctx, foreign); err != nil {
		t.Fatal(err)
	}
	want := baseTable()
	g.apply(want)
	got, err := g.r.Read(g.ctx)
	if err != nil || !got.Equal(want) {
		t.Fatalf("Read = %v:\n%s\nwant (without %s):\n%s", err, got, foreign, want)
	}
	g.k.FailReads(errors.New("netlink down"))
	if _, err := g.r.Read(g.ctx); err == nil || !strings.Contains(err.Error(), "netlink down") {
		t.Fatalf("Read with failing kernel: %v", err)
	}
}
