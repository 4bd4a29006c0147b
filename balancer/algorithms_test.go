package balancer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
)

func weighted(ws ...int) []Node {
	ns := make([]Node, len(ws))
	for i, w := range ws {
		ns[i] = Node{Addr: fmt.Sprintf("amqp://node-%d", i), Weight: w}
	}
	return ns
}

// shares picks n times, each connection released at once, and returns
// each node's share of the picks.
func shares(t *testing.T, p Picker, nodes, n int, skip func(int) bool) []float64 {
	t.Helper()
	counts := make([]float64, nodes)
	for range n {
		r, err := p.Pick(PickInfo{Skip: skip})
		if err != nil {
			t.Fatal(err)
		}
		counts[r.Index]++
		if r.Done != nil {
			r.Done(DoneInfo{})
		}
	}
	for i := range counts {
		counts[i] /= float64(n)
	}
	return counts
}

func within(t *testing.T, name string, got []float64, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol {
			t.Fatalf("%s: shares %.3f, want %.3f ± %.2f", name, got, want, tol)
		}
	}
}

func TestEveryAlgorithmByName(t *testing.T) {
	want := []string{"lc", "p2c", "random", "rr", "sh", "wlc", "wrr"}
	for _, name := range want {
		if !slices.Contains(Names(), name) {
			t.Fatalf("Names() = %v, missing %s", Names(), name)
		}
	}
	for _, name := range append(want, "priority+wrr") {
		b, err := New(name)
		if err != nil {
			t.Fatal(err)
		}
		p := b.Build(weighted(1, 2, 3))
		if _, err := p.Pick(PickInfo{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := p.Pick(PickInfo{Skip: func(int) bool { return true }}); !errors.Is(err, ErrNoNode) {
			t.Fatalf("%s with every node skipped: %v", name, err)
		}
		if _, err := b.Build(nil).Pick(PickInfo{}); !errors.Is(err, ErrNoNode) {
			t.Fatalf("%s with no nodes: %v", name, err)
		}
		// Skip is honoured.
		for range 50 {
			r, err := p.Pick(PickInfo{Skip: func(i int) bool { return i != 1 }})
			if err != nil || r.Index != 1 || r.Node.Addr != "amqp://node-1" {
				t.Fatalf("%s: Pick with only node 1 usable = %+v, %v", name, r, err)
			}
			if r.Done != nil {
				r.Done(DoneInfo{})
			}
		}
	}
	if _, err := New("wrong"); err == nil {
		t.Fatal("New of an unknown name succeeded")
	}
	if err := Register("rr", RoundRobin); err == nil {
		t.Fatal("Register took a name twice")
	}
}

func TestWeightedRoundRobinRespectsWeightsSmoothly(t *testing.T) {
	p := WeightedRoundRobin().Build(weighted(5, 1, 1))
	// Exact over whole cycles.
	within(t, "wrr 5:1:1", shares(t, p, 3, 700, nil), []float64{5.0 / 7, 1.0 / 7, 1.0 / 7}, 0.001)
	// Smooth: the heavy node never gets more than 4 turns in a row (2 at
	// the end of a cycle, 2 at the start of the next), not 5.
	run, most := 0, 0
	for range 70 {
		r, _ := p.Pick(PickInfo{})
		if r.Index == 0 {
			run++
			most = max(most, run)
		} else {
			run = 0
		}
	}
	if most > 4 {
		t.Fatalf("node of weight 5 got %d turns in a row", most)
	}
	// A skipped node's turns go to the others, in proportion.
	within(t, "wrr 5:1:1 without node 0", shares(t, p, 3, 700, func(i int) bool { return i == 0 }), []float64{0, 0.5, 0.5}, 0.08)
	// Huge weights are scaled, not refused.
	big := WeightedRoundRobin().Build(weighted(1_000_000, 3_000_000))
	within(t, "wrr 1M:3M", shares(t, big, 2, 4000, nil), []float64{0.25, 0.75}, 0.01)
}

func TestLeastConnectionsBalancesUnevenDone(t *testing.T) {
	b := LeastConnections()
	p := b.Build(weighted(1, 1, 1))
	var open []Result
	// 30 connections; those on node 0 end at once, the others stay: new
	// connections keep going to node 0.
	for range 30 {
		r, err := p.Pick(PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Index == 0 {
			r.Done(DoneInfo{})
			r.Done(DoneInfo{}) // a second Done changes nothing
		} else {
			open = append(open, r)
		}
	}
	per := map[int]int{}
	for _, r := range open {
		per[r.Index]++
	}
	if per[1] > 2 || per[2] > 2 {
		t.Fatalf("open connections per node %v: lc kept picking loaded nodes", per)
	}
	// Counts survive a new node set: the loaded nodes stay loaded.
	p2 := b.Build(weighted(1, 1, 1, 1))
	for range 4 {
		r, _ := p2.Pick(PickInfo{})
		if r.Index == 1 && per[1] > 0 || r.Index == 2 && per[2] > 0 {
			t.Fatalf("after a rebuild lc picked loaded node %d", r.Index)
		}
	}
}

func TestWeightedLeastConnectionsFollowsWeights(t *testing.T) {
	p := WeightedLeastConnections().Build(weighted(1, 3))
	per := make([]int, 2)
	for range 400 { // connections that stay open
		r, _ := p.Pick(PickInfo{})
		per[r.Index]++
	}
	if per[0] != 100 || per[1] != 300 {
		t.Fatalf("open connections %v, want 100 and 300 (weights 1:3)", per)
	}
}

func TestPowerOfTwoChoicesBalances(t *testing.T) {
	p := PowerOfTwoChoices().Build(weighted(1, 1, 1, 1))
	per := make([]int, 4)
	for range 4000 { // connections that stay open
		r, _ := p.Pick(PickInfo{})
		per[r.Index]++
	}
	for _, n := range per {
		if n < 900 || n > 1100 {
			t.Fatalf("open connections %v, want about 1000 each", per)
		}
	}
}

func TestRandomIsUniformOverUsableNodes(t *testing.T) {
	p := Random().Build(weighted(1, 1, 1, 1))
	within(t, "random", shares(t, p, 4, 40000, nil), []float64{0.25, 0.25, 0.25, 0.25}, 0.02)
	within(t, "random without node 1", shares(t, p, 4, 30000, func(i int) bool { return i == 1 }),
		[]float64{1.0 / 3, 0, 1.0 / 3, 1.0 / 3}, 0.02)
}

func TestSourceHashIsStableAndMovesFewKeys(t *testing.T) {
	const keys = 10000
	before := SourceHash("").Build(weighted(1, 1, 1, 1))
	after := SourceHash("").Build(weighted(1, 1, 1, 1, 1)) // a fifth node joins
	moved := 0
	perNode := make([]int, 4)
	for k := range keys {
		key := fmt.Sprint("producer-", k)
		a, _ := before.Pick(PickInfo{Key: key})
		again, _ := before.Pick(PickInfo{Key: key})
		if a.Index != again.Index {
			t.Fatalf("key %s landed on %d then %d", key, a.Index, again.Index)
		}
		perNode[a.Index]++
		b, _ := after.Pick(PickInfo{Key: key})
		if b.Index != a.Index {
			moved++
			if b.Index != 4 {
				t.Fatalf("key %s moved from node %d to old node %d", key, a.Index, b.Index)
			}
		}
	}
	if f := float64(moved) / keys; f < 0.15 || f > 0.25 {
		t.Fatalf("%.3f of the keys moved when a fifth node joined, want about 1/5", f)
	}
	for _, n := range perNode {
		if n < keys/4-keys/20 || n > keys/4+keys/20 {
			t.Fatalf("keys per node %v, want about %d each", perNode, keys/4)
		}
	}
	// Skipping a key's node sends it to another, and back when usable.
	r, _ := before.Pick(PickInfo{Key: "k"})
	other, _ := before.Pick(PickInfo{Key: "k", Skip: func(i int) bool { return i == r.Index }})
	if other.Index == r.Index {
		t.Fatal("a skipped node was picked")
	}
	// Weights: a node of weight 3 takes about 3/4 of the keys.
	w := SourceHash("").Build(weighted(1, 3))
	heavy := 0
	for k := range keys {
		r, _ := w.Pick(PickInfo{Key: fmt.Sprint(k)})
		heavy += r.Index
	}
	if f := float64(heavy) / keys; f < 0.72 || f > 0.78 {
		t.Fatalf("weight 3 of 4 took %.3f of the keys", f)
	}
	// Without a key, one balancer keeps one node.
	own := SourceHash("").Build(weighted(1, 1, 1))
	first, _ := own.Pick(PickInfo{})
	for range 20 {
		if r, _ := own.Pick(PickInfo{}); r.Index != first.Index {
			t.Fatal("a keyless sh balancer moved")
		}
	}
}

func TestPriorityFallsBackGroupByGroup(t *testing.T) {
	nodes := []Node{
		{Addr: "disc-1", Priority: 2}, {Addr: "ram-1", Priority: 1},
		{Addr: "disc-2", Priority: 2}, {Addr: "ram-2", Priority: 1},
	}
	p := Priority(RoundRobin()).Build(nodes)
	within(t, "priority", shares(t, p, 4, 1000, nil), []float64{0, 0.5, 0, 0.5}, 0.01)
	onlyDisc := func(i int) bool { return nodes[i].Priority == 1 }
	within(t, "priority, RAM nodes down", shares(t, p, 4, 1000, onlyDisc), []float64{0.5, 0, 0.5, 0}, 0.01)
	oneRAM := func(i int) bool { return i == 1 }
	within(t, "priority, one RAM node down", shares(t, p, 4, 1000, oneRAM), []float64{0, 0, 0, 1}, 0)
}

func TestConcurrentPicksOfEveryAlgorithm(t *testing.T) {
	for _, name := range Names() {
		b, _ := New(name)
		p := b.Build(weighted(1, 2, 3))
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 500 {
					r, err := p.Pick(PickInfo{})
					if err != nil {
						t.Error(err)
						return
					}
					if r.Done != nil {
						r.Done(DoneInfo{})
					}
				}
			})
		}
		wg.Wait()
	}
}

func BenchmarkPick(b *testing.B) {
	for _, name := range append(Names(), "priority+rr") {
		for _, n := range []int{3, 16} {
			b.Run(fmt.Sprintf("%s/%d-nodes", name, n), func(b *testing.B) {
				bal, _ := New(name)
				ws := make([]int, n)
				for i := range ws {
					ws[i] = 1 + i%3
				}
				p := bal.Build(weighted(ws...))
				b.ReportAllocs()
				for b.Loop() {
					r, _ := p.Pick(PickInfo{Key: "producer-1"})
					if r.Done != nil {
						r.Done(DoneInfo{})
					}
				}
			})
		}
	}
}
