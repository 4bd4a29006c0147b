//go:build integration

package main

import (
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/amqpha/amqpha/integration/clustertest"
	"go.uber.org/goleak"
)

const childEnv = "AMQPHA_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Args = []string{"amqpha-cluster", "-nodes", "2"}
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// ./run.sh cluster: it starts a cluster, prints the URIs, and on Ctrl-C
// tears everything down and exits 0.
func TestClusterCommandStartsAndStopsOnInterrupt(t *testing.T) {
	cmd, lines := clustertest.Child(t, childEnv+"=1")
	out := clustertest.WaitLine(t, lines, "Press Ctrl-C", clustertest.StartTimeout)
	text := strings.Join(out, "\n")
	uris := regexp.MustCompile(`amqp://guest:guest@127\.0\.0\.1:\d+/`).FindAllString(text, -1)
	if len(uris) < 2 {
		t.Fatalf("demo printed %d AMQP URIs, want some for each of 2 nodes:\n%s", len(uris), text)
	}
	dir := regexp.MustCompile(`data in ([^)]+)\)`).FindStringSubmatch(text)
	if dir == nil {
		t.Fatalf("demo did not say where its data is:\n%s", text)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		out = append(out, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo exited with %v after Ctrl-C:\n%s", err, strings.Join(out, "\n"))
	}
	if !strings.Contains(strings.Join(out, "\n"), "nothing left behind") {
		t.Errorf("demo did not report its tear-down:\n%s", strings.Join(out, "\n"))
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("cluster directory %s left behind (%v)", dir[1], err)
	}
}
