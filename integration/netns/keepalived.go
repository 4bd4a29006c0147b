package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// keepalivedStartTimeout bounds how long StartKeepalived waits for the first
// state of a VRRP instance; keepalived reaches it within milliseconds.
const keepalivedStartTimeout = 10 * time.Second

// Keepalived is a real keepalived running as a VRRP peer inside a [Host].
// Start it with [StartKeepalived]. Its methods are safe for concurrent use.
type Keepalived struct {
	host *Host
	proc *Process
	conf string // path of its configuration file
}

// StartKeepalived writes conf (keepalived.conf text) to a temporary directory
// of t and runs keepalived on it inside h: VRRP only (this kernel has no
// IPVS), in the foreground, logging in detail to its captured output and not
// to syslog, with pid files of its own so that any number of instances can
// run side by side. It returns once the VRRP child has logged the first state
// of an instance ("Entering BACKUP STATE (init)" for most configurations),
// and fails t with keepalived's log if keepalived exits or stays silent
// before that. Cleanup kills keepalived and its children (SIGKILL to the
// process group). StartKeepalived skips or fails t as [RequireKeepalived]
// does.
func StartKeepalived(t testing.TB, h *Host, conf string) *Keepalived {
	t.Helper()
	return startKeepalived(t, h, conf, "VRRP state", stateLine)
}

// StartKeepalivedHeld is [StartKeepalived] for a configuration whose
// instances keepalived holds in FAULT at start without logging a state (a
// vrrp_script tracked without weight that has not reported yet): it
// returns once keepalived has logged "Startup complete".
func StartKeepalivedHeld(t testing.TB, h *Host, conf string) *Keepalived {
	t.Helper()
	return startKeepalived(t, h, conf, "startup", startupLine)
}

var startupLine = regexp.MustCompile(`: Startup complete`)

func startKeepalived(t testing.TB, h *Host, conf, what string, ready *regexp.Regexp) *Keepalived {
	t.Helper()
	bin := RequireKeepalived(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatalf("netns: %v", err)
	}
	argv := []string{
		bin,
		"--vrrp",        // no checker child: no IPVS needed
		"--dont-fork",   // stays our child, in our process group
		"--log-console", // to the captured output
		"--log-detail",
		"--no-syslog",
		"--use-file=" + path,
		"--pid=" + filepath.Join(dir, "keepalived.pid"),
		"--vrrp_pid=" + filepath.Join(dir, "vrrp.pid"),
		"--checkers_pid=" + filepath.Join(dir, "checkers.pid"),
	}
	k := &Keepalived{host: h, proc: h.Start(t, argv...), conf: path}
	if _, err := k.proc.waitFor(what, keepalivedStartTimeout, func(s string) bool {
		return ready.MatchString(s)
	}); err != nil {
		t.Fatalf("netns: keepalived on %s did not start: %v", h.name, err)
	}
	return k
}

// stateLine matches keepalived's log line for a state change, e.g.
// "(VI_1) Entering MASTER STATE" or "(VI_1) Entering BACKUP STATE (init)".
var stateLine = regexp.MustCompile(`\(([^()\s]+)\) Entering ([A-Z]+) STATE`)

// lastState returns the instance and state of the last state change in a
// keepalived log, or empty strings.
func lastState(log string) (instance, state string) {
	all := stateLine.FindAllStringSubmatch(log, -1)
	if len(all) == 0 {
		return "", ""
	}
	m := all[len(all)-1]
	return m[1], m[2]
}

// Host returns the host keepalived runs on.
func (k *Keepalived) Host() *Host { return k.host }

// Process returns the keepalived parent process.
func (k *Keepalived) Process() *Process { return k.proc }

// ConfigPath returns the path of the configuration file keepalived reads.
func (k *Keepalived) ConfigPath() string { return k.conf }

// Log returns what keepalived has logged so far.
func (k *Keepalived) Log() string { return k.proc.Output() }

// State returns the state named by the last "Entering … STATE" line of the
// log ("MASTER", "BACKUP", "FAULT"), of whichever instance logged last.
func (k *Keepalived) State() string {
	_, state := lastState(k.Log())
	return state
}

// WaitState blocks until the last state change in the log is to state
// ("MASTER", "BACKUP" or "FAULT"), at most timeout. With several VRRP
// instances the last line of any of them counts. It returns an error
// wrapping [ErrTimeout] or [ErrExited] that carries the end of the log.
func (k *Keepalived) WaitState(state string, timeout time.Duration) error {
	_, err := k.proc.waitFor(state+" state", timeout, func(s string) bool {
		_, last := lastState(s)
		return last == state
	})
	return err
}

// Kill crashes keepalived: SIGKILL to the parent and its VRRP child at once,
// so that neither can resign (send priority 0) or remove its VIPs, which stay
// configured. It does not wait; see [Process.Wait].
//
// Killing the parent alone is a different fault: the VRRP child notices,
// sends a priority-0 advertisement and removes its VIPs, and the backup takes
// over after its skew time instead of Master_Down_Interval.
func (k *Keepalived) Kill() error { return k.proc.Kill() }

// Stop shuts keepalived down gracefully (SIGTERM): it resigns mastership with
// a priority-0 advertisement and removes its VIPs. It blocks until
// keepalived has exited, at most timeout.
func (k *Keepalived) Stop(timeout time.Duration) error {
	if err := k.proc.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("netns: stop keepalived on %s: %w", k.host.name, err)
	}
	return k.proc.Wait(timeout)
}
