package balancer

import (
	"cmp"
	"slices"
)

// Priority returns a balancer that prefers nodes by Node.Priority, lowest
// first: it picks with inner among the nodes of the best priority that has a
// usable node, and falls back to the next priority only when every node of
// the better ones is skipped (down, quarantined, tried). Use it to prefer
// RAM nodes, or the nodes of the local zone.
func Priority(inner Balancer) Balancer { return priority{inner: inner} }

type priority struct{ inner Balancer }

func (b priority) Build(nodes []Node) Picker {
	order := make([]int, len(nodes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(x, y int) int { return cmp.Compare(nodes[x].Priority, nodes[y].Priority) })
	p := &priorityPicker{}
	for start := 0; start < len(order); {
		end := start
		for end < len(order) && nodes[order[end]].Priority == nodes[order[start]].Priority {
			end++
		}
		g := group{index: append([]int(nil), order[start:end]...)}
		members := make([]Node, len(g.index))
		for k, i := range g.index {
			members[k] = nodes[i]
		}
		g.picker = b.inner.Build(members)
		p.groups = append(p.groups, g)
		start = end
	}
	return p
}

type group struct {
	index  []int // position in the whole node set, by position in the group
	picker Picker
}

var _ Picker = (*priorityPicker)(nil)

type priorityPicker struct{ groups []group }

func (p *priorityPicker) Pick(info PickInfo) (Result, error) {
	for _, g := range p.groups {
		inner := PickInfo{Key: info.Key}
		if info.Skip != nil {
			inner.Skip = func(k int) bool { return info.Skip(g.index[k]) }
		}
		r, err := g.picker.Pick(inner)
		if err != nil {
			continue
		}
		r.Index = g.index[r.Index]
		return r, nil
	}
	return Result{}, ErrNoNode
}
