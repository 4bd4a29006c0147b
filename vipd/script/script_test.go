package script

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunExitCodes(t *testing.T) {
	cases := []struct {
		argv []string
		code int
	}{
		{[]string{"/bin/true"}, 0},
		{[]string{"/bin/false"}, 1},
		{[]string{"/bin/sh", "-c", "exit 7"}, 7},
	}
	for _, c := range cases {
		r, err := Run(context.Background(), Command{Argv: c.argv})
		if err != nil || r.ExitCode != c.code || r.OK() != (c.code == 0) {
			t.Errorf("%v: %+v, %v; want exit %d", c.argv, r, err, c.code)
		}
	}
}

func TestRunPassesArgumentsWithoutShell(t *testing.T) {
	r, err := Run(context.Background(), Command{Argv: []string{"/bin/echo", "$HOME", "a b"}}, "MASTER")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Output); got != "$HOME a b MASTER\n" {
		t.Errorf("output %q: arguments were expanded or split", got)
	}
}

func TestRunGivesMinimalEnvironment(t *testing.T) {
	t.Setenv("AMQPHA_SECRET", "s3cret")
	r, err := Run(context.Background(), Command{Argv: []string{"/usr/bin/env"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(r.Output), "s3cret") {
		t.Errorf("the script saw vipd's environment: %q", r.Output)
	}
}

func TestRunKillsTheWholeGroupOnTimeout(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// The child sleeps in the background and the script waits for it: both
	// must die when the timeout passes.
	c := Command{
		Argv:    []string{"/bin/sh", "-c", "sleep 60 & echo $! > " + pidFile + "; wait"},
		Timeout: 300 * time.Millisecond,
	}
	r, err := Run(context.Background(), c)
	if err == nil || !r.TimedOut || r.OK() {
		t.Fatalf("Run = %+v, %v; want a timeout", r, err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The child was SIGKILLed with its group; once reaped by init it is gone.
	// Bounded wait: kill(pid, 0) fails with ESRCH when it is.
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still alive after the script's timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	r, err := Run(ctx, Command{Argv: []string{"/bin/sleep", "60"}})
	if !errors.Is(err, context.Canceled) || r.TimedOut {
		t.Fatalf("Run = %+v, %v; want context.Canceled", r, err)
	}
}

func TestRunLimitsOutput(t *testing.T) {
	r, err := Run(context.Background(), Command{Argv: []string{"/bin/sh", "-c", "head -c 100000 /dev/zero"}})
	if err != nil || len(r.Output) != maxOutput {
		t.Fatalf("kept %d bytes (%v), want %d", len(r.Output), err, maxOutput)
	}
}

func TestRunRefusesMissingProgram(t *testing.T) {
	if _, err := Run(context.Background(), Command{Argv: []string{"/nonexistent/x"}}); err == nil {
		t.Fatal("no error for a missing program")
	}
	if _, err := Run(context.Background(), Command{}); err == nil {
		t.Fatal("no error for an empty command")
	}
}
