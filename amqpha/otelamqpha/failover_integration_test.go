//go:build integration

package otelamqpha

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
	"github.com/amqpha/amqpha/integration/clustertest"
)

// On a real 2-node cluster, traced with the SDK's in-memory exporter: a
// message published within a request's span while its node is cut off is
// sent again on the other node and confirmed, its publish span (child of
// the request's) telling of the resend; its delivery, held by a handler
// whose connection is then reset, and the broker's redelivery both land in
// the request's trace as children of the one publish span, the redelivery
// marked as such.
func TestOneTraceAcrossAFailover(t *testing.T) {
	cl := clustertest.Start(t, cluster.Options{Nodes: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())
	cfg := amqpha.Config{Nodes: cl.URIs()}
	New(WithTracerProvider(tp)).Instrument(&cfg)
	c, err := amqpha.Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c.Close(cctx)
	}()
	queue, err := c.DeclareQueue(ctx, amqpha.QuorumQueue(fmt.Sprintf("otel-%d", time.Now().UnixNano())))
	if err != nil {
		t.Fatal(err)
	}

	// The first delivery of m is held (its handler settles nothing) until
	// the consumer's connection is reset; every other one is acknowledged.
	got := make(chan *amqpha.Delivery, 10)
	first := true
	if _, err := c.Consume(ctx, queue, amqpha.ConsumerConfig{Prefetch: 1}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		if d.MessageId != "m" {
			return amqpha.Ack
		}
		got <- d
		if first {
			first = false
			return amqpha.Manual
		}
		return amqpha.Ack
	}); err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// A first message opens the publisher's channel.
	if err := pub.Publish(ctx, "", queue, amqp.Publishing{MessageId: "warm-up"}); err != nil {
		t.Fatal(err)
	}
	cut := nodeOf(t, cl, c.Node())
	if nodeOf(t, cl, c.ConsumerNode()) == cut {
		t.Fatalf("the consumers' connection shares the publishers' node %s", cut.Name())
	}

	// The publishing node is cut off: the message's first copy waits in
	// the link, the client notices and sends it again on the other node.
	cut.Cut()
	reqCtx, req := tp.Tracer("test").Start(ctx, "request")
	if err := pub.Publish(reqCtx, "", queue, amqp.Publishing{MessageId: "m"}); err != nil {
		t.Fatal(err)
	}
	req.End()
	other := nodeOf(t, cl, c.Node())
	if other == cut {
		t.Fatalf("confirmed on the cut-off node %s", cut.Name())
	}
	// (The cut-off node stays cut off: the proxy may or may not hand the
	// broker the first copy when it heals, and the test counts copies.)
	var held *amqpha.Delivery
	select {
	case held = <-got:
	case <-ctx.Done():
		t.Fatal("nothing delivered")
	}
	// The consumer's connection is reset before it acknowledged: the
	// broker delivers the message again (redelivered).
	nodeOf(t, cl, c.ConsumerNode()).ResetConnections()
	select {
	case d := <-got:
		if d.MessageId != "m" || !d.Redelivered {
			t.Fatalf("delivered %q (redelivered %v) after the reset, want m again", d.MessageId, d.Redelivered)
		}
	case <-ctx.Done():
		t.Fatal("m was not delivered again after the reset")
	}
	waitCount(t, ctx, cl, queue, 0)
	if !held.Stale() {
		t.Error("the held delivery is not stale after its connection was reset")
	}

	spans := exp.GetSpans()
	var publish tracetest.SpanStub
	var process []tracetest.SpanStub
	for _, s := range spans {
		id := ""
		for _, kv := range s.Attributes {
			if kv.Key == "messaging.message.id" {
				id = kv.Value.AsString()
			}
		}
		switch {
		case id != "m":
		case s.SpanKind == trace.SpanKindProducer:
			publish = s
		case s.SpanKind == trace.SpanKindConsumer:
			process = append(process, s)
		}
	}
	if publish.Parent.SpanID() != req.SpanContext().SpanID() {
		t.Fatalf("publish span %q's parent %v, want the request's span (spans: %v)", publish.Name, publish.Parent, names(spans))
	}
	var resends []string
	for _, e := range publish.Events {
		if e.Name == ResendEvent {
			resends = append(resends, fmt.Sprint(e.Attributes))
		}
	}
	peer := attrs(publish)["network.peer.port"].Emit()
	t.Logf("publish span: resends %v, answered by port %s; cut node %s", resends, peer, cut.URI())
	if len(resends) == 0 || !strings.Contains(resends[0], "connection_lost") || !strings.Contains(resends[0], port(t, cut.URI())) {
		t.Errorf("publish span's resend events %v, want one for the connection lost on %s", resends, cut.URI())
	}
	if peer != port(t, other.URI()) {
		t.Errorf("publish span answered by port %q, want the other node's", peer)
	}
	redelivered := 0
	for _, p := range process {
		a := attrs(p)
		t.Logf("process span: redelivered %v, delivery count %v, action %v", a[RedeliveredKey].Emit(), a[DeliveryCountKey].Emit(), a[ActionKey].Emit())
		if p.SpanContext.TraceID() != req.SpanContext().TraceID() || p.Parent.SpanID() != publish.SpanContext.SpanID() {
			t.Errorf("process span in trace %v with parent %v, want the request's trace %v under the publish span %v",
				p.SpanContext.TraceID(), p.Parent.SpanID(), req.SpanContext().TraceID(), publish.SpanContext.SpanID())
		}
		if a[RedeliveredKey] == attribute.BoolValue(true) {
			redelivered++
			// A quorum queue counts deliveries (RabbitMQ 3.10).
			if a[DeliveryCountKey] != attribute.Int64Value(1) {
				t.Errorf("redelivered span's delivery count %q, want 1", a[DeliveryCountKey].Emit())
			}
		}
	}
	if len(process) != 2 || redelivered != 1 {
		t.Errorf("%d process spans for m, %d marked redelivered; want 2 (held, delivered again), 1", len(process), redelivered)
	}
}

// nodeOf is the node whose proxied URI has addr's port.
func nodeOf(t *testing.T, cl *cluster.Cluster, addr string) *cluster.Node {
	t.Helper()
	for _, n := range cl.Nodes() {
		if port(t, n.URI()) == port(t, addr) {
			return n
		}
	}
	t.Fatalf("no node at %q", addr)
	return nil
}

func port(t *testing.T, uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// waitCount waits until queue holds n messages, ready or unacknowledged.
func waitCount(t *testing.T, ctx context.Context, cl *cluster.Cluster, queue string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last string
	for {
		got, err := cl.Node(0).QueueCounts(ctx, queue)
		if err == nil && got.Ready+got.Unacked == n {
			return
		}
		if now := fmt.Sprint(got, err); now != last {
			t.Logf("queue %s: %s", queue, now)
			last = now
		}
		select {
		case <-ctx.Done():
			t.Fatalf("queue %s holds %+v (%v), want %d messages", queue, got, err, n)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
