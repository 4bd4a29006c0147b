package balancer

import (
	"math/rand/v2"
	"sync/atomic"
)

// weight is n's weight for the weighted algorithms: at least 1.
func weight(n Node) int64 { return int64(max(n.Weight, 1)) }

// maxSchedule bounds the length of a wrr schedule; larger weight sums are
// scaled down, keeping every node at least one turn.
const maxSchedule = 4096

// WeightedRoundRobin returns the "wrr" balancer: each node gets turns in
// proportion to its weight, spread out (smooth weighted round-robin, as
// nginx does it: weights 5, 1, 1 give a a b a c a a, not a a a a a b c),
// starting at a random turn. The turns of a skipped node go to the usable
// ones at random, by weight.
func WeightedRoundRobin() Balancer { return wrr{} }

type wrr struct{}

func (wrr) Build(nodes []Node) Picker {
	p := &wrrPicker{nodes: append([]Node(nil), nodes...)}
	if len(nodes) == 0 {
		return p
	}
	w := make([]int64, len(nodes))
	var total int64
	for i, n := range nodes {
		w[i] = weight(n)
		total += w[i]
	}
	if total > maxSchedule {
		scaled := int64(0)
		for i := range w {
			w[i] = max(w[i]*maxSchedule/total, 1)
			scaled += w[i]
		}
		total = scaled
	}
	g := w[0]
	for _, x := range w[1:] {
		g = gcd(g, x)
	}
	total = 0
	for i := range w {
		w[i] /= g
		total += w[i]
	}
	cur := make([]int64, len(w))
	p.schedule = make([]int32, total)
	for k := range p.schedule {
		best := 0
		for i := range w {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		p.schedule[k] = int32(best)
	}
	p.next.Store(uint64(rand.IntN(len(p.schedule))))
	return p
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

var _ Picker = (*wrrPicker)(nil)

type wrrPicker struct {
	nodes    []Node
	schedule []int32 // node indexes, each as often as its weight
	next     atomic.Uint64
}

func (p *wrrPicker) Pick(info PickInfo) (Result, error) {
	n := uint64(len(p.schedule))
	if n == 0 {
		return Result{}, ErrNoNode
	}
	idx := int(p.schedule[(p.next.Add(1)-1)%n])
	if info.Skip != nil && info.Skip(idx) {
		// The turn of a skipped node goes to a usable one chosen at random
		// by weight, so that the others keep their proportions (the next
		// one in the schedule would favour whoever follows it).
		var total int64
		for i, nd := range p.nodes {
			if !info.Skip(i) {
				total += weight(nd)
			}
		}
		if total == 0 {
			return Result{}, ErrNoNode
		}
		r := rand.Int64N(total)
		for i, nd := range p.nodes {
			if info.Skip(i) {
				continue
			}
			if r -= weight(nd); r < 0 {
				idx = i
				break
			}
		}
	}
	return Result{Node: p.nodes[idx], Index: idx}, nil
}
