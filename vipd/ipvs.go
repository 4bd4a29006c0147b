package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
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

	kick   chan struct{}
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
	return key
}

// startIPVS starts the monitors and the reconcile loop for cfg's virtual
// servers, applying through rec (kept across reloads, so services dropped
// from the configuration are removed). With prev (a reload), the monitors
// of real servers whose checks did not change are taken over with their
// state — a dead real server stays out of the table — and prev's loop must
// have been stopped (stopLoop); prev's other monitors are left to the
// caller (stopMonitors).
func startIPVS(cfg *config.Config, rec *lvs.Reconciler, opts health.Options, every time.Duration, log *slog.Logger, prev *ipvsManager) (*ipvsManager, error) {
	if every <= 0 {
		every = defaultReconcile
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &ipvsManager{
		log: log.With("part", "ipvs"), cfg: cfg, rec: rec, every: every,
		monitors: map[*config.RealServer]*health.Monitor{},
		byKey:    map[string]*health.Monitor{},
		kick:     make(chan struct{}, 1),
		cancel:   cancel,
		done:     make(chan struct{}),
	}
	if prev != nil {
		// Monitors taken over keep poking the channel they were made with.
		m.kick = prev.kick
		m.changes, m.drifts = prev.changes, prev.drifts
	}
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			key := monitorKey(vs, rs)
			if prev != nil && prev.byKey[key] != nil {
				mon := prev.byKey[key]
				delete(prev.byKey, key)
				for r, x := range prev.monitors {
					if x == mon {
						delete(prev.monitors, r)
					}
				}
				m.monitors[rs], m.byKey[key] = mon, mon
				continue
			}
			checks, err := health.FromConfig(rs, opts)
			if err != nil {
				m.stopMonitors()
				cancel()
				return nil, fmt.Errorf("%s:%d: real_server %s: %w", rs.Pos.File, rs.Pos.Line, rs.IP, err)
			}
			if len(checks) == 0 {
				continue // always up, as keepalived has it
			}
			rsAddr := netip.AddrPortFrom(rs.IP, uint16(rs.Port))
			kick, mlog := m.kick, m.log
			mon, err := health.NewMonitor(health.MonitorConfig{
				Checks: checks,
				OnChange: func(s health.Status) {
					mlog.Info("real server "+s.State.String(), "real_server", rsAddr, "weight", s.Weight)
					select {
					case kick <- struct{}{}:
					default:
					}
				},
				Logger: m.log.With("real_server", rsAddr),
			})
			if err != nil {
				m.stopMonitors()
				cancel()
				return nil, err
			}
			m.monitors[rs], m.byKey[key] = mon, mon
		}
	}
	go m.loop(ctx)
	return m, nil
}

func (m *ipvsManager) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
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
	for _, mon := range m.monitors {
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

type realServerStat struct {
	Address string `json:"address"`
	State   string `json:"state"`
	Weight  int    `json:"weight"`
	InTable bool   `json:"in_table"`
	Checks  []struct {
		Name  string `json:"name"`
		State string `json:"state"`
		Error string `json:"error,omitempty"`
	} `json:"checks"`
}

func (m *ipvsManager) status() *ipvsStatus {
	wanted, _ := lvs.FromConfig(m.cfg, m.health)
	m.mu.Lock()
	st := &ipvsStatus{Applied: m.applied, Error: m.lastErr, Changes: m.changes, Drifts: m.drifts}
	m.mu.Unlock()
	for i := range m.cfg.VirtualServers {
		vs := &m.cfg.VirtualServers[i]
		v := virtualServerStat{Service: vsName(vs), Scheduler: vs.LVSSched}
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			addr := netip.AddrPortFrom(rs.IP, uint16(rs.Port))
			r := realServerStat{Address: addr.String(), State: lvs.Up.String(), Weight: rs.Weight}
			if mon := m.monitors[rs]; mon != nil {
				s := mon.Status()
				r.State = s.State.String()
				for _, c := range s.Checks {
					x := struct {
						Name  string `json:"name"`
						State string `json:"state"`
						Error string `json:"error,omitempty"`
					}{Name: c.Name, State: c.State.String()}
					if c.Last.Err != nil {
						x.Error = c.Last.Err.Error()
					}
					r.Checks = append(r.Checks, x)
				}
			}
			for _, svc := range wanted {
				for _, d := range svc.Destinations {
					if d.Addr == rs.IP && (rs.Port == 0 || int(d.Port) == rs.Port) && svcMatches(svc.Service, vs) {
						r.InTable, r.Weight = true, d.Weight
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

func svcMatches(s lvs.Service, vs *config.VirtualServer) bool {
	if vs.Fwmark != 0 {
		return s.FWMark == vs.Fwmark
	}
	if vs.Group != "" {
		return true
	}
	return s.Addr == vs.IP && int(s.Port) == vs.Port
}

var errNoIPVS = errors.New("this configuration has virtual_server blocks, but the kernel has no IPVS (modprobe ip_vs)")
