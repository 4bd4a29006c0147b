package balancer

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// counters holds the connections this process has open to each node, by
// address, so that the counts survive a new node set. The map is touched
// only by Build; pickers hold the counters themselves.
type counters struct {
	mu sync.Mutex
	m  map[string]*atomic.Int64
}

func (c *counters) forNodes(nodes []Node) []*atomic.Int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*atomic.Int64)
	}
	out := make([]*atomic.Int64, len(nodes))
	for i, n := range nodes {
		a := c.m[n.Addr]
		if a == nil {
			a = new(atomic.Int64)
			c.m[n.Addr] = a
		}
		out[i] = a
	}
	return out
}

// LeastConnections returns the "lc" balancer: the node with the fewest
// connections open from this process (ties in turn). Connections are
// counted from Pick until Result.Done.
func LeastConnections() Balancer { return &leastConn{} }

// WeightedLeastConnections returns the "wlc" balancer: the node with the
// fewest connections per unit of weight.
func WeightedLeastConnections() Balancer { return &leastConn{weighted: true} }

// PowerOfTwoChoices returns the "p2c" balancer: of two nodes chosen at
// random, the one with fewer connections per unit of weight. It spreads
// almost as evenly as wlc while many clients choosing at once do not all
// rush to the same least-loaded node.
func PowerOfTwoChoices() Balancer { return &leastConn{weighted: true, twoChoices: true} }

type leastConn struct {
	weighted   bool
	twoChoices bool
	counts     counters
}

func (b *leastConn) Build(nodes []Node) Picker {
	p := &lcPicker{b: b, nodes: append([]Node(nil), nodes...), active: b.counts.forNodes(nodes)}
	p.weights = make([]int64, len(nodes))
	for i, n := range nodes {
		p.weights[i] = 1
		if b.weighted {
			p.weights[i] = weight(n)
		}
	}
	return p
}

var _ Picker = (*lcPicker)(nil)

type lcPicker struct {
	b       *leastConn
	nodes   []Node
	weights []int64
	active  []*atomic.Int64
	turn    atomic.Uint64
}

// less reports whether node i is less loaded than node j.
func (p *lcPicker) less(i, j int) bool {
	return p.active[i].Load()*p.weights[j] < p.active[j].Load()*p.weights[i]
}

func (p *lcPicker) Pick(info PickInfo) (Result, error) {
	best := -1
	if p.b.twoChoices {
		best = p.pickTwo(info.Skip)
	} else {
		n := len(p.nodes)
		start := int(p.turn.Add(1) % uint64(max(n, 1)))
		for k := range n {
			i := (start + k) % n
			if info.Skip != nil && info.Skip(i) {
				continue
			}
			if best < 0 || p.less(i, best) {
				best = i
			}
		}
	}
	if best < 0 {
		return Result{}, ErrNoNode
	}
	return p.take(best), nil
}

// pickTwo chooses two usable nodes at random and returns the less loaded.
func (p *lcPicker) pickTwo(skip func(int) bool) int {
	usable := countUsable(len(p.nodes), skip)
	if usable == 0 {
		return -1
	}
	a := rand.IntN(usable)
	b := a
	if usable > 1 {
		b = (a + 1 + rand.IntN(usable-1)) % usable
	}
	ia, ib := nthUsable(len(p.nodes), skip, a), nthUsable(len(p.nodes), skip, b)
	if p.less(ib, ia) {
		return ib
	}
	return ia
}

// take counts a connection to node i until Done.
func (p *lcPicker) take(i int) Result {
	c := p.active[i]
	c.Add(1)
	var once atomic.Bool
	return Result{Node: p.nodes[i], Index: i, Done: func(DoneInfo) {
		if once.CompareAndSwap(false, true) {
			c.Add(-1)
		}
	}}
}
