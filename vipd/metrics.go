package main

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

// instanceMetrics counts what one VRRP instance did. Counters are atomics:
// the instance's loop writes them, the status server reads them.
type instanceMetrics struct {
	advertsSent     atomic.Uint64
	advertsReceived atomic.Uint64
	sendErrors      atomic.Uint64
	garps           atomic.Uint64
	garpErrors      atomic.Uint64
	notifyRuns      atomic.Uint64
	notifyFailures  atomic.Uint64
	notifyDropped   atomic.Uint64
	addrErrors      atomic.Uint64

	mu          sync.Mutex
	drops       map[string]uint64 // by vrrp.DropReason's string
	transitions map[string]uint64 // by the state entered
}

func newInstanceMetrics() *instanceMetrics {
	return &instanceMetrics{drops: map[string]uint64{}, transitions: map[string]uint64{}}
}

func (m *instanceMetrics) drop(reason string) {
	m.mu.Lock()
	m.drops[reason]++
	m.mu.Unlock()
}

func (m *instanceMetrics) transition(to vrrp.State) {
	m.mu.Lock()
	m.transitions[to.String()]++
	m.mu.Unlock()
}

func (m *instanceMetrics) snapshot() (drops, transitions map[string]uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	drops = make(map[string]uint64, len(m.drops))
	for k, v := range m.drops {
		drops[k] = v
	}
	transitions = make(map[string]uint64, len(m.transitions))
	for k, v := range m.transitions {
		transitions[k] = v
	}
	return drops, transitions
}

// writeProm writes every instance's metrics in Prometheus' text format.
func writeProm(w io.Writer, statuses []instanceStatus) {
	type metric struct {
		name, help, kind string
		value            func(s instanceStatus) uint64
	}
	simple := []metric{
		{"vipd_vrrp_adverts_sent_total", "VRRP advertisements sent.", "counter", func(s instanceStatus) uint64 { return s.Counters.AdvertsSent }},
		{"vipd_vrrp_adverts_received_total", "VRRP advertisements received and accepted.", "counter", func(s instanceStatus) uint64 { return s.Counters.AdvertsReceived }},
		{"vipd_vrrp_send_errors_total", "VRRP advertisements that could not be sent.", "counter", func(s instanceStatus) uint64 { return s.Counters.SendErrors }},
		{"vipd_garp_sent_total", "Gratuitous ARP and unsolicited NA frames sent.", "counter", func(s instanceStatus) uint64 { return s.Counters.GARPs }},
		{"vipd_garp_errors_total", "Gratuitous ARP and unsolicited NA frames that could not be sent.", "counter", func(s instanceStatus) uint64 { return s.Counters.GARPErrors }},
		{"vipd_notify_runs_total", "Notify scripts run.", "counter", func(s instanceStatus) uint64 { return s.Counters.NotifyRuns }},
		{"vipd_notify_failures_total", "Notify scripts that failed or timed out.", "counter", func(s instanceStatus) uint64 { return s.Counters.NotifyFailures }},
		{"vipd_notify_dropped_total", "Notifications dropped because the queue was full.", "counter", func(s instanceStatus) uint64 { return s.Counters.NotifyDropped }},
		{"vipd_address_errors_total", "Virtual addresses that could not be added or removed.", "counter", func(s instanceStatus) uint64 { return s.Counters.AddressErrors }},
		{"vipd_vrrp_priority", "Effective VRRP priority.", "gauge", func(s instanceStatus) uint64 { return uint64(s.Priority) }},
	}
	for _, m := range simple {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.kind)
		for _, s := range statuses {
			fmt.Fprintf(w, "%s{instance=%q} %d\n", m.name, s.Name, m.value(s))
		}
	}
	fmt.Fprintf(w, "# HELP vipd_vrrp_state Current VRRP state (1 for the state the instance is in).\n# TYPE vipd_vrrp_state gauge\n")
	for _, s := range statuses {
		for _, st := range []vrrp.State{vrrp.Initialize, vrrp.Backup, vrrp.Master, vrrp.Fault, vrrp.Stopped} {
			v := 0
			if s.State == st.String() {
				v = 1
			}
			fmt.Fprintf(w, "vipd_vrrp_state{instance=%q,state=%q} %d\n", s.Name, st.String(), v)
		}
	}
	labelled := func(name, help, label string, get func(s instanceStatus) map[string]uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		for _, s := range statuses {
			m := get(s)
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(w, "%s{instance=%q,%s=%q} %d\n", name, s.Name, label, k, m[k])
			}
		}
	}
	labelled("vipd_vrrp_drops_total", "VRRP packets dropped, by reason.", "reason", func(s instanceStatus) map[string]uint64 { return s.Counters.Drops })
	labelled("vipd_vrrp_transitions_total", "VRRP state transitions, by the state entered.", "state", func(s instanceStatus) map[string]uint64 { return s.Counters.Transitions })
}

// writeIPVSProm writes the virtual servers' metrics: each real server's
// health (1 up, 0 otherwise), weight and presence in the kernel's table, and
// the reconcile counters.
func writeIPVSProm(w io.Writer, st *ipvsStatus) {
	if st == nil {
		return
	}
	fmt.Fprintf(w, "# HELP vipd_ipvs_changes_total IPVS changes applied.\n# TYPE vipd_ipvs_changes_total counter\nvipd_ipvs_changes_total %d\n", st.Changes)
	fmt.Fprintf(w, "# HELP vipd_ipvs_drifts_repaired_total IPVS changes made by hand and undone.\n# TYPE vipd_ipvs_drifts_repaired_total counter\nvipd_ipvs_drifts_repaired_total %d\n", st.Drifts)
	series := []struct {
		name, typ, help string
		value           func(r realServerStat) uint64
	}{
		{"vipd_real_server_up", "gauge", "1 when the real server's checks pass.", func(r realServerStat) uint64 { return uint64(b2i(r.State == lvs.Up.String())) }},
		{"vipd_real_server_weight", "gauge", "The real server's weight in the IPVS table.", func(r realServerStat) uint64 { return uint64(r.Weight) }},
		{"vipd_real_server_in_table", "gauge", "1 when the real server is in the IPVS table.", func(r realServerStat) uint64 { return uint64(b2i(r.InTable)) }},
		{"vipd_real_server_active_connections", "gauge", "Established connections IPVS forwards to the real server.", func(r realServerStat) uint64 { return uint64(r.Active) }},
		{"vipd_real_server_inactive_connections", "gauge", "Connections in other states (closing, TIME_WAIT, UDP) IPVS keeps for the real server.", func(r realServerStat) uint64 { return uint64(r.Inactive) }},
		{"vipd_real_server_connections_total", "counter", "Connections IPVS scheduled to the real server since it was added to the table.", func(r realServerStat) uint64 { return r.Total }},
	}
	for _, g := range series {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", g.name, g.help, g.name, g.typ)
		for _, vs := range st.VirtualServers {
			for _, r := range vs.RealServers {
				fmt.Fprintf(w, "%s{virtual_server=%q,real_server=%q} %d\n", g.name, vs.Service, r.Address, g.value(r))
			}
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
