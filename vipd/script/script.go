package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// DefaultTimeout bounds a run whose Command has no timeout of its own.
const DefaultTimeout = 10 * time.Second

// maxOutput is how much of a script's output is kept for logs.
const maxOutput = 4096

// Command is one program to run.
type Command struct {
	// Argv is the program and its arguments. An Argv[0] without a slash is
	// looked up in vipd's PATH, as keepalived does.
	Argv []string
	// Timeout ends the run (killing the process group); zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Credential runs the program as another user (script_user); nil keeps
	// vipd's own.
	Credential *syscall.Credential
	// Env is the program's environment; nil gives it a minimal one (PATH
	// only), not vipd's.
	Env []string
}

// Result is how a run ended.
type Result struct {
	ExitCode int  // -1 when the program did not exit by itself
	TimedOut bool // a deadline (Timeout, or the caller's ctx) passed and the group was killed
	Duration time.Duration
	Output   []byte // stdout and stderr, first 4 KiB
}

// OK reports whether the program exited with status 0.
func (r Result) OK() bool { return r.ExitCode == 0 && !r.TimedOut }

// Run runs c with extra arguments appended, and waits until it ends, its
// timeout passes or ctx ends. An error means the program could not be
// started, or it was killed; a non-zero exit is not an error (see
// Result.ExitCode).
func Run(ctx context.Context, c Command, extra ...string) (Result, error) {
	if len(c.Argv) == 0 {
		return Result{ExitCode: -1}, errors.New("script: empty command")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	args := append(append([]string(nil), c.Argv[1:]...), extra...)
	cmd := exec.CommandContext(ctx, c.Argv[0], args...)
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	out := &limitedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.Credential}
	// Kill the whole group, not only the leader, and do not wait for
	// grandchildren that keep the output pipe open.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second

	start := time.Now()
	err := cmd.Run()
	r := Result{ExitCode: -1, Duration: time.Since(start), Output: out.Bytes()}
	if ctx.Err() != nil {
		r.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
		return r, fmt.Errorf("script: %s killed after %v: %w", c.Argv[0], r.Duration.Round(time.Millisecond), ctx.Err())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.ExitCode = 0
	case errors.As(err, &exit):
		r.ExitCode = exit.ExitCode()
		if r.ExitCode < 0 {
			return r, fmt.Errorf("script: %s: %w", c.Argv[0], err)
		}
	default:
		return r, fmt.Errorf("script: %s: %w", c.Argv[0], err)
	}
	return r, nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		if len(p) > room {
			b.buf.Write(p[:room])
		} else {
			b.buf.Write(p)
		}
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte { return b.buf.Bytes() }
