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
	m, err := startIPVS(lc.Config, rec, lc.Health, 100*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)), nil, nil, nil)
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
	m2, err := startIPVS(lc2.Config, rec, lc2.Health, 50*time.Millisecond, discard, m1, nil, nil)
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
	conf := func(path string) string {
		return secureNAT + `    real_server 10.0.0.2 5672 {
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
		_, _, errs := resolve(parse(t, conf(unsafeScript(t))))
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
	m, err := startIPVS(lc.Config, lvs.NewReconciler(k, discard), lc.Health, 50*time.Millisecond, discard, nil, nil, nil)
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
	if _, err := startIPVS(lc2.Config, rec, lc2.Health, 50*time.Millisecond, discard, m1, nil, nil); err == nil {
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
	m, err := startIPVS(lc.Config, rec, lc.Health, 50*time.Millisecond, discard, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestIPVSNotifyUpDown: a real server's notify_down runs when its checks
// take it out, notify_up when they bring it back, with no arguments (as
// keepalived runs them) and nothing at start for a server that starts up.
// A reload that changes only the scripts (the checks, and so the monitor,
// carry over) runs the new ones.
func TestIPVSNotifyUpDown(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "up")
	events := filepath.Join(dir, "events")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	text := func(tag string) string {
		return `
virtual_server 10.0.0.100 5672 {
    lb_kind NAT
    real_server 10.0.0.2 5672 {
        notify_up "/bin/sh -c 'echo ` + tag + `up \"$#\" >> ` + events + `'"
        notify_down "/bin/sh -c 'echo ` + tag + `down \"$#\" >> ` + events + `'"
        MISC_CHECK {
            misc_path "/usr/bin/test -e ` + flag + `"
            delay_loop 0.05
        }
    }
}
`
	}
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	n := newNotifier(discard)
	defer n.close(time.Second)
	k := lvstest.New()
	rec := lvs.NewReconciler(k, discard)
	lc, warnings, errs := resolve(parse(t, text("")))
	if len(errs) > 0 || len(warnings) > 0 || len(lc.RealServerNotify) != 1 {
		t.Fatalf("errors %v warnings %q scripts %v", errs, warnings, lc.RealServerNotify)
	}
	m, err := startIPVS(lc.Config, rec, lc.Health, 50*time.Millisecond, discard, nil, n, lc.RealServerNotify)
	if err != nil {
		t.Fatal(err)
	}
	lines := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(events)
			got := strings.TrimSpace(string(b))
			if got == strings.Join(want, "\n") {
				return
			}
			if time.Now().After(deadline) || strings.Count(got, "\n") >= len(want) {
				t.Fatalf("notify scripts ran:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	lines("down 0")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	lines("down 0", "up 0")

	lc2, _, errs := resolve(parse(t, text("new-")))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	m2, err := startIPVS(lc2.Config, rec, lc2.Health, 50*time.Millisecond, discard, m, n, lc2.RealServerNotify)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.stop()
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	lines("down 0", "up 0", "new-down 0")
}

// TestIPVSNotifyScriptSecurity: notify_up and notify_down are checked like
// every script: one enable_script_security refuses stops the
// configuration with file:line.
func TestIPVSNotifyScriptSecurity(t *testing.T) {
	requireRoot(t)
	_, _, errs := resolve(parse(t, secureNAT+`    real_server 10.0.0.2 5672 {
        notify_up /bin/true
        notify_down `+unsafeScript(t)+`
        TCP_CHECK {
        }
    }
}
`))
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "test.conf:8: real_server 10.0.0.2:5672 notify_down: ") {
		t.Fatalf("errors %v, want one for notify_down with file:line", errs)
	}
}

// secureNAT opens a configuration with enable_script_security and a NAT
// virtual_server, whose real servers follow (the first on line 8).
const secureNAT = `
global_defs {
    enable_script_security
    script_user root
}
virtual_server 10.0.0.100 5672 {
    lb_kind NAT
`
