package main

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
)

func TestScriptTrackerRiseAndFall(t *testing.T) {
	st := &scriptTracker{spec: scriptSpec{Rise: 2, Fall: 3}, ok: true}
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
		{false, true, false}, // 3rd failure in a row: failed
		{true, false, false}, // 1st success of 2
		{true, true, true},
	}
	for i, s := range steps {
		if changed := st.record(s.result); changed != s.changed || st.isOK() != s.ok {
			t.Fatalf("step %d: changed=%v ok=%v, want %v %v", i, changed, st.isOK(), s.changed, s.ok)
		}
	}
}

func TestEffectivePriority(t *testing.T) {
	tr := &tracking{
		log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		scripts: map[string]*scriptTracker{
			"up":   {ok: true},
			"down": {ok: false},
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
