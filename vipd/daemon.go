package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/health"
	"github.com/amqpha/amqpha/vipd/lvs"
)

// daemon owns the running instances, the trackers and the notifier, and
// turns a (re)loaded configuration into them.
type daemon struct {
	path string
	log  *slog.Logger

	mu       sync.Mutex
	routerID string
	loaded   time.Time
	runners  []*runner
	track    *tracking
	notify   *notifier
	ipvs     *ipvsManager
	rec      *lvs.Reconciler // created with the first virtual_server, kept across reloads
	kernel   *lvs.Netlink
}

// loadedConfig is a configuration file turned into what the daemon runs.
type loadedConfig struct {
	RouterID  string
	Instances []instanceSpec
	// Groups are the vrrp_sync_groups; instances in none run alone.
	Groups []groupSpec
	// StartupDelay is vrrp_startup_delay: at start (not on reload), no
	// instance becomes master before it has passed.
	StartupDelay time.Duration
	Scripts      []scriptSpec
	Config       *config.Config // for the virtual servers
	Health       health.Options
	// RealServerNotify are the real servers' notify_up/notify_down.
	RealServerNotify map[*config.RealServer]rsScripts
}

// startIPVSLocked starts programming lc's virtual servers, opening IPVS the
// first time a configuration has any; with none, it removes what an earlier
// configuration programmed.
func (d *daemon) startIPVSLocked(lc *loadedConfig) error {
	if len(lc.Config.VirtualServers) == 0 {
		d.stopIPVSLocked(false)
		if d.rec != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := d.rec.Apply(ctx, lvs.Table{}); err != nil {
				return fmt.Errorf("removing virtual servers: %w", err)
			}
		}
		return nil
	}
	if d.rec == nil {
		k, err := lvs.NewNetlink("")
		if err != nil {
			return fmt.Errorf("%w: %v", errNoIPVS, err)
		}
		d.kernel, d.rec = k, lvs.NewReconciler(k, d.log.With("part", "ipvs"))
	}
	m, err := startIPVS(lc.Config, d.rec, lc.Health, defaultReconcile, d.log, d.ipvs, d.notify, lc.RealServerNotify)
	if err != nil {
		if d.ipvs != nil {
			err = fmt.Errorf("%w (the virtual servers of the previous configuration stay as they were, checked as before)", err)
		}
		return err
	}
	d.ipvs = m
	return nil
}

// stopIPVSLocked stops the checks; with remove it also deletes the virtual
// servers vipd programmed (on shutdown, as keepalived does).
func (d *daemon) stopIPVSLocked(remove bool) {
	if d.ipvs != nil {
		d.ipvs.stop()
		d.ipvs = nil
	}
	if remove && d.rec != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := d.rec.Remove(ctx); err != nil {
			d.log.Error("removing virtual servers", "err", err)
		}
		if d.kernel != nil {
			d.kernel.Close()
		}
		d.rec, d.kernel = nil, nil
	}
}

func newDaemon(path string, log *slog.Logger) *daemon {
	return &daemon{path: path, log: log}
}

// start loads the configuration and starts every instance. An instance that
// cannot start (a missing interface, say) is an error: vipd refuses to run
// half of what it was told.
func (d *daemon) start() error {
	lc, err := loadConfig(d.path, d.log)
	if err != nil {
		return err
	}
	track, err := newTracking(lc.Scripts, true, d.log)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.track = track
	d.notify = newNotifier(d.log)
	d.routerID, d.loaded = lc.RouterID, time.Now()
	var delay time.Time
	if lc.StartupDelay > 0 {
		delay = time.Now().Add(lc.StartupDelay)
		d.log.Info("vrrp_startup_delay: no instance becomes master before it has passed", "delay", lc.StartupDelay)
	}
	for _, u := range lc.units() {
		r, err := d.startUnit(u, delay)
		if err != nil {
			d.stopLocked()
			return err
		}
		d.runners = append(d.runners, r)
	}
	if err := d.startIPVSLocked(lc); err != nil {
		d.stopLocked()
		return err
	}
	d.log.Info("vipd started", "config", d.path, "instances", len(lc.Instances), "router_id", d.routerID)
	return nil
}

// unit is what one runner runs: one instance alone, or a sync group's
// members.
type unit struct {
	group *groupSpec
	specs []instanceSpec
}

// key says whether a running unit can take a reloaded one in place: the
// same group (or none) and the same instances by identity, in order.
func (u unit) key() string {
	k := "alone"
	if u.group != nil {
		k = "group " + u.group.Name
	}
	for _, s := range u.specs {
		k += "\n" + s.identity()
	}
	return k
}

func (u unit) names() []string {
	var out []string
	for _, s := range u.specs {
		out = append(out, s.Name)
	}
	return out
}

// units splits the instances into runners' units: one per sync group
// (members in the group's order), one per other instance.
func (lc *loadedConfig) units() []unit {
	byName := map[string]instanceSpec{}
	for _, s := range lc.Instances {
		byName[s.Name] = s
	}
	inGroup := map[string]bool{}
	var out []unit
	for k := range lc.Groups {
		g := &lc.Groups[k]
		u := unit{group: g}
		for _, m := range g.Members {
			u.specs = append(u.specs, byName[m])
			inGroup[m] = true
		}
		out = append(out, u)
	}
	for _, s := range lc.Instances {
		if !inGroup[s.Name] {
			out = append(out, unit{specs: []instanceSpec{s}})
		}
	}
	return out
}

func (d *daemon) startUnit(u unit, delay time.Time) (*runner, error) {
	var members []*instance
	for _, s := range u.specs {
		i, err := prepareInstance(s, nil, d.notify, d.log)
		if err != nil {
			for _, m := range members {
				m.closeIO(nil)
			}
			return nil, err
		}
		members = append(members, i)
	}
	return startRunner(u.group, members, d.track, d.notify, delay, d.log), nil
}

// reload applies a changed configuration as keepalived does: an instance
// whose identity (interface, VRID, family, unicast or multicast, source,
// group) is unchanged keeps its state, whatever else changed: a master
// stays master and advertises its new settings at once, a backup stays
// backup; the election then runs as usual. A sync group keeps its state
// when its members are the same instances. Other instances (and groups)
// are stopped, resigning, and started anew. A configuration that does
// not load changes nothing.
func (d *daemon) reload() error {
	lc, err := loadConfig(d.path, d.log)
	if err != nil {
		return fmt.Errorf("reload refused, running configuration kept: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.track.update(lc.Scripts)
	want := lc.units()
	wanted := map[string][]int{}
	for k, u := range want {
		wanted[u.key()] = append(wanted[u.key()], k)
	}
	taken := map[int]bool{}
	var kept, stopped, started []string
	var firstErr error
	running := d.runners[:0]
	for _, r := range d.runners {
		group, old := r.current()
		cur := unit{group: group}
		for _, i := range old {
			cur.specs = append(cur.specs, i.spec)
		}
		// Among units of the same identity (unicast instances with
		// disjoint peers may share one) the one with the same names first.
		k, ok := -1, false
		for _, c := range wanted[cur.key()] {
			if taken[c] {
				continue
			}
			if !ok || slices.Equal(want[c].names(), cur.names()) {
				k, ok = c, true
			}
		}
		if ok {
			if err := d.reloadRunner(r, old, want[k]); err == nil {
				taken[k] = true
				running = append(running, r)
				kept = append(kept, want[k].names()...)
				continue
			} else {
				d.log.Error("instance cannot take its new settings in place; restarting it", "instances", cur.names(), "err", err)
			}
		}
		r.Stop()
		stopped = append(stopped, cur.names()...)
	}
	d.runners = running
	for k, u := range want {
		if taken[k] {
			continue
		}
		r, err := d.startUnit(u, time.Time{})
		if err != nil {
			d.log.Error("instance cannot start after reload", "instances", u.names(), "err", err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		d.runners = append(d.runners, r)
		started = append(started, u.names()...)
	}
	if err := d.startIPVSLocked(lc); err != nil {
		d.log.Error("virtual servers after reload", "err", err)
		if firstErr == nil {
			firstErr = err
		}
	}
	d.routerID, d.loaded = lc.RouterID, time.Now()
	d.log.Info("configuration reloaded", "kept", kept, "stopped", stopped, "started", started)
	return firstErr
}

// reloadRunner prepares instances from u for r's members (each reusing
// its predecessor's socket when adverts go to the same place) and has r
// swap them in, keeping the state.
func (d *daemon) reloadRunner(r *runner, old []*instance, u unit) error {
	var next []*instance
	for k, s := range u.specs {
		i, err := prepareInstance(s, old[k], d.notify, d.log)
		if err != nil {
			for j, n := range next {
				n.closeIO(old[j])
			}
			return err
		}
		next = append(next, i)
	}
	r.reload(next, u.group)
	return nil
}

// shutdown resigns every instance (priority-0 adverts, addresses removed),
// runs the queued notify scripts for a few seconds at most, and stops the
// trackers.
func (d *daemon) shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
	d.log.Info("vipd stopped")
}

// stopLocked stops everything: first the instances (resigning with
// priority-0 adverts and removing their addresses, so that the backup takes
// the VIPs while the virtual servers behind them still exist here), then
// the virtual servers. The other order held the VIPs for a moment with
// nothing behind them.
func (d *daemon) stopLocked() {
	d.stopInstancesLocked()
	shutdownStep("instances stopped")
	d.stopIPVSLocked(true)
	shutdownStep("virtual servers removed")
	if d.notify != nil {
		d.notify.close(5 * time.Second)
	}
	if d.track != nil {
		d.track.close()
	}
}

// shutdownTrace, when set (by tests), hears each step of stopLocked.
var shutdownTrace func(step string)

func shutdownStep(step string) {
	if shutdownTrace != nil {
		shutdownTrace(step)
	}
}

func (d *daemon) stopInstancesLocked() {
	var wg sync.WaitGroup
	for _, r := range d.runners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Stop()
		}()
	}
	wg.Wait()
	d.runners = nil
}

func (d *daemon) status() daemonStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := daemonStatus{RouterID: d.routerID, Config: d.path, Loaded: d.loaded}
	for _, r := range d.runners {
		for _, i := range r.snapshot() {
			s.Instances = append(s.Instances, i.Status())
		}
	}
	sort.Slice(s.Instances, func(a, b int) bool { return s.Instances[a].Name < s.Instances[b].Name })
	if d.ipvs != nil {
		s.IPVS = d.ipvs.status()
	}
	return s
}
