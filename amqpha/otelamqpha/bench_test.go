package otelamqpha

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/internal/fakebroker"
)

// What tracing costs per message, against the in-process fake broker:
// Publish one message at a time (window 1) and deliveries to one handler
// that acks, with no hooks, with empty hooks (a publish hook that returns
// no outcome function, one that does, and a consume hook that only calls
// the handler), and with this package on a no-op tracer provider and on
// the SDK (always sampling, batching to an exporter that drops the
// spans). The broker runs in the same process: its work is in every
// figure alike, so compare the variants, not the absolute numbers.
// cpu-µs/op is the process's CPU time (user + system) per message.
func BenchmarkHooks(b *testing.B) {
	for _, v := range benchVariants() {
		b.Run("publish/"+v.name, func(b *testing.B) { benchPublish(b, v.hooks) })
	}
	for _, v := range benchVariants() {
		b.Run("deliver/"+v.name, func(b *testing.B) { benchDeliver(b, v.hooks) })
	}
}

type benchVariant struct {
	name  string
	hooks func(*amqpha.Config) func() // sets the hooks; returns a cleanup
}

func benchVariants() []benchVariant {
	none := func(*amqpha.Config) func() { return func() {} }
	emptyHooks := func(outcome bool) func(*amqpha.Config) func() {
		return func(cfg *amqpha.Config) func() {
			cfg.PublishHooks = []amqpha.PublishHook{func(context.Context, *amqpha.OutgoingMessage) func(amqpha.PublishResult) {
				if outcome {
					return func(amqpha.PublishResult) {}
				}
				return nil
			}}
			cfg.ConsumeHooks = []amqpha.ConsumeHook{func(next amqpha.Handler) amqpha.Handler {
				return func(ctx context.Context, d *amqpha.Delivery) amqpha.Action { return next(ctx, d) }
			}}
			return func() {}
		}
	}
	otelNoop := func(cfg *amqpha.Config) func() {
		New(WithTracerProvider(noop.NewTracerProvider())).Instrument(cfg)
		return func() {}
	}
	otelSDK := func(cfg *amqpha.Config) func() {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}), sdktrace.WithSampler(sdktrace.AlwaysSample()))
		New(WithTracerProvider(tp)).Instrument(cfg)
		return func() { tp.Shutdown(context.Background()) }
	}
	return []benchVariant{
		{"none", none},
		{"empty", emptyHooks(false)},
		{"empty-outcome", emptyHooks(true)},
		{"otel-noop", otelNoop},
		{"otel-sdk", otelSDK},
	}
}

// discard is a span exporter that drops what it gets.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

func benchClient(b *testing.B, srv *fakebroker.Server, hooks func(*amqpha.Config) func()) *amqpha.Client {
	cfg := amqpha.Config{Nodes: []string{srv.URL()}, FailFast: true, HangTimeout: -1}
	cleanup := hooks(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := amqpha.Dial(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
		cleanup()
	})
	return c
}

func benchPublish(b *testing.B, hooks func(*amqpha.Config) func()) {
	srv := fakebroker.Start(b)
	srv.DeclareQueue("q")
	c := benchClient(b, srv, hooks)
	p, err := c.NewPublisher(amqpha.PublisherConfig{Window: 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	body := make([]byte, 1024)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: body}); err != nil { // the channel is open
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu := cpuTime()
	for b.Loop() {
		if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}

func benchDeliver(b *testing.B, hooks func(*amqpha.Config) func()) {
	srv := fakebroker.Start(b)
	srv.DeclareQueue("q")
	c := benchClient(b, srv, hooks)
	var handled atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := c.Consume(ctx, "q", amqpha.ConsumerConfig{Prefetch: 1000}, func(context.Context, *amqpha.Delivery) amqpha.Action {
		handled.Add(1)
		return amqpha.Ack
	}); err != nil {
		b.Fatal(err)
	}
	// Every message carries a trace context, as from a traced publisher.
	props := fakebroker.Properties{MessageID: "m", Headers: map[string]any{
		"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
	body := make([]byte, 1024)
	b.ReportAllocs()
	cpu := cpuTime()
	n := int64(0)
	for b.Loop() {
		if err := srv.Deliver("q", props, body); err != nil {
			b.Fatal(err)
		}
		n++
		// Delivered in bursts of at most 500 ahead of the handler.
		for n-handled.Load() > 500 {
			time.Sleep(10 * time.Microsecond)
		}
	}
	for handled.Load() < n {
		if ctx.Err() != nil {
			b.Fatal(fmt.Sprintf("%d of %d handled", handled.Load(), n))
		}
		time.Sleep(100 * time.Microsecond)
	}
	reportCPU(b, cpu)
}

// cpuTime is the process's CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64(cpuTime()-since)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}
