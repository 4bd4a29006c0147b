package otelamqpha

import (
	"context"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/amqpha/amqpha/amqpha"
)

// Whatever headers a delivery carries (they come from any publisher), the
// consume hook runs the handler within a valid process span, parented by
// the message only when it carried a valid context.
func FuzzConsumeHeaders(f *testing.F) {
	f.Add("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "congo=t61rcWkgMzE", "k=v", []byte("x"), int64(1))
	f.Add("", "", "", []byte(nil), int64(-1))
	f.Add("00-00000000000000000000000000000000-0000000000000000-01", "=", "%zz", []byte{0xff}, int64(1<<40))
	f.Add("ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", ",,,", ";;", []byte("00-"), int64(0))
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := New(WithTracerProvider(tp))
	f.Fuzz(func(t *testing.T, traceparent, tracestate, baggage string, raw []byte, count int64) {
		h := amqp.Table{"traceparent": traceparent, "tracestate": tracestate, "baggage": baggage, "x-delivery-count": count, "raw": raw}
		var inner trace.SpanContext
		handler := tr.Consume(func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
			inner = trace.SpanContextFromContext(ctx)
			return amqpha.Ack
		})
		if a := handler(context.Background(), &amqpha.Delivery{Delivery: amqp.Delivery{Headers: h, RoutingKey: traceparent}}); a != amqpha.Ack {
			t.Fatalf("action %v", a)
		}
		if !inner.IsValid() {
			t.Fatalf("the handler ran without a valid span (headers %v)", h)
		}
		creation := trace.SpanContextFromContext(tr.prop.Extract(context.Background(), tableCarrier(h)))
		spans := exp.GetSpans()
		exp.Reset()
		if len(spans) != 1 {
			t.Fatalf("%d spans", len(spans))
		}
		if got := spans[0].Parent; creation.IsValid() != got.IsValid() || creation.IsValid() && got.SpanID() != creation.SpanID() {
			t.Fatalf("parent %v, creation context %v", got, creation)
		}
	})
}
