//go:build integration

package vrrp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTrackScriptFailingAtStart: vipd (re)starts while the service its
// vrrp_script checks is down, beside a keepalived master of lower priority.
// As keepalived would, vipd never takes the VIP: a script tracked without
// weight holds it in FAULT until its first result, and that first failure
// counts at once although fall is 3; a positive weight is not added before
// the script has succeeded. When the service comes up, vipd preempts.
func TestTrackScriptFailingAtStart(t *testing.T) {
	cases := []struct {
		name   string
		prio   int    // vipd's base priority
		weight string // the track_script's weight words
		state  string // vipd's state while the script fails
		notify []string
	}{
		// keepalived runs notify_fault when the first result fails (not
		// for the silent FAULT of the start itself).
		{"weight0", 150, "", "FAULT", []string{"INSTANCE VI_1 FAULT 150", "INSTANCE VI_1 BACKUP 150", "INSTANCE VI_1 MASTER 150"}},
		{"weight+60", 90, " weight 60", "BACKUP", []string{"INSTANCE VI_1 BACKUP 90", "INSTANCE VI_1 MASTER 150"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, false)
			dir := t.TempDir()
			flag := filepath.Join(dir, "service-up")
			events := filepath.Join(dir, "events")
			kc, vc := v3Fast.pair(r, false)
			vc, kc = kc, vc // vipd (on a) outranks keepalived (on b)
			kc.state, kc.prio = "MASTER", 100
			vc.state, vc.prio = "BACKUP", c.prio
			vc.extra = fmt.Sprintf("    track_script {\n        service%s\n    }\n    notify \"/bin/sh -c 'echo \\\"$*\\\" >> %s' notify\"\n", c.weight, events)
			conf := fmt.Sprintf("vrrp_script service {\n    script \"/usr/bin/test -e %s\"\n    interval 1\n    fall 3\n    rise 1\n}\n", flag) + vc.String()

			start := time.Now()
			startDirector(t, "keepalived", r.b, kc.String())
			r.startProbe(t)
			r.waitHolder(t, "b", start, 15*time.Second)
			v := startDirector(t, "vipd", r.a, conf)
			// Master_Down_Interval is 0.35 s: a vipd that ignored the
			// script would be master well inside this window; the script
			// runs twice in it (fall 3 would not yet have failed it).
			deadline := time.Now().Add(1500 * time.Millisecond)
			for time.Now().Before(deadline) {
				if holds(t, r.a, r.vip) {
					t.Fatal("vipd took the VIP while its tracked service is down")
				}
				time.Sleep(50 * time.Millisecond)
			}
			s := v.status(t).Instances[0]
			if s.State != c.state || s.Counters.Transitions["MASTER"] != 0 || s.Priority != c.prio {
				t.Fatalf("vipd with its service down: state %s priority %d, %d times master; want %s %d, never master",
					s.State, s.Priority, s.Counters.Transitions["MASTER"], c.state, c.prio)
			}

			t1 := time.Now()
			if err := os.WriteFile(flag, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			r.waitHolder(t, "a", t1, 15*time.Second)
			waitFor(t, "the notify script's lines", 10*time.Second, func() bool {
				b, _ := os.ReadFile(events)
				return strings.Count(string(b), "\n") >= len(c.notify)
			})
			b, _ := os.ReadFile(events)
			if got := strings.Split(strings.TrimSpace(string(b)), "\n"); strings.Join(got, "|") != strings.Join(c.notify, "|") {
				t.Errorf("notify saw:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.notify, "\n"))
			}
		})
	}
}
