package main

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
)

func TestScriptTrackerRiseAndFall(t *testing.T) {
	st := newScriptTracker(scriptSpec{Rise: 2, Fall: 3}, false)
	st.record(true) // the first result counts at once
	steps := []struct {
		result  bool
		changed bool
		ok      bool
	}{
		{false, false, true}, // 1st failure of 3
		{false, false, true},
		{true, false, true}, // a success resets the count
		{false, false, true},
		{false, false, true},
		{false, true, false},  // 3rd failure in a row: failed
		{true, false, false},  // 1st success of 2
		{false, false, false}, // a failure resets it
		{true, false, false},
		{true, true, true},
	}
	for i, s := range steps {
		if changed := st.record(s.result); changed != s.changed || st.isOK() != s.ok {
			t.Fatalf("step %d: changed=%v ok=%v, want %v %v", i, changed, st.isOK(), s.changed, s.ok)
		}
	}
}

// TestScriptTrackerFirstResult: as in keepalived, a script has no state
// until its first result, and that first result counts at once whatever
// rise and fall say.
func TestScriptTrackerFirstResult(t *testing.T) {
	for _, c := range []struct {
		name    string
		spec    scriptSpec
		results []bool
		known   bool
		ok      bool
		changes int
	}{
		{"nothing yet", scriptSpec{Rise: 3, Fall: 5}, nil, false, false, 0},
		{"first failure counts at once", scriptSpec{Rise: 3, Fall: 5}, []bool{false}, true, false, 1},
		{"first success counts at once", scriptSpec{Rise: 3, Fall: 5}, []bool{true}, true, true, 1},
		{"then fall failures to fail", scriptSpec{Rise: 3, Fall: 2}, []bool{true, false, false}, true, false, 2},
		{"then rise successes to recover", scriptSpec{Rise: 2, Fall: 5}, []bool{false, true, true}, true, true, 2},
		{"zero rise and fall count as 1", scriptSpec{}, []bool{true, false, true}, true, true, 3},
	} {
		st := newScriptTracker(c.spec, false)
		changes := 0
		for _, r := range c.results {
			if st.record(r) {
				changes++
			}
		}
		known, ok, _ := st.state()
		if known != c.known || ok != c.ok || changes != c.changes {
			t.Errorf("%s: known %v ok %v after %d changes, want %v %v %d", c.name, known, ok, changes, c.known, c.ok, c.changes)
		}
	}
}

// TestScriptTrackerCarriedOverAReload: a changed vrrp_script keeps its
// predecessor's result, scaled to its new rise and fall, as keepalived
// does on a reload.
func TestScriptTrackerCarriedOverAReload(t *testing.T) {
	old := newScriptTracker(scriptSpec{Rise: 3, Fall: 3}, false)
	old.record(true)
	old.record(false) // OK, two more failures to fall
	st := newScriptTracker(scriptSpec{Rise: 1, Fall: 4}, true)
	st.carry(old)
	if !st.isOK() {
		t.Fatal("an OK script came out of a reload failed")
	}
	if st.record(false); !st.isOK() {
		t.Error("one failure failed it; it was two failures from falling")
	}
	if st.record(false); st.isOK() {
		t.Error("two failures left it OK; it was two failures from falling")
	}
	waiting := newScriptTracker(scriptSpec{}, false)
	st = newScriptTracker(scriptSpec{}, true)
	st.carry(waiting)
	if known, _, reload := st.state(); known || reload {
		t.Errorf("a script still waiting at start came out of a reload known=%v reload=%v, want still waiting as at start", known, reload)
	}
}

func TestEffectivePriority(t *testing.T) {
	tr := &tracking{
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		scripts: map[string]*scriptTracker{
			"up":      reported(true),
			"down":    reported(false),
			"new":     newScriptTracker(scriptSpec{}, false),
			"new-hup": newScriptTracker(scriptSpec{}, true),
		},
		ifUp: map[string]bool{"eth0": true, "eth1": false},
	}
	cases := []struct {
		name  string
		spec  instanceSpec
		prio  int
		fault bool
	}{
		{"nothing tracked", instanceSpec{Priority: 100}, 100, false},
		{"positive weight counts while OK", instanceSpec{Priority: 100, TrackScripts: []trackScript{{Name: "up", Weight: 20}, {Name: "down", Weight: 5}}}, 120, false},
		{"negative weight counts while failed", instanceSpec{Priority: 100, TrackScripts: []trackScript{{Name: "up", Weight: -20}, {Name: "down", Weight: -30}}}, 70, false},
		{"reverse turns the adjustment round", instanceSpec{Priority: 100, TrackScripts: []trackScript{{Name: "down", Weight: -30, Reverse: true}}}, 130, false},
		{"weight 0 failing is a fault", instanceSpec{Priority: 100, TrackScripts: []trackScript{{Name: "down"}}}, 100, true},
		{"weight 0 reverse: succeeding is a fault", instanceSpec{Priority: 100, TrackScripts: []trackScript{{Name: "up", Reverse: true}}}, 100, true},
		{"weight 0 reverse: failing is fine", instanceSpec{Priority: 100, TrackScripts: []trackScript{{Name: "down", Reverse: true}}}, 100, false},
		{"weight 0 without a result yet holds in FAULT", instanceSpec{Priority: 100, TrackScripts: []trackScript{{Name: "new"}}}, 100, true},
		{"not after a reload", instanceSpec{Priority: 100, TrackScripts: []trackScript{{Name: "new-hup"}}}, 100, false},
		{"no weight applies without a result", instanceSpec{Priority: 100, TrackScripts: []trackScript{{Name: "new", Weight: 50}, {Name: "new", Weight: -50}}}, 100, false},
		{"unknown script is not tracked", instanceSpec{Priority: 100, TrackScripts: []trackScript{{Name: "gone", Weight: 50}}}, 100, false},
		{"interface down with weight", instanceSpec{Priority: 100, TrackInterfaces: []trackInterface{{Name: "eth1", Weight: -40}, {Name: "eth0", Weight: 10}}}, 70, false},
		{"own interface down is a fault", instanceSpec{Priority: 100, TrackInterfaces: []trackInterface{{Name: "eth1"}}}, 100, true},
		{"missing interface is down", instanceSpec{Priority: 100, TrackInterfaces: []trackInterface{{Name: "eth9"}}}, 100, true},
	}
	for _, c := range cases {
		prio, fault, why := tr.effective(c.spec)
		if prio != c.prio || fault != c.fault {
			t.Errorf("%s: priority %d fault %v (%s), want %d %v", c.name, prio, fault, why, c.prio, c.fault)
		}
		if fault && why == "" {
			t.Errorf("%s: a fault without a reason", c.name)
		}
	}
}

// TestReloadedScriptKeepsItsResult: a vrrp_script whose command changes
// on a reload starts from its last result (keepalived carries it over),
// so a failed check does not turn healthy, nor a healthy one failed, just
// because its line was edited.
func TestReloadedScriptKeepsItsResult(t *testing.T) {
	fail := scriptSpec{Name: "chk", Command: script.Command{Argv: []string{"/bin/false"}, Timeout: time.Second}, Interval: time.Hour, Fall: 1, Rise: 5}
	tr, err := newTracking([]scriptSpec{fail}, false, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	waitUntil(t, "the script to fail", func() bool { return !tr.scripts["chk"].isOK() })
	edited := fail
	edited.Command.Argv = []string{"/bin/true"} // needs 5 successes to rise, at one an hour
	tr.update([]scriptSpec{edited})
	if tr.scripts["chk"].isOK() {
		t.Fatal("the edited script started healthy; it failed before the reload")
	}
}

// reported is a tracker whose first result was ok.
func reported(ok bool) *scriptTracker {
	st := newScriptTracker(scriptSpec{}, false)
	st.record(ok)
	return st
}

// TestEvaluateWaitingOnly: a fault that comes only from scripts without a
// result is told apart from a real one (keepalived runs notify_fault only
// for the latter).
func TestEvaluateWaitingOnly(t *testing.T) {
	tr := &tracking{scripts: map[string]*scriptTracker{"new": newScriptTracker(scriptSpec{}, false), "down": reported(false)}, ifUp: map[string]bool{}}
	if _, fault, waiting, _ := tr.evaluate(instanceSpec{TrackScripts: []trackScript{{Name: "new"}}}); !fault || !waiting {
		t.Errorf("waiting script: fault %v waiting-only %v, want both", fault, waiting)
	}
	if _, fault, waiting, why := tr.evaluate(instanceSpec{TrackScripts: []trackScript{{Name: "new"}, {Name: "down"}}}); !fault || waiting || !strings.Contains(why, "down failed") {
		t.Errorf("waiting and failed: fault %v waiting-only %v (%s), want a fault for the failed one", fault, waiting, why)
	}
}
