package main

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/lvs/lvstest"
)

// TestIPVSManagerFollowsHealth: a real server whose MISC_CHECK fails leaves
// the table (or stays at weight 0 with inhibit_on_failure), comes back when
// the check passes, and a hand-made change is repaired.
func TestIPVSManagerFollowsHealth(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "up")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, `
virtual_server 10.0.0.100 5672 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 5672 {
        weight 2
        MISC_CHECK {
            misc_path "/usr/bin/test -e `+flag+`"
            misc_timeout 2
            delay_loop 0.05
        }
    }
    real_server 10.0.0.3 5672 {
        weight 3
        inhibit_on_failure
        MISC_CHECK {
            misc_path "/usr/bin/test -e `+flag+`"
            misc_timeout 2
            delay_loop 0.05
        }
    }
    real_server 10.0.0.4 5672 {
        weight 1
    }
}
`)
	lc, _, errs := resolve(cfg)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	k := lvstest.New()
	rec := lvs.NewReconciler(k, slog.New(slog.NewTextHandler(io.Discard, nil)))
	m, err := startIPVS(lc.Config, rec, lc.Health, 100*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.stop()

	weights := func() map[string]int {
		out := map[string]int{}
		for _, s := range k.Table() {
			for a, d := range s.Destinations {
				out[a.Addr().String()] = d.Weight
			}
		}
		return out
	}
	wait := func(what string, want map[string]int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := weights()
			same := len(got) == len(want)
			for a, w := range want {
				same = same && got[a] == w
			}
			if same {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: kernel has %v, want %v", what, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("all up", map[string]int{"10.0.0.2": 2, "10.0.0.3": 3, "10.0.0.4": 1})
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	wait("checks failing", map[string]int{"10.0.0.3": 0, "10.0.0.4": 1})
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	wait("checks passing again", map[string]int{"10.0.0.2": 2, "10.0.0.3": 3, "10.0.0.4": 1})

	// Drift: a weight changed and a real server added by hand.
	var svc lvs.Service
	for _, s := range k.Table() {
		svc = s.Service
	}
	ctx := context.Background()
	if err := k.UpdateDestination(ctx, svc, lvs.Destination{Addr: netip.MustParseAddr("10.0.0.4"), Port: 5672, Weight: 9, Forward: lvs.Masq}); err != nil {
		t.Fatal(err)
	}
	if err := k.AddDestination(ctx, svc, lvs.Destination{Addr: netip.MustParseAddr("10.0.0.9"), Port: 5672, Weight: 1, Forward: lvs.Masq}); err != nil {
		t.Fatal(err)
	}
	wait("drift repaired", map[string]int{"10.0.0.2": 2, "10.0.0.3": 3, "10.0.0.4": 1})
	st := m.status()
	if len(st.VirtualServers) != 1 || len(st.VirtualServers[0].RealServers) != 3 || st.Drifts == 0 {
		t.Fatalf("status: %+v", st)
	}
	if rs := st.VirtualServers[0].RealServers[0]; rs.State != lvs.Up.String() || !rs.InTable || len(rs.Checks) != 1 {
		t.Errorf("first real server's status: %+v", rs)
	}
	var b strings.Builder
	writeIPVSProm(&b, st)
	for _, line := range []string{
		`vipd_real_server_up{virtual_server="10.0.0.100:5672",real_server="10.0.0.2:5672"} 1`,
		`vipd_real_server_weight{virtual_server="10.0.0.100:5672",real_server="10.0.0.3:5672"} 3`,
	} {
		if !strings.Contains(b.String(), line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, b.String())
		}
	}
}

// TestIPVSReloadKeepsHealth: a reload takes over the monitors of unchanged
// real servers, so a dead one does not come back into the table for a
// moment while new checks start from "up".
func TestIPVSReloadKeepsHealth(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "up")
	text := `
virtual_server 10.0.0.100 5672 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 10.0.0.2 5672 {
        MISC_CHECK {
            misc_path "/usr/bin/test -e ` + flag + `"
            delay_loop 0.05
        }
    }
    real_server 10.0.0.3 5672 {
    }
}
`
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	k := lvstest.New()
	rec := lvs.NewReconciler(k, discard)
	m1 := startTestIPVS(t, text, rec)
	inTable := func() bool {
		for _, s := range k.Table() {
			for a := range s.Destinations {
				if a.Addr() == netip.MustParseAddr("10.0.0.2") {
					return true
				}
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for inTable() || len(k.Table()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the failing real server never left the table")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Reload: the same text parsed again (new pointers, same checks).
	lc2, _, _ := resolve(parse(t, text))
	m2, err := startIPVS(lc2.Config, rec, lc2.Health, 50*time.Millisecond, discard, m1)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.stop()
	if len(m1.byKey) != 0 || len(m2.monitors) != 1 {
		t.Fatalf("monitors not taken over: old %d left, new %d", len(m1.byKey), len(m2.monitors))
	}
	// Several reconcile rounds: the dead server must never be back.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if inTable() {
			t.Fatal("the dead real server came back into the table after the reload")
		}
	}
	// And the taken-over monitor still drives the new loop.
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !inTable(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the real server never came back after its check passed")
		}
	}
}

// TestIPVSUnsafeMiscCheck: a MISC_CHECK program refused by
// enable_script_security refuses the configuration with file:line; one
// missing when the configuration is loaded is reported with file:line and
// fails every time, so its real server stays out of the table (and says
// why in the status) while the others serve.
func TestIPVSUnsafeMiscCheck(t *testing.T) {
	unsafe := filepath.Join(t.TempDir(), "check.sh")
	if err := os.WriteFile(unsafe, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(unsafe, 0o777); err != nil {
		t.Fatal(err)
	}
	conf := func(path string) string {
		return `
global_defs {
    enable_script_security
    script_user root
}
virtual_server 10.0.0.100 5672 {
    lb_kind NAT
    real_server 10.0.0.2 5672 {
        MISC_CHECK {
            misc_path "` + path + `"
            delay_loop 0.05
        }
    }
    real_server 10.0.0.3 5672 {
        MISC_CHECK {
            misc_path /bin/true
            delay_loop 0.05
        }
    }
}
`
	}
	if os.Geteuid() == 0 {
		_, _, errs := resolve(parse(t, conf(unsafe)))
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "test.conf:9: MISC_CHECK of real_server 10.0.0.2:5672: ") {
			t.Fatalf("an unsafe MISC_CHECK: %v, want one error with file:line", errs)
		}
	}
	lc, warnings, errs := resolve(parse(t, conf("/nonexistent/check.sh")))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	found := false
	for _, w := range warnings {
		if strings.HasPrefix(w, "test.conf:9: MISC_CHECK of real_server 10.0.0.2:5672: ") &&
			strings.Contains(w, "keeps its real server out") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no file:line warning for the missing MISC_CHECK: %q", warnings)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	k := lvstest.New()
	m, err := startIPVS(lc.Config, lvs.NewReconciler(k, discard), lc.Health, 50*time.Millisecond, discard, nil)
	if err != nil {
		t.Fatalf("vipd refused to start over a missing MISC_CHECK program: %v", err)
	}
	defer m.stop()
	var st *ipvsStatus
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st = m.status()
		rs := st.VirtualServers[0].RealServers
		if !rs[0].InTable && rs[1].InTable && rs[0].State == lvs.Down.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want 10.0.0.2 down and out, 10.0.0.3 in: %+v", rs)
		}
	}
	if c := st.VirtualServers[0].RealServers[0].Checks; len(c) != 1 || !strings.Contains(c[0].Error, "not found") {
		t.Fatalf("the status does not say why: %+v", c)
	}
}

// TestIPVSFailedReloadKeepsRunning: when the new configuration's checks
// cannot be set up, the running manager goes on checking and applying.
func TestIPVSFailedReloadKeepsRunning(t *testing.T) {
	flag := filepath.Join(t.TempDir(), "up")
	text := `
virtual_server 10.0.0.100 5672 {
    lb_kind NAT
    real_server 10.0.0.2 5672 {
        MISC_CHECK {
            misc_path "/usr/bin/test -e ` + flag + `"
            delay_loop 0.05
        }
    }
}
`
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	k := lvstest.New()
	rec := lvs.NewReconciler(k, discard)
	m1 := startTestIPVS(t, text, rec)
	defer m1.stop()
	inTable := func() bool {
		for _, s := range k.Table() {
			if len(s.Destinations) > 0 {
				return true
			}
		}
		return false
	}
	waitFor := func(what string, want bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); inTable() != want; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: in table = %v", what, !want)
			}
		}
	}
	waitFor("check failing", false)

	// A configuration whose check has nowhere to connect (only a
	// hand-made one can: the parser refuses it).
	lc2, _, _ := resolve(parse(t, text+"virtual_server 10.0.0.101 80 {\n real_server 10.0.0.7 80 {\n TCP_CHECK {\n }\n }\n}\n"))
	lc2.Config.VirtualServers[1].RealServers[0].TCPCheck[0].ConnectPort = 0
	if _, err := startIPVS(lc2.Config, rec, lc2.Health, 50*time.Millisecond, discard, m1); err == nil {
		t.Fatal("startIPVS took a check with no port")
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor("the old manager still follows its check", true)
}

// startTestIPVS starts a manager for the virtual servers of text on rec,
// checking every 50 ms.
func startTestIPVS(t *testing.T, text string, rec *lvs.Reconciler) *ipvsManager {
	t.Helper()
	lc, _, errs := resolve(parse(t, text))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := startIPVS(lc.Config, rec, lc.Health, 50*time.Millisecond, discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
