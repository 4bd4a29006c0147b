package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

// TestNotifierArguments: notify_<state> and notify run for each transition,
// notify with keepalived's arguments; a notify_stop that hangs is killed
// (after one second, as keepalived does) and close returns.
func TestNotifierArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "notify.log")
	appendLine := func(prefix string) script.Command {
		return script.Command{Argv: []string{"/bin/sh", "-c", `echo "` + prefix + ` $*" >> ` + out, "sh"}, Timeout: script.NoTimeout}
	}
	hang := script.Command{Argv: []string{"/bin/sleep", "60"}, Timeout: script.NoTimeout}
	any := appendLine("notify")
	i := &instance{
		spec: instanceSpec{
			Name: "VI_1",
			NotifyState: map[vrrp.State]script.Command{
				vrrp.Master:  appendLine("master"),
				vrrp.Backup:  appendLine("backup"),
				vrrp.Stopped: hang,
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
	n.close(time.Second)           // twice: fine

	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"backup ", "notify INSTANCE VI_1 BACKUP 100",
		"master ", "notify INSTANCE VI_1 MASTER 100",
		"notify INSTANCE VI_1 FAULT 100",
		"notify INSTANCE VI_1 STOP 0",
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		got = append(got, strings.TrimSpace(l))
	}
	for k := range want {
		want[k] = strings.TrimSpace(want[k])
	}
	// Nothing orders the scripts' runs (as in keepalived): compare as sets.
	slices.Sort(got)
	slices.Sort(want)
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("notifications:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	c := i.met.counters()
	if c.NotifyRuns != 7 || c.NotifyFailures != 1 {
		t.Errorf("runs %d failures %d, want 7 and 1 (the hanging notify_stop)", c.NotifyRuns, c.NotifyFailures)
	}
}

// TestNotifierSlowScriptDelaysNoOther: one instance's notify script hangs;
// another instance's notification, and the first instance's next one, run
// while it still hangs. Close kills it.
func TestNotifierSlowScriptDelaysNoOther(t *testing.T) {
	dir := t.TempDir()
	mark := func(name string) script.Command {
		return script.Command{Argv: []string{"/bin/sh", "-c", "touch " + filepath.Join(dir, name)}, Timeout: script.NoTimeout}
	}
	slow := script.Command{Argv: []string{"/bin/sh", "-c", "touch " + filepath.Join(dir, "slow-started") + "; sleep 60; touch " + filepath.Join(dir, "slow-ended")}, Timeout: script.NoTimeout}
	a := &instance{spec: instanceSpec{Name: "A", NotifyState: map[vrrp.State]script.Command{vrrp.Master: slow, vrrp.Backup: mark("a-backup")}}, met: newInstanceMetrics()}
	b := &instance{spec: instanceSpec{Name: "B", NotifyState: map[vrrp.State]script.Command{vrrp.Master: mark("b-master")}}, met: newInstanceMetrics()}
	n := newNotifier(slog.New(slog.NewTextHandler(io.Discard, nil)))
	n.enqueue(a, vrrp.Master, 100)
	waitFile(t, filepath.Join(dir, "slow-started"))
	n.enqueue(b, vrrp.Master, 100)
	n.enqueue(a, vrrp.Backup, 100)
	waitFile(t, filepath.Join(dir, "b-master"))
	waitFile(t, filepath.Join(dir, "a-backup"))
	if _, err := os.Stat(filepath.Join(dir, "slow-ended")); err == nil {
		t.Fatal("the slow script ended; the test proves nothing")
	}
	n.close(time.Second)
	if _, err := os.Stat(filepath.Join(dir, "slow-ended")); err == nil {
		t.Error("close let the slow script run on")
	}
	if c := a.met.counters(); c.NotifyRuns != 2 || c.NotifyFailures == 0 {
		t.Errorf("instance A: %d runs, %d failures; want 2 and the slow one failed (killed at close)", c.NotifyRuns, c.NotifyFailures)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
