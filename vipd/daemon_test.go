package main

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/lvs/lvstest"
)

// TestShutdownResignsBeforeRemovingVirtualServers: on shutdown the
// instances resign (VIPs handed to the backup) while the virtual servers
// are still programmed; only then are they removed. The other order held
// the VIPs for a moment with nothing behind them.
func TestShutdownResignsBeforeRemovingVirtualServers(t *testing.T) {
	cfg := parse(t, `
virtual_server 10.0.0.100 5672 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 5672 {
        weight 1
    }
}
`)
	lc, _, errs := resolve(cfg)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	k := lvstest.New()
	d := newDaemon("test.conf", log)
	d.rec = lvs.NewReconciler(k, log)
	m, err := startIPVS(lc.Config, d.rec, lc.Health, 50*time.Millisecond, log, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d.ipvs = m
	waitUntil(t, "the virtual server programmed", func() bool { return len(k.Table()) == 1 })

	var steps []string
	shutdownTrace = func(step string) {
		steps = append(steps, step)
		if step == "instances stopped" && len(k.Table()) != 1 {
			t.Errorf("the virtual servers were gone before the instances resigned: %v", k.Table())
		}
	}
	defer func() { shutdownTrace = nil }()
	d.shutdown()
	if len(steps) != 2 || steps[0] != "instances stopped" || steps[1] != "virtual servers removed" {
		t.Fatalf("shutdown steps %q", steps)
	}
	if len(k.Table()) != 0 {
		t.Fatalf("virtual servers left after shutdown: %v", k.Table())
	}
}

// waitUntil polls cond every 10 ms for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
