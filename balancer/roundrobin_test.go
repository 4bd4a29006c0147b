package balancer

import (
	"errors"
	"sync"
	"testing"
)

func nodes(n int) []Node {
	ns := make([]Node, n)
	for i := range ns {
		ns[i] = Node{Addr: string(rune('a' + i))}
	}
	return ns
}

func TestRoundRobinVisitsEveryNodeEvenly(t *testing.T) {
	p := RoundRobin().Build(nodes(3))
	counts := map[int]int{}
	prev := -1
	for range 300 {
		r, err := p.Pick(PickInfo{})
		if err != nil {
			t.Fatal(err)
		}
		if prev >= 0 && r.Index != (prev+1)%3 {
			t.Fatalf("picked %d after %d, want %d", r.Index, prev, (prev+1)%3)
		}
		prev = r.Index
		counts[r.Index]++
	}
	for i := range 3 {
		if counts[i] != 100 {
			t.Fatalf("counts = %v, want 100 each", counts)
		}
	}
}

func TestRoundRobinSkips(t *testing.T) {
	p := RoundRobin().Build(nodes(4))
	skip := func(i int) bool { return i != 2 }
	for range 10 {
		r, err := p.Pick(PickInfo{Skip: skip})
		if err != nil || r.Index != 2 || r.Node.Addr != "c" {
			t.Fatalf("Pick = %+v, %v; want node 2", r, err)
		}
	}
	if _, err := p.Pick(PickInfo{Skip: func(int) bool { return true }}); !errors.Is(err, ErrNoNode) {
		t.Fatalf("all skipped: err = %v, want ErrNoNode", err)
	}
	if _, err := RoundRobin().Build(nil).Pick(PickInfo{}); !errors.Is(err, ErrNoNode) {
		t.Fatalf("no nodes: err = %v, want ErrNoNode", err)
	}
}

func TestRoundRobinStartsAtRandom(t *testing.T) {
	first := map[int]bool{}
	for range 200 {
		r, _ := RoundRobin().Build(nodes(3)).Pick(PickInfo{})
		first[r.Index] = true
	}
	if len(first) != 3 {
		t.Fatalf("first picks over 200 pickers: %v, want all 3 nodes", first)
	}
}

func TestRoundRobinCopiesNodes(t *testing.T) {
	ns := nodes(2)
	p := RoundRobin().Build(ns)
	ns[0].Addr, ns[1].Addr = "x", "x"
	r, _ := p.Pick(PickInfo{})
	if r.Node.Addr == "x" {
		t.Fatal("picker kept the caller's slice")
	}
}

func TestRoundRobinConcurrentPicks(t *testing.T) {
	p := RoundRobin().Build(nodes(5))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if _, err := p.Pick(PickInfo{}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkRoundRobinPick(b *testing.B) {
	p := RoundRobin().Build(nodes(3))
	b.ReportAllocs()
	for b.Loop() {
		p.Pick(PickInfo{})
	}
}
