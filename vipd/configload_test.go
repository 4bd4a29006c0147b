package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/internal/testenv"
	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/script"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.conf", []byte(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return cfg
}

func TestResolveInstance(t *testing.T) {
	cfg := parse(t, `
vrrp_script chk {
    script "/bin/true"
    interval 2
    weight -30
    fall 3
    rise 2
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 120
    advert_int 1
    nopreempt
    authentication {
        auth_type PASS
        auth_pass 123456789
    }
    unicast_src_ip 10.0.0.1
    unicast_peer {
        10.0.0.2
    }
    virtual_ipaddress {
        10.0.0.100/24 dev eth1 label eth1:vip
        10.0.0.101
    }
    track_interface {
        eth2 weight -10
    }
    track_script {
        chk
    }
    notify_master "/bin/echo master"
    notify "/bin/echo any"
}
`)
	lc, warnings, errs := resolve(cfg)
	if len(errs) > 0 || len(warnings) > 0 {
		t.Fatalf("resolve: %v %v", errs, warnings)
	}
	if len(lc.Scripts) != 1 || lc.Scripts[0].Interval != 2*time.Second || lc.Scripts[0].Fall != 3 || lc.Scripts[0].Rise != 2 {
		t.Errorf("scripts: %+v", lc.Scripts)
	}
	s := lc.Instances[0]
	want := []struct {
		name      string
		got, want any
	}{
		{"VRID", s.VRID, uint8(51)},
		{"version", s.Version, 2},
		{"priority", s.Priority, uint8(120)},
		{"interval", s.Interval, time.Second},
		{"initial state", s.InitialState, vrrp.Master},
		{"preempt", s.Preempt, false},
		{"auth type", s.AuthType, uint8(vrrp.AuthPass)},
		{"auth data (first 8 bytes)", string(s.AuthData[:]), "12345678"},
		{"source", s.Source, netip.MustParseAddr("10.0.0.1")},
		{"peers", len(s.Peers), 1},
		{"VIPs", len(s.VIPs), 2},
		{"VIP dev", s.VIPs[0].Dev, "eth1"},
		{"VIP label", s.VIPs[0].Label, "eth1:vip"},
		{"VIP prefix", s.VIPs[1].Prefix, netip.MustParsePrefix("10.0.0.101/32")},
		// The instance's own interface is tracked (FAULT while down), then
		// the configured ones, then the devices of the addresses.
		{"tracked interfaces", fmt.Sprint(s.TrackInterfaces), fmt.Sprint([]trackInterface{{Name: "eth0"}, {Name: "eth2", Weight: -10}, {Name: "eth1"}})},
		{"tracked script weight", s.TrackScripts[0].Weight, -30},
		{"notify_master", strings.Join(s.NotifyState[vrrp.Master].Argv, " "), "/bin/echo master"},
		{"notify", strings.Join(s.Notify.Argv, " "), "/bin/echo any"},
	}
	for _, w := range want {
		if w.got != w.want {
			t.Errorf("%s = %v, want %v", w.name, w.got, w.want)
		}
	}
}

// TestResolveTracksAddressDevices: as keepalived does, the device of an
// address (or excluded address) other than the instance's interface is
// tracked with weight 0, once, unless the address says no_track; a device
// track_interface gives a weight loses it (keepalived's
// add_vrrp_to_interface sets the address's weight 0 over it: down is
// FAULT).
func TestResolveTracksAddressDevices(t *testing.T) {
	lc, _, errs := resolve(parse(t, `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.0.0.100/24 dev eth0
        10.0.1.100/24 dev eth1
        10.0.1.101/24 dev eth1
        10.0.2.100/24 dev eth2 no_track
        10.0.3.100/24 dev eth3
    }
    virtual_ipaddress_excluded {
        10.0.4.100/24 dev eth4
        10.0.5.100/24 dev eth5 no_track
    }
    track_interface {
        eth3 weight -20
    }
}`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	want := []trackInterface{{Name: "eth0"}, {Name: "eth3"}, {Name: "eth1"}, {Name: "eth4"}}
	if got := lc.Instances[0].TrackInterfaces; !slices.Equal(got, want) {
		t.Errorf("tracked %+v, want %+v", got, want)
	}
}

// TestResolveScriptSecurity: under enable_script_security a bare command
// name is looked up in PATH and then checked like any path, as keepalived
// does (killall -0 haproxy stays tracked); a script keepalived would
// disable as unsafe refuses the configuration with file:line; a missing
// program is a warning and the script fails closed; without script_user
// and without keepalived's default user, every script is refused.
func TestResolveScriptSecurity(t *testing.T) {
	requireRoot(t)
	unsafe := unsafeScript(t)
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	conf := func(global, script, notify string) string {
		return `
global_defs {
    enable_script_security
` + global + `
}
vrrp_script chk {
    script "` + script + `"
}
` + trackChk + `    notify_master "` + notify + `"
    notify_backup "/bin/true"
}
`
	}

	lc, warnings, errs := resolve(parse(t, conf("script_user root", "true -x", "/bin/true")))
	if len(errs) > 0 || len(warnings) > 0 {
		t.Fatalf("a bare command name under enable_script_security: errors %v warnings %q", errs, warnings)
	}
	if len(lc.Scripts) != 1 || len(lc.Instances[0].TrackScripts) != 1 || strings.Join(lc.Scripts[0].Command.Argv, " ") != truePath+" -x" {
		t.Fatalf("the script is not tracked as %s -x: %+v", truePath, lc.Scripts)
	}

	_, _, errs = resolve(parse(t, conf("script_user root", unsafe, unsafe)))
	if len(errs) != 2 {
		t.Fatalf("want an error for the vrrp_script and the notify script, got %v", errs)
	}
	for _, err := range errs {
		if !strings.HasPrefix(err.Error(), "test.conf:") || !strings.Contains(err.Error(), "enable_script_security") {
			t.Errorf("error %q does not name file:line and the reason", err)
		}
	}

	lc, warnings, errs = resolve(parse(t, conf("script_user root", "no-such-check-here", "/nonexistent/notify")))
	if len(errs) > 0 || len(warnings) != 2 {
		t.Fatalf("missing programs: errors %v, warnings %q; want two warnings", errs, warnings)
	}
	if len(lc.Instances[0].TrackScripts) != 1 || lc.Scripts[0].Command.Refused == nil {
		t.Errorf("a missing vrrp_script is not kept tracked, failing: %+v", lc.Scripts)
	}
	if r, err := script.Run(context.Background(), lc.Scripts[0].Command); err == nil || r.OK() {
		t.Errorf("a missing vrrp_script ran: %+v %v", r, err)
	}

	// Where keepalived's default user exists, the test goes on as if not.
	lookupUser = func(name string) (*user.User, error) { return nil, user.UnknownUserError(name) }
	t.Cleanup(func() { lookupUser = user.Lookup })
	_, _, errs = resolve(parse(t, conf("", "/bin/true", "/bin/true")))
	if len(errs) != 3 || !strings.Contains(errs[0].Error(), "script_user") {
		t.Errorf("no script_user and no %s: %v, want three errors naming script_user", defaultScriptUser, errs)
	}
}

func TestResolveErrors(t *testing.T) {
	cases := []struct{ name, text, want string }{
		{"AH auth", `vrrp_instance V { interface eth0
virtual_router_id 1
authentication {
auth_type AH
auth_pass x
}
virtual_ipaddress {
10.0.0.1
}
}`, "AH is not supported"},
		{"unknown script user", `global_defs {
script_user no-such-user-here
}
vrrp_script s {
script "/bin/true"
}
vrrp_instance V { interface eth0
virtual_router_id 1
virtual_ipaddress {
10.0.0.1
}
}`, "no-such-user-here"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, errs := resolve(parse(t, c.text))
			err := errors.Join(errs...)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "test.conf:") {
				t.Fatalf("error %v, want file:line and %q", err, c.want)
			}
		})
	}
}

// TestCheckCommand runs `vipd check` on the project's example configs and
// on the source documents' own files: every one is accepted; by default
// only the OK line goes to stdout, with -dump the JSON, which carries no
// password.
func TestCheckCommand(t *testing.T) {
	root := testenv.RepoRoot(t)
	files, _ := filepath.Glob(filepath.Join(root, "examples", "vipd", "*.conf"))
	seeds, _ := filepath.Glob(filepath.Join(root, "..", "shared", "seeds", "configs", "*.conf"))
	if len(seeds) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the seeds' configs are missing from ../shared/seeds/configs")
		}
		t.Log("the seeds' configs are not in ../shared/seeds/configs: checking the examples only")
	}
	files = append(files, seeds...)
	if len(files) < 3 {
		t.Fatalf("only %d configs found", len(files))
	}
	for _, f := range files {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"check", "-f", f}, &stdout, &stderr); code != 0 {
			t.Errorf("vipd check %s: exit %d\n%s", f, code, stderr.String())
			continue
		}
		if got := stdout.String(); !strings.HasPrefix(got, f+": OK (") || strings.Count(got, "\n") != 1 {
			t.Errorf("vipd check %s printed %q, want only the OK line", f, got)
		}
		stdout.Reset()
		stderr.Reset()
		if code := run([]string{"check", "-f", f, "-dump"}, &stdout, &stderr); code != 0 {
			t.Errorf("vipd check -dump %s: exit %d\n%s", f, code, stderr.String())
			continue
		}
		if !strings.Contains(stderr.String(), f+": OK (") {
			t.Errorf("vipd check -dump %s: no OK line on stderr:\n%s", f, stderr.String())
		}
		if !strings.Contains(stdout.String(), `"vrrp_instance"`) {
			t.Errorf("vipd check %s printed no configuration", f)
		}
		for _, pass := range []string{"rmq-ha1", "root123", "1111"} {
			if strings.Contains(stdout.String(), `"`+pass+`"`) {
				t.Errorf("vipd check %s printed the password %q", f, pass)
			}
		}
	}
}

func TestCheckCommandReportsFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.conf")
	text := "vrrp_instance V {\n    interface eth0\n    virtual_router_id 300\n}\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "-f", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), path+":3:") {
		t.Errorf("stderr %q does not point at %s:3", stderr.String(), path)
	}
	if stdout.Len() != 0 {
		t.Errorf("a refused config printed %q", stdout.String())
	}
}

// TestCheckAndRunRefuseWhatVipdDoesNotDo: a keyword vipd does not
// implement that could change failover, and a misspelt keyword, fail
// `vipd check` (exit 1, file:line and what to do on stderr, nothing on
// stdout) and keep `vipd run` from starting; a keyword that cannot change
// failover is a warning and the check passes.
func TestCheckAndRunRefuseWhatVipdDoesNotDo(t *testing.T) {
	const head = "vrrp_instance V {\n    interface eth0\n    virtual_router_id 7\n    virtual_ipaddress {\n        10.0.0.1\n    }\n}\n"
	cases := []struct {
		name, text string
		code       int
		want       string
	}{
		{"SMTP_CHECK", head + "virtual_server 10.0.0.1 25 {\n    protocol TCP\n    real_server 10.0.0.2 25 {\n        SMTP_CHECK {\n        }\n    }\n}\n",
			1, ":11: SMTP_CHECK: not supported by vipd: vipd has no SMTP check; use TCP_CHECK"},
		{"misspelt", head + "virtual_server 10.0.0.1 25 {\n    protocol TCP\n    delay_lop 5\n    real_server 10.0.0.2 25 {\n        TCP_CHECK {\n        }\n    }\n}\n",
			1, `:10: unknown keyword "delay_lop" in virtual_server 10.0.0.1 25: did you mean "delay_loop"?`},
		{"weight IPVS would clamp", head + "virtual_server 10.0.0.1 25 {\n    protocol TCP\n    real_server 10.0.0.2 25 {\n        weight 70000\n        TCP_CHECK {\n        }\n    }\n}\n",
			1, ":8: virtual_server 10.0.0.1 25: real_server 10.0.0.2:25: weight 70000 is above 65535"},
		{"mail only", "global_defs {\n    smtp_helo_name lb1\n}\n" + head, 0, "warning: "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keepalived.conf")
			if err := os.WriteFile(path, []byte(c.text), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			code := run([]string{"check", "-f", path}, &stdout, &stderr)
			if code != c.code || !strings.Contains(stderr.String(), c.want) {
				t.Fatalf("exit %d, want %d; stderr:\n%s\nwant it to contain %q", code, c.code, stderr.String(), c.want)
			}
			_, err := loadConfig(path, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if c.code != 0 {
				if stdout.Len() != 0 {
					t.Errorf("a refused config printed %q", stdout.String())
				}
				if err == nil || !strings.Contains(err.Error(), path+c.want) {
					t.Errorf("vipd run would start: loadConfig error %v", err)
				}
				return
			}
			if err != nil || !strings.HasPrefix(stdout.String(), path+": OK") {
				t.Errorf("loadConfig %v; stdout %q", err, stdout.String())
			}
		})
	}
}

func TestLoadConfigRefusesBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(path, []byte("vrrp_instance {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadConfig(path, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Fatal("no error for a broken file")
	}
}

// TestSystemdUnit: the shipped unit passes systemd-analyze verify, and
// grants vipd exactly CAP_NET_ADMIN and CAP_NET_RAW.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("vipd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
		"AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW",
		"NoNewPrivileges=yes",
	} {
		if !bytes.Contains(unit, []byte(line+"\n")) {
			t.Errorf("unit lacks %q", line)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is missing (package systemd)")
		}
		t.Skip("systemd-analyze is not installed")
	}
	// verify wants the binaries the unit names to exist: point them at a
	// freshly built vipd.
	bin := filepath.Join(t.TempDir(), "vipd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	path := filepath.Join(t.TempDir(), "vipd.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/sbin/vipd"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestCheckWarnsAboutTCPCheckOnAMQP(t *testing.T) {
	cfg := parse(t, `
virtual_server 10.0.0.100 5672 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.2 5672 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.0.0.3 5672 {
        TCP_CHECK {
            connect_timeout 3
        }
        AMQP_CHECK {
            user monitor
            password s3cret
        }
    }
    real_server 10.0.0.4 5672 {
    }
}
virtual_server 10.0.0.100 15672 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.0.0.2 15672 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 10.0.0.3 15671 {
        SSL_GET {
            url {
                path /api/health/checks/alarms
            }
        }
    }
}
`)
	_, warnings, errs := resolve(cfg)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	joined := strings.Join(warnings, "\n")
	if len(warnings) != 3 || !strings.Contains(warnings[0], "test.conf:6: real_server 10.0.0.2:5672: an AMQP port guarded by TCP_CHECK alone") ||
		!strings.Contains(warnings[1], "test.conf:20: real_server 10.0.0.4:5672: no health check") ||
		!strings.Contains(warnings[2], "test.conf:33: real_server 10.0.0.3:15671: SSL_GET verifies the server's certificate") {
		t.Fatalf("warnings:\n%s", joined)
	}
	if strings.Contains(joined, "s3cret") {
		t.Fatal("a warning shows the AMQP_CHECK password")
	}
}

// requireRoot fails (in CI) or skips a test that checks scripts as root
// runs them.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root: scripts are checked as root runs them (CI runs as root)")
		}
		t.Skip("needs root: scripts are checked as root runs them")
	}
}

// unsafeScript writes a script anyone may rewrite, which
// enable_script_security refuses.
func unsafeScript(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "unsafe.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o777); err != nil { // umask aside
		t.Fatal(err)
	}
	return p
}

// TestResolveInitFail: keepalived resets init_fail for every script an
// instance tracks (checked with keepalived 2.2.7: rise 3 with init_fail,
// one success and the instance is BACKUP); vipd does the same and says so.
func TestResolveInitFail(t *testing.T) {
	lc, warnings, errs := resolve(parse(t, `
vrrp_script chk {
    script /bin/true
    rise 3
    init_fail
}
`+trackChk+`}
`))
	if len(errs) > 0 || len(warnings) != 1 || !strings.HasPrefix(warnings[0], "test.conf:2: vrrp_script chk: init_fail has no effect") {
		t.Fatalf("errors %v, warnings %q; want one warning with file:line", errs, warnings)
	}
	st := newScriptTracker(lc.Scripts[0], false)
	if st.record(true); !st.isOK() {
		t.Error("with init_fail, one success did not make the script OK (keepalived: it does)")
	}
}

// trackChk opens a vrrp_instance VI_1 that tracks vrrp_script chk; its
// closing brace is the caller's.
const trackChk = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.0.0.100
    }
    track_script {
        chk
    }
`

// TestResolveDevTCPWithoutBash: keepalived's vrrp.localcheck sample
// ("</dev/tcp/127.0.0.1/80") runs through /bin/sh; where that is not bash
// it fails every time, in keepalived too, and vipd check warns.
func TestResolveDevTCPWithoutBash(t *testing.T) {
	_, warnings, errs := resolve(parse(t, `
vrrp_script chk {
    script "</dev/tcp/127.0.0.1/80"
}
`+trackChk+`}
`))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	warned := len(warnings) == 1 && strings.HasPrefix(warnings[0], "test.conf:2: ") && strings.Contains(warnings[0], "not bash")
	if warned == shellIsBash() {
		t.Fatalf("/bin/sh is bash: %v; warnings %q", shellIsBash(), warnings)
	}
}
