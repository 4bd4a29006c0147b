// Command quickstart publishes a message through amqpha and consumes it:
//
//	go run ./examples/quickstart amqp://guest:guest@127.0.0.1:5672/ amqp://…
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Every node of the cluster: when one fails, the client moves to another.
	client, err := amqpha.Dial(ctx, amqpha.Config{Nodes: os.Args[1:]})
	check(err)
	defer client.Close(context.Background())

	// Declared through the client, so declared again on every new connection.
	queue, err := client.DeclareQueue(ctx, amqpha.QuorumQueue("quickstart"))
	check(err)
	pub, err := client.NewPublisher(amqpha.PublisherConfig{})
	check(err)
	// nil: the broker has the message. If the node dies before it confirms,
	// the message is published again on the next node, within ctx.
	check(pub.Publish(ctx, "", queue, amqp.Publishing{Body: []byte("hello")}))

	got := make(chan string, 1)
	_, err = client.Consume(ctx, queue, amqpha.ConsumerConfig{}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		select {
		case got <- string(d.Body):
		default:
		}
		return amqpha.Ack
	})
	check(err)
	select {
	case body := <-got:
		fmt.Printf("received %q\n", body)
	case <-ctx.Done():
		log.Fatal(ctx.Err())
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err) // amqpha's errors never contain a password
	}
}
