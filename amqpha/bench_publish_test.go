package amqpha

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// BenchmarkPublish publishes 1 KiB messages through a Publisher to the
// in-process fake broker, one at a time (serial) and from many goroutines
// (parallel). The broker's work is in the figures too, the same for every
// version of the client: compare versions, not absolute numbers.
func BenchmarkPublish(b *testing.B) {
	srv := fakebroker.Start(b)
	srv.DeclareQueue("q")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c, err := Dial(ctx, Config{Nodes: []string{srv.URL()}, FailFast: true, HangTimeout: -1})
	cancel()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	body := make([]byte, 1024)
	b.Run("serial", func(b *testing.B) {
		p, err := c.NewPublisher(PublisherConfig{Window: 1})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: body}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		p, err := c.NewPublisher(PublisherConfig{Window: 256})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: body}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
