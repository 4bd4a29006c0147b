package amqpha

import (
	"slices"
	"time"

	"github.com/amqpha/amqpha/balancer"
)

// pool holds the node set and each node's recent health, and decides which
// node to try next. It is used by the supervisor goroutine only.
//
// A reconnection pass tries every node at most once, without sleeping:
// first the nodes that are not quarantined, in the balancer's order, then
// the quarantined ones, the soonest released first. A node that failed, or
// whose connection was lost, is quarantined for QuarantineBase doubled with
// each failure in a row, up to QuarantineMax; a node that closed the
// connection for shutdown or maintenance gets QuarantineMax at once.
// Health is kept by address, so it survives changes of the node set.
type pool struct {
	base, max time.Duration

	nodes  []balancer.Node
	addrs  []*nodeAddr
	picker balancer.Picker
	health map[string]*nodeHealth
	tried  []bool // by index, in the current pass
}

type nodeHealth struct {
	fails int       // failures in a row
	until time.Time // quarantined until
}

func newPool(base, max time.Duration) *pool {
	return &pool{base: base, max: max, health: make(map[string]*nodeHealth)}
}

// setNodes replaces the node set if it differs. Nodes whose address does not
// parse are left out and returned as errors.
func (p *pool) setNodes(b balancer.Balancer, nodes []balancer.Node) []error {
	if slices.EqualFunc(nodes, p.nodes, sameNode) && p.picker != nil {
		return nil
	}
	var errs []error
	var ok []balancer.Node
	var addrs []*nodeAddr
	for _, n := range nodes {
		a, err := parseNode(n.Addr)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok = append(ok, n)
		addrs = append(addrs, a)
	}
	p.nodes, p.addrs = ok, addrs
	p.picker = b.Build(ok)
	p.tried = make([]bool, len(ok))
	return errs
}

func sameNode(a, b balancer.Node) bool {
	return a.Addr == b.Addr && a.Weight == b.Weight && a.Priority == b.Priority
}

// startPass forgets which nodes were tried.
func (p *pool) startPass() { clear(p.tried) }

func (p *pool) quarantined(i int, now time.Time) bool {
	h := p.health[p.nodes[i].Addr]
	return h != nil && now.Before(h.until)
}

// next returns the node to try next in this pass and marks it tried; ok is
// false when every node was tried. Nodes that busy reports (those the
// client's other connection uses) come after the other healthy nodes, so
// that one node's failure takes down only one of them.
func (p *pool) next(now time.Time, busy func(addr string) bool) (res balancer.Result, addr *nodeAddr, ok bool) {
	usable := func(i int) bool { return i < len(p.tried) && !p.tried[i] && !p.quarantined(i, now) }
	r, err := p.picker.Pick(balancer.PickInfo{Skip: func(i int) bool {
		return !usable(i) || busy != nil && busy(p.nodes[i].Addr)
	}})
	if err != nil && busy != nil {
		r, err = p.picker.Pick(balancer.PickInfo{Skip: func(i int) bool { return !usable(i) }})
	}
	if err != nil {
		// Only quarantined nodes are left: the one released soonest.
		best := -1
		for i := range p.nodes {
			if p.tried[i] {
				continue
			}
			if best < 0 || p.health[p.nodes[i].Addr].until.Before(p.health[p.nodes[best].Addr].until) {
				best = i
			}
		}
		if best < 0 {
			return balancer.Result{}, nil, false
		}
		r = balancer.Result{Node: p.nodes[best], Index: best}
	}
	p.tried[r.Index] = true
	return r, p.addrs[r.Index], true
}

// nextPreferring is next, except that the node at prefer (if it is in the
// set and not tried in this pass) comes first.
func (p *pool) nextPreferring(now time.Time, busy func(string) bool, prefer string) (balancer.Result, *nodeAddr, bool) {
	if prefer != "" {
		if i := slices.IndexFunc(p.nodes, func(n balancer.Node) bool { return n.Addr == prefer }); i >= 0 && !p.tried[i] {
			r, err := p.picker.Pick(balancer.PickInfo{Skip: func(j int) bool { return j != i }})
			if err == nil {
				p.tried[i] = true
				return r, p.addrs[i], true
			}
		}
	}
	return p.next(now, busy)
}

// failed records a failure of the node at addr: a dial that failed or a
// connection that was lost. avoid is for a node that said it is going away
// (shutdown, maintenance): it is tried last for QuarantineMax.
func (p *pool) failed(addr string, now time.Time, avoid bool) time.Duration {
	h := p.health[addr]
	if h == nil {
		h = &nodeHealth{}
		p.health[addr] = h
	}
	h.fails++
	d := p.max
	if !avoid {
		d = p.base
		for i := 1; i < h.fails && d < p.max; i++ {
			d *= 2
		}
		d = min(d, p.max)
	}
	h.until = now.Add(d)
	return d
}

// succeeded clears the node's failures.
func (p *pool) succeeded(addr string) {
	delete(p.health, addr)
}
