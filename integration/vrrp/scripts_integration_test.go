//go:build integration

package vrrp

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/netns"
)

// TestTrackScriptFailingAtStart: a director (re)starts while the service
// its vrrp_script checks is down, beside a master of lower priority. It
// never takes the VIP: a script tracked without weight holds it in FAULT
// until its first result, and that first failure counts at once although
// fall is 3; a positive weight is not added before the script has
// succeeded. When the service comes up, it preempts. Each case runs with
// vipd as that director beside keepalived, and with keepalived beside
// vipd, which shows the two agree, notify scripts included.
//
// The scripts are written as keepalived users write them: a redirection
// only, which keepalived (and vipd) runs through /bin/sh; and a bare
// command name under enable_script_security, found in PATH and checked.
func TestTrackScriptFailingAtStart(t *testing.T) {
	cases := []struct {
		name   string
		prio   int    // the scripted director's base priority
		weight string // the track_script's weight words
		script string // %s: the file whose existence is the service's health
		global string // lines inside global_defs
		state  string // the scripted director's state while the script fails
		// kaState is the last state keepalived logs meanwhile: none in
		// FAULT (it holds the instance there at start and stays there
		// without a word).
		kaState string
		notify  []string
	}{
		// notify_fault runs when the first result fails (not for the
		// silent FAULT of the start itself).
		{"weight0", 150, "", "<%s", "", "FAULT", "", []string{"INSTANCE VI_1 FAULT 150", "INSTANCE VI_1 BACKUP 150", "INSTANCE VI_1 MASTER 150"}},
		{"weight+60", 90, " weight 60", "test -e %s", "    enable_script_security\n    script_user root\n",
			"BACKUP", "BACKUP", []string{"INSTANCE VI_1 BACKUP 90", "INSTANCE VI_1 MASTER 150"}},
	}
	for _, c := range cases {
		for _, kinds := range [][2]string{{"vipd", "keepalived"}, {"keepalived", "vipd"}} {
			t.Run(c.name+"/"+kinds[0]+"-scripted", func(t *testing.T) {
				r := newRig(t, false)
				dir := t.TempDir()
				flag := filepath.Join(dir, "service-up")
				events := filepath.Join(dir, "events")
				sc, mc := v3Fast.pair(r, false) // the scripted director (on a) outranks the master (on b)
				mc.state, mc.prio = "MASTER", 100
				sc.state, sc.prio, sc.global = "BACKUP", c.prio, c.global
				sc.extra = fmt.Sprintf("    track_script {\n        service%s\n    }\n    notify \"/bin/sh -c 'echo \\\"$*\\\" >> %s' notify\"\n", c.weight, events)
				conf := fmt.Sprintf("vrrp_script service {\n    script \""+c.script+"\"\n    interval 1\n    fall 3\n    rise 1\n}\n", flag) + sc.String()

				start := time.Now()
				startDirector(t, kinds[1], r.b, mc.String())
				r.startProbe(t)
				r.waitHolder(t, "b", start, 15*time.Second)
				var d *director
				if kinds[0] == "keepalived" && c.weight == "" {
					// Held in FAULT without a word until the script reports.
					ka := netns.StartKeepalivedHeld(t, r.a, conf)
					d = &director{kind: "keepalived", host: r.a, proc: ka.Process(), ka: ka}
				} else {
					d = startDirector(t, kinds[0], r.a, conf)
				}
				// Master_Down_Interval is 0.35 s: a director that ignored
				// the script would be master well inside this window; the
				// script runs twice in it (fall 3 would not yet have
				// failed it).
				deadline := time.Now().Add(1500 * time.Millisecond)
				for time.Now().Before(deadline) {
					if holds(t, r.a, r.vip) {
						t.Fatalf("%s took the VIP while its tracked service is down", d)
					}
					time.Sleep(50 * time.Millisecond)
				}
				switch d.kind {
				case "vipd":
					s := d.status(t).Instances[0]
					if s.State != c.state || s.Counters.Transitions["MASTER"] != 0 || s.Priority != c.prio {
						t.Fatalf("vipd with its service down: state %s priority %d, %d times master; want %s %d, never master",
							s.State, s.Priority, s.Counters.Transitions["MASTER"], c.state, c.prio)
					}
				case "keepalived":
					if st := d.ka.State(); st != c.kaState || strings.Contains(d.ka.Log(), "Entering MASTER STATE") {
						t.Fatalf("keepalived with its service down: logged state %q, want %q and never master:\n%s", st, c.kaState, d.ka.Log())
					}
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
					t.Errorf("%s's notify saw:\n%s\nwant:\n%s", d, strings.Join(got, "\n"), strings.Join(c.notify, "\n"))
				}
			})
		}
	}
}
