//go:build integration

package failover

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
)

func TestPublishIsConfirmedAndStored(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	c, _ := client(t, amqpha.Config{})
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, time.Minute)
	ids := map[string]bool{}
	for range 50 {
		conf, err := pub.PublishAsync(ctx, "", q, amqp.Publishing{Body: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		if err := conf.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if conf.MessageID() == "" || ids[conf.MessageID()] {
			t.Fatalf("message id %q empty or repeated", conf.MessageID())
		}
		ids[conf.MessageID()] = true
	}
	if err := pub.Publish(ctx, "", q, amqp.Publishing{MessageId: "mine", Body: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	ch := rawChannel(t, 1)
	d, ok, err := ch.Get(q, true)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if d.DeliveryMode != amqp.Persistent {
		t.Errorf("delivery mode %d, want persistent", d.DeliveryMode)
	}
	seen := drainQueue(t, q)
	seen[d.MessageId]++
	// The queue holds exactly the messages confirmed, under the ids
	// PublishAsync reported, once each.
	ids["mine"] = true
	for id, n := range seen {
		if !ids[id] {
			t.Errorf("the queue holds %q (%d times), an id no confirmation reported", id, n)
		} else if n != 1 {
			t.Errorf("%q is in the queue %d times, want once", id, n)
		}
	}
	for id := range ids {
		if seen[id] == 0 {
			t.Errorf("confirmed message %q is not in the queue", id)
		}
	}
}

// fault is one way a node fails, and how it comes back.
type fault struct {
	name   string
	inject func(ctx context.Context, n *cluster.Node) error
	undo   func(ctx context.Context, n *cluster.Node) error
}

var faults = []fault{
	{"kill", func(ctx context.Context, n *cluster.Node) error { return n.Kill(ctx) },
		func(ctx context.Context, n *cluster.Node) error { return n.Start(ctx) }},
	{"hang", func(ctx context.Context, n *cluster.Node) error { return n.Pause() },
		func(ctx context.Context, n *cluster.Node) error { return n.Resume() }},
	{"stop", func(ctx context.Context, n *cluster.Node) error { return n.Stop(ctx) },
		func(ctx context.Context, n *cluster.Node) error { return n.Start(ctx) }},
	{"cut", func(ctx context.Context, n *cluster.Node) error { n.Cut(); return nil },
		func(ctx context.Context, n *cluster.Node) error { n.Heal(); return nil }},
	{"drain", func(ctx context.Context, n *cluster.Node) error { return n.Drain(ctx) },
		func(ctx context.Context, n *cluster.Node) error { return n.Revive(ctx) }},
}

// Every node the publisher is connected to fails in turn while 8 goroutines
// publish; every confirmed message must be in the queue afterwards.
func TestNoConfirmedMessageLostWhenTheConnectedNodeFails(t *testing.T) {
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			restore(t)
			q := quorumQueue(t, 0, nil)
			c, ev := client(t, amqpha.Config{})
			pub, err := c.NewPublisher(amqpha.PublisherConfig{Window: 64})
			if err != nil {
				t.Fatal(err)
			}
			l := startLoad(t, pub, q, 8)
			if _, err := l.progress(100, time.Minute); err != nil {
				t.Fatal(err)
			}
			ctx := ctxFor(t, 5*time.Minute)
			for round := range len(shared.Nodes()) {
				victim := connectedNode(c)
				if victim == nil {
					t.Fatalf("round %d: client is not connected", round)
				}
				began := time.Now()
				if err := f.inject(ctx, victim); err != nil {
					t.Fatal(err)
				}
				// A hung node that leads the queue stalls it until the
				// cluster's net_ticktime declares it down.
				gap, err := l.progress(50, 2*time.Minute)
				if err != nil {
					t.Fatalf("round %d, %s of %s: %v", round, f.name, victim.Name(), err)
				}
				t.Logf("round %d: %s of %s: next confirm after %v (%v since the fault)", round, f.name, victim.Name(), gap.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
				if now := connectedNode(c); now == victim {
					t.Errorf("round %d: still connected to %s after %s", round, victim.Name(), f.name)
				}
				if err := f.undo(ctx, victim); err != nil {
					t.Fatal(err)
				}
				if err := shared.WaitClustered(ctx); err != nil {
					t.Fatal(err)
				}
			}
			confirmed, dups := l.finish()
			t.Logf("%s: %d confirmed, %d duplicates, %d reconnects", f.name, confirmed, dups, c.Reconnects())
			if ev.count(amqpha.EventReconnecting) < len(shared.Nodes()) {
				t.Errorf("%d reconnecting events, want at least %d", ev.count(amqpha.EventReconnecting), len(shared.Nodes()))
			}
		})
	}
}

// With every node down, Publish waits within its context and succeeds once
// the cluster is back. The nodes are stopped, not killed: on RabbitMQ 3.10.8,
// a quorum queue whose every member was SIGKILLed at once was seen to stay
// without a leader for minutes after the nodes came back (raw amqp091-go
// got no confirm either), a floor of the cluster's that would hide the
// client's behaviour.
func TestAllNodesDownThenBack(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	c, ev := client(t, amqpha.Config{})
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 5*time.Minute)
	if err := pub.Publish(ctx, "", q, amqp.Publishing{MessageId: "before"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range shared.Nodes() {
		if err := n.Stop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// While nothing runs, a publish with a short deadline fails cleanly.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = pub.Publish(short, "", q, amqp.Publishing{MessageId: "short"})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish with every node down: %v, want DeadlineExceeded", err)
	}
	during, err := pub.PublishAsync(ctx, "", q, amqp.Publishing{MessageId: "during"})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := shared.StartAll(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster back in %v", time.Since(began).Round(time.Millisecond))
	// Right after a full restart a quorum queue may refuse messages until
	// it has a leader: the broker nacks them, and amqpha says so.
	waitCtx, cancelWait := context.WithTimeout(ctx, 2*time.Minute)
	duringErr := during.Wait(waitCtx)
	cancelWait()
	if errors.Is(duringErr, context.DeadlineExceeded) {
		t.Logf("client on %q; connections: %s; channels: %s", c.Node(), mgmt(t, "/api/connections?columns=name,node,state,client_properties"), mgmt(t, "/api/channels?columns=name,confirm,messages_unconfirmed,state"))
		for _, e := range ev.snapshot() {
			t.Logf("event %s %s %v %s", e.Kind, e.Node, e.Err, e.Time.Format("15:04:05.000"))
		}
	}
	if duringErr != nil && !errors.Is(duringErr, amqpha.ErrNacked) {
		t.Fatalf("publish made during the outage: %v, want nil or ErrNacked", duringErr)
	}
	t.Logf("publish made during the outage: %v", duringErr)
	// Once the broker reports a leader for the queue, it takes messages:
	// the next publish is confirmed, not nacked.
	leader := waitQuorumLeader(t, ctx, q, 2*time.Minute)
	t.Logf("queue led by %s", leader)
	if err := pub.Publish(ctx, "", q, amqp.Publishing{MessageId: "after"}); err != nil {
		t.Fatalf("publish once the cluster is back and %s leads the queue: %v", leader, err)
	}
	seen := drainQueue(t, q)
	want := []string{"before", "after"}
	if duringErr == nil {
		want = append(want, "during")
	}
	for _, id := range want {
		if seen[id] == 0 {
			t.Errorf("confirmed message %q missing; queue has %v", id, seen)
		}
	}
}

func TestMemoryAlarmBlocksPublish(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	c, ev := client(t, amqpha.Config{})
	waiting, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	failing, err := c.NewPublisher(amqpha.PublisherConfig{FailWhenBlocked: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 2*time.Minute)
	if err := shared.Node(1).SetAlarm(ctx); err != nil {
		t.Fatal(err)
	}
	// RabbitMQ blocks a connection when it next publishes; that publish
	// may still go through.
	first, err := waiting.PublishAsync(ctx, "", q, amqp.Publishing{MessageId: "first"})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ev.count(amqpha.EventBlocked) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no blocked event after publishing under a memory alarm")
		}
	}
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = waiting.Publish(short, "", q, amqp.Publishing{MessageId: "blocked"})
	cancel()
	if !errors.Is(err, amqpha.ErrBlocked) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish under an alarm: %v, want ErrBlocked and DeadlineExceeded", err)
	}
	if err := failing.Publish(ctx, "", q, amqp.Publishing{}); !errors.Is(err, amqpha.ErrBlocked) {
		t.Fatalf("FailWhenBlocked publisher: %v, want ErrBlocked", err)
	}
	// A publish that waits goes through once the alarm clears.
	pending, err := waiting.PublishAsync(ctx, "", q, amqp.Publishing{MessageId: "waited"})
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.Node(1).ClearAlarm(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pending.Wait(ctx); err != nil {
		t.Fatalf("publish waiting for the alarm to clear: %v", err)
	}
	if err := first.Wait(ctx); err != nil {
		t.Fatalf("publish made as the alarm began: %v", err)
	}
	if err := failing.Publish(ctx, "", q, amqp.Publishing{}); err != nil {
		t.Fatalf("FailWhenBlocked publisher after the alarm: %v", err)
	}
	if drainQueue(t, q)["waited"] == 0 {
		t.Error("message published while blocked is not in the queue")
	}
}

func TestNackedUnroutableAndUnknownExchange(t *testing.T) {
	restore(t)
	// A classic queue applies its length limit at once; a quorum queue's
	// reject-publish only after it sees the limit passed.
	full := declareQueue(t, 0, "classic", amqp.Table{"x-max-length": 1, "x-overflow": "reject-publish"})
	c, _ := client(t, amqpha.Config{})
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, time.Minute)
	if err := pub.Publish(ctx, "", full, amqp.Publishing{}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "", full, amqp.Publishing{}); !errors.Is(err, amqpha.ErrNacked) {
		t.Fatalf("publish to a full reject-publish queue: %v, want ErrNacked", err)
	}
	if err := pub.Publish(ctx, "amq.direct", "no-such-binding", amqp.Publishing{}); !errors.Is(err, amqpha.ErrUnroutable) {
		t.Fatalf("unroutable mandatory publish: %v, want ErrUnroutable", err)
	}
	loose, err := c.NewPublisher(amqpha.PublisherConfig{AllowUnroutable: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := loose.Publish(ctx, "amq.direct", "no-such-binding", amqp.Publishing{}); err != nil {
		t.Fatalf("unroutable publish with AllowUnroutable: %v", err)
	}
	err = pub.Publish(ctx, "no-such-exchange", "k", amqp.Publishing{})
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) || amqpErr.Code != amqp.NotFound {
		t.Fatalf("publish to a missing exchange: %v, want a 404 *amqp091.Error", err)
	}
	// The publisher carries on on a new channel.
	q := quorumQueue(t, 0, nil)
	if err := pub.Publish(ctx, "", q, amqp.Publishing{}); err != nil {
		t.Fatalf("publish after a channel error: %v", err)
	}
}

func TestContextAndClose(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	c, _ := client(t, amqpha.Config{})
	pub, err := c.NewPublisher(amqpha.PublisherConfig{Window: 4})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pub.Publish(cancelled, "", q, amqp.Publishing{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("publish with a cancelled ctx: %v", err)
	}

	// Cut every node: nothing can be confirmed.
	for _, n := range shared.Nodes() {
		n.Cut()
	}
	ctx := ctxFor(t, time.Minute)
	var inflight []*amqpha.Confirmation
	for range 4 {
		conf, err := pub.PublishAsync(ctx, "", q, amqp.Publishing{})
		if err != nil {
			t.Fatal(err)
		}
		inflight = append(inflight, conf)
	}
	// The window is full: the next publish waits and its ctx ends it.
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = pub.PublishAsync(short, "", q, amqp.Publishing{})
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish into a full window: %v, want DeadlineExceeded", err)
	}
	closeCtx, cancelClose := context.WithTimeout(ctx, 500*time.Millisecond)
	err = pub.Close(closeCtx)
	cancelClose()
	if err == nil {
		t.Fatal("Close with unconfirmed messages returned nil")
	}
	for _, conf := range inflight {
		if err := conf.Wait(ctx); !errors.Is(err, amqpha.ErrClosed) {
			t.Fatalf("in-flight message after Close: %v, want ErrClosed", err)
		}
	}
	if err := pub.Publish(ctx, "", q, amqp.Publishing{}); !errors.Is(err, amqpha.ErrClosed) {
		t.Fatalf("publish after Close: %v, want ErrClosed", err)
	}
	if err := pub.Close(ctx); err == nil {
		t.Fatal("second Close forgot the first's result")
	}
}

// waitSpread waits until the client's connections are on n distinct nodes.
func waitSpread(t *testing.T, c *amqpha.Client, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		nodes := map[string]bool{}
		for _, cs := range c.Connections() {
			if cs.Node != "" {
				nodes[cs.Node] = true
			}
		}
		if len(nodes) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("connections %+v, want them on %d nodes", c.Connections(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// With three publishing connections the client holds one on every node and
// spreads its publishers over them; a node's death moves only its own
// connection, and every publisher goes on. When the node comes back, the
// rebalancer moves a connection back to it without losing or failing a
// publish.
func TestConnectionsSpreadAndRebalance(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	c, ev := client(t, amqpha.Config{Connections: 3, RebalanceInterval: 200 * time.Millisecond})
	// The others connect in the background after Dial returned.
	waitSpread(t, c, 3, time.Minute)
	var loads []*load
	for range 3 {
		pub, err := c.NewPublisher(amqpha.PublisherConfig{Window: 16})
		if err != nil {
			t.Fatal(err)
		}
		loads = append(loads, startLoad(t, pub, q, 2))
	}
	for _, l := range loads {
		if _, err := l.progress(20, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxFor(t, 3*time.Minute)
	if err := shared.Node(1).Kill(ctx); err != nil {
		t.Fatal(err)
	}
	for i, l := range loads {
		if _, err := l.progress(50, 2*time.Minute); err != nil {
			t.Fatalf("publisher %d after the kill: %v", i, err)
		}
	}
	if n := ev.count(amqpha.EventReconnecting); n != 1 {
		t.Fatalf("%d connections lost when one node of three died, want 1", n)
	}
	waitSpread(t, c, 2, time.Minute)
	if err := shared.Node(1).Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := shared.WaitClustered(ctx); err != nil {
		t.Fatal(err)
	}
	waitSpread(t, c, 3, time.Minute)
	for i, l := range loads {
		if _, err := l.progress(50, time.Minute); err != nil {
			t.Fatalf("publisher %d after the rebalance: %v", i, err)
		}
	}
	if n := ev.count(amqpha.EventReconnecting); n != 1 {
		t.Fatalf("%d connections lost; a rebalancing move is not a loss", n)
	}
	all := map[string]bool{}
	for _, l := range loads {
		for id := range l.halt() { // fails the test on any publish error
			all[id] = true
		}
	}
	seen := drainQueue(t, q)
	for id := range all {
		if seen[id] == 0 {
			t.Fatalf("confirmed message %s lost", id)
		}
	}
}
