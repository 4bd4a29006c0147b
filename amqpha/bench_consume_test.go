package amqpha

import (
	"context"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// benchQueue starts a storing fake broker whose queue "q" holds n 1 KiB
// messages.
func benchQueue(b *testing.B, n int) *fakebroker.Server {
	body := make([]byte, 1024)
	return filledQueue(b, n, func(int) []byte { return body })
}

// BenchmarkConsume consumes 1 KiB messages through a Consumer (prefetch
// 100, one handler, Ack) from the storing fake broker. The broker's work
// is in the figures too: compare with BenchmarkConsumeRaw, not absolute
// numbers.
func BenchmarkConsume(b *testing.B) {
	srv := benchQueue(b, b.N)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, Config{Nodes: []string{srv.URL()}, FailFast: true, HangTimeout: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	done := make(chan struct{})
	n := 0
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	k, err := c.Consume(ctx, "q", ConsumerConfig{Prefetch: 100}, func(context.Context, *Delivery) Action {
		if n++; n == b.N {
			close(done)
		}
		return Ack
	})
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		b.Fatal(ctx.Err())
	}
	b.StopTimer()
	k.Close(ctx)
}

// BenchmarkConsumeRaw is BenchmarkConsume on plain amqp091-go.
func BenchmarkConsumeRaw(b *testing.B) {
	srv := benchQueue(b, b.N)
	conn, err := amqp.Dial(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Qos(100, 0, false)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	deliveries, err := ch.Consume("q", "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		d, ok := <-deliveries
		if !ok {
			b.Fatal("deliveries closed")
		}
		if err := d.Ack(false); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}
