package netns

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcess(t *testing.T) {
	s := New(t)
	h := s.Host("h", netip.MustParsePrefix("10.2.0.1/24"))

	t.Run("output and kill", func(t *testing.T) {
		// The shell reports its namespace's address, then its child keeps
		// the process group busy.
		p := h.Start(t, "sh", "-c", "ip -4 -o address show dev eth0; sleep 60 & echo child $!; echo ready; wait")
		if err := p.WaitOutput("ready", 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.Output(), "10.2.0.1/24") {
			t.Errorf("process not in the host's namespace:\n%s", p.Output())
		}
		pids, err := h.Pids()
		if err != nil || len(pids) < 2 {
			t.Fatalf("pids in %s: %v, %v; want the shell and its sleep", h, pids, err)
		}
		var child int
		if _, err := fmt.Sscanf(p.Output()[strings.Index(p.Output(), "child "):], "child %d", &child); err != nil {
			t.Fatalf("no child pid in %q: %v", p.Output(), err)
		}
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		var exit *exec.ExitError
		if err := p.Wait(5 * time.Second); !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("Wait after Kill = %v; want killed", err)
		}
		// Kill reached the whole group: the child, which held the output
		// pipe that Wait waited for, is gone, a zombie, or exiting (its
		// exit code, the last field of stat, is set).
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child)); err == nil {
			f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			if len(f) == 0 || (f[0] != "Z" && f[0] != "X" && f[len(f)-1] == "0") {
				t.Errorf("child %d survived Kill: %s", child, stat)
			}
		}
		if err := p.Kill(); err != nil {
			t.Errorf("second Kill: %v", err)
		}
	})

	t.Run("exits before output", func(t *testing.T) {
		p := h.Start(t, "sh", "-c", "echo bye; exit 3")
		err := p.WaitOutput("never printed", 5*time.Second)
		if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "bye") {
			t.Fatalf("WaitOutput = %v; want ErrExited with the output", err)
		}
		var exit *exec.ExitError
		if err := p.Wait(time.Second); !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Errorf("Wait = %v; want exit status 3", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		p := h.Start(t, "sleep", "60")
		if err := p.WaitOutput("never printed", 50*time.Millisecond); !errors.Is(err, ErrTimeout) {
			t.Errorf("WaitOutput = %v; want ErrTimeout", err)
		}
		if err := p.Wait(10 * time.Millisecond); !errors.Is(err, ErrTimeout) {
			t.Errorf("Wait = %v; want ErrTimeout", err)
		}
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(5 * time.Second); err == nil {
			t.Errorf("Wait after SIGTERM = nil; want terminated")
		}
	})
}

func TestCrash(t *testing.T) {
	s := New(t)
	a := s.Host("a", netip.MustParsePrefix("10.3.0.1/24"))
	b := s.Host("b", netip.MustParsePrefix("10.3.0.2/24"))
	p := a.Start(t, "sleep", "60")
	if err := a.Ping(t.Context(), netip.MustParseAddr("10.3.0.2")); err != nil {
		t.Fatal(err)
	}
	if err := a.Crash(); err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(5 * time.Second); err == nil {
		t.Errorf("process survived the crash")
	}
	if ok, err := a.HasAddr(Iface, netip.MustParseAddr("10.3.0.1")); err != nil || !ok {
		t.Errorf("address gone after the crash: %v, %v", ok, err)
	}
	out, err := ip("-n", a.Namespace(), "-j", "link", "show", "dev", Iface)
	if err != nil || !strings.Contains(string(out), "NO-CARRIER") {
		t.Errorf("eth0 of the crashed host has its carrier: %s, %v", out, err)
	}
	ctx, cancel := contextWithTimeout(t, 300*time.Millisecond)
	defer cancel()
	if err := b.Ping(ctx, netip.MustParseAddr("10.3.0.1")); err == nil {
		t.Errorf("crashed host answers ping")
	}
	if err := a.Heal(); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := contextWithTimeout(t, 5*time.Second)
	defer cancel2()
	if err := b.Ping(ctx2, netip.MustParseAddr("10.3.0.1")); err != nil {
		t.Errorf("healed host does not answer ping: %v", err)
	}
}
