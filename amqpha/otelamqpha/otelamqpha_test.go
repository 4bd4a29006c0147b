package otelamqpha

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/internal/fakebroker"
)

// rig is a fake broker, a client traced into an in-memory exporter, a
// publisher and a consumer of queue "q" that hands its deliveries (with
// the span of their handler's context) to got.
type rig struct {
	srv  *fakebroker.Server
	exp  *tracetest.InMemoryExporter
	tp   *sdktrace.TracerProvider
	pub  *amqpha.Publisher
	got  chan handled
	ctx  context.Context
	c    *amqpha.Client
	opts []Option
}

type handled struct {
	d    *amqpha.Delivery
	span trace.SpanContext
}

func newRig(t *testing.T, opts ...Option) *rig {
	t.Helper()
	r := &rig{srv: fakebroker.Start(t), exp: tracetest.NewInMemoryExporter(), got: make(chan handled, 10)}
	r.srv.DeclareQueue("q")
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(r.exp))
	t.Cleanup(func() { r.tp.Shutdown(context.Background()) })
	cfg := amqpha.Config{Nodes: []string{r.srv.URL()}, FailFast: true, HangTimeout: -1}
	New(append([]Option{WithTracerProvider(r.tp)}, opts...)...).Instrument(&cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	r.ctx = ctx
	c, err := amqpha.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	r.c = c
	if _, err := c.Consume(ctx, "q", amqpha.ConsumerConfig{}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		r.got <- handled{d, trace.SpanContextFromContext(ctx)}
		return amqpha.Ack
	}); err != nil {
		t.Fatal(err)
	}
	if r.pub, err = c.NewPublisher(amqpha.PublisherConfig{NackRetryFor: 30 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	return r
}

// forward delivers what the broker received as message id to the
// consumer, with its headers, and waits for the handler.
func (r *rig) forward(t *testing.T, id string) handled {
	t.Helper()
	for _, p := range r.srv.Publishes() {
		if p.Props.MessageID == id {
			if err := r.srv.Deliver("q", p.Props, p.Body); err != nil {
				t.Fatal(err)
			}
			select {
			case h := <-r.got:
				return h
			case <-r.ctx.Done():
				t.Fatal("nothing handled")
			}
		}
	}
	t.Fatalf("the broker got no message %s", id)
	return handled{}
}

// span returns the one ended span named name.
func (r *rig) span(t *testing.T, name string) tracetest.SpanStub {
	t.Helper()
	var found []tracetest.SpanStub
	for _, s := range r.exp.GetSpans() {
		if s.Name == name {
			found = append(found, s)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d spans named %q, want 1 (all: %v)", len(found), name, names(r.exp.GetSpans()))
	}
	return found[0]
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

// wantAttrs checks the span's attributes named in want (compared as
// strings).
func wantAttrs(t *testing.T, s tracetest.SpanStub, want map[string]string) {
	t.Helper()
	got := attrs(s)
	for k, v := range want {
		if g, ok := got[attribute.Key(k)]; !ok || g.Emit() != v {
			t.Errorf("%s: %s = %q (set: %v), want %q", s.Name, k, g.Emit(), ok, v)
		}
	}
}

// A publish within a request's span makes a producer span, child of the
// request, whose context travels in the message; the delivery's process
// span is its child and links to it, and the handler runs within it.
func TestPublishSpanIsParentOfProcessSpan(t *testing.T) {
	r := newRig(t)
	ctx, req := r.tp.Tracer("test").Start(r.ctx, "request")
	if err := r.pub.Publish(ctx, "", "q", amqp.Publishing{MessageId: "m1", CorrelationId: "conv"}); err != nil {
		t.Fatal(err)
	}
	req.End()
	h := r.forward(t, "m1")
	pub, proc := r.span(t, "publish q"), r.span(t, "process q")

	if pub.Parent.SpanID() != req.SpanContext().SpanID() || pub.SpanContext.TraceID() != req.SpanContext().TraceID() {
		t.Errorf("publish span's parent %v, want the request's span %v", pub.Parent, req.SpanContext())
	}
	if proc.Parent.SpanID() != pub.SpanContext.SpanID() || proc.SpanContext.TraceID() != pub.SpanContext.TraceID() || !proc.Parent.IsRemote() {
		t.Errorf("process span's parent %v, want the publish span %v (remote)", proc.Parent, pub.SpanContext)
	}
	if len(proc.Links) != 1 || proc.Links[0].SpanContext.SpanID() != pub.SpanContext.SpanID() {
		t.Errorf("process span's links %v, want one to the publish span", proc.Links)
	}
	if h.span.SpanID() != proc.SpanContext.SpanID() {
		t.Errorf("the handler's context holds span %v, want the process span %v", h.span, proc.SpanContext)
	}
	if pub.SpanKind != trace.SpanKindProducer || proc.SpanKind != trace.SpanKindConsumer {
		t.Errorf("kinds: publish %v, process %v", pub.SpanKind, proc.SpanKind)
	}
	wantAttrs(t, pub, map[string]string{
		"messaging.system": "rabbitmq", "messaging.operation.name": "publish", "messaging.operation.type": "send",
		"messaging.destination.name": "q", "messaging.rabbitmq.destination.routing_key": "q",
		"messaging.message.id": "m1", "messaging.message.conversation_id": "conv",
		"network.peer.address": "127.0.0.1",
	})
	wantAttrs(t, proc, map[string]string{
		"messaging.system": "rabbitmq", "messaging.operation.name": "process", "messaging.operation.type": "process",
		"messaging.destination.name": "q", "messaging.message.id": "m1", "messaging.message.conversation_id": "conv",
		"messaging.rabbitmq.message.delivery_tag": fmt.Sprint(h.d.DeliveryTag), "amqpha.action": "ack",
	})
	if _, ok := attrs(proc)[RedeliveredKey]; ok {
		t.Error("a first delivery is marked redelivered")
	}
	if pub.Status.Code != codes.Unset || proc.Status.Code != codes.Unset {
		t.Errorf("statuses: publish %v, process %v", pub.Status, proc.Status)
	}
	if h.d.Headers["traceparent"] == nil {
		t.Errorf("the delivery's headers %v carry no traceparent", h.d.Headers)
	}
}

// A message nacked for good ends its span as an error, with an event for
// each time it was sent again.
func TestPublishSpanOfNackedMessage(t *testing.T) {
	r := newRig(t)
	r.srv.OnPublish(func(*fakebroker.Publish) fakebroker.Reply { return fakebroker.Reply{Nack: true} })
	err := r.pub.Publish(r.ctx, "", "q", amqp.Publishing{})
	if !errors.Is(err, amqpha.ErrNacked) {
		t.Fatalf("Publish: %v, want ErrNacked", err)
	}
	pub := r.span(t, "publish q")
	if pub.Status.Code != codes.Error || pub.Status.Description != err.Error() {
		t.Errorf("status %+v, want Error %q", pub.Status, err)
	}
	wantAttrs(t, pub, map[string]string{"error.type": "nacked"})
	n := 0
	for _, e := range pub.Events {
		if e.Name == ResendEvent {
			n++
			if v := fmt.Sprint(e.Attributes); e.Time.IsZero() || e.Time.After(pub.EndTime) || len(e.Attributes) != 3 {
				t.Errorf("resend event at %v (span ended %v): %s", e.Time, pub.EndTime, v)
			}
		}
	}
	if n == 0 || fmt.Sprint(n) != attrs(pub)[ResendsKey].Emit() {
		t.Errorf("%d resend events, amqpha.resends = %s", n, attrs(pub)[ResendsKey].Emit())
	}
}

// A creation context the caller put in the message is kept, and the
// publish span links to it.
func TestCallersCreationContextKept(t *testing.T) {
	r := newRig(t)
	const theirs = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	hdr := amqp.Table{"traceparent": theirs}
	if err := r.pub.Publish(r.ctx, "", "q", amqp.Publishing{MessageId: "m", Headers: hdr}); err != nil {
		t.Fatal(err)
	}
	if got := r.srv.Publishes()[0].Props.Headers["traceparent"]; got != theirs {
		t.Fatalf("traceparent sent %v, want the caller's %s", got, theirs)
	}
	pub := r.span(t, "publish q")
	if len(pub.Links) != 1 || pub.Links[0].SpanContext.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("publish span links %v, want the caller's context", pub.Links)
	}
	h := r.forward(t, "m")
	if h.span.TraceID().String() != "0af7651916cd43dd8448eb211c80319c" {
		t.Fatalf("process span in trace %v, want the caller's", h.span.TraceID())
	}
}

// With WithParentFromMessage(false) the process span is a child of the
// handler's context (here none: a root) and only links to the message.
func TestProcessSpanLinkOnly(t *testing.T) {
	r := newRig(t, WithParentFromMessage(false))
	if err := r.pub.Publish(r.ctx, "", "q", amqp.Publishing{MessageId: "m"}); err != nil {
		t.Fatal(err)
	}
	r.forward(t, "m")
	pub, proc := r.span(t, "publish q"), r.span(t, "process q")
	if proc.Parent.IsValid() || proc.SpanContext.TraceID() == pub.SpanContext.TraceID() {
		t.Errorf("process span's parent %v, want none", proc.Parent)
	}
	if len(proc.Links) != 1 || proc.Links[0].SpanContext.SpanID() != pub.SpanContext.SpanID() {
		t.Errorf("links %v, want the publish span", proc.Links)
	}
}

// Unsampled publishes still carry their context but leave amqpha nothing
// to report; without a sampled parent nothing is recorded.
func TestUnsampledPublishCostsNoOutcome(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.NeverSample()))
	tr := New(WithTracerProvider(tp))
	m := &amqpha.OutgoingMessage{Key: "q", Msg: amqp.Publishing{MessageId: "m"}}
	if done := tr.Publish(context.Background(), m); done != nil {
		t.Error("an unsampled publish returned an outcome function")
	}
	if tp, ok := m.Msg.Headers["traceparent"].(string); !ok || len(tp) != 55 || tp[53:] != "00" {
		t.Errorf("traceparent %v, want an unsampled one", m.Msg.Headers["traceparent"])
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans recorded", n)
	}
}

// A handler that panics ends its span as an error, and the panic goes on.
func TestProcessSpanOfPanickingHandler(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	h := New(WithTracerProvider(tp)).Consume(func(context.Context, *amqpha.Delivery) amqpha.Action { panic("boom") })
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v, want the handler's panic", p)
			}
		}()
		h(context.Background(), &amqpha.Delivery{Delivery: amqp.Delivery{RoutingKey: "k", Exchange: "x", Redelivered: true, Headers: amqp.Table{"x-delivery-count": int64(2)}}})
	}()
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Status.Code != codes.Error || spans[0].Name != "process x:k" {
		t.Fatalf("spans %+v, want one error span named process x:k", spans)
	}
	wantAttrs(t, spans[0], map[string]string{"error.type": "panic", "amqpha.message.redelivered": "true", "amqpha.message.delivery_count": "2"})
}

func TestDestinationNames(t *testing.T) {
	for _, tc := range []struct{ exchange, key, queue, publish, process string }{
		{"", "", "", "amq.default", "amq.default"},
		{"", "q", "q", "q", "q"},
		{"ex", "", "q", "ex", "ex:q"},
		{"ex", "rk", "q", "ex:rk", "ex:rk:q"},
		{"ex", "q", "q", "ex:q", "ex:q"},
		{"", "rk", "", "rk", "rk"},
	} {
		if got := publishDestination(tc.exchange, tc.key); got != tc.publish {
			t.Errorf("publishDestination(%q, %q) = %q, want %q", tc.exchange, tc.key, got, tc.publish)
		}
		if got := consumeDestination(tc.exchange, tc.key, tc.queue); got != tc.process {
			t.Errorf("consumeDestination(%q, %q, %q) = %q, want %q", tc.exchange, tc.key, tc.queue, got, tc.process)
		}
	}
}

func TestPublishErrorTypes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", amqpha.ErrNacked), "nacked"},
		{amqpha.ErrUnroutable, "unroutable"},
		{fmt.Errorf("amqpha: not confirmed: %w while %w", context.DeadlineExceeded, amqpha.ErrBlocked), "blocked"},
		{fmt.Errorf("amqpha: not confirmed: %w", context.Canceled), "canceled"},
		{fmt.Errorf("refused: %w", &amqp.Error{Code: 404, Reason: "NOT_FOUND"}), "404"},
		{errors.New("other"), "_OTHER"},
	} {
		if got := publishErrorType(tc.err); got != tc.want {
			t.Errorf("publishErrorType(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// Header values as text, whatever a client sent.
func TestHeaderCarriers(t *testing.T) {
	c := tableCarrier{"a": "x", "b": []byte("y"), "c": int32(3)}
	if c.Get("a") != "x" || c.Get("b") != "y" || c.Get("c") != "" || c.Get("none") != "" || len(c.Keys()) != 3 {
		t.Fatalf("carrier reads %q %q %q, keys %v", c.Get("a"), c.Get("b"), c.Get("c"), c.Keys())
	}
}

// A span the handler's context already holds (from the context given to
// Consume) becomes a link of the process span, whose parent stays the
// message's publish span.
func TestAmbientSpanBecomesALink(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tr := New(WithTracerProvider(tp))
	ctx, startup := tp.Tracer("test").Start(context.Background(), "startup")
	startup.End()
	const tp1 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	h := tr.Consume(func(context.Context, *amqpha.Delivery) amqpha.Action { return amqpha.Ack })
	h(ctx, &amqpha.Delivery{Delivery: amqp.Delivery{RoutingKey: "q", Headers: amqp.Table{"traceparent": tp1}}})
	var proc tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "process q" {
			proc = s
		}
	}
	if proc.Parent.SpanID().String() != "b7ad6b7169203331" {
		t.Fatalf("process span's parent %v, want the message's b7ad6b7169203331", proc.Parent.SpanID())
	}
	if len(proc.Links) != 2 || proc.Links[1].SpanContext.SpanID() != startup.SpanContext().SpanID() {
		t.Fatalf("links %v, want the message's and the startup span", proc.Links)
	}
}
