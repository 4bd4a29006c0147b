package amqpha_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
)

// Connect to a three-node cluster and publish one message, waiting until the
// broker has it.
func ExampleDial() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := amqpha.Dial(ctx, amqpha.Config{
		Nodes: []string{
			"amqp://app:secret@rabbit-1:5672/",
			"amqp://app:secret@rabbit-2:5672/",
			"amqp://app:secret@rabbit-3:5672/",
		},
		ConnectionName: "orders-producer",
		OnEvent: func(e amqpha.Event) {
			log.Printf("amqpha: %s %s %v", e.Kind, e.Node, e.Err)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())

	pub, err := client.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		log.Fatal(err)
	}
	err = pub.Publish(ctx, "", "orders", amqp.Publishing{ContentType: "application/json", Body: []byte(`{"id":1}`)})
	if err != nil {
		log.Fatal(err)
	}
}

// Tell the errors apart.
func ExamplePublisher_Publish() {
	var pub *amqpha.Publisher // from Client.NewPublisher
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := pub.Publish(ctx, "events", "order.created", amqp.Publishing{Body: []byte("…")})
	switch {
	case err == nil:
		// The broker has the message.
	case errors.Is(err, amqpha.ErrUnroutable):
		// No queue is bound for order.created: fix the topology.
	case errors.Is(err, amqpha.ErrNacked):
		// The queue refused it (full with reject-publish, or unavailable).
	case errors.Is(err, amqpha.ErrBlocked):
		// A memory or disk alarm blocks publishing; ctx ran out waiting.
	case errors.Is(err, context.DeadlineExceeded):
		// Not confirmed in time: the message may or may not be stored.
		// Publishing it again is safe if consumers de-duplicate by
		// message-id.
	}
	fmt.Println(err)
}

// Publish many messages without waiting for each, within a window.
func ExamplePublisher_PublishAsync() {
	var pub *amqpha.Publisher // from Client.NewPublisher
	ctx := context.Background()
	var pending []*amqpha.Confirmation
	for i := range 1000 {
		c, err := pub.PublishAsync(ctx, "", "metrics", amqp.Publishing{Body: fmt.Appendf(nil, "%d", i)})
		if err != nil {
			log.Fatal(err)
		}
		pending = append(pending, c)
	}
	for _, c := range pending {
		if err := c.Wait(ctx); err != nil {
			log.Printf("message %s: %v", c.MessageID(), err)
		}
	}
}
