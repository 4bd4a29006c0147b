package lvs_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/lvs/lvstest"
)

// TestKernelScenarioFake runs the scenario of TestKernel against the
// in-memory kernel, so that the scenario itself is checked everywhere.
func TestKernelScenarioFake(t *testing.T) {
	k := lvstest.New()
	k.SetLocal(ip("127.0.0.1"))
	kernelScenario(t, k, true)
}

// kernelScenario programs a table with every kind of service, checks that
// the kernel holds it, repairs drift, goes through every scheduler and
// removes what it added, leaving a foreign service alone. When loUp, the
// destination at 127.0.0.1 must read back as Local (the kernel's rewrite
// of local addresses).
func kernelScenario(t *testing.T, k lvs.Kernel, loUp bool) {
	ctx := t.Context()
	before, err := lvs.ReadTable(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	// A service of someone else's, at another address.
	foreign := svc("198.51.100.200:80", "rr")
	foreignDst := dst("192.0.2.200:80", 3)
	if err := k.AddService(ctx, foreign); err != nil {
		t.Fatalf("adding the foreign service: %v", err)
	}
	t.Cleanup(func() { k.DeleteService(context.Background(), foreign) })
	if err := k.AddDestination(ctx, foreign, foreignDst); err != nil {
		t.Fatal(err)
	}

	persistent := svc("198.51.100.10:5672", "wrr")
	persistent.Persistence, persistent.Netmask = 50*time.Second, ip("255.255.255.0")
	udp := lvs.Service{Addr: ip("198.51.100.10"), Port: 53, Protocol: lvs.UDP, Scheduler: "rr", Flags: lvs.FlagOnePacket}
	sctp := lvs.Service{Addr: ip("198.51.100.10"), Port: 3868, Protocol: lvs.SCTP, Scheduler: "lc"}
	v6 := svc("[2001:db8::10]:443", "sh")
	v6.Flags, v6.Persistence, v6.Netmask = lvs.FlagSHPort, time.Minute, lvs.PrefixMask(lvs.IPv6, 64)
	portless := svc("198.51.100.11:0", "wlc")
	portless.Persistence = 360 * time.Second
	nat := func(s string, w int) lvs.Destination { d := dst(s, w); d.Forward = lvs.Masq; return d }
	tun := func(s string, w int) lvs.Destination { d := dst(s, w); d.Forward = lvs.Tunnel; return d }
	want := lvs.Table{}.
		Add(persistent, dst("192.0.2.1:5672", 1), dst("192.0.2.2:5672", 5), nat("127.0.0.1:5672", 1), dst("192.0.2.9:5672", lvs.MaxWeight)).
		Add(udp, nat("192.0.2.1:5353", 1), nat("192.0.2.2:5353", 0)).
		Add(sctp, nat("192.0.2.1:3868", 2)).
		Add(v6, dst("[2001:db8::1]:443", 2), dst("[2001:db8::2]:443", 3)).
		Add(portless, dst("192.0.2.4:0", 1)).
		Add(lvs.Service{FWMark: 7, Scheduler: "lc"}, tun("192.0.2.3:0", 1)).
		Add(lvs.Service{FWMark: 8, Family: lvs.IPv6, Scheduler: "wlc", Persistence: 30 * time.Second, Netmask: lvs.PrefixMask(lvs.IPv6, 48)}, dst("[2001:db8::3]:0", 1))

	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	r := lvs.NewReconciler(k, log)
	t.Cleanup(func() { r.Remove(context.Background()) })

	requireOwned := func(what string) {
		t.Helper()
		got, err := lvs.ReadTable(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		owned := lvs.Table{}
		for key := range want {
			if st, ok := got[key]; ok {
				owned[key] = st
			}
		}
		if !owned.Equal(want) {
			t.Fatalf("%s: the kernel holds:\n%s\nwant:\n%s", what, owned, want)
		}
	}
	apply := func(what string) lvs.Changes {
		t.Helper()
		cs, err := r.Apply(ctx, want)
		if err != nil {
			t.Fatalf("%s: Apply: %v\n%s", what, err, cs)
		}
		requireOwned(what)
		return cs
	}

	cs := apply("first Apply")
	if n := cs.Count(lvs.OpAddService); n != len(want) {
		t.Errorf("added %d services, want %d:\n%s", n, len(want), cs)
	}
	got, _ := lvs.ReadTable(ctx, k)
	// A local destination reads back as the method given (Debian 12's 6.1
	// kernel) or as Local (old kernels, and the fake here); either way the
	// second Apply below must find nothing to change.
	if d, ok := got[persistent.Key()].Destinations[ap("127.0.0.1:5672")]; !ok || (d.Forward != lvs.Masq && !(loUp && d.Forward == lvs.Local)) {
		t.Errorf("destination at a local address reads back as %v (present %v), want Masq or Local", d.Forward, ok)
	} else {
		t.Logf("destination at 127.0.0.1 reads back as %v", d.Forward)
	}
	if d := got[persistent.Key()].Destinations[ap("192.0.2.9:5672")]; d.Weight != lvs.MaxWeight {
		t.Errorf("weight %d read back as %d", lvs.MaxWeight, d.Weight)
	}
	if s := got[persistent.Key()].Service; s.Netmask != ip("255.255.255.0") || s.Persistence != 50*time.Second {
		t.Errorf("persistent service reads back as %s", s)
	}
	if cs := apply("second Apply"); len(cs) != 0 {
		t.Fatalf("second Apply changed:\n%s", cs)
	}

	// Drift, as ipvsadm would make it.
	hand := []error{
		k.AddDestination(ctx, persistent, dst("192.0.2.66:5672", 7)),
		k.UpdateDestination(ctx, persistent, dst("192.0.2.2:5672", 0)),
		k.UpdateService(ctx, lvs.Service{Addr: v6.Addr, Port: v6.Port, Protocol: lvs.TCP, Scheduler: "rr"}),
		k.DeleteService(ctx, udp),
	}
	if err := errors.Join(hand...); err != nil {
		t.Fatal(err)
	}
	cs = apply("drift repair")
	if len(cs) != 6 || cs.Drifts() != len(cs) {
		t.Errorf("drift repair, want 6 changes all drift:\n%s", cs)
	}
	if cs := apply("after repair"); len(cs) != 0 {
		t.Fatalf("Apply after repair changed:\n%s", cs)
	}

	// Every scheduler name goes to the kernel as is.
	for _, name := range lvs.Schedulers {
		s := want[persistent.Key()]
		s.Service.Scheduler = name
		want[persistent.Key()] = s
		cs, err := r.Apply(ctx, want)
		if errors.Is(err, lvs.ErrNoScheduler) {
			t.Logf("the kernel has no scheduler %s: %v", name, err)
			continue
		}
		if err != nil || len(cs) != 1 {
			t.Errorf("scheduler %s: %v\n%s", name, err, cs)
			continue
		}
		requireOwned("scheduler " + name)
	}

	// Leaving: only the foreign service and what was there before remain.
	cs, err = r.Remove(ctx)
	if err != nil || cs.Count(lvs.OpDeleteService) != len(want) {
		t.Fatalf("Remove: %v\n%s", err, cs)
	}
	after, err := lvs.ReadTable(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	expect := before.Clone()
	if expect == nil {
		expect = lvs.Table{}
	}
	expect.Add(foreign, foreignDst)
	if !after.Equal(expect) {
		t.Fatalf("after Remove the kernel holds:\n%s\nwant:\n%s", after, expect)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
