package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"reflect"
	"sync"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
	"github.com/vishvananda/netlink"
)

// tracking watches what instances track: vrrp_scripts (each run by one
// goroutine, however many instances track it) and interfaces (one netlink
// subscription). When a result changes it kicks every subscribed instance,
// whose loop then asks effective for its priority; nothing here ever waits
// for an instance.
type tracking struct {
	log     *slog.Logger
	scripts map[string]*scriptTracker

	mu     sync.Mutex
	subs   map[chan struct{}]bool
	ifUp   map[string]bool // interfaces seen; absent: not seen (down)
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// scriptTracker runs one vrrp_script and keeps its result the way
// keepalived counts it: result runs from 0 to rise+fall-1; below rise the
// script is failed, from rise on it is OK. Each success moves it up (to the
// top once it reaches rise), each failure down (to 0 once it drops below
// rise), so rise successes in a row make a failed script OK and fall
// failures in a row make an OK one failed.
//
// Until its first result a script is unknown: an instance that tracks it
// without a weight stays in FAULT (keepalived's start-up hold; not after a
// reload), one that tracks it with a weight applies no adjustment. The
// first result then counts at once, whatever rise and fall say. (init_fail
// would start it failed, but keepalived resets that for every tracked
// script, and so does vipd: configload warns.)
type scriptTracker struct {
	spec   scriptSpec
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	result int
	phase  scriptPhase
}

// scriptPhase is where a script is in its life: waiting for its first
// result (at start, or added by a reload), or running.
type scriptPhase int

const (
	scriptAwaiting       scriptPhase = iota // started with vipd: holds weight-0 trackers in FAULT
	scriptAwaitingReload                    // added by a reload: holds nobody
	scriptReported                          // has a result
)

func newScriptTracker(s scriptSpec, reload bool) *scriptTracker {
	st := &scriptTracker{spec: s, done: make(chan struct{})}
	st.result, st.phase = st.rise()-1, scriptAwaiting
	if reload {
		st.phase = scriptAwaitingReload
	}
	return st
}

func (st *scriptTracker) rise() int { return max(st.spec.Rise, 1) }
func (st *scriptTracker) fall() int { return max(st.spec.Fall, 1) }

func newTracking(scripts []scriptSpec, watchInterfaces bool, log *slog.Logger) (*tracking, error) {
	ctx, cancel := context.WithCancel(context.Background())
	t := &tracking{
		log: log, scripts: map[string]*scriptTracker{},
		subs: map[chan struct{}]bool{}, ifUp: map[string]bool{},
		ctx: ctx, cancel: cancel,
	}
	if watchInterfaces {
		if err := t.watchLinks(); err != nil {
			cancel()
			return nil, err
		}
	}
	for _, s := range scripts {
		t.startScript(s)
	}
	return t, nil
}

func (t *tracking) startScript(s scriptSpec) {
	t.runTracker(newScriptTracker(s, false))
}

func (t *tracking) runTracker(st *scriptTracker) {
	ctx, cancel := context.WithCancel(t.ctx)
	st.cancel = cancel
	t.scripts[st.spec.Name] = st
	t.wg.Add(1)
	go t.runScript(ctx, st)
}

// update replaces the vrrp_scripts after a reload: unchanged ones keep
// running with their state; a changed one starts anew carrying its
// predecessor's result over (as keepalived does on a reload); removed ones
// stop; new ones start unknown, holding no instance in FAULT. Only the
// daemon's goroutine calls it (with the daemon's lock held), as it does
// every other change of t.scripts.
func (t *tracking) update(scripts []scriptSpec) {
	want := map[string]scriptSpec{}
	for _, s := range scripts {
		want[s.Name] = s
	}
	changed := false
	prev := map[string]*scriptTracker{}
	for name, st := range t.scripts {
		if s, ok := want[name]; ok && reflect.DeepEqual(s, st.spec) {
			delete(want, name)
			continue
		}
		st.cancel()
		<-st.done
		t.mu.Lock()
		delete(t.scripts, name)
		t.mu.Unlock()
		prev[name] = st
		changed = true
	}
	for _, s := range scripts {
		if _, ok := want[s.Name]; ok {
			st := newScriptTracker(s, true)
			if old := prev[s.Name]; old != nil {
				st.carry(old)
			}
			t.mu.Lock()
			t.runTracker(st)
			t.mu.Unlock()
			changed = true
		}
	}
	if changed {
		t.kickAll()
	}
}

func (t *tracking) subscribe(ch chan struct{}) {
	t.mu.Lock()
	t.subs[ch] = true
	t.mu.Unlock()
}

func (t *tracking) unsubscribe(ch chan struct{}) {
	t.mu.Lock()
	delete(t.subs, ch)
	t.mu.Unlock()
}

func (t *tracking) kickAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for ch := range t.subs {
		select {
		case ch <- struct{}{}:
		default: // a kick is pending already
		}
	}
}

// runScript runs one vrrp_script at once and then every interval.
func (t *tracking) runScript(ctx context.Context, st *scriptTracker) {
	defer t.wg.Done()
	defer close(st.done)
	interval := st.spec.Interval
	if interval <= 0 {
		interval = time.Second
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		r, err := script.Run(ctx, st.spec.Command)
		if ctx.Err() != nil {
			return
		}
		if st.record(r.OK()) {
			t.log.Info("vrrp_script changed", "script", st.spec.Name, "ok", r.OK(), "exit", r.ExitCode, "timed_out", r.TimedOut, "err", err)
			t.kickAll()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// record notes one result and reports whether the script's state changed
// (from unknown to either, or between OK and failed).
func (st *scriptTracker) record(ok bool) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	rise, top := st.rise(), st.rise()+st.fall()-1
	first := st.phase != scriptReported
	st.phase = scriptReported
	if ok {
		switch {
		case st.result < rise-1:
			st.result++
			return false
		case st.result == top:
			return false
		}
		changed := st.result < rise // was failed (or unknown, at rise-1)
		st.result = top
		return changed
	}
	if st.result > rise {
		st.result--
		return false
	}
	changed := st.result == rise || first
	st.result = 0
	return changed
}

// state reports whether the script has a result and whether it is OK;
// reload tells an unknown script added by a reload from one started with
// vipd.
func (st *scriptTracker) state() (known, ok, reload bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.phase == scriptReported, st.result >= st.rise(), st.phase == scriptAwaitingReload
}

func (st *scriptTracker) isOK() bool {
	known, ok, _ := st.state()
	return known && ok
}

// carry takes old's result over into st, scaled to st's rise and fall the
// way keepalived does on a reload: a script still unknown stays unknown, a
// failed one stays failed as far from OK as it was, an OK one stays OK as
// far from failing as it was.
func (st *scriptTracker) carry(old *scriptTracker) {
	old.mu.Lock()
	r, phase := old.result, old.phase
	oldRise, oldTop := old.rise(), old.rise()+old.fall()-1
	old.mu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	rise, top := st.rise(), st.rise()+st.fall()-1
	switch {
	case phase != scriptReported:
		st.phase, st.result = phase, rise-1
		return
	case r < oldRise && r == 0:
		st.result = 0
	case r < oldRise:
		st.result = max(rise-(oldRise-r), 0)
	case r == oldTop:
		st.result = top
	default:
		st.result = min(rise+(r-oldRise), top)
	}
	st.phase = scriptReported
}

// watchLinks follows every interface's state through netlink.
func (t *tracking) watchLinks() error {
	// Know every interface's state before the first instance asks.
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("list interfaces: %w", err)
	}
	for _, l := range links {
		t.ifUp[l.Attrs().Name] = linkUp(l.Attrs())
	}
	ch := make(chan netlink.LinkUpdate, 16)
	err = netlink.LinkSubscribeWithOptions(ch, t.ctx.Done(), netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			if t.ctx.Err() != nil {
				return // the subscription's socket closing on shutdown
			}
			t.log.Error("interface watch failed", "err", err)
		},
	})
	if err != nil {
		return fmt.Errorf("watch interfaces: %w", err)
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		for u := range ch {
			a := u.Attrs()
			up := linkUp(a)
			if u.Header.Type == 17 /* RTM_DELLINK */ {
				up = false
			}
			t.mu.Lock()
			was, seen := t.ifUp[a.Name]
			t.ifUp[a.Name] = up
			t.mu.Unlock()
			if !seen || was != up {
				if seen {
					t.log.Info("tracked interface changed", "interface", a.Name, "up", up)
				}
				t.kickAll()
			}
		}
	}()
	return nil
}

// signed is a weight as applied: reverse turns the adjustment's direction
// round (a -20 weight then adds 20 while the thing is down).
func signed(w int, reverse bool) int {
	if reverse {
		return -w
	}
	return w
}

func linkUp(a *netlink.LinkAttrs) bool {
	return a.Flags&net.FlagUp != 0 && (a.OperState == netlink.OperUp || a.OperState == netlink.OperUnknown)
}

// effective is spec's priority after the weights of what it tracks, and
// whether something it tracks without a weight has failed (FAULT). As in
// keepalived: a positive weight is added while the thing is up or OK, a
// negative one while it is down or failed; a script without a result yet
// adjusts nothing, and holds an instance that tracks it without a weight
// in FAULT while vipd starts.
func (t *tracking) effective(spec instanceSpec) (prio int, fault bool, why string) {
	prio, fault, _, why = t.evaluate(spec)
	return prio, fault, why
}

// evaluate is effective, and also tells whether the fault comes only from
// scripts that have not reported yet (keepalived runs no notify_fault
// for that).
func (t *tracking) evaluate(spec instanceSpec) (prio int, fault, waitingOnly bool, why string) {
	p := int(spec.Priority)
	t.mu.Lock()
	defer t.mu.Unlock()
	var failed, waiting string
	for _, ts := range spec.TrackScripts {
		st := t.scripts[ts.Name]
		if st == nil {
			continue
		}
		known, ok, reload := st.state()
		switch {
		case !known && ts.Weight == 0 && !reload:
			waiting = "waiting for the first result of vrrp_script " + ts.Name
		case !known:
		case ts.Weight == 0 && ok == ts.Reverse:
			failed = "vrrp_script " + ts.Name + " failed"
			if ts.Reverse {
				failed = "vrrp_script " + ts.Name + " succeeded (reverse)"
			}
		case ts.Weight > 0 && ok, ts.Weight < 0 && !ok:
			p += signed(ts.Weight, ts.Reverse)
		}
	}
	for _, ti := range spec.TrackInterfaces {
		up := t.ifUp[ti.Name]
		switch {
		case ti.Weight == 0 && !up:
			failed = "interface " + ti.Name + " is down"
		case ti.Weight > 0 && up, ti.Weight < 0 && !up:
			p += signed(ti.Weight, ti.Reverse)
		}
	}
	// The machine clamps to 1..254 and leaves an owner's 255 alone.
	switch {
	case failed != "":
		return p, true, false, failed
	case waiting != "":
		return p, true, true, waiting
	}
	return p, false, false, ""
}

// close stops the scripts (killing running ones) and the interface watch.
func (t *tracking) close() {
	t.cancel()
	t.wg.Wait()
}
