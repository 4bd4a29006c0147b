package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const (
	// stopTimeout bounds how long cleanup waits for a killed process.
	stopTimeout = 10 * time.Second
	// waitDelay bounds how long Wait waits for output pipes held open by
	// descendants that escaped the process group.
	waitDelay = 2 * time.Second
	// failureLogLines is how much of a process's output a failed test logs.
	failureLogLines = 60
)

// Process is a command running in the background inside a [Host], in a
// process group of its own, with its standard output and error captured.
// Start it with [Host.Start]. Its methods are safe for concurrent use.
type Process struct {
	label string // host and command, for messages
	pid   int
	cmd   *exec.Cmd
	out   *output
	done  chan struct{} // closed once the process has been reaped
	err   error         // its exit status; read after done is closed
}

// Start runs argv in the background inside h's namespace (through
// ip netns exec, which execs argv in place: [Process.Pid] is argv's own pid)
// and returns once it runs. The process leads a process group of its own and
// gets SIGKILL should the test binary die. Cleanup kills the group (SIGKILL)
// and reaps it; when the test failed, it logs the end of the output. Start
// fails t if the command cannot be started.
func (h *Host) Start(t testing.TB, argv ...string) *Process {
	t.Helper()
	p, err := h.start(argv)
	if err != nil {
		t.Fatalf("netns: starting %q on %s: %v", argv, h.name, err)
	}
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("netns: stopping %s: %v", p.label, err)
		}
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.label, tail(p.Output(), failureLogLines))
		}
	})
	return p
}

func (h *Host) start(argv []string) (*Process, error) {
	if len(argv) == 0 {
		return nil, errors.New("netns: empty command")
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", h.ns}, argv...)...)
	out := newOutput()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	cmd.WaitDelay = waitDelay
	p := &Process{
		label: filepath.Base(argv[0]) + " on " + h.name,
		cmd:   cmd,
		out:   out,
		done:  make(chan struct{}),
	}
	started := make(chan error, 1)
	go func() {
		// The kernel sends the parent-death signal when the thread that
		// forked the child ends, not the process: keep this thread, locked
		// and blocked in wait, for as long as the child lives.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// Pid returns the process's pid, which is also its process group id.
func (p *Process) Pid() int { return p.pid }

// Signal sends sig to the process alone (not its group). Signalling a
// process that has exited returns os.ErrProcessDone.
func (p *Process) Signal(sig os.Signal) error {
	return p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to the process's whole group, so that its children
// die in the same instant, and returns without waiting; see [Process.Wait].
// Killing a process that has exited is no error.
func (p *Process) Kill() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := killGroup(p.pid); err != nil {
		return fmt.Errorf("netns: kill %s: %w", p.label, err)
	}
	return nil
}

// Exited returns a channel closed once the process has exited and its
// output is complete.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Wait blocks until the process has exited, at most timeout, and returns its
// exit status (nil for exit code 0, an *exec.ExitError otherwise) or an
// error wrapping [ErrTimeout].
func (p *Process) Wait(timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		return fmt.Errorf("%w: %s still running after %v", ErrTimeout, p.label, timeout)
	}
}

// Output returns what the process wrote to its standard output and error so
// far (the last MiB of it).
func (p *Process) Output() string { return p.out.String() }

// WaitOutput blocks until the process's output contains substr, at most
// timeout. It returns early with an error wrapping [ErrExited] if the process
// exits first, or wraps [ErrTimeout]; either error carries the end of the
// output.
func (p *Process) WaitOutput(substr string, timeout time.Duration) error {
	_, err := p.waitFor(fmt.Sprintf("%q", substr), timeout, func(s string) bool {
		return strings.Contains(s, substr)
	})
	return err
}

// waitFor waits until cond holds for the output; what describes cond in
// errors.
func (p *Process) waitFor(what string, timeout time.Duration, cond func(string) bool) (string, error) {
	s, err := p.out.waitFor(p.done, timeout, cond)
	switch {
	case errors.Is(err, ErrExited):
		return s, fmt.Errorf("%w: %s ended (%v) before %s appeared; output:\n%s", err, p.label, p.err, what, tail(s, failureLogLines))
	case err != nil:
		return s, fmt.Errorf("%w: %s: no %s after %v; output:\n%s", err, p.label, what, timeout, tail(s, failureLogLines))
	}
	return s, nil
}

// stop kills the process group unless the process has exited, and reaps it.
func (p *Process) stop() error {
	if err := p.Kill(); err != nil {
		return err
	}
	if err := p.Wait(stopTimeout); errors.Is(err, ErrTimeout) {
		return err
	}
	return nil
}
