package amqphatest_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/amqpha/amqphatest"
)

const waitLong = 10 * time.Second

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a client to srv and closes it before srv closes.
func dial(t *testing.T, srv *amqphatest.Server, change func(*amqpha.Config)) *amqpha.Client {
	t.Helper()
	cfg := srv.Config()
	if change != nil {
		change(&cfg)
	}
	c, err := amqpha.Dial(testCtx(t), cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func publisher(t *testing.T, c *amqpha.Client, cfg amqpha.PublisherConfig) *amqpha.Publisher {
	t.Helper()
	p, err := c.NewPublisher(cfg)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	return p
}

func declare(t *testing.T, c *amqpha.Client, q amqpha.Queue) string {
	t.Helper()
	name, err := c.DeclareQueue(testCtx(t), q)
	if err != nil {
		t.Fatalf("DeclareQueue: %v", err)
	}
	return name
}

func wait(t *testing.T, srv *amqphatest.Server, what string, cond func() bool) {
	t.Helper()
	if err := srv.Wait(testCtx(t), cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestPublishConsumeAck(t *testing.T) {
	srv := amqphatest.NewServer(t)
	c := dial(t, srv, nil)
	q := declare(t, c, amqpha.QuorumQueue("orders"))
	pub := publisher(t, c, amqpha.PublisherConfig{})
	for i := range 3 {
		if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: fmt.Appendf(nil, "m%d", i)}); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	if got := len(srv.PublishedTo(q)); got != 3 {
		t.Fatalf("PublishedTo = %d messages, want 3", got)
	}
	if got := len(srv.Ready(q)); got != 3 {
		t.Fatalf("Ready = %d, want 3", got)
	}
	var mu sync.Mutex
	var bodies []string
	consume(t, c, q, amqpha.ConsumerConfig{}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		mu.Lock()
		bodies = append(bodies, string(d.Body))
		mu.Unlock()
		return amqpha.Ack
	})
	wait(t, srv, "3 acks", func() bool { return len(srv.Acked(q)) == 3 })
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(bodies) != "[m0 m1 m2]" {
		t.Fatalf("handled %v, want [m0 m1 m2]", bodies)
	}
	if n := len(srv.Ready(q)) + srv.Unacked(q); n != 0 {
		t.Fatalf("%d messages left in the queue", n)
	}
}

// A node killed while its consumer holds an unacknowledged message: the
// message is delivered again, redelivered, on another node.
func TestKillRedelivers(t *testing.T) {
	srv := amqphatest.NewServer(t)
	c := dial(t, srv, nil)
	q := declare(t, c, amqpha.QuorumQueue("jobs"))
	if _, err := srv.Publish("", q, amqp.Publishing{MessageId: "job-1", Body: []byte("work")}); err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	type seen struct {
		redelivered bool
		count       any
	}
	got := make(chan seen, 4)
	k, err := c.Consume(testCtx(t), q, amqpha.ConsumerConfig{}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		got <- seen{d.Redelivered, d.Headers["x-delivery-count"]}
		isFirst := false
		once.Do(func() { isFirst = true })
		if isFirst {
			close(first)
			select { // hold the first delivery until its connection is gone
			case <-ctx.Done():
			case <-release:
			}
			return amqpha.Ack
		}
		return amqpha.Ack
	})
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(func() { close(release); _ = k.Close(context.Background()) })
	<-first
	node := srv.NodeIndex(c.ConsumerNode())
	if node < 0 {
		t.Fatalf("consumer node %q is none of %v", c.ConsumerNode(), srv.URLs())
	}
	if srv.Unacked(q) != 1 {
		t.Fatalf("Unacked = %d, want 1", srv.Unacked(q))
	}
	srv.Kill(node)
	wait(t, srv, "the redelivery to be acked", func() bool { return len(srv.Acked(q)) == 1 })
	if s := <-got; s.redelivered {
		t.Fatalf("first delivery redelivered")
	}
	if s := <-got; !s.redelivered || s.count != int64(1) {
		t.Fatalf("second delivery: redelivered %v, x-delivery-count %v; want true, 1", s.redelivered, s.count)
	}
	if now := srv.NodeIndex(c.ConsumerNode()); now == node {
		t.Fatalf("consumer still on killed node %d", node)
	}
	if m := srv.Acked(q)[0]; !m.Redelivered || m.Deliveries != 2 || m.MessageId != "job-1" {
		t.Fatalf("acked %+v, want job-1 redelivered after 2 deliveries", m)
	}
}

// Publishing goes on across a kill of the publisher's node: every message
// is confirmed, and those after the kill arrive on another node.
func TestKillFailsOverPublishing(t *testing.T) {
	srv := amqphatest.NewServer(t)
	c := dial(t, srv, nil)
	q := declare(t, c, amqpha.QuorumQueue("events"))
	pub := publisher(t, c, amqpha.PublisherConfig{})
	if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	killed := srv.Published()[0].Node
	srv.Kill(killed)
	if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("after")}); err != nil {
		t.Fatalf("Publish after the kill: %v", err)
	}
	all := srv.PublishedTo(q)
	last := all[len(all)-1]
	if string(last.Body) != "after" || last.Node == killed || last.Node < 0 {
		t.Fatalf("last publish %q on node %d; want \"after\" on a node other than %d", last.Body, last.Node, killed)
	}
	if srv.Connections(killed) != 0 {
		t.Fatalf("%d connections on the killed node", srv.Connections(killed))
	}
	srv.Revive(killed)
	wait(t, srv, "a connection to the revived node", func() bool {
		c2, err := amqp.Dial(srv.URL(killed))
		if err != nil {
			return false
		}
		_ = c2.Close()
		return true
	})
}

// heartbeatBackstop is the heartbeat of the tests that hang a node. The
// hang detector of amqpha (as of this writing) opens its probe channel
// after the connection is ready, with no deadline: a node that hangs before
// that channel is open is not probed, and only amqp091-go's heartbeat read
// deadline (1.5 heartbeats after the last frame read) notices. Hanging a
// node just after a consumer got its first message hit that window in 2 of
// 30 runs and took 15 s at the default 10 s heartbeat; 1 s bounds it to
// about 1.5 s, within the tests' deadlines. (A node that hangs at the very
// moment a connection opens can go unnoticed for good: reported.)
const heartbeatBackstop = time.Second

// A hung node is left by amqpha's hang detector; the publish in flight is
// confirmed on another node.
func TestHangFailsOver(t *testing.T) {
	srv := amqphatest.NewServer(t)
	c := dial(t, srv, func(cfg *amqpha.Config) { cfg.Heartbeat = heartbeatBackstop })
	q := declare(t, c, amqpha.QuorumQueue("hang"))
	pub := publisher(t, c, amqpha.PublisherConfig{})
	if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	hung := srv.Published()[0].Node
	srv.Hang(hung)
	if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("2")}); err != nil {
		t.Fatalf("Publish while the node hangs: %v", err)
	}
	if now := srv.NodeIndex(c.Node()); now == hung {
		t.Fatalf("client still on hung node %d", hung)
	}
	for _, m := range srv.PublishedTo(q) {
		if string(m.Body) == "2" && m.Node == hung {
			t.Fatalf("message 2 stored from the hung node")
		}
	}
	srv.Revive(hung)
}

func TestNackNextIsRetried(t *testing.T) {
	srv := amqphatest.NewServer(t)
	c := dial(t, srv, nil)
	q := declare(t, c, amqpha.QuorumQueue("nack"))
	pub := publisher(t, c, amqpha.PublisherConfig{})
	srv.NackNext(2)
	if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	pubs := srv.Published()
	if len(pubs) != 3 || !pubs[0].Nacked || !pubs[1].Nacked || pubs[2].Nacked || !pubs[2].Stored() {
		t.Fatalf("published %d times (%+v); want nacked, nacked, stored", len(pubs), pubs)
	}
	if pubs[0].MessageId != pubs[2].MessageId {
		t.Fatalf("retry changed the message-id")
	}
	if n := len(srv.Ready(q)); n != 1 {
		t.Fatalf("Ready = %d, want 1 (nacked messages are not stored)", n)
	}
}

func TestNackAllFailsPublish(t *testing.T) {
	srv := amqphatest.NewServer(t)
	c := dial(t, srv, nil)
	q := declare(t, c, amqpha.QuorumQueue("full"))
	pub := publisher(t, c, amqpha.PublisherConfig{NackRetryFor: -1})
	srv.NackAll(true)
	if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("x")}); !errors.Is(err, amqpha.ErrNacked) {
		t.Fatalf("Publish = %v, want ErrNacked", err)
	}
	srv.NackAll(false)
	if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("y")}); err != nil {
		t.Fatalf("Publish after NackAll(false): %v", err)
	}
	if got := srv.Ready(q); len(got) != 1 || string(got[0].Body) != "y" {
		t.Fatalf("Ready = %v, want only y", got)
	}
}

func TestReturnNextAndUnroutable(t *testing.T) {
	srv := amqphatest.NewServer(t)
	c := dial(t, srv, nil)
	q := declare(t, c, amqpha.QuorumQueue("ret"))
	pub := publisher(t, c, amqpha.PublisherConfig{})
	srv.ReturnNext(1)
	if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("x")}); !errors.Is(err, amqpha.ErrUnroutable) {
		t.Fatalf("Publish with ReturnNext = %v, want ErrUnroutable", err)
	}
	if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("y")}); err != nil {
		t.Fatalf("Publish after the return: %v", err)
	}
	if err := pub.Publish(testCtx(t), "", "no-such-queue", amqp.Publishing{Body: []byte("z")}); !errors.Is(err, amqpha.ErrUnroutable) {
		t.Fatalf("Publish to no queue = %v, want ErrUnroutable", err)
	}
	pubs := srv.Published()
	if len(pubs) != 3 || !pubs[0].Returned || pubs[1].Returned || !pubs[2].Returned || pubs[0].Stored() || !pubs[1].Stored() {
		t.Fatalf("published %+v; want returned, stored, returned", pubs)
	}
	lax := publisher(t, c, amqpha.PublisherConfig{AllowUnroutable: true})
	srv.ReturnNext(1)
	if err := lax.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("dropped")}); err != nil {
		t.Fatalf("non-mandatory Publish with ReturnNext = %v, want nil (confirmed and dropped)", err)
	}
	if got := srv.Ready(q); len(got) != 1 {
		t.Fatalf("Ready = %d messages, want 1", len(got))
	}
}

func TestBlock(t *testing.T) {
	srv := amqphatest.NewServer(t)
	blocked := make(chan struct{}, 1)
	c := dial(t, srv, func(cfg *amqpha.Config) {
		cfg.OnEvent = func(e amqpha.Event) {
			if e.Kind == amqpha.EventBlocked {
				select {
				case blocked <- struct{}{}:
				default:
				}
			}
		}
	})
	q := declare(t, c, amqpha.QuorumQueue("blocked"))
	fast := publisher(t, c, amqpha.PublisherConfig{FailWhenBlocked: true})
	patient := publisher(t, c, amqpha.PublisherConfig{})
	// RabbitMQ blocks a connection once it publishes; this one has.
	if err := patient.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	consumed := make(chan string, 4)
	consume(t, c, q, amqpha.ConsumerConfig{}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		consumed <- string(d.Body)
		return amqpha.Ack
	})
	if b := <-consumed; b != "before" {
		t.Fatalf("consumed %q", b)
	}
	srv.Block("low on memory")
	select {
	case <-blocked:
	case <-testCtx(t).Done():
		t.Fatal("no blocked event")
	}
	if err := fast.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("x")}); !errors.Is(err, amqpha.ErrBlocked) {
		t.Fatalf("Publish with FailWhenBlocked = %v, want ErrBlocked", err)
	}
	done := make(chan error, 1)
	go func() { done <- patient.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("waits")}) }()
	if err := fast.Publish(testCtx(t), "", q, amqp.Publishing{Body: []byte("x")}); !errors.Is(err, amqpha.ErrBlocked) {
		t.Fatalf("second Publish with FailWhenBlocked = %v, want ErrBlocked", err)
	}
	// The consumers' own connection is not blocked: it receives and acks.
	if _, err := srv.Publish("", q, amqp.Publishing{Body: []byte("during")}); err != nil {
		t.Fatal(err)
	}
	if b := <-consumed; b != "during" {
		t.Fatalf("consumed %q, want during", b)
	}
	wait(t, srv, "the ack read while blocked", func() bool { return len(srv.Acked(q)) == 2 })
	select {
	case err := <-done:
		t.Fatalf("Publish returned %v while blocked", err)
	default:
	}
	srv.Unblock()
	if err := <-done; err != nil {
		t.Fatalf("Publish after Unblock: %v", err)
	}
	if b := <-consumed; b != "waits" {
		t.Fatalf("consumed %q after Unblock, want waits", b)
	}
}

// A node shutting down closes its clients with 320; the client moves on.
func TestShutdownMovesClient(t *testing.T) {
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(2))
	switched := make(chan amqpha.Event, 4)
	c := dial(t, srv, func(cfg *amqpha.Config) {
		cfg.OnEvent = func(e amqpha.Event) {
			if e.Kind == amqpha.EventReconnecting {
				select {
				case switched <- e:
				default:
				}
			}
		}
	})
	pub := publisher(t, c, amqpha.PublisherConfig{AllowUnroutable: true})
	node := srv.NodeIndex(c.Node())
	srv.Shutdown(node)
	var e amqpha.Event
	select {
	case e = <-switched:
	case <-testCtx(t).Done():
		t.Fatal("no reconnecting event")
	}
	var ae *amqp.Error
	if !errors.As(e.Err, &ae) || ae.Code != amqp.ConnectionForced {
		t.Fatalf("reconnecting because of %v, want 320 CONNECTION_FORCED", e.Err)
	}
	if err := pub.Publish(testCtx(t), "amq.fanout", "", amqp.Publishing{}); err != nil {
		t.Fatalf("Publish after the shutdown: %v", err)
	}
	if got := srv.Published()[0].Node; got == node {
		t.Fatalf("published on the shut-down node %d", node)
	}
}

// A handler's Nack dead-letters the message through the queue's
// dead-letter exchange.
func TestNackDeadLetters(t *testing.T) {
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(1))
	c := dial(t, srv, nil)
	ctx := testCtx(t)
	if err := c.DeclareExchange(ctx, amqpha.Exchange{Name: "dlx", Kind: "fanout", Durable: true}); err != nil {
		t.Fatal(err)
	}
	dead := declare(t, c, amqpha.QuorumQueue("dead"))
	if err := c.BindQueue(ctx, amqpha.QueueBinding{Queue: dead, Exchange: "dlx"}); err != nil {
		t.Fatal(err)
	}
	work := amqpha.QuorumQueue("work")
	work.Args["x-dead-letter-exchange"] = "dlx"
	q := declare(t, c, work)
	if _, err := srv.Publish("", q, amqp.Publishing{MessageId: "bad", Body: []byte("?")}); err != nil {
		t.Fatal(err)
	}
	consume(t, c, q, amqpha.ConsumerConfig{}, func(context.Context, *amqpha.Delivery) amqpha.Action { return amqpha.Nack })
	wait(t, srv, "the dead letter", func() bool { return len(srv.Ready(dead)) == 1 })
	if m := srv.Ready(dead)[0]; m.MessageId != "bad" || m.Headers["x-first-death-queue"] != "work" {
		t.Fatalf("dead letter %+v", m)
	}
	if len(srv.Rejected(q)) != 1 || len(srv.Acked(q)) != 0 {
		t.Fatalf("rejected %d, acked %d; want 1, 0", len(srv.Rejected(q)), len(srv.Acked(q)))
	}
}

// An exclusive server-named queue dies with its connection, as on RabbitMQ;
// amqpha declares it again on the next node, and its consumer follows the
// new name.
func TestExclusiveQueueFollowsFailover(t *testing.T) {
	srv := amqphatest.NewServer(t)
	c := dial(t, srv, func(cfg *amqpha.Config) { cfg.SharedConnection = true })
	ctx := testCtx(t)
	q := declare(t, c, amqpha.Queue{Exclusive: true, AutoDelete: true})
	if err := c.BindQueue(ctx, amqpha.QueueBinding{Queue: q, Exchange: "amq.fanout"}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 4)
	consume(t, c, q, amqpha.ConsumerConfig{}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		got <- string(d.Body)
		return amqpha.Ack
	})
	before := c.QueueName(q)
	srv.Kill(srv.NodeIndex(c.Node()))
	wait(t, srv, "the queue declared again", func() bool {
		now := c.QueueName(q)
		return now != before && srv.Consumers(now) == 1
	})
	if slices.Contains(srv.Queues(), before) {
		t.Fatalf("queue %s outlived its connection", before)
	}
	if _, err := srv.Publish("amq.fanout", "", amqp.Publishing{Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if b != "after" {
			t.Fatalf("got %q", b)
		}
	case <-ctx.Done():
		t.Fatal("no delivery after the failover")
	}
}

// A consumer's hung node keeps the message it holds until the node is
// killed; meanwhile the consumer, moved elsewhere, gets the other messages.
func TestHangHoldsUnackedUntilKill(t *testing.T) {
	srv := amqphatest.NewServer(t)
	c := dial(t, srv, func(cfg *amqpha.Config) { cfg.Heartbeat = heartbeatBackstop })
	q := declare(t, c, amqpha.QuorumQueue("held"))
	if _, err := srv.Publish("", q, amqp.Publishing{Body: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	holding := make(chan struct{})
	got := make(chan string, 4)
	consume(t, c, q, amqpha.ConsumerConfig{}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		got <- string(d.Body)
		hold := false
		once.Do(func() { hold = true })
		if hold {
			close(holding)
			<-ctx.Done() // the connection is lost before the ack
		}
		return amqpha.Ack
	})
	<-holding
	hung := srv.NodeIndex(c.ConsumerNode())
	srv.Hang(hung)
	wait(t, srv, "the consumer to move", func() bool {
		n := srv.NodeIndex(c.ConsumerNode())
		return n >= 0 && n != hung && srv.Consumers(q) == 2
	})
	if _, err := srv.Publish("", q, amqp.Publishing{Body: []byte("second")}); err != nil {
		t.Fatal(err)
	}
	if b := <-got; b != "first" {
		t.Fatalf("got %q first", b)
	}
	if b := <-got; b != "second" {
		t.Fatalf("got %q, want second (first is held by the hung node)", b)
	}
	wait(t, srv, "second acked, first still held by the hung node", func() bool {
		return len(srv.Acked(q)) == 1 && srv.Unacked(q) == 1
	})
	srv.Kill(hung)
	if b := <-got; b != "first" {
		t.Fatalf("after the kill got %q, want first again", b)
	}
	wait(t, srv, "all acked", func() bool { return len(srv.Acked(q)) == 2 && srv.Unacked(q) == 0 })
}

// A full queue with x-overflow reject-publish nacks: amqpha's Publish
// fails with ErrNacked, as against RabbitMQ.
func TestFullQueueNacks(t *testing.T) {
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(1))
	c := dial(t, srv, nil)
	q := amqpha.QuorumQueue("bounded")
	q.Args["x-max-length"] = int64(1)
	q.Args["x-overflow"] = "reject-publish"
	name := declare(t, c, q)
	pub := publisher(t, c, amqpha.PublisherConfig{NackRetryFor: -1})
	if err := pub.Publish(testCtx(t), "", name, amqp.Publishing{Body: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(testCtx(t), "", name, amqp.Publishing{Body: []byte("2")}); !errors.Is(err, amqpha.ErrNacked) {
		t.Fatalf("Publish to the full queue = %v, want ErrNacked", err)
	}
	if p := srv.Published(); !p[1].Nacked || p[1].Stored() {
		t.Fatalf("second publish %+v: want nacked, not stored", p[1])
	}
}

// A handler that keeps requeueing a message of a quorum queue with
// x-delivery-limit sees it limit+1 times; then it is dead-lettered.
func TestDeliveryLimitDeadLetters(t *testing.T) {
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(1))
	c := dial(t, srv, nil)
	dead := declare(t, c, amqpha.QuorumQueue("poison.dead"))
	q := amqpha.QuorumQueue("poison")
	q.Args["x-delivery-limit"] = int64(2)
	q.Args["x-dead-letter-exchange"] = ""
	q.Args["x-dead-letter-routing-key"] = dead
	name := declare(t, c, q)
	if _, err := srv.Publish("", name, amqp.Publishing{Body: []byte("poison")}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := 0
	consume(t, c, name, amqpha.ConsumerConfig{}, func(context.Context, *amqpha.Delivery) amqpha.Action {
		mu.Lock()
		seen++
		mu.Unlock()
		return amqpha.Requeue
	})
	wait(t, srv, "the dead letter", func() bool { return len(srv.Ready(dead)) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if seen != 3 {
		t.Fatalf("handler saw the message %d times, want 3 (limit 2, then dead-lettered)", seen)
	}
}

// Publishers and a consumer run while nodes die one after another: every
// confirmed message is consumed at least once, none is lost.
func TestNoLossAcrossKills(t *testing.T) {
	srv := amqphatest.NewServer(t)
	c := dial(t, srv, func(cfg *amqpha.Config) { cfg.Connections = 2 })
	q := declare(t, c, amqpha.QuorumQueue("stream-of-work"))
	var mu sync.Mutex
	got := map[string]int{}
	consume(t, c, q, amqpha.ConsumerConfig{Prefetch: 5, Concurrency: 4}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		mu.Lock()
		got[string(d.Body)]++
		mu.Unlock()
		return amqpha.Ack
	})
	pub := publisher(t, c, amqpha.PublisherConfig{Window: 16})
	const perPublisher, publishers = 100, 3
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPublisher {
				if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Body: fmt.Appendf(nil, "%d-%d", p, i)}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for round := range 3 { // kill the consumers' node, wait for the move, revive it
		node := srv.NodeIndex(c.ConsumerNode())
		if node < 0 {
			wait(t, srv, "a consumer connection", func() bool { return srv.NodeIndex(c.ConsumerNode()) >= 0 })
			node = srv.NodeIndex(c.ConsumerNode())
		}
		srv.Kill(node)
		wait(t, srv, fmt.Sprintf("round %d: the consumer off node %d", round, node), func() bool {
			n := srv.NodeIndex(c.ConsumerNode())
			return n >= 0 && n != node
		})
		srv.Revive(node)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	wait(t, srv, "every message consumed", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == perPublisher*publishers
	})
	if n := len(srv.Ready(q)); n != 0 {
		t.Fatalf("%d messages left ready", n)
	}
}

// Consumers cancelled by the server, or whose queue an operator deleted,
// are registered again by amqpha; a queue it declared is declared again.
func TestCancelAndDeleteQueue(t *testing.T) {
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(1))
	registered := make(chan struct{}, 4)
	c := dial(t, srv, func(cfg *amqpha.Config) {
		cfg.OnEvent = func(e amqpha.Event) {
			if e.Kind == amqpha.EventConsumerRegistered {
				select {
				case registered <- struct{}{}:
				default:
				}
			}
		}
	})
	q := declare(t, c, amqpha.QuorumQueue("cancelled"))
	got := make(chan string, 4)
	consume(t, c, q, amqpha.ConsumerConfig{}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		got <- string(d.Body)
		return amqpha.Ack
	})
	for _, fault := range []struct {
		name string
		do   func()
	}{
		{"CancelConsumers", func() {
			if n := srv.CancelConsumers(q); n != 1 {
				t.Fatalf("CancelConsumers = %d, want 1", n)
			}
		}},
		{"DeleteQueue", func() { srv.DeleteQueue(q) }},
	} {
		fault.do()
		select {
		case <-registered:
		case <-testCtx(t).Done():
			t.Fatalf("%s: the consumer was not registered again", fault.name)
		}
		wait(t, srv, fault.name+": queue and consumer back", func() bool {
			return slices.Contains(srv.Queues(), q) && srv.Consumers(q) == 1
		})
		if _, err := srv.Publish("", q, amqp.Publishing{Body: []byte(fault.name)}); err != nil {
			t.Fatal(err)
		}
		if b := <-got; b != fault.name {
			t.Fatalf("got %q after %s", b, fault.name)
		}
	}
}

// consume starts a consumer of q and closes it at cleanup.
func consume(t *testing.T, c *amqpha.Client, q string, cfg amqpha.ConsumerConfig, h amqpha.Handler) {
	t.Helper()
	k, err := c.Consume(testCtx(t), q, cfg, h)
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(func() { _ = k.Close(context.Background()) })
}
