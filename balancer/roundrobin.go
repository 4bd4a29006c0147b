package balancer

import (
	"math/rand/v2"
	"sync/atomic"
)

// RoundRobin returns the "rr" balancer: every node in turn, starting at a
// random node so that many clients started at once do not all pick the same
// first node. Weight and priority are ignored.
func RoundRobin() Balancer { return roundRobin{} }

type roundRobin struct{}

func (roundRobin) Build(nodes []Node) Picker {
	p := &rrPicker{nodes: append([]Node(nil), nodes...)}
	if len(nodes) > 0 {
		p.next.Store(uint64(rand.IntN(len(nodes))))
	}
	return p
}

var _ Picker = (*rrPicker)(nil)

type rrPicker struct {
	nodes []Node
	next  atomic.Uint64
}

func (p *rrPicker) Pick(info PickInfo) (Result, error) {
	n := uint64(len(p.nodes))
	if n == 0 {
		return Result{}, ErrNoNode
	}
	start := p.next.Add(1) - 1
	for i := range n {
		idx := int((start + i) % n)
		if info.Skip != nil && info.Skip(idx) {
			continue
		}
		if i > 0 {
			// Resume the rotation after the node handed out.
			p.next.Store(start + i + 1)
		}
		return Result{Node: p.nodes[idx], Index: idx}, nil
	}
	return Result{}, ErrNoNode
}
