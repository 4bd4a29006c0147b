package main

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/internal/testenv"
	"github.com/amqpha/amqpha/vipd/config"
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
		// a VIP's dev (as keepalived tracks it), then the configured ones.
		{"tracked interfaces", len(s.TrackInterfaces), 3},
		{"own interface first", s.TrackInterfaces[0], trackInterface{Name: "eth0"}},
		{"a VIP's interface", s.TrackInterfaces[1], trackInterface{Name: "eth1"}},
		{"tracked interface weight", s.TrackInterfaces[2].Weight, -10},
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

func TestResolveScriptSecurity(t *testing.T) {
	dir := t.TempDir() // under /tmp: writable by everyone, so unsafe
	unsafe := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(unsafe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, `
global_defs {
    enable_script_security
}
vrrp_script chk {
    script "`+unsafe+`"
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.0.0.100
    }
    track_script {
        chk
    }
    notify_master "`+unsafe+`"
    notify_backup "/bin/true"
}
`)
	lc, warnings, errs := resolve(cfg)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(warnings) != 2 {
		t.Fatalf("want a warning for the vrrp_script and the notify script, got %q", warnings)
	}
	for _, w := range warnings {
		if !strings.HasPrefix(w, "test.conf:") || !strings.Contains(w, "enable_script_security") {
			t.Errorf("warning %q does not name file:line and the reason", w)
		}
	}
	s := lc.Instances[0]
	if len(lc.Scripts) != 0 || len(s.TrackScripts) != 0 {
		t.Errorf("the unsafe vrrp_script is still run or tracked: %+v %+v", lc.Scripts, s.TrackScripts)
	}
	if _, ok := s.NotifyState[vrrp.Master]; ok {
		t.Error("the unsafe notify_master script is still run")
	}
	if _, ok := s.NotifyState[vrrp.Backup]; !ok {
		t.Error("the safe notify_backup script was dropped")
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
// on the source documents' own files: every one is accepted, the JSON it
// prints carries no password.
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
