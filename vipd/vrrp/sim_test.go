package vrrp_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

// This file is an in-memory network for state machine tests: N machines, a
// simulated clock that jumps from event to event, and adverts delivered
// from one machine to the others with a configurable delay, loss and
// partitions. Everything is deterministic: ties are broken by a fixed
// order (deliveries, then scripted events, then timers; each in the order
// it was queued, timers by node index) and loss uses a seeded generator.

// simEpoch is simulated time zero.
var simEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// simMaxSteps bounds a run so that a machine that keeps its deadline in the
// past fails the test instead of hanging it.
const simMaxSteps = 200000

type simNode struct {
	name  string
	addr  netip.Addr
	m     *vrrp.Machine
	cfg   vrrp.Config
	alive bool // false once killed: no timers, deaf to adverts
	vip   bool // holds the virtual addresses
	// history holds "AT FROM->TO" for every transition, AT being
	// simulated time since simEpoch.
	history   []string
	reasons   []string // reason of each transition, parallel to history
	drops     []vrrp.Action
	sent      []simSent
	announces int
	heardLow  int
}

type simSent struct {
	at       time.Duration
	priority uint8
}

type simDelivery struct {
	at       time.Time
	seq      int
	from, to int
	advert   vrrp.Advert
}

type simEvent struct {
	at  time.Time
	seq int
	fn  func()
}

type sim struct {
	t     testing.TB
	now   time.Time
	nodes []*simNode
	seq   int

	deliveries []simDelivery // sorted by (at, seq)
	events     []simEvent    // sorted by (at, seq)

	delay   time.Duration   // every delivery takes this long
	blocked map[[2]int]bool // from, to: adverts lost
	loss    float64         // chance that one delivery is lost
	rng     *rand.Rand      // for loss
	byName  map[string]int  // node index by name
}

// newSim makes a simulator for machines with the given configs. Node i is
// named names[i].
func newSim(t testing.TB, names []string, cfgs []vrrp.Config) *sim {
	t.Helper()
	s := &sim{
		t:       t,
		now:     simEpoch,
		blocked: map[[2]int]bool{},
		rng:     rand.New(rand.NewPCG(1, 2)),
		byName:  map[string]int{},
	}
	for i, cfg := range cfgs {
		m, err := vrrp.NewMachine(cfg)
		if err != nil {
			t.Fatalf("node %s: %v", names[i], err)
		}
		s.nodes = append(s.nodes, &simNode{name: names[i], addr: cfg.PrimaryIP, m: m, cfg: m.Config(), alive: true})
		s.byName[names[i]] = i
	}
	return s
}

func (s *sim) node(name string) *simNode {
	i, ok := s.byName[name]
	if !ok {
		s.t.Fatalf("no node %q", name)
	}
	return s.nodes[i]
}

func (s *sim) elapsed() time.Duration { return s.now.Sub(simEpoch) }

// at schedules fn to run at simulated time d.
func (s *sim) at(d time.Duration, fn func()) {
	s.seq++
	ev := simEvent{at: simEpoch.Add(d), seq: s.seq, fn: fn}
	i, _ := slices.BinarySearchFunc(s.events, ev, func(a, b simEvent) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	s.events = slices.Insert(s.events, i, ev)
}

// Scripted operations, applied at the current simulated time.

func (s *sim) start(name string) { s.apply(s.byName[name], s.node(name).m.Start(s.now)) }

func (s *sim) kill(name string) { s.node(name).alive = false }

func (s *sim) shutdown(name string) { s.apply(s.byName[name], s.node(name).m.Shutdown(s.now)) }

func (s *sim) setPriority(name string, total int) {
	s.apply(s.byName[name], s.node(name).m.SetPriority(s.now, total))
}

func (s *sim) setFault(name string, fault bool) {
	s.apply(s.byName[name], s.node(name).m.SetFault(s.now, fault))
}

// partition cuts every link between the two groups, both ways.
func (s *sim) partition(a, b []string) {
	for _, x := range a {
		for _, y := range b {
			s.blocked[[2]int{s.byName[x], s.byName[y]}] = true
			s.blocked[[2]int{s.byName[y], s.byName[x]}] = true
		}
	}
}

// heal restores every link.
func (s *sim) heal() { clear(s.blocked) }

// apply carries out node i's actions at the current time.
func (s *sim) apply(i int, acts []vrrp.Action) {
	n := s.nodes[i]
	for _, a := range acts {
		switch a.Kind {
		case vrrp.SendAdvert:
			n.sent = append(n.sent, simSent{s.elapsed(), a.Priority})
			adv := vrrp.Advert{
				Version:   n.cfg.Version,
				VRID:      n.cfg.VRID,
				Priority:  a.Priority,
				Interval:  a.Interval,
				Addresses: n.cfg.Addresses,
			}
			for j := range s.nodes {
				if j == i || s.blocked[[2]int{i, j}] {
					continue
				}
				if s.loss > 0 && s.rng.Float64() < s.loss {
					continue
				}
				s.seq++
				d := simDelivery{at: s.now.Add(s.delay), seq: s.seq, from: i, to: j, advert: adv}
				k, _ := slices.BinarySearchFunc(s.deliveries, d, func(a, b simDelivery) int {
					if c := a.at.Compare(b.at); c != 0 {
						return c
					}
					return a.seq - b.seq
				})
				s.deliveries = slices.Insert(s.deliveries, k, d)
			}
		case vrrp.AddAddresses:
			if n.vip {
				s.t.Errorf("%v %s: AddAddresses while holding them", s.elapsed(), n.name)
			}
			n.vip = true
		case vrrp.RemoveAddresses:
			if !n.vip {
				s.t.Errorf("%v %s: RemoveAddresses without holding them", s.elapsed(), n.name)
			}
			n.vip = false
		case vrrp.Announce:
			n.announces++
		case vrrp.Transition:
			n.history = append(n.history, fmt.Sprintf("%v %v->%v", s.elapsed(), a.From, a.To))
			n.reasons = append(n.reasons, a.Reason)
		case vrrp.DropAdvert:
			n.drops = append(n.drops, a)
		case vrrp.LowerPriorityHeard:
			n.heardLow++
		default:
			s.t.Errorf("%s: unknown action %v", n.name, a)
		}
	}
	// Whoever is master holds the addresses, and only the master.
	if got, want := n.vip, n.m.State() == vrrp.Master; got != want {
		s.t.Errorf("%v %s: state %v but holding addresses = %v", s.elapsed(), n.name, n.m.State(), got)
	}
}

// run advances the simulation until simulated time until, processing
// every delivery, scripted event and timer due by then.
func (s *sim) run(until time.Duration) {
	s.t.Helper()
	end := simEpoch.Add(until)
	for step := 0; ; step++ {
		if step == simMaxSteps {
			s.t.Fatalf("simulation did not reach %v in %d steps (now %v)", until, simMaxSteps, s.elapsed())
		}
		// The earliest timer, by node index on ties.
		timerNode, timerAt := -1, time.Time{}
		for i, n := range s.nodes {
			d := n.m.Deadline()
			if !n.alive || d.IsZero() {
				continue
			}
			if timerNode < 0 || d.Before(timerAt) {
				timerNode, timerAt = i, d
			}
		}
		var next time.Time
		kind := ""
		if len(s.deliveries) > 0 {
			next, kind = s.deliveries[0].at, "delivery"
		}
		if len(s.events) > 0 && (kind == "" || s.events[0].at.Before(next)) {
			next, kind = s.events[0].at, "event"
		}
		if timerNode >= 0 && (kind == "" || timerAt.Before(next)) {
			next, kind = timerAt, "timer"
		}
		if kind == "" || next.After(end) {
			s.now = end
			return
		}
		if next.Before(s.now) {
			// A deadline moved into the past is due now.
			next = s.now
		}
		s.now = next
		switch kind {
		case "delivery":
			d := s.deliveries[0]
			s.deliveries = s.deliveries[1:]
			if n := s.nodes[d.to]; n.alive {
				adv := d.advert
				s.apply(d.to, n.m.Receive(s.now, s.nodes[d.from].addr, &adv))
			}
		case "event":
			ev := s.events[0]
			s.events = s.events[1:]
			ev.fn()
		case "timer":
			n := s.nodes[timerNode]
			acts := n.m.Timer(s.now)
			if len(acts) == 0 {
				s.t.Fatalf("%v %s: Timer at its deadline did nothing", s.elapsed(), n.name)
			}
			s.apply(timerNode, acts)
			if d := n.m.Deadline(); !d.IsZero() && !d.After(s.now) {
				s.t.Fatalf("%v %s: deadline %v not after the timer it replaced", s.elapsed(), n.name, d.Sub(simEpoch))
			}
		}
	}
}

// masters returns the names of the live nodes in state Master.
func (s *sim) masters() []string {
	var out []string
	for _, n := range s.nodes {
		if n.alive && n.m.State() == vrrp.Master {
			out = append(out, n.name)
		}
	}
	return out
}
