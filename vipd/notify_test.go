package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

// TestNotifierRunsInOrder: notify_<state> then notify, with keepalived's
// arguments, transition after transition in the order they happened, and a
// hanging script is cut off by its timeout without holding the rest.
func TestNotifierRunsInOrder(t *testing.T) {
	out := filepath.Join(t.TempDir(), "notify.log")
	appendLine := func(prefix string) script.Command {
		return script.Command{Argv: []string{"/bin/sh", "-c", `echo "` + prefix + ` $*" >> ` + out, "sh"}, Timeout: 5 * time.Second}
	}
	hang := script.Command{Argv: []string{"/bin/sleep", "60"}, Timeout: 200 * time.Millisecond}
	any := appendLine("notify")
	i := &instance{
		spec: instanceSpec{
			Name: "VI_1",
			NotifyState: map[vrrp.State]script.Command{
				vrrp.Master:  appendLine("master"),
				vrrp.Backup:  appendLine("backup"),
				vrrp.Fault:   hang,
				vrrp.Stopped: appendLine("stop"),
			},
			Notify: &any,
		},
		met: newInstanceMetrics(),
	}
	n := newNotifier(slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.enqueue(i, vrrp.Backup, 100)
	n.enqueue(i, vrrp.Master, 100)
	n.enqueue(i, vrrp.Fault, 100)
	n.enqueue(i, vrrp.Stopped, 0)
	n.close(30 * time.Second)
	n.enqueue(i, vrrp.Master, 100) // after close: ignored, no panic

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"backup ", "notify INSTANCE VI_1 BACKUP 100",
		"master ", "notify INSTANCE VI_1 MASTER 100",
		"notify INSTANCE VI_1 FAULT 100",
		"stop ", "notify INSTANCE VI_1 STOP 0",
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("notifications:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c := i.met.counters()
	if c.NotifyRuns != 8 || c.NotifyFailures != 1 {
		t.Errorf("runs %d failures %d, want 8 and 1 (the hanging one)", c.NotifyRuns, c.NotifyFailures)
	}
}
