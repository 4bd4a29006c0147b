package amqpha_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
)

// Read a queue's depth, take one message with basic.get and purge the
// rest: calls amqpha does not wrap, on a channel of their own that follows
// the client's connection from node to node.
func ExampleClient_WithChannel() {
	var client *amqpha.Client // from amqpha.Dial
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var depth int
	err := client.WithChannel(ctx, func(ctx context.Context, ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive("orders", true, false, false, false, nil)
		depth = q.Messages
		return err // the channel's error as it is: a lost connection runs fn again
	})
	var amqpErr *amqp.Error
	switch {
	case errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound:
		log.Print("no queue orders") // the broker's answer: not retried
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("messages ready:", depth)

	err = client.WithChannel(ctx, func(ctx context.Context, ch *amqp.Channel) error {
		d, ok, err := ch.Get("orders", false)
		if err != nil || !ok {
			return err
		}
		fmt.Printf("got %s\n", d.Body)
		return d.Ack(false) // on this channel, before fn returns
	})
	if err != nil {
		log.Fatal(err)
	}

	err = client.WithChannel(ctx, func(ctx context.Context, ch *amqp.Channel) error {
		n, err := ch.QueuePurge("orders", false)
		fmt.Println("purged", n)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
}

// Log in with an OAuth 2 access token, and hand the client each new one
// before the old expires: every live connection is told
// (connection.update-secret) and every later connection logs in with it.
func ExampleClient_UpdateSecret() {
	type token struct {
		Access  string
		Expires time.Time
	}
	fetchToken := func(ctx context.Context) (token, error) { // your identity provider
		return token{Access: "eyJhbGciOi…", Expires: time.Now().Add(time.Hour)}, nil
	}

	ctx := context.Background()
	tok, err := fetchToken(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var nodes []string
	for _, host := range []string{"rabbit-1:5672", "rabbit-2:5672"} {
		// The password is the token (escaped by url.UserPassword).
		u := url.URL{Scheme: "amqp", User: url.UserPassword("app", tok.Access), Host: host, Path: "/"}
		nodes = append(nodes, u.String())
	}
	client, err := amqpha.Dial(ctx, amqpha.Config{Nodes: nodes})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())

	for {
		time.Sleep(max(time.Until(tok.Expires)-5*time.Minute, 10*time.Second))
		if tok, err = fetchToken(ctx); err != nil {
			log.Printf("token refresh: %v", err) // try again later
			continue
		}
		uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := client.UpdateSecret(uctx, tok.Access, "token refreshed")
		cancel()
		if err != nil {
			log.Printf("update secret: %v", err) // never contains the token
		}
	}
}

// Retry a failing handler after 1 s, 2 s, 4 s, then dead-letter the
// message: a quorum queue that counts deliveries, with a dead-letter
// exchange and a delivery-limit as the broker's own backstop.
func ExampleRetryPolicy() {
	var client *amqpha.Client // from amqpha.Dial
	ctx := context.Background()

	// Where failed messages end up, to be looked at.
	if _, err := client.DeclareQueue(ctx, amqpha.QuorumQueue("orders.dead")); err != nil {
		log.Fatal(err)
	}
	q := amqpha.QuorumQueue("orders")
	q.Args["x-dead-letter-exchange"] = ""
	q.Args["x-dead-letter-routing-key"] = "orders.dead"
	q.Args["x-delivery-limit"] = 10 // more than MaxAttempts: failovers count too
	if _, err := client.DeclareQueue(ctx, q); err != nil {
		log.Fatal(err)
	}

	process := func(ctx context.Context, body []byte) error { return nil } // your work
	_, err := client.Consume(ctx, "orders", amqpha.ConsumerConfig{
		Prefetch: 50, // also bounds the messages waiting for a retry
		Retry:    amqpha.RetryPolicy{MaxAttempts: 4, Delay: time.Second, MaxDelay: 30 * time.Second},
	}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		if err := process(ctx, d.Body); err != nil {
			log.Printf("order %s failed (x-delivery-count %v): %v", d.MessageId, d.Headers["x-delivery-count"], err)
			return amqpha.Requeue // again in 1 s, 2 s, 4 s; then to orders.dead
		}
		return amqpha.Ack
	})
	if err != nil {
		log.Fatal(err)
	}
}
