package amqpha

import (
	"context"
	"fmt"
	"syscall"
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
		publishInParallel(b, func() error {
			return p.Publish(ctx, "", "q", amqp.Publishing{Body: body})
		})
	})
}

// BenchmarkPublishRaw is BenchmarkPublish's parallel case on plain
// amqp091-go (one confirm-mode channel, each goroutine waiting for its own
// deferred confirmation), to compare the two side by side.
func BenchmarkPublishRaw(b *testing.B) {
	srv := fakebroker.Start(b)
	srv.DeclareQueue("q")
	conn, err := amqp.Dial(srv.URL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, 1024)
	ctx := context.Background()
	publishInParallel(b, func() error {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", "q", true, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: "m", Body: body})
		if err != nil {
			return err
		}
		if ok, err := dc.WaitContext(ctx); err != nil || !ok {
			return fmt.Errorf("raw publish: %v %v", ok, err)
		}
		return nil
	})
}

// publishInParallel runs publish from 32 goroutines per core until b is
// done, reporting allocations and CPU time per publish.
func publishInParallel(b *testing.B, publish func() error) {
	b.ReportAllocs()
	b.SetParallelism(32)
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := publish(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// reportCPU reports the process's CPU time (user + system, client and
// fake broker together) per operation from now until the returned function
// runs: unlike ns/op it does not grow when other processes share the cores.
func reportCPU(b *testing.B) func() {
	before := cpuTime()
	return func() {
		b.ReportMetric(float64((cpuTime()-before).Microseconds())/float64(b.N), "cpu-µs/op")
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
