package balancer

import "math/rand/v2"

// Random returns the "random" balancer: a usable node chosen uniformly at
// random, weights ignored.
func Random() Balancer { return random{} }

type random struct{}

func (random) Build(nodes []Node) Picker { return &randomPicker{nodes: append([]Node(nil), nodes...)} }

var _ Picker = (*randomPicker)(nil)

type randomPicker struct{ nodes []Node }

func (p *randomPicker) Pick(info PickInfo) (Result, error) {
	usable := countUsable(len(p.nodes), info.Skip)
	if usable == 0 {
		return Result{}, ErrNoNode
	}
	i := nthUsable(len(p.nodes), info.Skip, rand.IntN(usable))
	return Result{Node: p.nodes[i], Index: i}, nil
}

// countUsable counts the indexes below n that skip does not skip.
func countUsable(n int, skip func(int) bool) int {
	if skip == nil {
		return n
	}
	usable := 0
	for i := range n {
		if !skip(i) {
			usable++
		}
	}
	return usable
}

// nthUsable returns the index of the rank-th usable index below n.
func nthUsable(n int, skip func(int) bool, rank int) int {
	for i := range n {
		if skip != nil && skip(i) {
			continue
		}
		if rank == 0 {
			return i
		}
		rank--
	}
	return -1
}
