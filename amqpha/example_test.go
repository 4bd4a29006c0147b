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

// Declare an exchange, a quorum queue and a binding through the client, so
// that every new connection declares them again before publishing resumes.
func ExampleClient_DeclareQueue() {
	var client *amqpha.Client // from Dial
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.DeclareExchange(ctx, amqpha.Exchange{Name: "events", Kind: "topic", Durable: true}); err != nil {
		log.Fatal(err)
	}
	queue, err := client.DeclareQueue(ctx, amqpha.QuorumQueue("orders"))
	if err != nil {
		log.Fatal(err) // e.g. 406: "orders" exists with other arguments
	}
	if err := client.BindQueue(ctx, amqpha.QueueBinding{Queue: queue, Exchange: "events", Key: "order.*"}); err != nil {
		log.Fatal(err)
	}
}

// A private, server-named queue that follows the client from node to node:
// keep using the name DeclareQueue returned; the client maps it to the
// queue's current name.
func ExampleClient_DeclareQueue_serverNamed() {
	var client *amqpha.Client // from Dial
	ctx := context.Background()
	queue, err := client.DeclareQueue(ctx, amqpha.Queue{Exclusive: true, AutoDelete: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.BindQueue(ctx, amqpha.QueueBinding{Queue: queue, Exchange: "amq.fanout"}); err != nil {
		log.Fatal(err)
	}
	_, err = client.Consume(ctx, queue, amqpha.ConsumerConfig{}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		log.Printf("on %s: %s", client.QueueName(queue), d.Body)
		return amqpha.Ack
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Consume with four handlers at once; a failed message goes back to the
// queue, a malformed one to the dead-letter exchange.
func ExampleClient_Consume() {
	var client *amqpha.Client // from Dial
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	consumer, err := client.Consume(ctx, "orders", amqpha.ConsumerConfig{Prefetch: 100, Concurrency: 4},
		func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
			if len(d.Body) == 0 {
				return amqpha.Nack // dead-lettered, not redelivered
			}
			if err := store(ctx, d.MessageId, d.Body); err != nil {
				return amqpha.Requeue
			}
			return amqpha.Ack
		})
	if err != nil {
		log.Fatal(err) // e.g. 404: no queue "orders"
	}
	// On shutdown: stop taking messages, let the running handlers finish.
	stop, cancelStop := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancelStop()
	if err := consumer.Close(stop); err != nil {
		log.Print(err)
	}
}

// Settle a delivery later, from another goroutine. A delivery whose
// connection was lost in the meantime cannot be acknowledged: the broker
// delivers it again.
func ExampleDelivery_Ack() {
	var client *amqpha.Client // from Dial
	work := make(chan *amqpha.Delivery, 100)
	_, err := client.Consume(context.Background(), "jobs", amqpha.ConsumerConfig{Prefetch: 100}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		work <- d
		return amqpha.Manual
	})
	if err != nil {
		log.Fatal(err)
	}
	for d := range work {
		err := d.Ack()
		if errors.Is(err, amqpha.ErrStaleDelivery) {
			continue // redelivered on the new connection; nothing was sent
		}
		if err != nil {
			log.Print(err)
		}
	}
}

func store(ctx context.Context, id string, body []byte) error { return nil }
