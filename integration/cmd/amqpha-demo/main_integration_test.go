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

// finish collects the demo's output until it exits and checks that it
// exited with status 0.
func finish(t *testing.T, cmd *exec.Cmd, lines <-chan string) string {
	t.Helper()
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
	return text
}

// A short run of the README's main job: kills and hangs under load, and a
// report with zero lost. The hang comes first: restarting a killed node and
// waiting for it to rejoin can take longer than -every, and a fault too
// close to the end is left out.
func TestDemoReportsZeroLost(t *testing.T) {
	cmd, lines := runDemo(t, "-duration 24s -every 8s -rate 100 -faults hang,kill")
	text := finish(t, cmd, lines)
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

// A short side-by-side run: both clients face a cut and a kill; the table
// has both columns, amqpha lost nothing, and the plain client got messages
// through.
func TestDemoSideBySide(t *testing.T) {
	cmd, lines := runDemo(t, "-side-by-side -duration 20s -every 6s -rate 100 -faults cut,kill")
	text := finish(t, cmd, lines)
	for _, want := range []string{"Fairness:", "FAULT cut", "FAULT kill", "Report, side by side", "nothing left behind"} {
		if !strings.Contains(text, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^ +amqpha +plain amqp091-go$`).MatchString(text) {
		t.Errorf("the report has no table with both columns:\n%s", text)
	}
	cells := func(row string) []string {
		m := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(row) + ` +(\d+) +(\d+)$`).FindStringSubmatch(text)
		if m == nil {
			t.Fatalf("the table has no row %q:\n%s", row, text)
		}
		return m[1:]
	}
	if lost := cells("lost (confirmed, never consumed)"); lost[0] != "0" {
		t.Errorf("amqpha lost %s messages", lost[0])
	}
	for i, confirmed := range cells("confirmed") {
		if confirmed == "0" {
			t.Errorf("column %d of the table shows no confirmed message", i+1)
		}
	}
	if !regexp.MustCompile(`(?m)^    (cut|kill) +→ next (confirmed|consumed) \(\d+\)`).MatchString(text) {
		t.Errorf("the table has no failover gap per fault kind")
	}
	if _, err := os.Stat(dataDir(t, text)); !os.IsNotExist(err) {
		t.Errorf("cluster directory left behind (%v)", err)
	}
}

// Ctrl-C in the middle of a fault stops the demo cleanly, in both modes:
// exit 0, a report, nothing left behind.
func TestDemoStopsOnInterrupt(t *testing.T) {
	for _, tc := range []struct {
		name, args, report string
	}{
		{"default", "", "Report (interrupted"},
		{"side-by-side", "-side-by-side", "Report, side by side (interrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, lines := runDemo(t, "-duration 5m -every 3s -rate 100 -faults hang "+tc.args)
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
			if !strings.Contains(text, tc.report) || !strings.Contains(text, "nothing left behind") {
				t.Errorf("no report or tear-down after Ctrl-C:\n%s", text)
			}
			if _, err := os.Stat(dataDir(t, text)); !os.IsNotExist(err) {
				t.Errorf("cluster directory left behind (%v)", err)
			}
		})
	}
}
