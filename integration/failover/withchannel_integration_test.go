//go:build integration

package failover

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
)

// TestWithChannelGetPurgeDepth: basic.get, queue.purge and a passive
// declare for the queue's depth through Client.WithChannel; a channel
// error (404) is fn's alone, returned once and not retried, and the
// client's own connection goes on.
func TestWithChannelGetPurgeDepth(t *testing.T) {
	ctx := ctxFor(t, time.Minute)
	queue := quorumQueue(t, 0, nil)
	c, _ := client(t, amqpha.Config{})
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := pub.Publish(ctx, "", queue, amqp.Publishing{MessageId: fmt.Sprint(i), Body: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	depth := func() int {
		t.Helper()
		var n int
		err := c.WithChannel(ctx, func(ctx context.Context, ch *amqp.Channel) error {
			q, err := ch.QueueDeclarePassive(c.QueueName(queue), true, false, false, false, nil)
			n = q.Messages
			return err
		})
		if err != nil {
			t.Fatalf("passive declare: %v", err)
		}
		return n
	}
	if n := depth(); n != 3 {
		t.Fatalf("depth %d, want 3", n)
	}
	var got amqp.Delivery
	err = c.WithChannel(ctx, func(ctx context.Context, ch *amqp.Channel) error {
		d, ok, err := ch.Get(queue, false)
		if err != nil || !ok {
			return fmt.Errorf("basic.get: ok %v: %w", ok, err)
		}
		got = d
		return d.Ack(false)
	})
	if err != nil || string(got.Body) != "0" {
		t.Fatalf("basic.get: %v, body %q, want the first message", err, got.Body)
	}
	var purged int
	err = c.WithChannel(ctx, func(ctx context.Context, ch *amqp.Channel) (err error) {
		purged, err = ch.QueuePurge(queue, false)
		return err
	})
	if err != nil || purged != 2 {
		t.Fatalf("purge: %d, %v; want the 2 left", purged, err)
	}
	if n := depth(); n != 0 {
		t.Fatalf("depth after purge %d, want 0", n)
	}

	runs := 0
	err = c.WithChannel(ctx, func(ctx context.Context, ch *amqp.Channel) error {
		runs++
		_, err := ch.QueueDeclarePassive(queue+"-missing", true, false, false, false, nil)
		return err
	})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != amqp.NotFound || runs != 1 {
		t.Fatalf("passive declare of a missing queue: %v after %d runs, want 404 NOT_FOUND after 1", err, runs)
	}
	if err := pub.Publish(ctx, "", queue, amqp.Publishing{}); err != nil {
		t.Fatalf("publish after fn's channel error: %v", err)
	}
	if n := c.Reconnects(); n != 0 {
		t.Errorf("%d reconnects; fn's channel error must not touch the connection", n)
	}
}

// TestWithChannelRetriedOnNextNode: the node under fn is killed while fn
// runs; fn runs again on the next node and its result is returned.
func TestWithChannelRetriedOnNextNode(t *testing.T) {
	restore(t)
	ctx := ctxFor(t, 2*time.Minute)
	c, _ := client(t, amqpha.Config{})
	var nodes []string
	var victim *cluster.Node
	err := c.WithChannel(ctx, func(ctx context.Context, ch *amqp.Channel) error {
		nodes = append(nodes, c.Node())
		if len(nodes) == 1 {
			victim = connectedNode(c)
			if err := victim.Kill(ctx); err != nil {
				t.Errorf("kill: %v", err)
			}
		}
		// No queue: deleting one with a member down would slow the
		// cleanup by seconds.
		return ch.ExchangeDeclarePassive("amq.direct", "direct", true, false, false, false, nil)
	})
	if err != nil {
		t.Fatalf("WithChannel: %v (runs on %v)", err, nodes)
	}
	if len(nodes) != 2 || nodes[0] == nodes[1] || nodeAt(nodes[1]) == victim {
		t.Fatalf("fn ran on %v; want twice, the second time on another node than the killed %v", nodes, victim)
	}
}
