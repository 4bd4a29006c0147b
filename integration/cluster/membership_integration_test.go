//go:build integration

package cluster_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/cluster"
	"github.com/amqpha/amqpha/integration/clustertest"
)

// members returns how node via sees the cluster: running and disc members,
// sorted.
func members(t *testing.T, ctx context.Context, via *cluster.Node) (running, disc []string) {
	t.Helper()
	st, err := via.Status(ctx)
	if err != nil {
		t.Fatalf("cluster_status on %s: %v", via.Name(), err)
	}
	slices.Sort(st.RunningNodes)
	slices.Sort(st.DiskNodes)
	return st.RunningNodes, st.DiskNodes
}

func names(nodes []*cluster.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name())
	}
	slices.Sort(out)
	return out
}

// AddNode grows a running cluster by a node that is a member like the
// others; RemoveNode makes it leave for good and frees its index for the
// next AddNode; Close tears down the added nodes with the rest. Its own
// cluster: the shared one must keep its three nodes.
func TestAddNodeJoinsAndRemoveNodeLeaves(t *testing.T) {
	c := clustertest.Start(t, cluster.Options{Nodes: 1})
	ctx := testCtx(t, 5*time.Minute)
	first := c.Node(0)

	added, err := c.AddNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if added.Index() != 1 || !added.Running() || added.Name() == first.Name() {
		t.Fatalf("added node %d (%s), running %v", added.Index(), added.Name(), added.Running())
	}
	if got := c.Nodes(); len(got) != 2 || got[1] != added || c.Node(1) != added || len(c.URIs()) != 2 {
		t.Fatalf("Nodes after AddNode: %v", names(got))
	}
	want := names(c.Nodes())
	for _, via := range c.Nodes() {
		if running, disc := members(t, ctx, via); !slices.Equal(running, want) || !slices.Equal(disc, want) {
			t.Fatalf("%s sees running %v, disc %v; want %v", via.Name(), running, disc, want)
		}
	}
	mustWork(t, added.URI())
	mustWork(t, added.DirectURI())
	// Faults work on it as on the others.
	if err := added.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitClustered(ctx); err != nil {
		t.Fatal(err)
	}

	// It leaves for good.
	pid := added.Pid()
	dir := c.Dir() + "/nodes/1"
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("added node's directory: %v", err)
	}
	if err := c.RemoveNode(ctx, added); err != nil {
		t.Fatal(err)
	}
	if added.Running() || cluster.Alive(pid) {
		t.Fatalf("after RemoveNode: Running=%v, process %d alive=%v", added.Running(), pid, cluster.Alive(pid))
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("removed node's directory: stat %v", err)
	}
	if got := c.Nodes(); len(got) != 1 || got[0] != first {
		t.Fatalf("Nodes after RemoveNode: %v", names(got))
	}
	if running, disc := members(t, ctx, first); !slices.Equal(running, []string{first.Name()}) || !slices.Equal(disc, []string{first.Name()}) {
		t.Fatalf("%s still sees running %v, disc %v", first.Name(), running, disc)
	}
	if err := added.Start(ctx); !errors.Is(err, cluster.ErrRemoved) {
		t.Fatalf("Start of a removed node: %v, want ErrRemoved", err)
	}
	if err := c.RemoveNode(ctx, added); err == nil {
		t.Fatal("second RemoveNode of a node succeeded")
	}
	if err := c.RemoveNode(ctx, first); !errors.Is(err, cluster.ErrNotRunning) {
		t.Fatalf("RemoveNode of the last node: %v, want ErrNotRunning", err)
	}

	// A node added again takes the free index and joins afresh.
	again, err := c.AddNode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.Index() != 1 {
		t.Fatalf("added again on index %d, want 1", again.Index())
	}
	want = names(c.Nodes())
	if running, disc := members(t, ctx, first); !slices.Equal(running, want) || !slices.Equal(disc, want) {
		t.Fatalf("%s sees running %v, disc %v; want %v", first.Name(), running, disc, want)
	}
	mustWork(t, again.URI())

	// Close takes the added node with the rest.
	pids, cdir := c.Pids(), c.Dir()
	if !slices.Contains(pids, again.Pid()) {
		t.Fatalf("Pids %v lack the added node's VM %d", pids, again.Pid())
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := clustertest.CheckGone(pids, cdir); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddNode(ctx); !errors.Is(err, cluster.ErrClosed) {
		t.Fatalf("AddNode after Close: %v, want ErrClosed", err)
	}
}
