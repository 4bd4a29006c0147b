package cluster

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"
)

// nodeName is the Erlang node name of the node with index i.
func (c *Cluster) nodeName(i int) string { return fmt.Sprintf("amqpha-%s-%d@localhost", c.id, i) }

// register prepares a node on the lowest free index, one that joins seed
// when it first starts, and makes it a node of the cluster: Nodes lists
// it and Close tears it down.
func (c *Cluster) register(seed string) (*Node, error) {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	select {
	case <-c.closed:
		return nil, ErrClosed
	default:
	}
	i := 0
	for _, n := range c.nodes { // in Index order
		if n.index != i {
			break
		}
		i++
	}
	if i >= MaxNodes {
		return nil, ErrFull
	}
	n, err := newNode(c, i, seed)
	if err != nil {
		return nil, err
	}
	c.nodes = slices.Insert(c.nodes, i, n)
	return n, nil
}

// unregister drops n from the cluster's nodes.
func (c *Cluster) unregister(n *Node) {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	c.nodes = slices.DeleteFunc(c.nodes, func(m *Node) bool { return m == n })
}

func (c *Cluster) isMember(n *Node) bool {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	return slices.Contains(c.nodes, n)
}

// firstRunning returns the first running node other than except, or nil.
func (c *Cluster) firstRunning(except *Node) *Node {
	for _, n := range c.Nodes() {
		if n != except && n.Running() {
			return n
		}
	}
	return nil
}

// AddNode grows the running cluster by a new node, as an operator adds a
// host. The node takes the lowest free Index and gets its own ports,
// directory and proxy as the nodes of Start do; it starts empty, joins a
// running member through peer discovery as they do, and AddNode returns it
// once every running node lists it as a running member. From then on it is
// a node like the others: Nodes lists it, its faults work, Close tears it
// down.
//
// It fails with ErrNotRunning if no node runs to join, ErrFull if the
// cluster has MaxNodes nodes, ErrClosed after Close. On any error nothing
// of the new node is left: it is killed, forgotten by the cluster and its
// directory removed.
func (c *Cluster) AddNode(ctx context.Context) (*Node, error) {
	select {
	case <-c.closed:
		return nil, ErrClosed
	default:
	}
	seed := c.firstRunning(nil)
	if seed == nil {
		return nil, fmt.Errorf("%w: no node of the cluster runs to join", ErrNotRunning)
	}
	n, err := c.register(seed.Name())
	if err != nil {
		return nil, err
	}
	c.log.Info("node add", "node", n.index, "joins", seed.Name())
	if err := c.join(ctx, n, seed); err != nil {
		c.discard(ctx, n)
		return nil, err
	}
	return n, nil
}

// join starts the new node n and waits until it is a running member.
func (c *Cluster) join(ctx context.Context, n, seed *Node) error {
	if err := n.Start(ctx); err != nil {
		return err
	}
	// Peer discovery that cannot reach seed leaves n a cluster of its own.
	st, err := n.Status(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(st.RunningNodes, seed.Name()) {
		return fmt.Errorf("cluster: %v did not join %s (it sees %v); its log ends with:\n%s",
			n, seed.Name(), st.RunningNodes, tail(n.logFile(), 3000))
	}
	return c.WaitClustered(ctx)
}

// discard undoes a failed AddNode of n.
func (c *Cluster) discard(ctx context.Context, n *Node) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	n.mu.Lock()
	n.removed = true
	n.mu.Unlock()
	if err := n.teardown(); err != nil {
		c.log.Warn("discarding a node that failed to join", "node", n.index, "err", err)
	}
	if peer := c.firstRunning(n); peer != nil {
		if err := c.forget(ctx, peer, n); err != nil {
			c.log.Warn("discarding a node that failed to join", "node", n.index, "err", err)
		}
	}
	c.unregister(n)
	os.RemoveAll(n.dir)
}

// RemoveNode makes n leave the cluster for good, as an operator
// decommissions a host: it stops n gracefully if it runs (its clients see
// connection.close 320), has a running member forget it (rabbitmqctl
// forget_cluster_node, which also drops its quorum queue replicas), and
// returns once that member no longer lists it, with n's process, proxy
// and directory gone. n is then no longer among Nodes, its Index is free
// for a later AddNode, and its Start returns ErrRemoved.
//
// Another node must run to forget n, else RemoveNode fails with
// ErrNotRunning before it stops n. If forgetting fails, n stays a stopped
// node of the cluster and RemoveNode may be called again.
func (c *Cluster) RemoveNode(ctx context.Context, n *Node) error {
	if n == nil || !c.isMember(n) {
		return fmt.Errorf("cluster: RemoveNode: %v is not a node of this cluster", n)
	}
	peer := c.firstRunning(n)
	if peer == nil {
		return fmt.Errorf("%w: no other node runs to forget %v", ErrNotRunning, n)
	}
	c.log.Info("node remove", "node", n.index, "via", peer.Name())
	if n.Running() {
		if err := n.Stop(ctx); err != nil {
			return err
		}
	}
	if err := c.forget(ctx, peer, n); err != nil {
		return err
	}
	n.mu.Lock()
	n.removed = true
	n.mu.Unlock()
	err := n.teardown()
	c.unregister(n)
	if rerr := os.RemoveAll(n.dir); err == nil && rerr != nil {
		err = fmt.Errorf("cluster: %w", rerr)
	}
	return err
}

// forget has peer drop the stopped node n from the cluster, and waits
// until peer lists it no more. A node that never joined is done at once.
func (c *Cluster) forget(ctx context.Context, peer, n *Node) error {
	return poll(ctx, 500*time.Millisecond, func() (bool, error) {
		st, err := peer.Status(ctx)
		if err != nil {
			return false, err
		}
		if !slices.Contains(st.DiskNodes, n.name) && !slices.Contains(st.RunningNodes, n.name) {
			return true, nil
		}
		// Right after a stop, peer may not have seen n go down yet; the
		// next round retries.
		_, err = peer.Ctl(ctx, "rabbitmqctl", "forget_cluster_node", n.name)
		return false, err
	})
}
