package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds a run whose Command has no timeout of its own.
const DefaultTimeout = 10 * time.Second

// NoTimeout as a Command's Timeout lets the program run until it ends or
// the caller's context does (keepalived's notify scripts).
const NoTimeout time.Duration = -1

// maxOutput is how much of a script's output is kept for logs.
const maxOutput = 4096

// Command is one program to run.
type Command struct {
	// Argv is the program and its arguments. An Argv[0] without a slash is
	// looked up in vipd's PATH, as keepalived does.
	Argv []string
	// Timeout ends the run (killing the process group); zero means
	// DefaultTimeout, NoTimeout (any negative value) none: the run then
	// ends only with the caller's context.
	Timeout time.Duration
	// Credential runs the program as another user (script_user); nil keeps
	// vipd's own.
	Credential *syscall.Credential
	// Env is the program's environment; nil gives it a minimal one (PATH
	// only), not vipd's.
	Env []string
	// Refused, when set, is why the command must not run (its program
	// was not there when the configuration was loaded): Start returns it
	// without running anything.
	Refused error
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
	p, err := Start(ctx, c, extra...)
	if err != nil {
		return Result{ExitCode: -1}, err
	}
	return p.Wait()
}

// Process is a started Command; Wait for it.
type Process struct {
	cmd    *exec.Cmd
	ctx    context.Context
	cancel context.CancelFunc
	out    *limitedBuffer
	start  time.Time
	name   string
}

// Start starts c with extra arguments appended and returns without
// waiting for it. Like keepalived, it runs c through /bin/sh -c when
// keepalived would: when Argv[0] is a redirection only (see [ShellOnly]),
// and when the program is not a binary the kernel can run (a script
// without a #! line). The timeout runs from now; ctx ending kills the
// program too.
func Start(ctx context.Context, c Command, extra ...string) (*Process, error) {
	if len(c.Argv) == 0 {
		return nil, errors.New("script: empty command")
	}
	if c.Refused != nil {
		return nil, c.Refused
	}
	var cancel context.CancelFunc
	switch {
	case c.Timeout < 0:
		ctx, cancel = context.WithCancel(ctx)
	case c.Timeout == 0:
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
	default:
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
	}
	argv := append(append([]string(nil), c.Argv...), extra...)
	p := &Process{ctx: ctx, cancel: cancel, out: &limitedBuffer{max: maxOutput}, name: c.Argv[0]}
	shell := ShellOnly(argv[0])
	if !shell {
		err := p.startArgv(c, argv)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, syscall.ENOEXEC) {
			cancel()
			return nil, fmt.Errorf("script: %s: %w", c.Argv[0], err)
		}
		// keepalived runs a file without a #! line through the shell,
		// which reads it as a shell script.
	}
	if err := p.startArgv(c, []string{"/bin/sh", "-c", ShellLine(argv)}); err != nil {
		cancel()
		return nil, fmt.Errorf("script: %s through /bin/sh: %w", c.Argv[0], err)
	}
	return p, nil
}

func (p *Process) startArgv(c Command, argv []string) error {
	cmd := exec.CommandContext(p.ctx, argv[0], argv[1:]...)
	cmd.Env = c.Env
	if cmd.Env == nil {
		cmd.Env = []string{"PATH=" + defaultPath}
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: c.Credential}
	// Kill the whole group, not only the leader, and do not wait for
	// grandchildren that keep the output pipe open.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd = cmd
	return nil
}

// Wait waits until the program ends, its timeout passes or the context
// given to Start ends, as Run does. Call it once.
func (p *Process) Wait() (Result, error) {
	defer p.cancel()
	err := p.cmd.Wait()
	r := Result{ExitCode: -1, Duration: time.Since(p.start), Output: p.out.Bytes()}
	if p.ctx.Err() != nil {
		r.TimedOut = errors.Is(p.ctx.Err(), context.DeadlineExceeded)
		return r, fmt.Errorf("script: %s killed after %v: %w", p.name, r.Duration.Round(time.Millisecond), p.ctx.Err())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		r.ExitCode = 0
	case errors.As(err, &exit):
		r.ExitCode = exit.ExitCode()
		if r.ExitCode < 0 {
			return r, fmt.Errorf("script: %s: %w", p.name, err)
		}
	default:
		return r, fmt.Errorf("script: %s: %w", p.name, err)
	}
	return r, nil
}

// defaultPath is the PATH scripts get.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ShellOnly reports whether a script's first word is a redirection and
// nothing else, such as "</dev/tcp/127.0.0.1/80" (a '<', optional blanks,
// then a '/'): keepalived hands such a script to /bin/sh -c, which opens
// the file and exits 0 if it could. Nothing is executed, so keepalived
// neither looks it up nor checks its security; neither does vipd.
func ShellOnly(arg0 string) bool {
	rest, ok := strings.CutPrefix(arg0, "<")
	return ok && strings.HasPrefix(strings.TrimLeft(rest, " \t"), "/")
}

// ShellLine is the command line keepalived gives /bin/sh -c for argv:
// every word in single quotes, except a first word starting with '<' or
// '>' (a redirection), which the shell must see as it is.
func ShellLine(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if i == 0 && (strings.HasPrefix(a, "<") || strings.HasPrefix(a, ">")) {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
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
