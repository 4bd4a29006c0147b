// Package clustertest gives tests a real RabbitMQ cluster from package
// cluster: one per test with [Start], or one per package with [Main].
//
// When RabbitMQ is not installed, tests skip with a message naming what is
// missing, except under CI (CI=true), where they fail.
package clustertest

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
	"go.uber.org/goleak"
)

// StartTimeout bounds how long a cluster may take to start.
const StartTimeout = 3 * time.Minute

// InCI reports whether the tests run under CI, where a missing prerequisite
// is a failure.
func InCI() bool { return os.Getenv("CI") == "true" }

// Start starts a cluster for one test and closes it when the test ends.
func Start(tb testing.TB, opts cluster.Options) *cluster.Cluster {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if opts.Logger == nil && testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	c, err := cluster.Start(ctx, opts)
	if errors.Is(err, cluster.ErrNotInstalled) && !InCI() {
		tb.Skipf("skipping: %v", err)
	}
	if err != nil {
		tb.Fatalf("start cluster: %v", err)
	}
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("close cluster: %v", err)
		}
	})
	return c
}

// Main runs a package's tests against one cluster shared by all of them,
// then closes it, checks that none of its processes is left and that no
// goroutine leaked. Call it from TestMain:
//
//	var c *cluster.Cluster
//
//	func TestMain(m *testing.M) { os.Exit(clustertest.Main(m, cluster.Options{}, &c)) }
func Main(m *testing.M, opts cluster.Options, c **cluster.Cluster) int {
	flag.Parse()
	if opts.Logger == nil && testing.Verbose() {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	started, err := cluster.Start(ctx, opts)
	cancel()
	if errors.Is(err, cluster.ErrNotInstalled) && !InCI() {
		fmt.Fprintf(os.Stderr, "skipping every test of this package: %v\n", err)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "start cluster: %v\n", err)
		return 1
	}
	*c = started
	code := m.Run()
	pids := started.Pids()
	dir := started.Dir()
	if err := started.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "close cluster: %v\n", err)
		code = 1
	}
	if err := CheckGone(pids, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	if err := goleak.Find(); err != nil {
		fmt.Fprintf(os.Stderr, "goroutine leak: %v\n", err)
		code = 1
	}
	return code
}

// CheckGone reports an error naming each of pids that still runs, and dir
// if it still exists.
func CheckGone(pids []int, dir string) error {
	var errs []error
	for _, pid := range pids {
		if cluster.Alive(pid) {
			errs = append(errs, fmt.Errorf("process %d of the cluster still runs", pid))
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("cluster directory %s still exists (stat: %v)", dir, err))
	}
	return errors.Join(errs...)
}

// Restore registers a cleanup that puts every node of c back as the next
// test expects it: healed, resumed, running, clustered, without alarm, out
// of maintenance. Tests that break nodes of a shared cluster call it first.
func Restore(tb testing.TB, c *cluster.Cluster) {
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
		defer cancel()
		for _, n := range c.Nodes() {
			n.Heal()
			if n.Paused() {
				if err := n.Resume(); err != nil {
					tb.Errorf("restore: %v", err)
				}
			}
		}
		if err := c.StartAll(ctx); err != nil {
			tb.Fatalf("restore: %v", err)
		}
		// Each check is a CLI call of ~0.5 s: the nodes in parallel.
		var wg sync.WaitGroup
		for _, n := range c.Nodes() {
			wg.Go(func() {
				if on, err := n.HasAlarm(ctx); err != nil || on {
					if err := n.ClearAlarm(ctx); err != nil {
						tb.Errorf("restore: %v", err)
					}
				}
				if m, err := n.UnderMaintenance(ctx); err != nil || m {
					if err := n.Revive(ctx); err != nil {
						tb.Errorf("restore: %v", err)
					}
				}
			})
		}
		wg.Wait()
	})
}

// Child runs the test binary again with env set (its TestMain runs the
// command's main when it sees env) and returns the command and its output
// lines as they come; the lines are logged too. The child is killed when
// the test ends if it still runs. Without the RabbitMQ binaries the test
// skips, or fails in CI.
func Child(t *testing.T, env string) (*exec.Cmd, <-chan string) {
	t.Helper()
	if _, err := os.Stat(cluster.DefaultBinDir + "/rabbitmq-server"); err != nil && !InCI() {
		t.Skipf("skipping: %v", cluster.ErrNotInstalled)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			t.Log(s.Text())
			lines <- s.Text()
		}
	}()
	return cmd, lines
}

// WaitLine reads lines until one contains substr and returns every line
// read, that one included. It fails the test if the lines end first or
// timeout passes.
func WaitLine(t *testing.T, lines <-chan string, substr string, timeout time.Duration) []string {
	t.Helper()
	var out []string
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("output ended before a line with %q:\n%s", substr, strings.Join(out, "\n"))
			}
			out = append(out, l)
			if strings.Contains(l, substr) {
				return out
			}
		case <-deadline:
			t.Fatalf("no line with %q in %v:\n%s", substr, timeout, strings.Join(out, "\n"))
		}
	}
}

// Dial dials amqpha with cfg within 30 s, logging at debug level to stderr
// under -v when cfg has no logger, and closes the client when the test
// ends.
func Dial(t *testing.T, cfg amqpha.Config) *amqpha.Client {
	t.Helper()
	if cfg.Logger == nil && testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := amqpha.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}
