package health

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/amqpha/amqpha/vipd/lvs"
)

// The Monitor tests run in a synctest bubble: time is the bubble's fake
// clock, which moves only when every goroutine of the test waits, so the
// schedules below are exact.

// step is one scripted check: its result and how long it takes.
type step struct {
	r    Result
	took time.Duration
}

var (
	okStep    = step{r: Result{OK: true}}
	badStep   = step{r: Result{Err: errors.New("refused")}}
	drainStep = step{r: Result{OK: true, Drain: true}}
)

func weightStep(w int) step { return step{r: Result{OK: true, Weight: w, WeightSet: true}} }

// fakeChecker plays steps, then passes; it records when it was called.
type fakeChecker struct {
	start time.Time
	mu    sync.Mutex
	steps []step
	calls []time.Duration
}

func newFake(start time.Time, steps ...step) *fakeChecker {
	return &fakeChecker{start: start, steps: steps}
}

func (f *fakeChecker) Check(ctx context.Context) Result {
	f.mu.Lock()
	f.calls = append(f.calls, time.Since(f.start))
	s := okStep
	if len(f.steps) > 0 {
		s, f.steps = f.steps[0], f.steps[1:]
	}
	f.mu.Unlock()
	if s.took > 0 {
		select {
		case <-time.After(s.took):
		case <-ctx.Done():
			return Result{Err: ctx.Err()}
		}
	}
	s.r.Duration = s.took
	return s.r
}

func (f *fakeChecker) times() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.calls...)
}

// event is a status change seen by OnChange, at a time since start.
type event struct {
	at     time.Duration
	state  lvs.State
	weight int
	set    bool
}

type recorder struct {
	start time.Time
	mu    sync.Mutex
	evs   []event
}

func (r *recorder) onChange(s Status) {
	r.mu.Lock()
	r.evs = append(r.evs, event{time.Since(r.start), s.State, s.Weight, s.WeightSet})
	r.mu.Unlock()
}

func (r *recorder) events() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.evs...)
}

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

// runFor starts a Monitor on checks, lets the fake clock run for d, and
// closes it.
func runFor(t *testing.T, d time.Duration, rec *recorder, checks ...Check) Status {
	t.Helper()
	m, err := NewMonitor(MonitorConfig{Checks: checks, OnChange: rec.onChange})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(d)
	synctest.Wait()
	m.Close()
	return m.Status()
}

func TestMonitorSchedule(t *testing.T) {
	cases := []struct {
		name   string
		check  Check
		steps  []step
		run    time.Duration
		calls  []time.Duration
		events []event
	}{
		{
			name:  "retries delay_before_retry apart, then down; no retries while down; up after one success",
			check: Check{DelayLoop: time.Second, Retry: 2, DelayBeforeRetry: 300 * time.Millisecond},
			steps: []step{okStep, badStep, badStep, badStep, badStep, okStep},
			run:   4500 * time.Millisecond,
			calls: ms(0, 1000, 1300, 1600, 2600, 3600),
			events: []event{
				{at: 1600 * time.Millisecond, state: lvs.Down},
				{at: 3600 * time.Millisecond, state: lvs.Up},
			},
		},
		{
			name:  "a success while retrying keeps it up",
			check: Check{DelayLoop: time.Second, Retry: 1, DelayBeforeRetry: 200 * time.Millisecond},
			steps: []step{okStep, badStep, okStep, badStep, okStep},
			run:   2500 * time.Millisecond,
			calls: ms(0, 1000, 1200, 2200, 2400),
		},
		{
			name:  "retry 0: the first failure is down",
			check: Check{DelayLoop: time.Second},
			steps: []step{okStep, badStep, okStep},
			run:   2500 * time.Millisecond,
			calls: ms(0, 1000, 2000),
			events: []event{
				{at: 1000 * time.Millisecond, state: lvs.Down},
				{at: 2000 * time.Millisecond, state: lvs.Up},
			},
		},
		{
			name:  "the first check failing is down at once, without retries, as in keepalived",
			check: Check{DelayLoop: time.Second, Retry: 2, DelayBeforeRetry: 300 * time.Millisecond},
			steps: []step{badStep, badStep, okStep},
			run:   2500 * time.Millisecond,
			calls: ms(0, 1000, 2000),
			events: []event{
				{at: 0, state: lvs.Down},
				{at: 2000 * time.Millisecond, state: lvs.Up},
			},
		},
		{
			name:  "alpha: down from the start until a check passes",
			check: Check{DelayLoop: time.Second, Retry: 2, DelayBeforeRetry: 300 * time.Millisecond, Alpha: true},
			steps: []step{badStep, okStep, badStep},
			run:   2500 * time.Millisecond,
			calls: ms(0, 1000, 2000, 2300),
			events: []event{
				{at: 1000 * time.Millisecond, state: lvs.Up}, // down before
			},
		},
		{
			name:  "delay_loop counts from the end of a check",
			check: Check{DelayLoop: time.Second, Retry: 1, DelayBeforeRetry: 100 * time.Millisecond},
			steps: []step{
				{r: Result{OK: true}, took: 500 * time.Millisecond},
				{r: Result{Err: errors.New("timeout")}, took: 500 * time.Millisecond},
				{r: Result{Err: errors.New("timeout")}, took: 500 * time.Millisecond},
			},
			run:   3500 * time.Millisecond,
			calls: ms(0, 1500, 2100, 3600)[:3],
			events: []event{
				{at: 2600 * time.Millisecond, state: lvs.Down},
			},
		},
		{
			name:  "drain and back",
			check: Check{DelayLoop: time.Second},
			steps: []step{okStep, drainStep, drainStep, okStep},
			run:   3500 * time.Millisecond,
			calls: ms(0, 1000, 2000, 3000),
			events: []event{
				{at: 1000 * time.Millisecond, state: lvs.Drain},
				{at: 3000 * time.Millisecond, state: lvs.Up},
			},
		},
		{
			name:  "misc_dynamic weights persist until the next one",
			check: Check{DelayLoop: time.Second},
			steps: []step{weightStep(5), okStep, weightStep(0), badStep, okStep, weightStep(0)},
			run:   5500 * time.Millisecond,
			calls: ms(0, 1000, 2000, 3000, 4000, 5000),
			events: []event{
				{at: 0, state: lvs.Up, weight: 5, set: true},
				{at: 2000 * time.Millisecond, state: lvs.Up, weight: 0, set: true},
				{at: 3000 * time.Millisecond, state: lvs.Down, weight: 0, set: true},
				{at: 4000 * time.Millisecond, state: lvs.Up, weight: 0, set: true},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				f := newFake(start, c.steps...)
				rec := &recorder{start: start}
				c.check.Name, c.check.Checker = "fake", f
				runFor(t, c.run, rec, c.check)
				if got := f.times(); !reflect.DeepEqual(got, c.calls) {
					t.Errorf("checks at %v, want %v", got, c.calls)
				}
				if got := rec.events(); !reflect.DeepEqual(got, c.events) {
					t.Errorf("changes %+v, want %+v", got, c.events)
				}
			})
		})
	}
}

func TestMonitorAggregatesChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		a := newFake(start, okStep, drainStep, drainStep, drainStep, okStep)
		b := newFake(start, okStep, okStep, badStep, okStep)
		rec := &recorder{start: start}
		st := runFor(t, 4500*time.Millisecond, rec,
			Check{Name: "a", Checker: a, DelayLoop: time.Second},
			Check{Name: "b", Checker: b, DelayLoop: time.Second})
		want := []event{
			{at: 1000 * time.Millisecond, state: lvs.Drain}, // a drains
			{at: 2000 * time.Millisecond, state: lvs.Down},  // b fails: down beats drain
			{at: 3000 * time.Millisecond, state: lvs.Drain}, // b is back, a still drains
			{at: 4000 * time.Millisecond, state: lvs.Up},
		}
		if got := rec.events(); !reflect.DeepEqual(got, want) {
			t.Errorf("changes %+v, want %+v", got, want)
		}
		if len(st.Checks) != 2 || st.Checks[0].Name != "a" || st.Checks[1].Name != "b" ||
			st.Checks[0].Runs != 5 || st.Checks[1].Runs != 5 || !st.Checks[1].Last.OK {
			t.Errorf("check statuses %+v", st.Checks)
		}
		if st.State != lvs.Up || st.Since != start.Add(4*time.Second) {
			t.Errorf("status %v since %v, want up since 4s", st.State, st.Since.Sub(start))
		}
	})
}

func TestMonitorNeverWaitsForOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		f := newFake(start, badStep, okStep, badStep, okStep)
		release := make(chan struct{})
		var (
			mu  sync.Mutex
			got []event
		)
		m, err := NewMonitor(MonitorConfig{
			Checks: []Check{{Name: "f", Checker: f, DelayLoop: time.Second}},
			OnChange: func(s Status) {
				mu.Lock()
				got = append(got, event{at: time.Since(start), state: s.State})
				first := len(got) == 1
				mu.Unlock()
				if first {
					<-release // a slow consumer
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3500 * time.Millisecond)
		close(release)
		synctest.Wait()
		m.Close()
		// The checks kept their schedule while OnChange was stuck...
		if calls := f.times(); !reflect.DeepEqual(calls, ms(0, 1000, 2000, 3000)) {
			t.Errorf("checks at %v: the Monitor waited for OnChange", calls)
		}
		// ...and OnChange then got the latest status only.
		want := []event{{at: 0, state: lvs.Down}, {at: 3500 * time.Millisecond, state: lvs.Up}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("changes %+v, want %+v", got, want)
		}
	})
}

func TestMonitorCloseCancelsRunningCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		f := newFake(start, step{r: Result{OK: true}, took: time.Hour})
		m, err := NewMonitor(MonitorConfig{Checks: []Check{{Name: "slow", Checker: f}}})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		m.Close()
		m.Close()
		if el := time.Since(start); el != time.Second {
			t.Errorf("Close took until %v: it waited for the check", el)
		}
		// A check cut short by Close is not recorded.
		if st := m.Status(); st.Checks[0].Runs != 0 || st.State != lvs.Up {
			t.Errorf("status after Close: %+v", st)
		}
	})
}

func TestMonitorLogsChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		f := newFake(time.Now(), okStep, badStep, badStep, okStep)
		m, err := NewMonitor(MonitorConfig{
			Checks: []Check{{Name: "TCP_CHECK 10.0.0.1:5672", Checker: f, DelayLoop: time.Second, Retry: 1}},
			Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		m.Close()
		out := buf.String()
		for _, want := range []string{"will retry", "from=up to=down", "from=down to=up", "TCP_CHECK 10.0.0.1:5672", "error=refused"} {
			if !strings.Contains(out, want) {
				t.Errorf("log lacks %q:\n%s", want, out)
			}
		}
	})
}

func TestNewMonitorValidates(t *testing.T) {
	ok := CheckerFunc(func(context.Context) Result { return Result{OK: true} })
	for _, c := range []Check{
		{Name: "no checker"},
		{Name: "negative loop", Checker: ok, DelayLoop: -1},
		{Name: "negative retry", Checker: ok, Retry: -1},
		{Name: "negative delay", Checker: ok, DelayBeforeRetry: -1},
	} {
		if m, err := NewMonitor(MonitorConfig{Checks: []Check{c}}); err == nil {
			m.Close()
			t.Errorf("%s: no error", c.Name)
		}
	}
	m, err := NewMonitor(MonitorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st := m.Status(); st.State != lvs.Up || st.LVS() != (lvs.Status{State: lvs.Up}) {
		t.Errorf("a Monitor without checks: %+v", st)
	}
}

func TestStatusLVS(t *testing.T) {
	s := Status{State: lvs.Drain, Weight: 7, WeightSet: true}
	if got := s.LVS(); got != (lvs.Status{State: lvs.Drain, Weight: 7, WeightSet: true}) {
		t.Errorf("LVS() = %+v", got)
	}
}

type blockingChecker struct{}

func (blockingChecker) Check(ctx context.Context) Result { <-ctx.Done(); return Result{} }

// TestMonitorAlphaStartsDown: with alpha, the real server is down before
// its first check has answered; without, up (keepalived's two ways).
func TestMonitorAlphaStartsDown(t *testing.T) {
	for _, alpha := range []bool{false, true} {
		m, err := NewMonitor(MonitorConfig{Checks: []Check{{Name: "x", Checker: blockingChecker{}, Alpha: alpha}}})
		if err != nil {
			t.Fatal(err)
		}
		want := map[bool]lvs.State{false: lvs.Up, true: lvs.Down}[alpha]
		if s := m.Status(); s.State != want || s.Checks[0].State != want {
			t.Errorf("alpha %v: starts %v (check %v), want %v", alpha, s.State, s.Checks[0].State, want)
		}
		m.Close()
	}
}
