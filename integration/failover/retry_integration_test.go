//go:build integration

package failover

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
)

// TestRetryGrowingDelaysThenDeadLetter: with ConsumerConfig.Retry on a
// quorum queue with a dead-letter exchange, a handler that fails twice and
// then succeeds is called 3 times, each wait at least the policy's
// (growing) delay, with the broker's x-delivery-count; a message that
// always fails is called MaxAttempts times and lands in the dead-letter
// queue; a message published with an x-delivery-count of its own (as one
// republished from a dead-letter queue) starts at attempt 1.
func TestRetryGrowingDelaysThenDeadLetter(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	dlq := declareQueue(t, 0, "classic", nil)
	queue := quorumQueue(t, 0, amqp.Table{
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": dlq,
		"x-delivery-limit":          10, // the broker's backstop, above MaxAttempts
	})
	c, _ := client(t, amqpha.Config{})
	policy := amqpha.RetryPolicy{MaxAttempts: 3, Delay: 300 * time.Millisecond, MaxDelay: 5 * time.Second}
	type call struct {
		at    time.Time
		count any // x-delivery-count
	}
	var mu sync.Mutex
	calls := map[string][]call{}
	var flakyDone, rebornDone atomic.Bool
	_, err := c.Consume(ctx, queue, amqpha.ConsumerConfig{Retry: policy}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		mu.Lock()
		defer mu.Unlock()
		calls[d.MessageId] = append(calls[d.MessageId], call{time.Now(), d.Headers["x-delivery-count"]})
		if d.MessageId == "flaky" && len(calls["flaky"]) == 3 {
			flakyDone.Store(true)
			return amqpha.Ack
		}
		if d.MessageId == "reborn" && len(calls["reborn"]) == 2 {
			rebornDone.Store(true)
			return amqpha.Ack
		}
		return amqpha.Requeue
	})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"flaky", "poison"} {
		if err := pub.Publish(ctx, "", queue, amqp.Publishing{MessageId: id}); err != nil {
			t.Fatal(err)
		}
	}
	// Republished from a dead-letter queue, it keeps the count of its
	// former life; its first delivery is still attempt 1, and it is
	// retried, not dead-lettered at its first failure.
	if err := pub.Publish(ctx, "", queue, amqp.Publishing{MessageId: "reborn", Headers: amqp.Table{"x-delivery-count": int64(5)}}); err != nil {
		t.Fatal(err)
	}

	// The poison message comes out of the dead-letter queue.
	ch := rawChannel(t, 1)
	for {
		d, ok, err := ch.Get(dlq, true)
		if err != nil {
			t.Fatalf("get from the dead-letter queue: %v", err)
		}
		if ok {
			if d.MessageId != "poison" {
				t.Fatalf("dead-lettered %q, want poison", d.MessageId)
			}
			break
		}
		select {
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("poison not dead-lettered; calls: %v", calls)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for !flakyDone.Load() || !rebornDone.Load() {
		select {
		case <-ctx.Done():
			t.Fatalf("flaky (%v) or reborn (%v) never succeeded", flakyDone.Load(), rebornDone.Load())
		case <-time.After(50 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, cs := range calls {
		if id == "reborn" {
			t.Logf("reborn: calls with x-delivery-count %v, %v", cs[0].count, cs[len(cs)-1].count)
			if len(cs) != 2 {
				t.Errorf("reborn: %d calls, want 2 (failed once, then acked)", len(cs))
			}
			continue
		}
		if len(cs) != policy.MaxAttempts {
			t.Errorf("%s: %d calls, want %d", id, len(cs), policy.MaxAttempts)
			continue
		}
		want := policy.Delay
		for i := 1; i < len(cs); i++ {
			gap := cs[i].at.Sub(cs[i-1].at)
			t.Logf("%s: call %d after %v (x-delivery-count %v)", id, i+1, gap.Round(time.Millisecond), cs[i].count)
			if gap < want {
				t.Errorf("%s: call %d came %v after the one before, want at least %v", id, i+1, gap, want)
			}
			if fmt.Sprint(cs[i].count) != fmt.Sprint(i) {
				t.Errorf("%s: call %d has x-delivery-count %v, want %d", id, i+1, cs[i].count, i)
			}
			want *= 2
		}
		if cs[0].count != nil {
			t.Errorf("%s: first call has x-delivery-count %v", id, cs[0].count)
		}
	}
}
