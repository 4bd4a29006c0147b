package main

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
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

	mu        sync.Mutex
	routerID  string
	loaded    time.Time
	instances map[string]*instance
	track     *tracking
	notify    *notifier
	ipvs      *ipvsManager
	rec       *lvs.Reconciler // created with the first virtual_server, kept across reloads
	kernel    *lvs.Netlink
}

// loadedConfig is a configuration file turned into what the daemon runs.
type loadedConfig struct {
	RouterID  string
	Instances []instanceSpec
	Scripts   []scriptSpec
	Config    *config.Config // for the virtual servers
	Health    health.Options
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
	m, err := startIPVS(lc.Config, d.rec, lc.Health, defaultReconcile, d.log, d.ipvs)
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
	return &daemon{path: path, log: log, instances: map[string]*instance{}}
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
	for _, s := range lc.Instances {
		i, err := startInstance(s, d.track, d.notify, d.log)
		if err != nil {
			d.stopLocked(true)
			return err
		}
		d.instances[s.Name] = i
	}
	if err := d.startIPVSLocked(lc); err != nil {
		d.stopLocked(true)
		return err
	}
	d.log.Info("vipd started", "config", d.path, "instances", len(d.instances), "router_id", d.routerID)
	return nil
}

// reload applies a changed configuration. Instances whose settings are the
// same keep running untouched, addresses and all; changed ones are stopped
// (resigning) and started anew; removed ones are stopped; new ones started.
// A configuration that does not load changes nothing.
func (d *daemon) reload() error {
	lc, err := loadConfig(d.path, d.log)
	if err != nil {
		return fmt.Errorf("reload refused, running configuration kept: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.track.update(lc.Scripts)
	want := map[string]instanceSpec{}
	for _, s := range lc.Instances {
		want[s.Name] = s
	}
	var kept, restarted, stopped, started []string
	for name, i := range d.instances {
		s, ok := want[name]
		switch {
		case !ok:
			i.Stop(true)
			delete(d.instances, name)
			stopped = append(stopped, name)
		case !reflect.DeepEqual(s, i.spec):
			i.Stop(true)
			delete(d.instances, name)
			restarted = append(restarted, name)
		default:
			kept = append(kept, name)
		}
	}
	var firstErr error
	for _, s := range lc.Instances {
		if d.instances[s.Name] != nil {
			continue
		}
		i, err := startInstance(s, d.track, d.notify, d.log)
		if err != nil {
			d.log.Error("instance cannot start after reload", "instance", s.Name, "err", err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		d.instances[s.Name] = i
		if !contains(restarted, s.Name) {
			started = append(started, s.Name)
		}
	}
	if err := d.startIPVSLocked(lc); err != nil {
		d.log.Error("virtual servers after reload", "err", err)
		if firstErr == nil {
			firstErr = err
		}
	}
	d.routerID, d.loaded = lc.RouterID, time.Now()
	d.log.Info("configuration reloaded", "kept", kept, "restarted", restarted, "stopped", stopped, "started", started)
	return firstErr
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// shutdown resigns every instance (priority-0 adverts, addresses removed),
// runs the queued notify scripts for a few seconds at most, and stops the
// trackers.
func (d *daemon) shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked(true)
	d.log.Info("vipd stopped")
}

// stopLocked stops everything: first the instances (resigning with
// priority-0 adverts and removing their addresses, so that the backup takes
// the VIPs while the virtual servers behind them still exist here), then
// the virtual servers. The other order held the VIPs for a moment with
// nothing behind them.
func (d *daemon) stopLocked(resign bool) {
	d.stopInstancesLocked(resign)
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

func (d *daemon) stopInstancesLocked(resign bool) {
	var wg sync.WaitGroup
	for name, i := range d.instances {
		wg.Add(1)
		go func() {
			defer wg.Done()
			i.Stop(resign)
		}()
		delete(d.instances, name)
	}
	wg.Wait()
}

func (d *daemon) status() daemonStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := daemonStatus{RouterID: d.routerID, Config: d.path, Loaded: d.loaded}
	for _, i := range d.instances {
		s.Instances = append(s.Instances, i.Status())
	}
	sort.Slice(s.Instances, func(a, b int) bool { return s.Instances[a].Name < s.Instances[b].Name })
	if d.ipvs != nil {
		s.IPVS = d.ipvs.status()
	}
	return s
}
