//go:build integration

package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/cluster"
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

// The README's main-job command: it starts a cluster, prints the URIs, and
// on Ctrl-C tears everything down and exits 0.
func TestDemoStartsAndStopsOnInterrupt(t *testing.T) {
	if _, err := os.Stat(cluster.DefaultBinDir + "/rabbitmq-server"); err != nil && !clustertest.InCI() {
		t.Skipf("skipping: %v", cluster.ErrNotInstalled)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	var out []string
	timeout := time.After(clustertest.StartTimeout)
	for ready := false; !ready; {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo exited before it was ready:\n%s", strings.Join(out, "\n"))
			}
			out = append(out, l)
			ready = strings.Contains(l, "Press Ctrl-C")
		case <-timeout:
			t.Fatalf("demo not ready:\n%s", strings.Join(out, "\n"))
		}
	}
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
