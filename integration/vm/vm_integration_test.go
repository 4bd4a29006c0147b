//go:build integration

package vm_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/vm"
)

// TestIPVSInVM boots Debian's kernel and runs TestGuestIPVS in it: IPVS
// modules loaded on demand, a virtual service made with moby/ipvs and read
// back (also with ipvsadm), and TCP through IPVS in NAT and DR mode between
// network namespaces inside the VM.
func TestIPVSInVM(t *testing.T) {
	vm.Require(t)
	cfg := vm.Config{
		OnDemand: true,
		Binaries: []string{hostBinary(t, "ipvsadm", "ipvsadm"), hostBinary(t, "ip", "iproute2")},
		Timeout:  3 * time.Minute,
	}
	res := vm.RunTest(t, ".", "^TestGuestIPVS$", cfg)
	t.Logf("boot %v, total %v", res.Boot, res.Duration)
}

// TestRun checks the VM plumbing with busybox alone: output, exit status,
// environment and argument quoting, extra files.
func TestRun(t *testing.T) {
	vm.Require(t)
	f := filepath.Join(t.TempDir(), "greeting")
	if err := os.WriteFile(f, []byte("hello from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := vm.Run(t.Context(), vm.Config{
		Modules: []string{}, // nothing to load: quicker
		Files:   map[string]string{"/srv/greeting": f},
		Env:     []string{"GREETING=it's $HOME"},
		Command: []string{"sh", "-c", `cat /srv/greeting; echo "$GREETING"; echo "$1"; printf 'no newline'; exit 7`, "sh", "a 'quoted' arg"},
		Timeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "hello from the host\nit's $HOME\na 'quoted' arg\nno newline\n"
	if res.Output != want || res.ExitCode != 7 {
		t.Fatalf("got exit %d, output %q; want exit 7, output %q\nconsole:\n%s", res.ExitCode, res.Output, want, res.Console)
	}
	if res.Boot <= 0 || res.Duration < res.Boot {
		t.Errorf("Boot %v, Duration %v", res.Boot, res.Duration)
	}
	t.Logf("boot %v, total %v", res.Boot, res.Duration)
}

// TestRunTimeout: a guest that does not finish in time is killed and the
// run fails with ErrTimeout and the console so far.
func TestRunTimeout(t *testing.T) {
	vm.Require(t)
	start := time.Now()
	_, err := vm.Run(t.Context(), vm.Config{
		Modules: []string{},
		Command: []string{"sleep", "3600"},
		Timeout: 2 * time.Second,
	})
	var ge *vm.GuestError
	if !errors.Is(err, vm.ErrTimeout) || !errors.As(err, &ge) {
		t.Fatalf("err = %v, want a *GuestError wrapping ErrTimeout", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("Run took %v after its timeout", d)
	}
}

// TestRunCanceled: cancelling the context ends the run the same way.
func TestRunCanceled(t *testing.T) {
	vm.Require(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := vm.Run(ctx, vm.Config{Modules: []string{}, Command: []string{"true"}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// hostBinary finds a host command for Config.Binaries, or skips (fails in
// CI) naming the Debian package.
func hostBinary(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name)
		}
	}
	msg := name + " is not installed (apt-get install " + pkg + "; scripts/setup.sh does)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: prerequisites must be present)")
	}
	t.Skip(msg)
	return ""
}
