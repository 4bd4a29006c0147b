package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/health"
	"github.com/amqpha/amqpha/vipd/lvs"
)

// defaultReconcile is how often the IPVS table is compared with the
// kernel's even when no check changed, so that a change made by hand
// (ipvsadm) is repaired.
const defaultReconcile = 5 * time.Second

// ipvsManager keeps the kernel's IPVS table in step with the virtual_server
// blocks and the health of their real servers: one health.Monitor per real
// server, and one goroutine that recomputes the wanted table and applies it
// whenever a monitor reports a change, and every reconcile interval. The
// checks run on the monitors' goroutines; nothing here touches VRRP.
type ipvsManager struct {
	log      *slog.Logger
	cfg      *config.Config
	rec      *lvs.Reconciler
	every    time.Duration
	monitors map[*config.RealServer]*health.Monitor
	byKey    map[string]*health.Monitor // the same monitors, by monitorKey
	keys     map[*config.VirtualServer][]lvs.ServiceKey

	kick   chan struct{}
	notes  *rsNotes // shared with the monitors, kept across reloads
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	applied time.Time
	lastErr string
	changes uint64
	drifts  uint64
}

// monitorKey identifies a real server's checks across reloads: the
// virtual server, the real server and its check blocks (passwords
// included, so a changed password makes a new monitor; the key stays in
// memory).
func monitorKey(vs *config.VirtualServer, rs *config.RealServer) string {
	checks := struct {
		TCP       []config.TCPCheck
		HTTP, SSL []config.HTTPCheck
		Misc      []config.MiscCheck
		AMQP      []config.AMQPCheck
		Defaults  [4]any
	}{rs.TCPCheck, rs.HTTPGet, rs.SSLGet, rs.MiscCheck, rs.AMQPCheck,
		[4]any{rs.DelayLoop, rs.ConnectTimeout, rs.Retry, rs.DelayBeforeRetry}}
	b, _ := json.Marshal(checks)
	key := vsName(vs) + "|" + netip.AddrPortFrom(rs.IP, uint16(rs.Port)).String() + "|" + string(b)
	for _, a := range rs.AMQPCheck {
		key += "|" + a.Password.Reveal()
	}
	for _, h := range append(slices.Clip(rs.HTTPGet), rs.SSLGet...) {
		key += "|" + h.Password.Reveal()
	}
	return key
}

// startIPVS starts the monitors and the reconcile loop for cfg's virtual
// servers, applying through rec (kept across reloads, so services dropped
// from the configuration are removed). When a real server's checks take it
// up or down, its notify_up or notify_down (from scripts) is started
// through n, as keepalived does.
//
// With prev (a reload), the monitors of real servers whose checks did not
// change are taken over with their state — a dead real server stays out of
// the table — and prev is stopped. When a check cannot be set up, startIPVS
// returns the error and leaves prev running as it was.
func startIPVS(cfg *config.Config, rec *lvs.Reconciler, opts health.Options, every time.Duration, log *slog.Logger, prev *ipvsManager,
	n *notifier, scripts map[*config.RealServer]rsScripts) (*ipvsManager, error) {
	if every <= 0 {
		every = defaultReconcile
	}
	m := &ipvsManager{
		log: log.With("part", "ipvs"), cfg: cfg, rec: rec, every: every,
		monitors: map[*config.RealServer]*health.Monitor{},
		byKey:    map[string]*health.Monitor{},
		keys:     map[*config.VirtualServer][]lvs.ServiceKey{},
		kick:     make(chan struct{}, 1),
		notes:    &rsNotes{},
		done:     make(chan struct{}),
	}
	if prev != nil {
		// Monitors taken over keep poking the channel they were made
		// with, and finding their notify scripts where they were.
		m.kick, m.notes = prev.kick, prev.notes
	}
	byKey := map[string]rsScripts{}
	takeOver := map[*config.RealServer]string{}
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		m.keys[vs] = lvs.ServiceKeys(cfg, vs)
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			key := monitorKey(vs, rs)
			if s, ok := scripts[rs]; ok {
				byKey[key] = s
			}
			if prev != nil && prev.byKey[key] != nil {
				takeOver[rs] = key
				continue
			}
			if mon := m.byKey[key]; mon != nil {
				m.monitors[rs] = mon // the same real server listed twice
				continue
			}
			mon, err := m.newMonitor(rs, key, opts)
			if err != nil {
				m.stopMonitors()
				return nil, err
			}
			if mon != nil {
				m.monitors[rs], m.byKey[key] = mon, mon
			}
		}
	}
	if prev != nil {
		prev.stopLoop()
		m.changes, m.drifts = prev.changes, prev.drifts
		for rs, key := range takeOver {
			mon := prev.byKey[key]
			m.monitors[rs], m.byKey[key] = mon, mon
		}
		for key := range m.byKey {
			delete(prev.byKey, key)
		}
		prev.stopMonitors() // those not taken over
	}
	m.notes.set(n, byKey)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.loop(ctx)
	return m, nil
}

// rsNotes are the real servers' notify scripts by monitorKey, and the
// notifier that starts them; the monitors' callbacks read them, a reload
// replaces them.
type rsNotes struct {
	mu    sync.Mutex
	n     *notifier
	byKey map[string]rsScripts
}

func (x *rsNotes) set(n *notifier, byKey map[string]rsScripts) {
	x.mu.Lock()
	x.n, x.byKey = n, byKey
	x.mu.Unlock()
}

// changed starts notify_up (alive) or notify_down for the real server
// whose monitor has key.
func (x *rsNotes) changed(key string, rs netip.AddrPort, alive bool) {
	x.mu.Lock()
	n, s := x.n, x.byKey[key]
	x.mu.Unlock()
	c := s.Down
	if alive {
		c = s.Up
	}
	if n != nil && c != nil {
		n.enqueueCommand("real_server "+rs.String(), *c)
	}
}

// newMonitor starts the checks of rs, or returns nil when it has none
// (always up, as keepalived has it).
func (m *ipvsManager) newMonitor(rs *config.RealServer, key string, opts health.Options) (*health.Monitor, error) {
	checks, err := health.FromConfig(rs, opts)
	if err != nil {
		return nil, fmt.Errorf("%s:%d: real_server %s: %w", rs.Pos.File, rs.Pos.Line, rs.IP, err)
	}
	if len(checks) == 0 {
		return nil, nil
	}
	rsAddr := netip.AddrPortFrom(rs.IP, uint16(rs.Port))
	kick, mlog, notes := m.kick, m.log, m.notes
	alive := true // a Monitor starts up; only OnChange's goroutine touches this
	return health.NewMonitor(health.MonitorConfig{
		Checks: checks,
		OnChange: func(s health.Status) {
			mlog.Info("real server "+s.State.String(), "real_server", rsAddr, "weight", s.Weight)
			// keepalived: a real server is alive unless a check is
			// down (a drain only changes its weight).
			if now := s.State != lvs.Down; now != alive {
				alive = now
				notes.changed(key, rsAddr, alive)
			}
			select {
			case kick <- struct{}{}:
			default:
			}
		},
		Logger: m.log.With("real_server", rsAddr),
	})
}

func (m *ipvsManager) health(vs *config.VirtualServer, rs *config.RealServer) lvs.Status {
	if mon := m.monitors[rs]; mon != nil {
		return mon.Status().LVS()
	}
	return lvs.Status{}
}

func (m *ipvsManager) loop(ctx context.Context) {
	defer close(m.done)
	tick := time.NewTicker(m.every)
	defer tick.Stop()
	for {
		m.apply(ctx)
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-tick.C:
		}
	}
}

func (m *ipvsManager) apply(ctx context.Context) {
	wanted, errs := lvs.FromConfig(m.cfg, m.health)
	for _, err := range errs {
		m.log.Warn("virtual_server not programmed", "err", err)
	}
	changes, err := m.rec.Apply(ctx, wanted)
	if ctx.Err() != nil {
		return
	}
	for _, c := range changes {
		if c.Drift {
			m.log.Warn("IPVS changed by hand: repaired", "change", c.String())
		} else {
			m.log.Info("IPVS", "change", c.String())
		}
	}
	m.mu.Lock()
	m.applied = time.Now()
	m.changes += uint64(len(changes))
	m.drifts += uint64(changes.Drifts())
	m.lastErr = ""
	if err != nil {
		m.lastErr = err.Error()
	}
	m.mu.Unlock()
	if err != nil {
		m.log.Error("IPVS apply", "err", err)
	}
}

func (m *ipvsManager) stopMonitors() {
	for _, mon := range m.byKey {
		mon.Close()
	}
}

// stopLoop ends the reconcile loop; the monitors keep running.
func (m *ipvsManager) stopLoop() {
	m.cancel()
	<-m.done
}

// stop ends the loop and the checks; the kernel's table stays as it is.
func (m *ipvsManager) stop() {
	m.stopLoop()
	m.stopMonitors()
}

// ipvsStatus is the status endpoint's view of the virtual servers.
type ipvsStatus struct {
	Applied        time.Time           `json:"applied"`
	Error          string              `json:"error,omitempty"`
	Changes        uint64              `json:"changes"`
	Drifts         uint64              `json:"drifts_repaired"`
	VirtualServers []virtualServerStat `json:"virtual_servers"`
}

type virtualServerStat struct {
	Service     string           `json:"service"`
	Scheduler   string           `json:"scheduler"`
	RealServers []realServerStat `json:"real_servers"`
}

// realServerStat is a real server's health and, as the kernel has it now,
// its place in the table; the connections of a real server of a group are
// summed over the group's services.
type realServerStat struct {
	Address  string      `json:"address"`
	State    string      `json:"state"`
	Weight   int         `json:"weight"`
	InTable  bool        `json:"in_table"`
	Active   int         `json:"active_connections"`
	Inactive int         `json:"inactive_connections"`
	Total    uint64      `json:"connections_total"`
	Checks   []checkStat `json:"checks"`
}

type checkStat struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// status reports each real server's checks and what the kernel's table
// holds for it right now (read from the kernel, as ipvsadm -L would).
func (m *ipvsManager) status() *ipvsStatus {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kernel, readErr := m.rec.Read(ctx)
	m.mu.Lock()
	st := &ipvsStatus{Applied: m.applied, Error: m.lastErr, Changes: m.changes, Drifts: m.drifts}
	m.mu.Unlock()
	if readErr != nil {
		st.Error = strings.TrimPrefix(st.Error+"; ", "; ") + readErr.Error()
	}
	for i := range m.cfg.VirtualServers {
		vs := &m.cfg.VirtualServers[i]
		v := virtualServerStat{Service: vsName(vs), Scheduler: vs.LVSSched}
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			r := realServerStat{Address: netip.AddrPortFrom(rs.IP, uint16(rs.Port)).String(), State: lvs.Up.String(), Weight: rs.Weight}
			if mon := m.monitors[rs]; mon != nil {
				s := mon.Status()
				r.State = s.State.String()
				for _, c := range s.Checks {
					x := checkStat{Name: c.Name, State: c.State.String()}
					if c.Last.Err != nil {
						x.Error = c.Last.Err.Error()
					}
					r.Checks = append(r.Checks, x)
				}
			}
			for _, k := range m.keys[vs] {
				for _, d := range kernel[k].Destinations {
					if d.Addr == rs.IP && (rs.Port == 0 || int(d.Port) == rs.Port) {
						r.InTable, r.Weight = true, d.Weight
						r.Active += d.Conns.Active
						r.Inactive += d.Conns.Inactive
						r.Total += uint64(d.Conns.Total)
					}
				}
			}
			v.RealServers = append(v.RealServers, r)
		}
		st.VirtualServers = append(st.VirtualServers, v)
	}
	sort.SliceStable(st.VirtualServers, func(a, b int) bool { return st.VirtualServers[a].Service < st.VirtualServers[b].Service })
	return st
}

func vsName(vs *config.VirtualServer) string {
	switch {
	case vs.Fwmark != 0:
		return fmt.Sprintf("fwmark %d", vs.Fwmark)
	case vs.Group != "":
		return "group " + vs.Group
	}
	return netip.AddrPortFrom(vs.IP, uint16(vs.Port)).String()
}

var errNoIPVS = errors.New("this configuration has virtual_server blocks, but the kernel has no IPVS (modprobe ip_vs)")
