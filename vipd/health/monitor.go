package health

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/amqpha/amqpha/vipd/lvs"
)

// DefaultDelayLoop is the time between checks of a [Check] whose DelayLoop
// is not set: keepalived's delay_loop default.
const DefaultDelayLoop = 60 * time.Second

// Check is one checker of a real server with its schedule: a TCP_CHECK,
// HTTP_GET, SSL_GET, MISC_CHECK or AMQP_CHECK block.
type Check struct {
	// Name identifies the check in logs and in [Status], e.g.
	// "AMQP_CHECK 10.0.0.11:5672".
	Name    string
	Checker Checker
	// DelayLoop is the time from the end of one check to the start of the
	// next; 0 means [DefaultDelayLoop].
	DelayLoop time.Duration
	// Retry is how many more times a failing check is tried, each
	// DelayBeforeRetry after the last, before the real server is down.
	Retry            int
	DelayBeforeRetry time.Duration
	// Alpha (keepalived's alpha) starts the check failed: the real server
	// is down until it passes once.
	Alpha bool
}

// WorstDetection is the longest this check takes to report a real server
// down after it failed, when each attempt takes attempt (about the
// checker's timeout for a hung server, nearly nothing for a refused
// connection): the rest of DelayLoop, then Retry+1 attempts with
// DelayBeforeRetry between them.
func (c *Check) WorstDetection(attempt time.Duration) time.Duration {
	t := newTracker(c)
	return t.worstDetection(attempt)
}

// MonitorConfig configures a [Monitor]. The zero value monitors nothing.
type MonitorConfig struct {
	// Checks are the real server's checks; it is up only while all of
	// them pass.
	Checks []Check
	// OnChange, when set, is called with the new status each time the
	// state or the dynamic weight changes. It runs on the Monitor's own
	// goroutine, one call at a time and in order, never while the Monitor
	// holds a lock; a slow OnChange delays only later calls, which then
	// see only the latest status (intermediate ones are skipped). It must
	// return for Close to return.
	OnChange func(Status)
	// Logger receives state changes; nil discards them.
	Logger *slog.Logger
}

// Status is the health of a real server as its checks see it.
type Status struct {
	// State is [lvs.Down] when any check is down, else [lvs.Drain] when
	// any check asks for a drain, else [lvs.Up].
	State lvs.State
	// Weight, when WeightSet, is the dynamic weight the last misc_dynamic
	// result gave.
	Weight    int
	WeightSet bool
	// Since is when State last changed (when the Monitor started, at
	// first).
	Since time.Time
	// Checks are the states of the individual checks, in config order.
	Checks []CheckStatus
}

// LVS returns s as package lvs takes it for [lvs.FromConfig].
func (s Status) LVS() lvs.Status {
	return lvs.Status{State: s.State, Weight: s.Weight, WeightSet: s.WeightSet}
}

// CheckStatus is the state of one check.
type CheckStatus struct {
	Name  string
	State lvs.State
	// Runs counts the check's attempts, retries included.
	Runs int
	// Last is the result of the latest attempt (zero before the first).
	Last Result
}

// Monitor runs the checks of one real server, each on its own goroutine
// and schedule, and keeps the real server's [Status]. Nothing it does
// blocks its caller: Status takes a lock held only to copy the status, and
// state changes reach OnChange from the Monitor's goroutine.
//
// A Monitor starts [lvs.Up] (as keepalived without "alpha"; [lvs.Down]
// when a check has Alpha) and runs every check at once, then on each
// one's schedule.
type Monitor struct {
	log      *slog.Logger
	onChange func(Status)

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	kick   chan struct{} // cap 1: the status changed

	mu      sync.Mutex
	status  Status
	weights []weightAt // per check: its dynamic weight and when it was set
	seq     int
}

type weightAt struct {
	set    bool
	weight int
	seq    int
}

// NewMonitor validates cfg and starts monitoring. Close stops it.
func NewMonitor(cfg MonitorConfig) (*Monitor, error) {
	for i, c := range cfg.Checks {
		if c.Checker == nil {
			return nil, fmt.Errorf("health: check %d (%q) has no Checker", i, c.Name)
		}
		if c.DelayLoop < 0 || c.DelayBeforeRetry < 0 || c.Retry < 0 {
			return nil, fmt.Errorf("health: check %d (%q): negative delay_loop, delay_before_retry or retry", i, c.Name)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{
		log:      log,
		onChange: cfg.OnChange,
		cancel:   cancel,
		kick:     make(chan struct{}, 1),
		weights:  make([]weightAt, len(cfg.Checks)),
		status:   Status{State: lvs.Up, Since: time.Now(), Checks: make([]CheckStatus, len(cfg.Checks))},
	}
	for i, c := range cfg.Checks {
		m.status.Checks[i].Name = c.Name
		if c.Alpha {
			m.status.Checks[i].State = lvs.Down
			m.status.State = lvs.Down
		}
	}
	if m.onChange != nil {
		first := m.status
		m.wg.Go(func() { m.notify(ctx, first) })
	}
	for i := range cfg.Checks {
		c := cfg.Checks[i]
		m.wg.Go(func() { m.run(ctx, i, &c) })
	}
	return m, nil
}

// Status returns the current status. It does not block (beyond a short
// lock) and may be called from any goroutine, also after Close.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshotLocked()
}

func (m *Monitor) snapshotLocked() Status {
	s := m.status
	s.Checks = slices.Clone(s.Checks)
	return s
}

// Close stops the checks (a check in progress is cancelled) and waits for
// the Monitor's goroutines, including a running OnChange. It is safe to
// call more than once and from any goroutine but OnChange's.
func (m *Monitor) Close() {
	m.once.Do(m.cancel)
	m.wg.Wait()
}

// run is the goroutine of check i.
func (m *Monitor) run(ctx context.Context, i int, c *Check) {
	t := newTracker(c)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		r := c.Checker.Check(ctx)
		if ctx.Err() != nil {
			return // a check cut short by Close says nothing of the server
		}
		timer.Reset(t.observe(r))
		m.record(i, c, &t, r)
	}
}

// record stores the outcome of check i and, when the real server's status
// changed, logs it and wakes the notifier.
func (m *Monitor) record(i int, c *Check, t *tracker, r Result) {
	m.mu.Lock()
	cs := &m.status.Checks[i]
	prev := cs.State
	cs.State, cs.Last = t.state, r
	cs.Runs++
	if r.WeightSet {
		m.seq++
		m.weights[i] = weightAt{set: true, weight: r.Weight, seq: m.seq}
	}
	old := m.status
	m.status.State, m.status.Weight, m.status.WeightSet = m.aggregateLocked()
	changed := old.State != m.status.State || old.Weight != m.status.Weight || old.WeightSet != m.status.WeightSet
	if old.State != m.status.State {
		m.status.Since = time.Now()
	}
	state := m.status.State
	m.mu.Unlock()

	if prev != t.state {
		level := slog.LevelInfo
		if t.state == lvs.Down {
			level = slog.LevelWarn
		}
		m.log.Log(context.Background(), level, "health check state changed", "check", c.Name,
			"from", prev.String(), "to", t.state.String(), "real_server", state.String(),
			"took", r.Duration.Round(time.Millisecond), "error", errString(r.Err))
	} else if !r.OK && t.state != lvs.Down {
		m.log.Debug("health check failed, will retry", "check", c.Name, "retries", t.retries,
			"of", t.retry, "error", errString(r.Err))
	}
	if changed && m.onChange != nil {
		select {
		case m.kick <- struct{}{}:
		default: // a wake-up is pending; it will read the latest status
		}
	}
}

// aggregateLocked computes the real server's state and dynamic weight
// from its checks.
func (m *Monitor) aggregateLocked() (lvs.State, int, bool) {
	state := lvs.Up
	for _, cs := range m.status.Checks {
		switch {
		case cs.State == lvs.Down:
			state = lvs.Down
		case cs.State == lvs.Drain && state == lvs.Up:
			state = lvs.Drain
		}
	}
	var last weightAt
	for _, w := range m.weights {
		if w.set && w.seq > last.seq {
			last = w
		}
	}
	return state, last.weight, last.set
}

// notify is the goroutine that calls OnChange.
func (m *Monitor) notify(ctx context.Context, last Status) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		}
		s := m.Status()
		if last.State == s.State && last.Weight == s.Weight && last.WeightSet == s.WeightSet {
			continue
		}
		last = s
		m.onChange(s)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
