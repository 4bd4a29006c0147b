package amqpha

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// A queue deleted while the consumers' connection is being replaced: the
// broker's basic.cancel dies with the old connection, and the new
// connection's registration is refused with 404. The program is told once
// (EventConsumerCancelled with the refusal), not on every retry, and the
// consumer comes back when the queue exists again. Before: no event at all,
// the consumer silently retrying (seen as a flake of
// TestConsumerComesBackAfterQueueDeleted on the real cluster).
func TestQueueDeletedDuringReconnectIsReported(t *testing.T) {
	r := newDeletedQueueRig(t)
	// The connection goes first, so the broker's basic.cancel cannot
	// reach the consumer; then the queue.
	r.srv.Kill(0)
	r.srv.DeleteQueue("q")
	r.srv.Revive(0)
	cancelled := r.comesBack()
	var ae *amqp.Error
	if !errors.As(cancelled.Err, &ae) || ae.Code != amqp.NotFound {
		t.Fatalf("consumer-cancelled with %v, want the broker's 404", cancelled.Err)
	}
	if cancelled.Queue != "q" || cancelled.Consumer != r.k.Tag() || cancelled.Generation < 2 {
		t.Fatalf("consumer-cancelled %+v, want queue q, tag %s, a later connection", cancelled, r.k.Tag())
	}
}

// A queue deleted while the consumer is registered is reported once, by
// the broker's cancellation; the refusals of the registrations that follow
// while the queue is missing add no event.
func TestQueueDeletedIsReportedOnce(t *testing.T) {
	r := newDeletedQueueRig(t)
	r.srv.DeleteQueue("q")
	cancelled := r.comesBack()
	var ae *amqp.Error
	if cancelled.Generation != 1 || errors.As(cancelled.Err, &ae) {
		t.Fatalf("consumer-cancelled on connection %d (%v), want the broker's cancellation on 1", cancelled.Generation, cancelled.Err)
	}
}

// deletedQueueRig is a consumer of queue "q" on a fake broker that counts
// the registrations it refuses because q is missing.
type deletedQueueRig struct {
	t       *testing.T
	ctx     context.Context
	srv     *fakebroker.Server
	log     eventLog
	refused atomic.Int64
	k       *Consumer
}

func newDeletedQueueRig(t *testing.T) *deletedQueueRig {
	r := &deletedQueueRig{t: t, ctx: testCtx(t, 30*time.Second), srv: fakebroker.Start(t, fakebroker.WithStore())}
	r.srv.DeclareQueue("q")
	r.srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if m.Name == "basic.consume" && !r.srv.HasQueue(m.Queue) {
			r.refused.Add(1) // the store refuses it with 404
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, r.srv.URL(), func(c *Config) {
		c.HangTimeout = -1
		c.OnEvent = r.log.add
		c.ReconnectInitial = 10 * time.Millisecond
		c.ReconnectMax = 50 * time.Millisecond
	})
	k, err := c.Consume(r.ctx, "q", ConsumerConfig{}, func(context.Context, *Delivery) Action { return Ack })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close(context.Background()) })
	r.k = k
	return r
}

// comesBack waits for the consumer-cancelled event and three refused
// registrations, declares q again, waits for the consumer to be registered
// again, checks that there was one consumer-cancelled event, and returns
// it.
func (r *deletedQueueRig) comesBack() Event {
	t := r.t
	t.Helper()
	cancelled, err := waitForEvent(r.ctx, &r.log, EventConsumerCancelled, 0)
	if err != nil {
		t.Fatalf("%v; events: %v", err, r.log.all())
	}
	// It goes on trying (with backoff) and is told no more.
	if err := r.srv.WaitFor(r.ctx, func() bool { return r.refused.Load() >= 3 }); err != nil {
		t.Fatalf("refused registrations: %d: %v", r.refused.Load(), err)
	}
	r.srv.DeclareQueue("q")
	if _, err := waitForEvent(r.ctx, &r.log, EventConsumerRegistered, 0); err != nil {
		t.Fatalf("%v; events: %v", err, r.log.all())
	}
	if n := countEvents(&r.log, EventConsumerCancelled); n != 1 {
		t.Fatalf("%d consumer-cancelled events over %d refusals, want 1: %v", n, r.refused.Load(), r.log.all())
	}
	if n := r.k.Registrations(); n != 2 {
		t.Fatalf("registered %d times, want 2", n)
	}
	return cancelled
}

// waitForEvent polls log until it holds the event of kind k after skip
// earlier ones, or ctx ends.
func waitForEvent(ctx context.Context, log *eventLog, k EventKind, skip int) (Event, error) {
	for {
		n := 0
		for _, e := range log.all() {
			if e.Kind != k {
				continue
			}
			if n == skip {
				return e, nil
			}
			n++
		}
		select {
		case <-ctx.Done():
			return Event{}, fmt.Errorf("no %s event (after %d): %w", k, skip, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func countEvents(log *eventLog, k EventKind) int {
	n := 0
	for _, e := range log.all() {
		if e.Kind == k {
			n++
		}
	}
	return n
}
