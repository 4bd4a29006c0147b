//go:build integration

package failover

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/amqpha/amqpha/amqpha"
)

// TestNoFalseHangUnderLoad: with the default HangTimeout, a client
// publishing hard while the machine's CPUs are saturated by other
// processes is never taken for hung: every node stays up, so any
// reconnect at all is a false failover.
func TestNoFalseHangUnderLoad(t *testing.T) {
	restore(t)
	secs := 15
	if s, err := strconv.Atoi(os.Getenv("AMQPHA_HANGLOAD_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	q := quorumQueue(t, 0, nil)
	c, ev := client(t, amqpha.Config{})
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// Busy processes, 4 per CPU, for the whole run (bounded by their
	// context).
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+30)*time.Second)
	defer cancel()
	var hogs []*exec.Cmd
	for range 4 * runtime.NumCPU() {
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		hogs = append(hogs, cmd)
	}
	defer func() {
		for _, h := range hogs {
			_ = h.Process.Kill()
			_ = h.Wait()
		}
	}()
	l := startLoad(t, pub, q, 32)
	time.Sleep(time.Duration(secs) * time.Second) // the load runs; nothing to wait for
	for _, h := range hogs {
		_ = h.Process.Kill()
		_ = h.Wait()
	}
	hogs = nil
	confirmed, dups := l.finish()
	lost := 0
	for _, e := range ev.snapshot() {
		if e.Kind == amqpha.EventReconnecting {
			t.Logf("reconnect: %s %s: %v", e.Connection, e.Node, e.Err)
			lost++
		}
	}
	t.Logf("%d s under CPU load: %d confirmed, %d duplicates, %d connections lost", secs, confirmed, dups, lost)
	if confirmed == 0 {
		t.Error("nothing was confirmed under load: the client was not tested")
	}
	if lost > 0 || c.Reconnects() > 0 {
		t.Errorf("%d connections lost (%d reconnects) under load with every node up: false failovers", lost, c.Reconnects())
	}
}
