//go:build integration

package failover

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
)

// publishN publishes n messages to queue through node 0, directly.
func publishN(t *testing.T, queue string, n int) {
	t.Helper()
	ch := rawChannel(t, 0)
	for i := range n {
		if err := ch.Publish("", queue, false, false, amqp.Publishing{MessageId: string(rune('a' + i%26)), Body: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
}

// A delivery held by the handler across a failover cannot be acknowledged:
// Ack returns ErrStaleDelivery and sends nothing, the broker delivers the
// message again, and the consumer's new channel stays open.
func TestStaleDeliveryAfterFailover(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	c, ev := client(t, amqpha.Config{})
	ctx := ctxFor(t, 2*time.Minute)
	got := make(chan *amqpha.Delivery, 10)
	k, err := c.Consume(ctx, q, amqpha.ConsumerConfig{Prefetch: 1}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		got <- d
		return amqpha.Manual
	})
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, q, 1)
	var held *amqpha.Delivery
	select {
	case held = <-got:
	case <-ctx.Done():
		t.Fatal("nothing delivered")
	}
	// The consumers' connection is reset; the consumer registers again
	// elsewhere and the unacknowledged message comes back.
	consumerNode(c).ResetConnections()
	var again *amqpha.Delivery
	select {
	case again = <-got:
	case <-ctx.Done():
		t.Fatal("the message was not delivered again")
	}
	if !held.Stale() {
		t.Fatal("the delivery of the lost connection is not stale")
	}
	if err := held.Ack(); !errors.Is(err, amqpha.ErrStaleDelivery) {
		t.Fatalf("ack of the held delivery: %v, want ErrStaleDelivery", err)
	}
	if !again.Redelivered || again.MessageId != held.MessageId || again.Generation <= held.Generation {
		t.Fatalf("second delivery: redelivered %v, id %q (first %q), generation %d (first %d)",
			again.Redelivered, again.MessageId, held.MessageId, again.Generation, held.Generation)
	}
	if err := again.Ack(); err != nil {
		t.Fatal(err)
	}
	if err := again.Ack(); !errors.Is(err, amqpha.ErrSettled) {
		t.Fatalf("second ack: %v, want ErrSettled", err)
	}
	// The channel is still open: the next message arrives and is acked.
	publishN(t, q, 1)
	select {
	case d := <-got:
		if err := d.Ack(); err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("the consumer's channel stopped delivering")
	}
	noStaleTagErrors(t, ev)
	if n := ev.count(amqpha.EventConsumerCancelled); n != 0 {
		t.Fatalf("%d cancellations: a channel was closed", n)
	}
	if k.Registrations() != 2 {
		t.Fatalf("registered %d times, want 2", k.Registrations())
	}
}

// Prefetch bounds the unacknowledged deliveries, Concurrency the handlers
// running at once.
func TestPrefetchAndConcurrency(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	c, _ := client(t, amqpha.Config{})
	ctx := ctxFor(t, 2*time.Minute)
	publishN(t, q, 40)

	var held sync.Map
	var count atomic.Int32
	k, err := c.Consume(ctx, q, amqpha.ConsumerConfig{Prefetch: 5, Concurrency: 5}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		held.Store(d.DeliveryTag, d)
		count.Add(1)
		return amqpha.Manual
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := progressInt32(&count, 5, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The broker holds the rest back: 5 delivered and unacknowledged, 35
	// ready. Its counts of a quorum queue lag (they are refreshed on the
	// queue's tick), so wait for them; then they stay so, and no sixth
	// delivery comes, while five are unacknowledged.
	waitCounts(t, ctx, q, cluster.QueueCounts{Ready: 35, Unacked: 5}, time.Minute)
	for range 5 {
		got, err := shared.Node(0).QueueCounts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if n := count.Load(); n != 5 || got != (cluster.QueueCounts{Ready: 35, Unacked: 5}) {
			t.Fatalf("%d deliveries handled, broker counts %+v; want 5 with prefetch 5 and 35 ready", n, got)
		}
	}
	held.Range(func(_, v any) bool {
		v.(*amqpha.Delivery).Ack()
		return true
	})
	if _, err := progressInt32(&count, 10, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := k.Close(ctx); err != nil {
		t.Fatal(err)
	}

	var running, most atomic.Int32
	release := make(chan struct{})
	var handledN atomic.Int32
	k2, err := c.Consume(ctx, q, amqpha.ConsumerConfig{Prefetch: 20, Concurrency: 3}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-release
		running.Add(-1)
		handledN.Add(1)
		return amqpha.Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := progressInt32(&running, 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	// The broker delivered the prefetch, 20 of the 35 left (the 5 the
	// first consumer held went back when it closed); of those, 3 run and
	// the others wait for a handler, and that stays so.
	waitCounts(t, ctx, q, cluster.QueueCounts{Ready: 15, Unacked: 20}, time.Minute)
	for range 5 {
		got, err := shared.Node(0).QueueCounts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if m := most.Load(); m != 3 || got.Unacked > 20 {
			t.Fatalf("%d handlers ran at once with Concurrency 3; broker counts %+v with prefetch 20", m, got)
		}
	}
	close(release)
	if _, err := progressInt32(&handledN, 30, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := k2.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits until queue holds n messages ready for delivery.
func waitReady(t *testing.T, queue string, n int) error {
	t.Helper()
	ch := rawChannel(t, 0)
	deadline := time.Now().Add(30 * time.Second)
	for {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			return err
		}
		if q.Messages == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d messages ready in %s, want %d", q.Messages, queue, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func progressInt32(v *atomic.Int32, want int32, timeout time.Duration) (int32, error) {
	deadline := time.Now().Add(timeout)
	for v.Load() < want {
		if time.Now().After(deadline) {
			return v.Load(), errors.New("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return v.Load(), nil
}

// Close stops taking deliveries, waits for the running handler, and
// returns what was not acknowledged to the queue; a handler that outlives
// Close's context sees its own context cancelled.
func TestConsumerCloseIsGraceful(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	c, _ := client(t, amqpha.Config{})
	ctx := ctxFor(t, 2*time.Minute)
	publishN(t, q, 3)

	started := make(chan struct{}, 3)
	release := make(chan struct{})
	var acked atomic.Int32
	k, err := c.Consume(ctx, q, amqpha.ConsumerConfig{Prefetch: 3}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		started <- struct{}{}
		<-release
		acked.Add(1)
		return amqpha.Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	closed := make(chan error, 1)
	go func() { closed <- k.Close(ctx) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a handler runs", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if n := acked.Load(); n != 1 {
		t.Fatalf("%d handlers ran; want only the one running when Close began", n)
	}
	if err := waitReady(t, q, 2); err != nil {
		t.Fatalf("%v; want the 2 messages not handled back in the queue", err)
	}

	// A handler that does not finish in time: its context is cancelled.
	publishN(t, q, 1)
	cancelled := make(chan struct{})
	k2, err := c.Consume(ctx, q, amqpha.ConsumerConfig{}, func(hctx context.Context, d *amqpha.Delivery) amqpha.Action {
		started <- struct{}{}
		<-hctx.Done()
		close(cancelled)
		return amqpha.Requeue
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := k2.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a stuck handler: %v, want DeadlineExceeded", err)
	}
	select {
	case <-cancelled:
	case <-ctx.Done():
		t.Fatal("the stuck handler's context was not cancelled")
	}
}

// Single active consumer works through the queue's arguments: of two
// consumers only one receives, and the other takes over when it closes.
func TestSingleActiveConsumer(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, amqp.Table{"x-single-active-consumer": true})
	c, _ := client(t, amqpha.Config{})
	ctx := ctxFor(t, 2*time.Minute)
	var first, second atomic.Int32
	k1, err := c.Consume(ctx, q, amqpha.ConsumerConfig{}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		first.Add(1)
		return amqpha.Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Consume(ctx, q, amqpha.ConsumerConfig{}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		second.Add(1)
		return amqpha.Ack
	}); err != nil {
		t.Fatal(err)
	}
	publishN(t, q, 20)
	if _, err := progressInt32(&first, 20, time.Minute); err != nil {
		t.Fatalf("first consumer got %d of 20", first.Load())
	}
	if n := second.Load(); n != 0 {
		t.Fatalf("the inactive consumer got %d messages", n)
	}
	if err := k1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	publishN(t, q, 5)
	if _, err := progressInt32(&second, 5, time.Minute); err != nil {
		t.Fatalf("second consumer got %d of 5 after the first closed", second.Load())
	}
}

// Consume returns the broker's refusal at once and leaves nothing running.
func TestConsumeMissingQueueFails(t *testing.T) {
	restore(t)
	c, _ := client(t, amqpha.Config{})
	ctx := ctxFor(t, time.Minute)
	_, err := c.Consume(ctx, "no-such-queue-"+uniqueName(t), amqpha.ConsumerConfig{}, func(context.Context, *amqpha.Delivery) amqpha.Action { return amqpha.Ack })
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound {
		t.Fatalf("Consume of a missing queue: %v, want 404", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Consume waited for its context")
	}
}
