package amqpha

import (
	"testing"
	"time"

	"github.com/amqpha/amqpha/balancer"
)

func testNodes(addrs ...string) []balancer.Node {
	ns := make([]balancer.Node, len(addrs))
	for i, a := range addrs {
		ns[i] = balancer.Node{Addr: "amqp://guest:secret@" + a + ":5672/"}
	}
	return ns
}

// pass returns the hosts a pass tries, in order.
func pass(p *pool, now time.Time) []string {
	p.startPass()
	var hosts []string
	for {
		_, a, ok := p.next(now, nil)
		if !ok {
			return hosts
		}
		hosts = append(hosts, a.uri.Host)
	}
}

func TestPoolPassTriesEveryNodeOnce(t *testing.T) {
	p := newPool(time.Second, 30*time.Second)
	p.setNodes(balancer.RoundRobin(), testNodes("a", "b", "c"))
	now := time.Unix(1000, 0)
	got := pass(p, now)
	if len(got) != 3 || got[0] == got[1] || got[1] == got[2] || got[0] == got[2] {
		t.Fatalf("pass tried %v, want each of a, b, c once", got)
	}
}

func TestPoolQuarantinedNodesGoLast(t *testing.T) {
	p := newPool(time.Second, 30*time.Second)
	nodes := testNodes("a", "b", "c")
	p.setNodes(balancer.RoundRobin(), nodes)
	now := time.Unix(1000, 0)
	p.failed(nodes[1].Addr, now, false)                            // b: 1 s
	p.failed(nodes[0].Addr, now.Add(-500*time.Millisecond), false) // a: until now+0.5 s
	for range 5 {
		got := pass(p, now)
		if len(got) != 3 || got[0] != "c" || got[1] != "a" || got[2] != "b" {
			t.Fatalf("pass = %v, want c (healthy), then a (released first), then b", got)
		}
	}
	// Once released, a node is back in the rotation.
	later := now.Add(2 * time.Second)
	if got := pass(p, later); len(got) != 3 {
		t.Fatalf("pass after release = %v", got)
	}
	p.startPass()
	seen := map[string]bool{}
	for range 3 {
		_, a, _ := p.next(later, nil)
		seen[a.uri.Host] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("released nodes not tried among the first: %v", seen)
	}
}

func TestPoolQuarantineDoublesAndCaps(t *testing.T) {
	p := newPool(time.Second, 5*time.Second)
	addr := testNodes("a")[0].Addr
	now := time.Unix(1000, 0)
	var got []time.Duration
	for range 5 {
		got = append(got, p.failed(addr, now, false))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("quarantines = %v, want %v", got, want)
		}
	}
	p.succeeded(addr)
	if d := p.failed(addr, now, false); d != time.Second {
		t.Fatalf("after success the next quarantine is %v, want 1s", d)
	}
	if d := p.failed(addr, now, true); d != 5*time.Second {
		t.Fatalf("avoided node quarantined %v, want the max", d)
	}
}

func TestPoolHealthSurvivesNodeSetChange(t *testing.T) {
	p := newPool(time.Second, 30*time.Second)
	nodes := testNodes("a", "b")
	p.setNodes(balancer.RoundRobin(), nodes)
	now := time.Unix(1000, 0)
	p.failed(nodes[0].Addr, now, false)
	p.setNodes(balancer.RoundRobin(), testNodes("c", "a", "b"))
	got := pass(p, now)
	if got[len(got)-1] != "a" {
		t.Fatalf("pass = %v, want the quarantined a last", got)
	}
}

func TestPoolSkipsUnparsableNodes(t *testing.T) {
	p := newPool(time.Second, 30*time.Second)
	errs := p.setNodes(balancer.RoundRobin(), []balancer.Node{{Addr: "http://x"}, testNodes("a")[0]})
	if len(errs) != 1 {
		t.Fatalf("errs = %v, want one", errs)
	}
	if got := pass(p, time.Unix(0, 0)); len(got) != 1 || got[0] != "a" {
		t.Fatalf("pass = %v", got)
	}
}

func TestPoolTriesTheOtherConnectionsNodeLast(t *testing.T) {
	nodes := testNodes("a", "b", "c")
	busy := func(addr string) bool { return addr == nodes[1].Addr }
	now := time.Unix(1000, 0)
	for range 20 { // rr starts at a random node
		p := newPool(time.Second, 30*time.Second)
		p.setNodes(balancer.RoundRobin(), nodes)
		p.startPass()
		var hosts []string
		for {
			_, a, ok := p.next(now, busy)
			if !ok {
				break
			}
			hosts = append(hosts, a.uri.Host)
		}
		if len(hosts) != 3 || hosts[2] != "b" {
			t.Fatalf("pass tried %v, want b (busy) last", hosts)
		}
	}
}
