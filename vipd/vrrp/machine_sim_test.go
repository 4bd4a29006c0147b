package vrrp_test

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

const sec = time.Second

// The RFC formulas, written out again for the expectations.

// skew2 is version 2's Skew_Time.
func skew2(prio int) time.Duration { return time.Duration(256-prio) * sec / 256 }

// mdi2 is version 2's Master_Down_Interval at a one second interval.
func mdi2(prio int) time.Duration { return 3*sec + skew2(prio) }

// skew3 is version 3's Skew_Time for Master_Adver_Interval iv.
func skew3(prio int, iv time.Duration) time.Duration { return time.Duration(256-prio) * iv / 256 }

// mdi3 is version 3's Master_Down_Interval.
func mdi3(prio int, iv time.Duration) time.Duration { return 3*iv + skew3(prio, iv) }

// hist formats one transition as the simulator records it.
func hist(at time.Duration, from, to vrrp.State) string {
	return fmt.Sprintf("%v %v->%v", at, from, to)
}

const (
	sInit   = vrrp.Initialize
	sBackup = vrrp.Backup
	sMaster = vrrp.Master
	sFault  = vrrp.Fault
	sStop   = vrrp.Stopped
)

type simSpec struct {
	name  string
	prio  uint8
	start time.Duration // when Start is called
	cfg   func(*vrrp.Config)
}

type scenario struct {
	name     string
	version  int           // 0: 2
	interval time.Duration // 0: 1s
	nodes    []simSpec
	delay    time.Duration
	script   func(s *sim)
	until    time.Duration // 0: 60s
	want     map[string][]string
	masters  []string // live masters at the end
	check    func(t *testing.T, s *sim)
}

// node i gets address 192.0.2.(i+1); the virtual address is 192.0.2.100.
func (sc *scenario) configs() ([]string, []vrrp.Config) {
	var names []string
	var cfgs []vrrp.Config
	for i, n := range sc.nodes {
		cfg := vrrp.DefaultConfig()
		cfg.VRID = 51
		if sc.version != 0 {
			cfg.Version = sc.version
		}
		if sc.interval != 0 {
			cfg.Interval = sc.interval
		}
		cfg.Priority = n.prio
		cfg.PrimaryIP = netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
		cfg.Addresses = []netip.Addr{netip.MustParseAddr("192.0.2.100")}
		if n.cfg != nil {
			n.cfg(&cfg)
		}
		names = append(names, n.name)
		cfgs = append(cfgs, cfg)
	}
	return names, cfgs
}

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			names, cfgs := sc.configs()
			s := newSim(t, names, cfgs)
			s.delay = sc.delay
			if sc.script != nil {
				sc.script(s)
			}
			for _, n := range sc.nodes {
				s.at(n.start, func() { s.start(n.name) })
			}
			until := sc.until
			if until == 0 {
				until = 60 * sec
			}
			s.run(until)
			for _, name := range names {
				want, ok := sc.want[name]
				if !ok {
					continue
				}
				if got := s.node(name).history; !slices.Equal(got, want) {
					t.Errorf("%s transitions:\n got %q\nwant %q", name, got, want)
				}
			}
			if sc.masters != nil {
				if got := s.masters(); !slices.Equal(got, sc.masters) {
					t.Errorf("masters at %v = %v, want %v", until, got, sc.masters)
				}
			}
			if sc.check != nil {
				sc.check(t, s)
			}
		})
	}
}

// lastReason returns the reason of a node's last transition.
func lastReason(s *sim, name string) string {
	r := s.node(name).reasons
	if len(r) == 0 {
		return ""
	}
	return r[len(r)-1]
}

func scenarios() []scenario {
	ipv6 := func(last byte) func(*vrrp.Config) {
		return func(c *vrrp.Config) {
			c.PrimaryIP = netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80, 15: last})
			c.Addresses = []netip.Addr{netip.MustParseAddr("fe80::100")}
		}
	}
	initialMaster := func(c *vrrp.Config) { c.InitialState = vrrp.Master }
	return []scenario{
		{
			name:  "election: highest priority wins after its own Master_Down_Interval",
			nodes: []simSpec{{name: "A", prio: 100}, {name: "B", prio: 150}, {name: "C", prio: 200}},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup)},
				"B": {hist(0, sInit, sBackup)},
				"C": {hist(0, sInit, sBackup), hist(mdi2(200), sBackup, sMaster)},
			},
			masters: []string{"C"},
			check: func(t *testing.T, s *sim) {
				if st := s.node("A").m.Status(); st.Master != s.node("C").addr || st.MasterPriority != 200 {
					t.Errorf("A heard master %v/%d, want C/200", st.Master, st.MasterPriority)
				}
			},
		},
		{
			// Both time out at the same instant and both become master;
			// the adverts cross and the lower address yields.
			name:  "election: equal priority, higher address wins",
			delay: sec / 1000,
			nodes: []simSpec{{name: "A", prio: 100}, {name: "B", prio: 100}},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(mdi2(100), sBackup, sMaster), hist(mdi2(100)+sec/1000, sMaster, sBackup)},
				"B": {hist(0, sInit, sBackup), hist(mdi2(100), sBackup, sMaster)},
			},
			masters: []string{"B"},
			check: func(t *testing.T, s *sim) {
				if got := lastReason(s, "A"); !strings.Contains(got, "higher address") {
					t.Errorf("A yielded for %q", got)
				}
				if s.node("B").heardLow != 1 {
					t.Errorf("B heard %d lower adverts, want 1", s.node("B").heardLow)
				}
			},
		},
		{
			name:  "election: equal priority, IPv6, version 3, higher address wins",
			delay: sec / 1000, version: 3,
			nodes: []simSpec{{name: "A", prio: 100, cfg: ipv6(1)}, {name: "B", prio: 100, cfg: ipv6(2)}},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(mdi3(100, sec), sBackup, sMaster), hist(mdi3(100, sec)+sec/1000, sMaster, sBackup)},
				"B": {hist(0, sInit, sBackup), hist(mdi3(100, sec), sBackup, sMaster)},
			},
			masters: []string{"B"},
		},
		{
			name:  "election: equal priority does not preempt a running master",
			nodes: []simSpec{{name: "A", prio: 100}, {name: "B", prio: 100, start: sec / 2}},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(mdi2(100), sBackup, sMaster)},
				"B": {hist(sec/2, sInit, sBackup)},
			},
			masters: []string{"A"},
		},
		{
			name:  "master killed: the next highest takes over at its Master_Down_Interval after the last advert",
			nodes: []simSpec{{name: "A", prio: 100}, {name: "B", prio: 150}, {name: "C", prio: 200}},
			script: func(s *sim) {
				s.at(20*sec+sec/2, func() { s.kill("C") })
			},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup)},
				// C's adverts: mdi2(200) + k s; the last is at 20.21875 s.
				"B": {hist(0, sInit, sBackup), hist(mdi2(200)+17*sec+mdi2(150), sBackup, sMaster)},
			},
			masters: []string{"B"},
			check: func(t *testing.T, s *sim) {
				if got := lastReason(s, "B"); got != "master down timer expired" {
					t.Errorf("B took over for %q", got)
				}
			},
		},
		{
			name:  "preempt: a higher priority backup ignores a lower master and takes over",
			nodes: []simSpec{{name: "A", prio: 200, start: 10 * sec}, {name: "B", prio: 100}},
			want: map[string][]string{
				"A": {hist(10*sec, sInit, sBackup), hist(10*sec+mdi2(200), sBackup, sMaster)},
				"B": {hist(0, sInit, sBackup), hist(mdi2(100), sBackup, sMaster), hist(10*sec+mdi2(200), sMaster, sBackup)},
			},
			masters: []string{"A"},
			check: func(t *testing.T, s *sim) {
				if got := lastReason(s, "A"); !strings.Contains(got, "preempting lower priority master 192.0.2.2 (100 < 200)") {
					t.Errorf("A took over for %q", got)
				}
			},
		},
		{
			name: "nopreempt: a higher priority backup leaves the lower master be",
			nodes: []simSpec{
				{name: "A", prio: 200, start: 10 * sec, cfg: func(c *vrrp.Config) { c.NoPreempt = true }},
				{name: "B", prio: 100},
			},
			want: map[string][]string{
				"A": {hist(10*sec, sInit, sBackup)},
				"B": {hist(0, sInit, sBackup), hist(mdi2(100), sBackup, sMaster)},
			},
			masters: []string{"B"},
		},
		{
			name: "nopreempt: still takes over when the master dies",
			nodes: []simSpec{
				{name: "A", prio: 200, start: 10 * sec, cfg: func(c *vrrp.Config) { c.NoPreempt = true }},
				{name: "B", prio: 100},
			},
			script: func(s *sim) { s.at(20*sec+sec/2, func() { s.kill("B") }) },
			want: map[string][]string{
				// B's adverts: mdi2(100) + k s; the last is at 19.609375 s.
				"A": {hist(10*sec, sInit, sBackup), hist(mdi2(100)+16*sec+mdi2(200), sBackup, sMaster)},
			},
			masters: []string{"A"},
		},
		{
			// B advertises at mdi2(100) + k s. A hears the first at
			// 10.609375 s and starts the delay (ends 15.609375 s); it
			// accepts adverts before the end, ignores the one at the end,
			// and takes over Master_Down_Interval after 14.609375 s.
			name: "preempt_delay: lower master accepted for the delay, then preempted",
			nodes: []simSpec{
				{name: "A", prio: 200, start: 10 * sec, cfg: func(c *vrrp.Config) { c.PreemptDelay = 5 * sec }},
				{name: "B", prio: 100},
			},
			script: func(s *sim) {
				s.at(12*sec, func() {
					want := simEpoch.Add(mdi2(100) + 7*sec + 5*sec)
					if got := s.node("A").m.Status().PreemptAt; !got.Equal(want) {
						s.t.Errorf("PreemptAt = %v, want %v", got.Sub(simEpoch), want.Sub(simEpoch))
					}
				})
			},
			want: map[string][]string{
				"A": {hist(10*sec, sInit, sBackup), hist(mdi2(100)+7*sec+5*sec-sec+mdi2(200), sBackup, sMaster)},
				"B": {hist(0, sInit, sBackup), hist(mdi2(100), sBackup, sMaster), hist(mdi2(100)+7*sec+5*sec-sec+mdi2(200), sMaster, sBackup)},
			},
			masters: []string{"A"},
		},
		{
			name: "preempt_delay: no delay when there is no master to preempt",
			nodes: []simSpec{
				{name: "A", prio: 200, cfg: func(c *vrrp.Config) { c.PreemptDelay = 5 * sec }},
			},
			want:    map[string][]string{"A": {hist(0, sInit, sBackup), hist(mdi2(200), sBackup, sMaster)}},
			masters: []string{"A"},
		},
		{
			name:  "state MASTER: takes over after one interval plus the skew of priority 255",
			nodes: []simSpec{{name: "A", prio: 100, cfg: initialMaster}},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(sec+skew2(255), sBackup, sMaster)},
			},
			masters: []string{"A"},
			check: func(t *testing.T, s *sim) {
				if got := lastReason(s, "A"); got != "initial state MASTER, no master heard" {
					t.Errorf("A took over for %q", got)
				}
			},
		},
		{
			name: "state MASTER: defers to a running master of higher priority",
			nodes: []simSpec{
				{name: "A", prio: 100, start: 10 * sec, cfg: initialMaster},
				{name: "B", prio: 200},
			},
			want: map[string][]string{
				"A": {hist(10*sec, sInit, sBackup)},
				"B": {hist(0, sInit, sBackup), hist(mdi2(200), sBackup, sMaster)},
			},
			masters: []string{"B"},
		},
		{
			name: "state MASTER: preempts a running master of lower priority quickly",
			nodes: []simSpec{
				{name: "A", prio: 200, start: 10 * sec, cfg: initialMaster},
				{name: "B", prio: 100},
			},
			want: map[string][]string{
				"A": {hist(10*sec, sInit, sBackup), hist(10*sec+sec+skew2(255), sBackup, sMaster)},
				"B": {hist(0, sInit, sBackup), hist(mdi2(100), sBackup, sMaster), hist(10*sec+sec+skew2(255), sMaster, sBackup)},
			},
			masters: []string{"A"},
		},
		{
			name:  "address owner: master at once",
			nodes: []simSpec{{name: "A", prio: 255}, {name: "B", prio: 100}},
			want: map[string][]string{
				"A": {hist(0, sInit, sMaster)},
				"B": {hist(0, sInit, sBackup)},
			},
			masters: []string{"A"},
			check: func(t *testing.T, s *sim) {
				if st := s.node("B").m.Status(); st.MasterPriority != 255 {
					t.Errorf("B heard priority %d, want 255", st.MasterPriority)
				}
			},
		},
		{
			// keepalived's rule: only an owner configured (or defaulted
			// to) MASTER skips the wait.
			name: "address owner configured BACKUP: waits Master_Down_Interval",
			nodes: []simSpec{
				{name: "A", prio: 255, cfg: func(c *vrrp.Config) { c.InitialState = vrrp.Backup }},
			},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(mdi2(255), sBackup, sMaster)},
			},
			masters: []string{"A"},
		},
		{
			name:  "priority 0: the backup takes over after Skew_Time",
			nodes: []simSpec{{name: "A", prio: 200}, {name: "B", prio: 100}},
			script: func(s *sim) {
				s.at(20*sec+sec/2, func() { s.shutdown("A") })
			},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(mdi2(200), sBackup, sMaster), hist(20*sec+sec/2, sMaster, sStop)},
				"B": {hist(0, sInit, sBackup), hist(20*sec+sec/2+skew2(100), sBackup, sMaster)},
			},
			masters: []string{"B"},
			check: func(t *testing.T, s *sim) {
				if got := lastReason(s, "B"); got != "master resigned (priority 0)" {
					t.Errorf("B took over for %q", got)
				}
				a := s.node("A")
				if last := a.sent[len(a.sent)-1]; last.priority != 0 || last.at != 20*sec+sec/2 {
					t.Errorf("A's last advert %+v, want priority 0 at 20.5s", last)
				}
			},
		},
		{
			name:  "split brain: healed, the higher master's advert arrives first",
			nodes: []simSpec{{name: "A", prio: 200}, {name: "B", prio: 100}},
			script: func(s *sim) {
				s.at(0, func() { s.partition([]string{"A"}, []string{"B"}) })
				s.at(10*sec, s.heal)
			},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(mdi2(200), sBackup, sMaster)},
				// A advertises at mdi2(200) + k s: 10.21875 s is the first
				// after the heal.
				"B": {hist(0, sInit, sBackup), hist(mdi2(100), sBackup, sMaster), hist(mdi2(200)+7*sec, sMaster, sBackup)},
			},
			masters: []string{"A"},
		},
		{
			// B's advert at 10.609375 s comes before A's next one
			// (11.21875 s); A answers it at once.
			name:  "split brain: healed, the lower master's advert arrives first and forces an election",
			nodes: []simSpec{{name: "A", prio: 200}, {name: "B", prio: 100}},
			script: func(s *sim) {
				s.at(0, func() { s.partition([]string{"A"}, []string{"B"}) })
				s.at(10*sec+sec*3/10, s.heal)
			},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(mdi2(200), sBackup, sMaster)},
				"B": {hist(0, sInit, sBackup), hist(mdi2(100), sBackup, sMaster), hist(mdi2(100)+7*sec, sMaster, sBackup)},
			},
			masters: []string{"A"},
			check: func(t *testing.T, s *sim) {
				if n := s.node("A").heardLow; n != 1 {
					t.Errorf("A heard %d lower adverts, want 1", n)
				}
			},
		},
		{
			name: "split brain: with lower_prio_no_advert it ends on the higher master's next advert",
			nodes: []simSpec{
				{name: "A", prio: 200, cfg: func(c *vrrp.Config) { c.LowerPriorityNoAdvert = true }},
				{name: "B", prio: 100},
			},
			script: func(s *sim) {
				s.at(0, func() { s.partition([]string{"A"}, []string{"B"}) })
				s.at(10*sec+sec*3/10, s.heal)
			},
			want: map[string][]string{
				"B": {hist(0, sInit, sBackup), hist(mdi2(100), sBackup, sMaster), hist(mdi2(200)+8*sec, sMaster, sBackup)},
			},
			masters: []string{"A"},
		},
		{
			// A's priority drops from 200 to 100 at 10.5 s: its advert at
			// 11.21875 s carries 100, which B ignores, so B takes over
			// Master_Down_Interval after A's advert at 10.21875 s. At
			// 20.5 s A is back to 200 and ignores B's adverts from then on:
			// it takes over Master_Down_Interval(200) after B's advert at
			// 19.6328125 s.
			name:  "track weight: handover and handback",
			nodes: []simSpec{{name: "A", prio: 200}, {name: "B", prio: 150}},
			script: func(s *sim) {
				s.at(10*sec+sec/2, func() { s.setPriority("A", 200-100) })
				s.at(20*sec+sec/2, func() { s.setPriority("A", 100+100) })
			},
			want: map[string][]string{
				"A": {
					hist(0, sInit, sBackup),
					hist(mdi2(200), sBackup, sMaster),
					hist(mdi2(200)+7*sec+mdi2(150), sMaster, sBackup),
					hist(mdi2(200)+7*sec+mdi2(150)+6*sec+mdi2(200), sBackup, sMaster),
				},
				"B": {
					hist(0, sInit, sBackup),
					hist(mdi2(200)+7*sec+mdi2(150), sBackup, sMaster),
					hist(mdi2(200)+7*sec+mdi2(150)+6*sec+mdi2(200), sMaster, sBackup),
				},
			},
			masters: []string{"A"},
			check: func(t *testing.T, s *sim) {
				for _, a := range s.node("A").sent {
					if a.at == mdi2(200)+8*sec && a.priority != 100 {
						t.Errorf("A's advert at %v had priority %d, want 100", a.at, a.priority)
					}
				}
			},
		},
		{
			name:  "fault: the master resigns, and comes back as backup then preempts",
			nodes: []simSpec{{name: "A", prio: 200}, {name: "B", prio: 100}},
			script: func(s *sim) {
				s.at(10*sec+sec/2, func() { s.setFault("A", true) })
				s.at(20*sec+sec/2, func() { s.setFault("A", false) })
			},
			want: map[string][]string{
				"A": {
					hist(0, sInit, sBackup),
					hist(mdi2(200), sBackup, sMaster),
					hist(10*sec+sec/2, sMaster, sFault),
					hist(20*sec+sec/2, sFault, sBackup),
					hist(20*sec+sec/2+mdi2(200), sBackup, sMaster),
				},
				"B": {
					hist(0, sInit, sBackup),
					hist(10*sec+sec/2+skew2(100), sBackup, sMaster),
					hist(20*sec+sec/2+mdi2(200), sMaster, sBackup),
				},
			},
			masters: []string{"A"},
		},
		{
			// A advertises every 100 ms; B adopts it, so B's
			// Master_Down_Interval is 3 × 100 ms + 156 × 100 ms / 256.
			name:    "version 3: a backup adopts the master's interval",
			version: 3,
			nodes: []simSpec{
				{name: "A", prio: 200, cfg: func(c *vrrp.Config) { c.Interval = 100 * time.Millisecond }},
				{name: "B", prio: 100},
			},
			script: func(s *sim) {
				s.at(5*sec, func() {
					st := s.node("B").m.Status()
					if st.MasterInterval != 100*time.Millisecond || st.MasterDown != mdi3(100, 100*time.Millisecond) {
						s.t.Errorf("B: MasterInterval %v, MasterDown %v", st.MasterInterval, st.MasterDown)
					}
				})
				s.at(5*sec+50*time.Millisecond, func() { s.kill("A") })
			},
			until: 10 * sec,
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(mdi3(200, 100*time.Millisecond), sBackup, sMaster)},
				// A's last advert is at 0.321875 s + 47 × 100 ms.
				"B": {hist(0, sInit, sBackup), hist(mdi3(200, 100*time.Millisecond)+47*100*time.Millisecond+mdi3(100, 100*time.Millisecond), sBackup, sMaster)},
			},
			masters: []string{"B"},
			check: func(t *testing.T, s *sim) {
				if st := s.node("B").m.Status(); st.MasterInterval != sec {
					t.Errorf("B as master: MasterInterval %v, want its own 1s", st.MasterInterval)
				}
			},
		},
		{
			name: "version 2: adverts with another interval are dropped, so both are master",
			nodes: []simSpec{
				{name: "A", prio: 200},
				{name: "B", prio: 100, cfg: func(c *vrrp.Config) { c.Interval = 2 * sec }},
			},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(mdi2(200), sBackup, sMaster)},
				"B": {hist(0, sInit, sBackup), hist(6*sec+skew2(100), sBackup, sMaster)},
			},
			masters: []string{"A", "B"},
			check: func(t *testing.T, s *sim) {
				for _, name := range []string{"A", "B"} {
					n := s.node(name)
					if len(n.drops) == 0 {
						t.Fatalf("%s dropped nothing", name)
					}
					for _, d := range n.drops {
						if d.Drop != vrrp.DropIntervalMismatch {
							t.Errorf("%s dropped for %v (%s)", name, d.Drop, d.Reason)
						}
					}
					if c := n.m.Status().Counters; c.IntervalMismatch != uint64(len(n.drops)) {
						t.Errorf("%s: IntervalMismatch %d, drops %d", name, c.IntervalMismatch, len(n.drops))
					}
				}
			},
		},
		{
			name: "version 2: AcceptIntervalMismatch takes them",
			nodes: []simSpec{
				{name: "A", prio: 200},
				{name: "B", prio: 100, cfg: func(c *vrrp.Config) { c.Interval = 2 * sec; c.AcceptIntervalMismatch = true }},
			},
			want: map[string][]string{
				"A": {hist(0, sInit, sBackup), hist(mdi2(200), sBackup, sMaster)},
				"B": {hist(0, sInit, sBackup)},
			},
			masters: []string{"A"},
		},
		{
			name:  "lossy network: settles on the highest priority once loss stops",
			nodes: []simSpec{{name: "A", prio: 200}, {name: "B", prio: 150}, {name: "C", prio: 100}},
			script: func(s *sim) {
				s.loss = 0.4
				s.at(120*sec, func() { s.loss = 0 })
			},
			until:   130 * sec,
			masters: []string{"A"},
			check: func(t *testing.T, s *sim) {
				flapped := false
				for _, n := range s.nodes {
					if n.name != "A" && n.vip {
						t.Errorf("%s still holds the addresses", n.name)
					}
					flapped = flapped || n.m.Status().Counters.BecameMaster > 0 && n.name != "A"
				}
				if !flapped {
					t.Error("loss caused no takeover: the scenario no longer tests convergence")
				}
			},
		},
	}
}
