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
