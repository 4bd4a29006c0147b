package amqphatest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/amqpha/amqphatest"
)

// A test of code that publishes: it gets a client on the test server,
// publishes, and the test reads what arrived. In a test, NewServer(t)
// replaces Start and closes the server itself.
func Example() {
	srv, err := amqphatest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	client, err := amqpha.Dial(ctx, srv.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx) // before srv.Close: defers run last first
	queue, err := client.DeclareQueue(ctx, amqpha.QuorumQueue("orders"))
	if err != nil {
		log.Fatal(err)
	}
	pub, err := client.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		log.Fatal(err)
	}
	if err := pub.Publish(ctx, "", queue, amqp.Publishing{Body: []byte(`{"id":1}`)}); err != nil {
		log.Fatal(err)
	}
	for _, m := range srv.PublishedTo("orders") {
		fmt.Printf("%s persistent=%v\n", m.Body, m.DeliveryMode == amqp.Persistent)
	}
	// Output: {"id":1} persistent=true
}

// Kill the node the publisher is on: the next publish is confirmed on
// another node.
func ExampleServer_Kill() {
	srv, err := amqphatest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := amqpha.Dial(ctx, srv.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)
	pub, err := client.NewPublisher(amqpha.PublisherConfig{AllowUnroutable: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := pub.Publish(ctx, "amq.fanout", "", amqp.Publishing{Body: []byte("one")}); err != nil {
		log.Fatal(err)
	}
	first := srv.Published()[0].Node
	srv.Kill(first)
	if err := pub.Publish(ctx, "amq.fanout", "", amqp.Publishing{Body: []byte("two")}); err != nil {
		log.Fatal(err)
	}
	second := srv.Published()[1].Node
	fmt.Println("moved:", second != first)
	// Output: moved: true
}

// Give a consumer a message, as if another program had published it, and
// wait until it is acknowledged.
func ExampleServer_Publish() {
	srv, err := amqphatest.Start(amqphatest.WithNodes(1))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := amqpha.Dial(ctx, srv.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)
	queue, err := client.DeclareQueue(ctx, amqpha.QuorumQueue("emails"))
	if err != nil {
		log.Fatal(err)
	}
	sent := make(chan string, 1)
	_, err = client.Consume(ctx, queue, amqpha.ConsumerConfig{}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		sent <- string(d.Body)
		return amqpha.Ack
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := srv.Publish("", "emails", amqp.Publishing{Body: []byte("hello@example.com")}); err != nil {
		log.Fatal(err)
	}
	if err := srv.Wait(ctx, func() bool { return len(srv.Acked("emails")) == 1 }); err != nil {
		log.Fatal(err)
	}
	fmt.Println("handled:", <-sent)
	// Output: handled: hello@example.com
}

// Make every publish fail, as a full queue that rejects publishes does.
func ExampleServer_NackAll() {
	srv, err := amqphatest.Start(amqphatest.WithNodes(1))
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := amqpha.Dial(ctx, srv.Config())
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(ctx)
	// NackRetryFor -1: fail at the first nack instead of retrying for 1 s.
	pub, err := client.NewPublisher(amqpha.PublisherConfig{AllowUnroutable: true, NackRetryFor: -1})
	if err != nil {
		log.Fatal(err)
	}
	srv.NackAll(true)
	err = pub.Publish(ctx, "amq.fanout", "", amqp.Publishing{Body: []byte("x")})
	fmt.Println(errors.Is(err, amqpha.ErrNacked))
	// Output: true
}

// In a test: NewServer starts the server and closes it when the test ends.
func ExampleNewServer() {
	var t *testing.T // the test's
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(2))
	cfg := srv.Config()
	cfg.ConnectionName = "under-test"
	_ = cfg // pass it to the code under test, which calls amqpha.Dial
}
