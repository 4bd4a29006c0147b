package amqpha_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
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

// The values Dial gives the zero fields of a Config.
func ExampleDefaultConfig() {
	d := amqpha.DefaultConfig()
	fmt.Println("heartbeat:", d.Heartbeat, "dial timeout:", d.DialTimeout, "hang timeout:", d.HangTimeout)
	fmt.Println("backoff between passes:", d.ReconnectInitial, "to", d.ReconnectMax)
	fmt.Println("quarantine:", d.QuarantineBase, "to", d.QuarantineMax)
	// Output:
	// heartbeat: 10s dial timeout: 2s hang timeout: 400ms
	// backoff between passes: 100ms to 5s
	// quarantine: 1s to 30s
}

// Check a configuration read from a file before dialling. Errors never show
// a node's password.
func ExampleConfig_Validate() {
	err := amqpha.Config{}.Validate()
	fmt.Println(errors.Is(err, amqpha.ErrNoNodes))

	for _, cfg := range []amqpha.Config{
		{Nodes: []string{"amqp://app:secret@rabbit-1/", "http://app:secret@rabbit-2/"}},
		{Nodes: []string{"amqp://app:secret@rabbit-1/"}, Heartbeat: 1500 * time.Millisecond},
		{Nodes: []string{"amqp://app:secret@rabbit-1/"}, BalancerName: "priority+wlc", Connections: 2},
	} {
		fmt.Println(cfg.Validate())
	}
	// Output:
	// true
	// amqpha: config: Nodes[1]: scheme must be amqp or amqps
	// amqpha: config: Heartbeat must be whole seconds (AMQP counts seconds)
	// <nil>
}

// A quorum queue that refuses messages once it holds 100 000: Publish then
// fails with ErrNacked instead of the queue dropping its oldest messages.
func ExampleQuorumQueue() {
	q := amqpha.QuorumQueue("orders")
	q.Args["x-max-length"] = 100_000
	q.Args["x-overflow"] = "reject-publish"
	fmt.Println(q.Name, q.Durable, q.Args)
	// Output: orders true map[x-max-length:100000 x-overflow:reject-publish x-queue-type:quorum]
}

// With FailFast, Dial gives up after one pass over the nodes and says why
// each failed, with the passwords redacted.
func ExampleConnectError() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := amqpha.Dial(ctx, amqpha.Config{
		Nodes:    []string{"amqp://app:secret@127.0.0.1:1/"}, // nothing listens there
		FailFast: true,
	})
	var ce *amqpha.ConnectError
	if errors.As(err, &ce) {
		for _, e := range ce.Errs {
			var ne *amqpha.NodeError
			if errors.As(e, &ne) {
				fmt.Println(ne.Op, ne.Node)
			}
		}
	}
	// Output: dial amqp://app:xxxxx@127.0.0.1:1/
}

// Follow failovers in the logs and alert on what needs a person: a resource
// alarm, topology that could not be declared again, a consumer the broker
// cancelled. OnEvent gets one event at a time, in order.
func ExampleEvent() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := amqpha.Dial(ctx, amqpha.Config{
		Nodes: []string{"amqp://app:secret@rabbit-1:5672/", "amqp://app:secret@rabbit-2:5672/"},
		OnEvent: func(e amqpha.Event) {
			switch e.Kind {
			case amqpha.EventNodeSwitched:
				log.Printf("%s connection moved from %s to %s", e.Connection, e.Previous, e.Node)
			case amqpha.EventBlocked:
				log.Printf("ALERT: %s blocks publishing: %s", e.Node, e.Reason)
			case amqpha.EventTopologyFailed:
				log.Printf("ALERT: cannot declare %s again on %s: %v", e.Reason, e.Node, e.Err)
			case amqpha.EventConsumerCancelled:
				log.Printf("consumer %s of %s cancelled, registering again: %v", e.Consumer, e.Queue, e.Err)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
}

// A publisher for messages that are worthless when late: it fails at once
// while a resource alarm blocks publishing, instead of waiting for the alarm
// to clear, and lets the broker drop a message no queue is bound for.
func ExampleClient_NewPublisher() {
	var client *amqpha.Client // from Dial
	pub, err := client.NewPublisher(amqpha.PublisherConfig{Window: 64, FailWhenBlocked: true, AllowUnroutable: true})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = pub.Publish(ctx, "quotes", "eur.usd", amqp.Publishing{Body: []byte("1.0842"), Expiration: "1000"})
	if errors.Is(err, amqpha.ErrBlocked) {
		log.Print("broker alarm: quote dropped")
	}
}

// Warn about a confirm that takes long, and keep waiting: Done is a channel,
// so it fits a select.
func ExampleConfirmation_Done() {
	var pub *amqpha.Publisher // from Client.NewPublisher
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pub.PublishAsync(ctx, "", "jobs", amqp.Publishing{Body: []byte("resize 42")})
	if err != nil {
		log.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(time.Second):
		log.Printf("message %s: no confirm after 1s, waiting on", c.MessageID())
		<-c.Done()
	}
	if err := c.Err(); err != nil {
		log.Printf("message %s: %v", c.MessageID(), err)
	}
}

// Copy every order event into an audit exchange; the binding is declared
// again on every new connection, like the exchanges.
func ExampleClient_BindExchange() {
	var client *amqpha.Client // from Dial
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.DeclareExchange(ctx, amqpha.Exchange{Name: "audit", Kind: "fanout", Durable: true}); err != nil {
		log.Fatal(err)
	}
	err := client.BindExchange(ctx, amqpha.ExchangeBinding{Destination: "audit", Source: "events", Key: "order.#"})
	if err != nil {
		log.Fatal(err) // e.g. 404: no exchange "events"
	}
}

// A queue needed for a while only: deleting it through the client also
// keeps the client from declaring it again on the next connection.
func ExampleClient_DeleteQueue() {
	var client *amqpha.Client // from Dial
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	queue, err := client.DeclareQueue(ctx, amqpha.QuorumQueue("reindex-2024-06"))
	if err != nil {
		log.Fatal(err)
	}
	// … fill it and drain it …
	if err := client.DeleteQueue(ctx, queue); err != nil {
		log.Print(err)
	}
}

// Show where the client's connections are, for a status page.
func ExampleClient_Connections() {
	var client *amqpha.Client // from Dial
	for _, c := range client.Connections() {
		fmt.Printf("%s: %s\n", c.Name, cmp.Or(c.Node, "(reconnecting)"))
	}
	fmt.Println("connections lost:", client.Reconnects(), "events dropped:", client.DroppedEvents())
}

// Stop on SIGTERM: consumers stop taking messages and finish the running
// handlers, publishers wait for their outstanding confirms, all within ten
// seconds.
func ExampleClient_Close() {
	var client *amqpha.Client // from Dial
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()

	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := client.Close(shutdown); err != nil {
		log.Print(err) // time ran out: unconfirmed messages failed with ErrClosed
	}
}
