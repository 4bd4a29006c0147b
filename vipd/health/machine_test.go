package health

import (
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/lvs"
)

func TestTracker(t *testing.T) {
	ok := Result{OK: true}
	bad := Result{}
	drain := Result{OK: true, Drain: true}
	const loop, retry = 10 * time.Second, 3 * time.Second
	type step struct {
		r     Result
		wait  time.Duration
		state lvs.State
	}
	cases := []struct {
		name  string
		retry int
		steps []step
	}{
		{"no retry: one failure is down", 0, []step{
			{ok, loop, lvs.Up}, {bad, loop, lvs.Down}, {bad, loop, lvs.Down}, {ok, loop, lvs.Up},
		}},
		{"the first result is taken at once: a first failure is down without retries, as in keepalived", 3, []step{
			{bad, loop, lvs.Down}, {bad, loop, lvs.Down}, {ok, loop, lvs.Up}, {bad, retry, lvs.Up},
		}},
		{"retries before down", 2, []step{
			{ok, loop, lvs.Up}, {bad, retry, lvs.Up}, {bad, retry, lvs.Up}, {bad, loop, lvs.Down},
		}},
		{"a success between failures starts the count again", 2, []step{
			{ok, loop, lvs.Up}, {bad, retry, lvs.Up}, {ok, loop, lvs.Up}, {bad, retry, lvs.Up}, {bad, retry, lvs.Up}, {bad, loop, lvs.Down},
		}},
		{"no retries while down", 2, []step{
			{ok, loop, lvs.Up}, {bad, retry, lvs.Up}, {bad, retry, lvs.Up}, {bad, loop, lvs.Down}, {bad, loop, lvs.Down}, {bad, loop, lvs.Down},
		}},
		{"one success brings it up", 5, []step{
			{ok, loop, lvs.Up}, {bad, retry, lvs.Up}, {bad, retry, lvs.Up}, {bad, retry, lvs.Up}, {bad, retry, lvs.Up}, {bad, retry, lvs.Up},
			{bad, loop, lvs.Down}, {ok, loop, lvs.Up}, {bad, retry, lvs.Up},
		}},
		{"drain and back", 1, []step{
			{drain, loop, lvs.Drain}, {drain, loop, lvs.Drain}, {ok, loop, lvs.Up}, {drain, loop, lvs.Drain},
		}},
		{"a drained server that fails is retried, then down", 1, []step{
			{drain, loop, lvs.Drain}, {bad, retry, lvs.Drain}, {bad, loop, lvs.Down}, {drain, loop, lvs.Drain},
		}},
		{"alpha: down until the first success", 2, []step{
			{bad, loop, lvs.Down}, {ok, loop, lvs.Up}, {bad, retry, lvs.Up},
		}},
		{"drain without OK is a failure", 0, []step{
			{Result{Drain: true}, loop, lvs.Down},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			alpha := strings.HasPrefix(c.name, "alpha")
			tr := newTracker(&Check{DelayLoop: loop, Retry: c.retry, DelayBeforeRetry: retry, Alpha: alpha})
			if want := map[bool]lvs.State{false: lvs.Up, true: lvs.Down}[alpha]; tr.state != want {
				t.Fatalf("starts %v, want %v", tr.state, want)
			}
			for i, s := range c.steps {
				if wait := tr.observe(s.r); wait != s.wait || tr.state != s.state {
					t.Fatalf("step %d (%+v): wait %v, state %v; want %v, %v", i, s.r, wait, tr.state, s.wait, s.state)
				}
			}
		})
	}
}

func TestTrackerDefaults(t *testing.T) {
	tr := newTracker(&Check{Retry: -1, DelayBeforeRetry: -time.Second})
	if tr.delayLoop != DefaultDelayLoop || tr.retry != 0 || tr.delayBeforeRetry != 0 {
		t.Errorf("defaults: %+v", tr)
	}
}

func TestWorstDetection(t *testing.T) {
	c := Check{DelayLoop: time.Second, Retry: 2, DelayBeforeRetry: 300 * time.Millisecond}
	// 1 s of delay_loop, 3 attempts of 2 s, 2 pauses of 0.3 s.
	if got, want := c.WorstDetection(2*time.Second), 7600*time.Millisecond; got != want {
		t.Errorf("WorstDetection = %v, want %v", got, want)
	}
}
