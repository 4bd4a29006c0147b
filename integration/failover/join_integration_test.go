//go:build integration

package failover

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/discovery"
	"github.com/amqpha/amqpha/integration/cluster"
	"github.com/amqpha/amqpha/integration/clustertest"
)

// port is the port of URI raw, "" if it has none.
func port(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Port()
}

// resolves reports whether r names node n (its direct AMQP port).
func resolves(t *testing.T, r discovery.Resolver, n *cluster.Node) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nodes, err := r.Resolve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, rn := range nodes {
		if port(rn.Addr) == port(n.DirectURI()) {
			return true
		}
	}
	return false
}

// onNode counts the client's connections on node n.
func onNode(c *amqpha.Client, n *cluster.Node) int {
	k := 0
	for _, cs := range c.Connections() {
		if cs.Node != "" && port(cs.Node) == port(n.DirectURI()) {
			k++
		}
	}
	return k
}

// waitFor polls cond every 50 ms until it holds, failing the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A node that joins the running cluster shows up in management-API
// discovery, and a client with more connections than nodes that
// rebalances puts one on it, while every connection's publisher goes on
// without an error. When the node leaves for good (stopped, forgotten),
// discovery drops it and the client leaves it, again without a publish
// error. Every confirmed message is in its queue.
func TestManagementDiscoveryFollowsJoinAndLeave(t *testing.T) {
	// A cluster of its own: nodes joining and being forgotten must not
	// change the shared cluster the fault tests run on. The package's
	// helpers work on shared, so it stands in for the test's duration
	// (the package's tests run one at a time).
	startCtx, cancel := context.WithTimeout(context.Background(), clustertest.StartTimeout)
	own, err := cluster.Start(startCtx, cluster.Options{Nodes: 3, NetTicktime: 10 * time.Second})
	cancel()
	if err != nil {
		t.Fatalf("own cluster: %v", err)
	}
	prev := shared
	shared = own
	t.Cleanup(func() {
		shared = prev
		if err := own.Close(); err != nil {
			t.Errorf("own cluster: %v", err)
		}
	})
	restore(t)
	var seeds []string
	for _, n := range shared.Nodes() {
		seeds = append(seeds, n.ManagementURL())
	}
	// The client asks on every rebalancing check of every connection:
	// MinInterval keeps that from loading the management API.
	r, err := discovery.Management(discovery.ManagementConfig{
		Seeds: seeds, User: "guest", Password: "guest", MinInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	conns := len(shared.Nodes()) + 1
	c, ev := client(t, amqpha.Config{Resolver: r, Connections: conns, RebalanceInterval: 200 * time.Millisecond})
	// The others connect in the background after Dial returned.
	waitSpread(t, c, len(shared.Nodes()), time.Minute)
	// One publisher per connection (each takes the least used), each on
	// its own queue so that its messages can be counted.
	var loads []*load
	for range conns {
		pub, err := c.NewPublisher(amqpha.PublisherConfig{Window: 16})
		if err != nil {
			t.Fatal(err)
		}
		loads = append(loads, startLoad(t, pub, quorumQueue(t, 0, nil), 1))
	}
	for i, l := range loads {
		if _, err := l.progress(20, time.Minute); err != nil {
			t.Fatalf("publisher %d: %v", i, err)
		}
	}

	ctx := ctxFor(t, 5*time.Minute)
	added, err := shared.AddNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The shared cluster has its usual nodes again for the next test, also
	// when this one fails.
	t.Cleanup(func() {
		if slices.Contains(shared.Nodes(), added) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if err := shared.RemoveNode(ctx, added); err != nil {
				t.Errorf("remove the added node: %v", err)
			}
		}
	})
	t.Logf("added %s", added.Name())
	waitFor(t, 30*time.Second, "discovery does not name the new node", func() bool { return resolves(t, r, added) })
	waitFor(t, time.Minute, fmt.Sprintf("no connection on the new node: %+v", c.Connections()),
		func() bool { return onNode(c, added) == 1 })
	waitSpread(t, c, conns, time.Minute)
	for i, l := range loads {
		if _, err := l.progress(50, time.Minute); err != nil {
			t.Fatalf("publisher %d after the join: %v", i, err)
		}
	}
	if n := ev.count(amqpha.EventReconnecting); n != 0 {
		t.Fatalf("%d connections lost while a node joined; a rebalancing move is not a loss", n)
	}

	// The node leaves for good: its connection goes elsewhere.
	if err := shared.RemoveNode(ctx, added); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "discovery still names the removed node", func() bool { return !resolves(t, r, added) })
	waitFor(t, time.Minute, fmt.Sprintf("a connection is still on the removed node: %+v", c.Connections()),
		func() bool { return onNode(c, added) == 0 })
	waitSpread(t, c, len(shared.Nodes()), time.Minute)
	for i, l := range loads {
		if _, err := l.progress(50, time.Minute); err != nil {
			t.Fatalf("publisher %d after the leave: %v", i, err)
		}
	}
	if n := ev.count(amqpha.EventReconnecting); n > 1 {
		t.Errorf("%d connections lost when one node left, want at most its own", n)
	}
	for i, l := range loads {
		confirmed, dups := l.finish() // fails the test on a publish error or a lost message
		t.Logf("publisher %d: %d confirmed, %d duplicates", i, confirmed, dups)
	}
}
