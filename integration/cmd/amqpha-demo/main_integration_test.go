//go:build integration

package main

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/amqpha/amqpha/integration/clustertest"
)

const childEnv = "AMQPHA_TEST_DEMO_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(childEnv); args != "" {
		os.Args = append([]string{"amqpha-demo"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// runDemo runs the demo in a child process with args.
func runDemo(t *testing.T, args string) (*exec.Cmd, <-chan string) {
	t.Helper()
	return clustertest.Child(t, childEnv+"="+args)
}

func dataDir(t *testing.T, out string) string {
	t.Helper()
	m := regexp.MustCompile(`data in ([^)]+)\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the demo did not say where its data is:\n%s", out)
	}
	return m[1]
}

// A short run of the README's main job: kills and hangs under load, and a
// report with zero lost.
func TestDemoReportsZeroLost(t *testing.T) {
	cmd, lines := runDemo(t, "-duration 24s -every 8s -rate 100 -faults kill,hang")
	var out []string
	timeout := time.After(6 * time.Minute)
	for done := false; !done; {
		select {
		case l, ok := <-lines:
			if !ok {
				done = true
				break
			}
			out = append(out, l)
		case <-timeout:
			t.Fatalf("the demo did not finish:\n%s", strings.Join(out, "\n"))
		}
	}
	text := strings.Join(out, "\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the demo exited with %v:\n%s", err, text)
	}
	for _, want := range []string{"FAULT kill", "FAULT hang", "lost: 0 ", "nothing left behind"} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`confirmed +(\d+)`).FindStringSubmatch(text); m == nil || m[1] == "0" {
		t.Errorf("the report shows no confirmed message")
	}
	if _, err := os.Stat(dataDir(t, text)); !os.IsNotExist(err) {
		t.Errorf("cluster directory left behind (%v)", err)
	}
}

// Ctrl-C in the middle of a fault stops the demo cleanly: exit 0, a report,
// nothing left behind.
func TestDemoStopsOnInterrupt(t *testing.T) {
	cmd, lines := runDemo(t, "-duration 5m -every 3s -rate 100 -faults hang")
	out := clustertest.WaitLine(t, lines, "FAULT hang", clustertest.StartTimeout)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		out = append(out, l)
	}
	text := strings.Join(out, "\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the demo exited with %v after Ctrl-C:\n%s", err, text)
	}
	if !strings.Contains(text, "Report (interrupted") || !strings.Contains(text, "nothing left behind") {
		t.Errorf("no report or tear-down after Ctrl-C")
	}
	if _, err := os.Stat(dataDir(t, text)); !os.IsNotExist(err) {
		t.Errorf("cluster directory left behind (%v)", err)
	}
}
