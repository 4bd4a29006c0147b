package lvstest_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/lvs/lvstest"
)

func TestKernelErrors(t *testing.T) {
	ctx := context.Background()
	k := lvstest.New()
	s := lvs.Service{Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Protocol: lvs.TCP, Scheduler: "rr"}
	d := lvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Port: 80, Weight: 1}
	check := func(what string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
	}
	check("update missing service", k.UpdateService(ctx, s), lvs.ErrNotFound)
	check("delete missing service", k.DeleteService(ctx, s), lvs.ErrNotFound)
	check("add destination to missing service", k.AddDestination(ctx, s, d), lvs.ErrNotFound)
	bad := s
	bad.Scheduler = "nope"
	check("unknown scheduler", k.AddService(ctx, bad), lvs.ErrNoScheduler)
	check("invalid service", k.AddService(ctx, lvs.Service{}), lvs.ErrInvalid)
	if err := k.AddService(ctx, s); err != nil {
		t.Fatal(err)
	}
	check("add present service", k.AddService(ctx, s), lvs.ErrExist)
	check("update missing destination", k.UpdateDestination(ctx, s, d), lvs.ErrNotFound)
	check("delete missing destination", k.DeleteDestination(ctx, s, d), lvs.ErrNotFound)
	if err := k.AddDestination(ctx, s, d); err != nil {
		t.Fatal(err)
	}
	check("add present destination", k.AddDestination(ctx, s, d), lvs.ErrExist)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	check("cancelled", k.DeleteService(cctx, s), context.Canceled)
	if _, err := k.Services(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Services with a cancelled context: %v", err)
	}
	if reads, writes := k.Counts(); reads != 1 || writes != 12 {
		t.Errorf("counts %d reads, %d writes", reads, writes)
	}
}

func TestKernelLocalAndStoredForm(t *testing.T) {
	ctx := context.Background()
	k := lvstest.New()
	k.SetLocal(netip.MustParseAddr("10.0.0.2"))
	fw := lvs.Service{FWMark: 3, Protocol: lvs.UDP}
	if err := k.AddService(ctx, fw); err != nil {
		t.Fatal(err)
	}
	if err := k.AddDestination(ctx, fw, lvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Forward: lvs.Route}); err != nil {
		t.Fatal(err)
	}
	svcs, _ := k.Services(ctx)
	if len(svcs) != 1 || svcs[0].Protocol != 0 || svcs[0].Family != lvs.IPv4 || svcs[0].Scheduler != lvs.DefaultScheduler {
		t.Errorf("stored as %#v", svcs)
	}
	ds, _ := k.Destinations(ctx, fw)
	if len(ds) != 1 || ds[0].Forward != lvs.Local {
		t.Errorf("local destination stored as %v", ds)
	}
	if ds, err := k.Destinations(ctx, lvs.Service{FWMark: 4}); err != nil || ds != nil {
		t.Errorf("destinations of a missing service: %v, %v", ds, err)
	}
}
