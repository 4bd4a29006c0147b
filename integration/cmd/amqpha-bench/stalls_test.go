package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/cluster"
)

func TestLongestGap(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms ...int) []stallConfirm {
		var cs []stallConfirm
		for _, m := range ms {
			cs = append(cs, stallConfirm{at: t0.Add(time.Duration(m) * time.Millisecond)})
		}
		return cs
	}
	// The fault lasts from 0 to 1000 ms; the window ends at 3000 ms.
	from, to, end := t0, t0.Add(time.Second), t0.Add(3*time.Second)
	for _, tc := range []struct {
		name       string
		cs         []stallConfirm
		gap, began time.Duration // began: from t0
		unfinished bool
	}{
		{"the gap around the injection", at(-100, 300, 310, 2000), 1690 * time.Millisecond, 310 * time.Millisecond, false},
		{"only the injection's gap", at(-100, 300, 310, 320, 990, 1010), 670 * time.Millisecond, 320 * time.Millisecond, false},
		{"open at the undo, until its confirm", at(-10, 500, 2500, 2510), 2000 * time.Millisecond, 500 * time.Millisecond, false},
		{"a gap after the fault does not count", at(-10, 10, 1500, 2900), 1490 * time.Millisecond, 10 * time.Millisecond, false},
		{"no confirm after the fault", at(-200), 3200 * time.Millisecond, -200 * time.Millisecond, true},
		{"none at all", nil, 3 * time.Second, 0, true},
		{"confirms after the window's end", at(-10, 3500), 3010 * time.Millisecond, -10 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			began, gap, unfinished := longestGap(tc.cs, from, to, end)
			if gap != tc.gap || began.Sub(t0) != tc.began || unfinished != tc.unfinished {
				t.Errorf("longestGap = %v from %v, unfinished %v; want %v from %v, unfinished %v",
					gap, began.Sub(t0), unfinished, tc.gap, tc.began, tc.unfinished)
			}
		})
	}
}

func TestQueueElection(t *testing.T) {
	t0 := time.Unix(1000, 0)
	end := t0.Add(10 * time.Second)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	ev := func(kind cluster.QuorumEventKind, queue, node string, ms int) cluster.QuorumEvent {
		return cluster.QuorumEvent{Time: at(ms), Node: node, VHost: "/", Queue: queue, Kind: kind}
	}
	leader, down := cluster.BecameLeader, cluster.LeaderDown
	other := ev(leader, "q", "c", 20)
	other.VHost = "v"
	evs := []cluster.QuorumEvent{
		ev(leader, "q", "b", -5000), // its first election, at the declare
		ev(down, "q", "c", -100),    // before the fault
		ev(down, "q", "b", 1200),    // the old leader's exit, seen on b
		ev(down, "q", "c", 1100),    // and earlier on c
		ev(leader, "q", "c", 1300),  // a new leader on c
		ev(leader, "q", "b", 1250),  // and earlier on b: this one
		ev(leader, "q", "b", 5000),  // a later election
		ev(leader, "other", "c", 10),
		other,
		ev(leader, "late", "b", 10001), // after the window
		ev(down, "only-down", "b", 10),
		ev(leader, "down-after", "b", 400),
		ev(down, "down-after", "c", 500),
	}
	for _, tc := range []struct {
		name     string
		queue    string
		fromExit bool
		want     election
	}{
		{"from the fault", "q", false, election{ok: true, took: 1250 * time.Millisecond, at: 1250 * time.Millisecond, node: "b"}},
		{"from the old leader's exit", "q", true, election{ok: true, took: 150 * time.Millisecond, at: 1250 * time.Millisecond, gone: 1100 * time.Millisecond, node: "b"}},
		{"no exit seen before the new leader", "down-after", true, election{ok: true, took: 400 * time.Millisecond, at: 400 * time.Millisecond, node: "b"}},
		{"no new leader", "only-down", true, election{}},
		{"after the window", "late", false, election{}},
		{"none at all", "absent", false, election{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := queueElection(evs, tc.queue, t0, end, tc.fromExit); got != tc.want {
				t.Errorf("queueElection = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestElectionCells(t *testing.T) {
	// The stall is 10 s: the gap across the election counts, not it.
	side := func(gap time.Duration, open bool) stallSide {
		return stallSide{stall: 10 * time.Second, elGap: gap, elGapOpen: open}
	}
	round := func(el time.Duration, a, l stallSide) stallRound {
		return stallRound{election: election{ok: el > 0, took: el}, amqpha: a, loop: l}
	}
	s := time.Millisecond
	for _, tc := range []struct {
		name   string
		rounds []stallRound
		want   string
	}{
		{"no elections", []stallRound{round(0, side(40*s, false), side(50*s, false))},
			"0 of 1 | – | – | – | – | – | –"},
		{"three rounds, one without", []stallRound{
			round(250*s, side(300*s, false), side(260*s, false)),
			round(190*s, side(200*s, true), side(230*s, false)),
			round(0, side(100*s, true), side(400*s, true)), // no election: its gaps do not count
			round(120*s, side(100*s, false), side(150*s, false)),
		}, "3 of 4 | 0.190 s | 0.250 s | 0.010 s | ≥ 0.050 s | 0.030 s | 0.040 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := electionCells(tc.rounds); got != tc.want {
				t.Errorf("electionCells = %q\nwant            %q", got, tc.want)
			}
		})
	}
}

func TestPairedCell(t *testing.T) {
	s := time.Millisecond
	round := func(a, l time.Duration) stallRound {
		return stallRound{amqpha: stallSide{stall: a}, loop: stallSide{stall: l}}
	}
	rounds := []stallRound{round(300*s, 310*s), round(250*s, 240*s), round(400*s, 400*s), round(100*s, 130*s), round(90*s, 60*s)}
	if got, want := pairedCell(rounds), "+0.000 s (2 of 5)"; got != want {
		t.Errorf("pairedCell = %q, want %q", got, want)
	}
	if got, want := pairedCell(rounds[:2]), "+0.000 s (1 of 2)"; got != want {
		t.Errorf("pairedCell of two rounds = %q, want %q", got, want)
	}
	if got, want := pairedCell(rounds[3:4]), "-0.030 s (0 of 1)"; got != want {
		t.Errorf("pairedCell of one round = %q, want %q", got, want)
	}
	// The median, not the mean: −10, +10, +300 ms.
	uneven := []stallRound{round(300*s, 310*s), round(250*s, 240*s), round(400*s, 100*s)}
	if got, want := pairedCell(uneven), "+0.010 s (2 of 3)"; got != want {
		t.Errorf("pairedCell = %q, want %q", got, want)
	}
	// Under half a millisecond either way is 0, printed +0.000.
	tiny := []stallRound{round(300*s, 300*s+400*time.Microsecond)}
	if got, want := pairedCell(tiny), "+0.000 s (0 of 1)"; got != want {
		t.Errorf("pairedCell = %q, want %q", got, want)
	}
	// A stall still open at the window's end is counted.
	open := []stallRound{round(300*s, 200*s), round(100*s, 100*s)}
	open[0].loop.unfinished = true
	if got, want := pairedCell(open), "+0.050 s (1 of 2; 1 open)"; got != want {
		t.Errorf("pairedCell = %q, want %q", got, want)
	}
}

func TestTally(t *testing.T) {
	at := time.Unix(1000, 0)
	confirms := []stallConfirm{{"amqpha-0", at}, {"amqpha-1", at}, {"amqpha-2", at}}
	seen := map[string]int{
		"amqpha-0": 1, "amqpha-1": 2, // amqpha-2 lost
		"amqpha-7": 3,              // never confirmed, sent again: a duplicate still
		"loop-0":   2, "loop-1": 1, // the other client's
		"amqphax-0": 2, // not amqpha's
	}
	if c, l, d := tally(confirms, seen, "amqpha"); c != 3 || l != 1 || d != 2 {
		t.Errorf("amqpha: confirmed/lost/dups %d/%d/%d, want 3/1/2", c, l, d)
	}
	if c, l, d := tally(nil, seen, "loop"); c != 0 || l != 0 || d != 1 {
		t.Errorf("loop: confirmed/lost/dups %d/%d/%d, want 0/0/1", c, l, d)
	}
}

func TestGapAcross(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	cs := []stallConfirm{{at: at(-10)}, {at: at(0)}, {at: at(250)}, {at: at(900)}, {at: at(920)}}
	end := at(2000)
	for _, tc := range []struct {
		name       string
		at         time.Time
		gap        time.Duration
		unfinished bool
	}{
		{"across the election", at(200), 250 * time.Millisecond, false},
		{"on a confirm: the gap after it", at(250), 650 * time.Millisecond, false},
		{"none after it", at(950), 1080 * time.Millisecond, true},
		{"none before it", at(-20), 10 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if gap, open := gapAcross(cs, tc.at, end); gap != tc.gap || open != tc.unfinished {
				t.Errorf("gapAcross = %v, %v; want %v, %v", gap, open, tc.gap, tc.unfinished)
			}
		})
	}
	if gap, open := gapAcross(cs, at(910), at(915)); gap != 15*time.Millisecond || !open {
		t.Errorf("the next confirm after the window's end: %v, %v; want 15ms, unfinished", gap, open)
	}
}

func TestLoopProcRead(t *testing.T) {
	p := &loopProc{d: &stallDriver{done: make(chan struct{})}, ready: make(chan struct{})}
	p.cur.Store(-1)
	in := "node 1\nok loop-0 1000000000\nok loop-1 1002000000\nerr nacked\nnode -1\nerr no confirm\nok loop-2 bad\nfail gone\nnode 2\nok loop-3 1500000000\n"
	p.read(strings.NewReader(in))
	select {
	case <-p.ready:
	default:
		t.Fatal("ready not closed")
	}
	select {
	case <-p.d.done:
	default:
		t.Fatal("done not closed")
	}
	if got := p.node(); got != 2 {
		t.Errorf("node %d, want 2", got)
	}
	var ids []string
	for _, c := range p.d.confirms {
		ids = append(ids, fmt.Sprintf("%s@%d", c.id, c.at.UnixMilli()))
	}
	if got, want := strings.Join(ids, " "), "loop-0@1000 loop-1@1002 loop-3@1500"; got != want {
		t.Errorf("confirms %q, want %q", got, want)
	}
	if p.d.n.Load() != 3 || p.d.errs != 2 || p.d.firstErr == nil || p.d.firstErr.Error() != "nacked" {
		t.Errorf("n %d, errs %d, first %v; want 3, 2, nacked", p.d.n.Load(), p.d.errs, p.d.firstErr)
	}
	if f := p.fail.Load(); f == nil || *f != "gone" {
		t.Errorf("fail %v, want gone", f)
	}
	// A child that ends before it connects still releases the waiter.
	q := &loopProc{d: &stallDriver{done: make(chan struct{})}, ready: make(chan struct{})}
	q.cur.Store(-1)
	q.read(strings.NewReader("fail cannot dial\n"))
	select {
	case <-q.ready:
	default:
		t.Fatal("ready not closed after the child ended")
	}
	if q.node() != -1 {
		t.Errorf("node %d, want -1", q.node())
	}
}
