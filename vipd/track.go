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

type scriptTracker struct {
	spec   scriptSpec
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	ok   bool
	runs int // consecutive results in the direction of a change
}

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

func (t *tracking) startScript(s scriptSpec) { t.startScriptAt(s, !s.InitFail) }

// startScriptAt starts a script tracker whose state is ok until its
// results say otherwise.
func (t *tracking) startScriptAt(s scriptSpec, ok bool) {
	ctx, cancel := context.WithCancel(t.ctx)
	st := &scriptTracker{spec: s, ok: ok, cancel: cancel, done: make(chan struct{})}
	t.scripts[s.Name] = st
	t.wg.Add(1)
	go t.runScript(ctx, st)
}

// update replaces the vrrp_scripts after a reload: unchanged ones keep
// running with their state, changed or removed ones stop, new ones start.
// Only the daemon's goroutine calls it (with the daemon's lock held), as it
// does every other change of t.scripts.
func (t *tracking) update(scripts []scriptSpec) {
	want := map[string]scriptSpec{}
	for _, s := range scripts {
		want[s.Name] = s
	}
	changed := false
	// A script whose settings changed starts from its last result, as
	// keepalived carries it across a reload: editing a command must not
	// flip the instances tracking it.
	last := map[string]bool{}
	for name, st := range t.scripts {
		if s, ok := want[name]; ok && reflect.DeepEqual(s, st.spec) {
			delete(want, name)
			continue
		}
		st.cancel()
		<-st.done
		last[name] = st.isOK()
		t.mu.Lock()
		delete(t.scripts, name)
		t.mu.Unlock()
		changed = true
	}
	for _, s := range scripts {
		if _, ok := want[s.Name]; ok {
			t.mu.Lock()
			if ok, had := last[s.Name]; had {
				t.startScriptAt(s, ok)
			} else {
				t.startScript(s)
			}
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

// runScript runs one vrrp_script every interval; rise consecutive successes
// make it OK, fall consecutive failures make it failed.
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

// record notes one result and reports whether the script's state changed.
func (st *scriptTracker) record(ok bool) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if ok == st.ok {
		st.runs = 0
		return false
	}
	st.runs++
	need := st.spec.Fall
	if ok {
		need = st.spec.Rise
	}
	if st.runs < max(need, 1) {
		return false
	}
	st.ok, st.runs = ok, 0
	return true
}

func (st *scriptTracker) isOK() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ok
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
// negative one while it is down or failed.
func (t *tracking) effective(spec instanceSpec) (prio int, fault bool, why string) {
	p := int(spec.Priority)
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ts := range spec.TrackScripts {
		st := t.scripts[ts.Name]
		if st == nil {
			continue
		}
		ok := st.isOK()
		switch {
		case ts.Weight == 0 && !ok:
			fault, why = true, "vrrp_script "+ts.Name+" failed"
		case ts.Weight > 0 && ok, ts.Weight < 0 && !ok:
			p += signed(ts.Weight, ts.Reverse)
		}
	}
	for _, ti := range spec.TrackInterfaces {
		up := t.ifUp[ti.Name]
		switch {
		case ti.Weight == 0 && !up:
			fault, why = true, "interface "+ti.Name+" is down"
		case ti.Weight > 0 && up, ti.Weight < 0 && !up:
			p += signed(ti.Weight, ti.Reverse)
		}
	}
	// The machine clamps to 1..254 and leaves an owner's 255 alone.
	return p, fault, why
}

// close stops the scripts (killing running ones) and the interface watch.
func (t *tracking) close() {
	t.cancel()
	t.wg.Wait()
}
