package amqphatest_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/amqpha/amqphatest"
)

// Every property survives the trip client → server → Published, and
// server → consumer, in amqp091-go's own types (nested tables as
// amqp.Table, decimals as amqp.Decimal).
func TestPropertiesRoundTrip(t *testing.T) {
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(1))
	c := dial(t, srv, nil)
	q := declare(t, c, amqpha.QuorumQueue("props"))
	msg := amqp.Publishing{
		Headers: amqp.Table{
			"n": int32(7), "s": "text", "dec": amqp.Decimal{Scale: 2, Value: 12345},
			"nested": amqp.Table{"inner": amqp.Decimal{Scale: 1, Value: 5}}, "list": []any{"a", amqp.Table{"b": true}},
		},
		ContentType: "application/json", ContentEncoding: "gzip", DeliveryMode: amqp.Persistent, Priority: 3,
		CorrelationId: "corr", ReplyTo: "reply", Expiration: "60000", MessageId: "id-1",
		Timestamp: time.Unix(1700000000, 0), Type: "order", UserId: "guest", AppId: "app", Body: []byte("body"),
	}
	pub := publisher(t, c, amqpha.PublisherConfig{})
	if err := pub.Publish(testCtx(t), "", q, msg); err != nil {
		t.Fatal(err)
	}
	got := srv.PublishedTo(q)[0].Publishing
	got.Timestamp = got.Timestamp.In(msg.Timestamp.Location())
	if !reflect.DeepEqual(got, msg) {
		t.Fatalf("Published:\n got %#v\nwant %#v", got, msg)
	}
	if _, err := srv.Publish("", q, msg); err != nil {
		t.Fatalf("Publish with every property: %v", err)
	}
	deliveries := make(chan amqp.Delivery, 2)
	consume(t, c, q, amqpha.ConsumerConfig{}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		deliveries <- d.Delivery
		return amqpha.Ack
	})
	for range 2 {
		d := <-deliveries
		if !reflect.DeepEqual(d.Headers, msg.Headers) || d.MessageId != msg.MessageId || d.Priority != 3 || !d.Timestamp.Equal(msg.Timestamp) {
			t.Fatalf("delivered headers %#v id %q", d.Headers, d.MessageId)
		}
	}
}

// What Published returns is the caller's to change.
func TestPublishedIsACopy(t *testing.T) {
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(1))
	c := dial(t, srv, nil)
	q := declare(t, c, amqpha.QuorumQueue("copy"))
	pub := publisher(t, c, amqpha.PublisherConfig{})
	if err := pub.Publish(testCtx(t), "", q, amqp.Publishing{Headers: amqp.Table{"h": "v"}, Body: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	first := srv.Published()[0]
	first.Body[0] = 'X'
	first.Headers["h"] = "changed"
	first.Queues[0] = "other"
	again := srv.PublishedTo(q)[0]
	if string(again.Body) != "b" || again.Headers["h"] != "v" || again.Queues[0] != q {
		t.Fatalf("a change to a returned message reached the server's record: %+v", again)
	}
}
