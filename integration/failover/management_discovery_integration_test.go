//go:build integration

package failover

import (
	"net/url"
	"testing"
	"time"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/balancer"
	"github.com/amqpha/amqpha/discovery"
	"github.com/amqpha/amqpha/integration/cluster"
)

func managementResolver(t *testing.T, leaderOf string) discovery.Resolver {
	t.Helper()
	var seeds []string
	for _, n := range shared.Nodes() {
		seeds = append(seeds, n.ManagementURL())
	}
	r, err := discovery.Management(discovery.ManagementConfig{
		Seeds: seeds, User: "guest", Password: "guest", LeaderOf: leaderOf, MinInterval: time.Nanosecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// directNode is the node whose direct AMQP port addr has, or nil.
func directNode(addr string) *cluster.Node {
	u, err := url.Parse(addr)
	if err != nil {
		return nil
	}
	for _, n := range shared.Nodes() {
		d, _ := url.Parse(n.DirectURI())
		if d.Port() == u.Port() {
			return n
		}
	}
	return nil
}

func resolvedNodes(t *testing.T, r discovery.Resolver) map[int]balancer.Node {
	t.Helper()
	nodes, err := r.Resolve(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]balancer.Node{}
	for _, n := range nodes {
		c := directNode(n.Addr)
		if c == nil {
			t.Fatalf("resolved %s, not a node of the cluster", n.Addr)
		}
		out[c.Index()] = n
	}
	return out
}

// The management API names the running members and their AMQP listeners:
// a node that stops drops out, and comes back when it runs again; the node
// leading a queue gets priority 0.
func TestManagementDiscoveryFollowsMembership(t *testing.T) {
	restore(t)
	r := managementResolver(t, "")
	if got := resolvedNodes(t, r); len(got) != 3 {
		t.Fatalf("resolved %v, want the 3 nodes", got)
	}
	ctx := ctxFor(t, 3*time.Minute)
	if err := shared.Node(2).Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := resolvedNodes(t, r); len(got) != 2 || got[2].Addr != "" {
		t.Fatalf("with node 2 stopped: %v", got)
	}
	if err := shared.Node(2).Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := shared.WaitClustered(ctx); err != nil {
		t.Fatal(err)
	}
	if got := resolvedNodes(t, r); len(got) != 3 {
		t.Fatalf("with node 2 back: %v", got)
	}

	q := quorumQueue(t, 1, nil) // node 1 leads it
	got := resolvedNodes(t, managementResolver(t, q))
	for i, n := range got {
		if want := map[bool]int{true: 0, false: 1}[i == 1]; n.Priority != want {
			t.Fatalf("node %d has priority %d, want %d (leader of %s: node 1)", i, n.Priority, want, q)
		}
	}
	// A client given only management seeds and "priority+rr" connects to
	// the queue's leader.
	c, _ := client(t, amqpha.Config{Resolver: managementResolver(t, q), BalancerName: "priority+rr"})
	if n := directNode(c.Node()); n == nil || n.Index() != 1 {
		t.Fatalf("client on %q, want the leader, node 1", c.Node())
	}
}
