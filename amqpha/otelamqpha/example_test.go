package otelamqpha_test

import (
	"context"
	"log"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/amqpha/otelamqpha"
)

// Tracing a client: every publish and every handler gets its span, and a
// handler's span is a child of the publish span of its message.
func ExampleTracing_Instrument() {
	tp := sdktrace.NewTracerProvider() // with the exporter of your choice
	defer tp.Shutdown(context.Background())

	cfg := amqpha.Config{Nodes: []string{"amqp://guest:guest@127.0.0.1:5672/"}}
	otelamqpha.New(otelamqpha.WithTracerProvider(tp)).Instrument(&cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := amqpha.Dial(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background())

	_, err = c.Consume(ctx, "orders", amqpha.ConsumerConfig{}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		// ctx holds the "process orders" span: spans started from it
		// join the publisher's trace.
		return amqpha.Ack
	})
	if err != nil {
		log.Fatal(err)
	}
	p, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		log.Fatal(err)
	}
	// The "publish orders" span is a child of ctx's span, if any.
	if err := p.Publish(ctx, "", "orders", amqp.Publishing{Body: []byte("order 1")}); err != nil {
		log.Fatal(err)
	}
}
