package otelamqpha

import (
	"context"
	"errors"
	"net"
	"strconv"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/amqpha/amqpha/amqpha"
)

// ScopeName is the instrumentation scope of the spans this package makes.
const ScopeName = "github.com/amqpha/amqpha/amqpha/otelamqpha"

// Version is this package's version, reported with its scope.
const Version = "0.1.0"

// Attributes of amqpha's own, beside the semantic conventions' (which have
// none for these).
const (
	// ResendsKey counts the times a published message was sent again (on
	// the publish span, when it was).
	ResendsKey = attribute.Key("amqpha.resends")
	// ResendEvent is the name of the publish span's event for each time
	// its message was sent again; ResendReasonKey says why
	// (amqpha.ResendReason's String: "nacked", "connection_lost",
	// "channel_closed", "confirm_timeout").
	ResendEvent     = "amqpha.resend"
	ResendReasonKey = attribute.Key("amqpha.resend.reason")
	// RedeliveredKey is true on the process span of a message the broker
	// delivered before (its redelivered flag): a duplicate the handler
	// may have seen already.
	RedeliveredKey = attribute.Key("amqpha.message.redelivered")
	// DeliveryCountKey is a quorum queue's x-delivery-count header: how
	// often the message was delivered before.
	DeliveryCountKey = attribute.Key("amqpha.message.delivery_count")
	// ActionKey is what the handler decided ("ack", "requeue", "nack",
	// "reject", "manual"), on the process span.
	ActionKey = attribute.Key("amqpha.action")
)

// Option configures a Tracing.
type Option func(*Tracing)

// WithTracerProvider makes spans with tp instead of the global provider
// (otel.GetTracerProvider at New).
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(t *Tracing) { t.tp = tp }
}

// WithPropagator carries the context in message headers with p instead of
// W3C Trace Context and Baggage (for instance otel.GetTextMapPropagator()).
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(t *Tracing) { t.prop = p }
}

// WithParentFromMessage chooses the process span's parent. With true (the
// default) it is the message's creation context, the publish span, so the
// consumer's work is in the producer's trace; a span the handler's
// context already held (from the context given to Consume) becomes a link.
// With false the process span is a child of the handler's context and
// only links to the message's creation context, the semantic conventions'
// default. Either way it links to the creation context.
func WithParentFromMessage(fromMessage bool) Option {
	return func(t *Tracing) { t.linkOnly = !fromMessage }
}

// Tracing makes OpenTelemetry spans for an amqpha client's publishes and
// deliveries, following the semantic conventions for RabbitMQ
// (semconv 1.43; messaging conventions are still in development), and
// carries the trace context in message headers ("traceparent",
// "tracestate", "baggage"). Its methods are amqpha's hooks: add them with
// Instrument or by hand to Config.PublishHooks and Config.ConsumeHooks. A
// Tracing is safe for concurrent use.
//
// The publish span ("publish {destination}", kind producer) starts when
// Publish or PublishAsync is called and ends with the message's outcome:
// the broker's confirm, or an error (status Error and error.type, one of
// "nacked", "unroutable", "blocked", "closed", "poison",
// "invalid_message", "deadline_exceeded", "canceled", an AMQP reply code
// such as "404", or "_OTHER"). Its context is injected into the message,
// unless the message already carries one: then the span links to it and
// the message keeps it. Each time amqpha sent the message again (after a
// nack, a failover, a confirm timeout) the span gets an "amqpha.resend"
// event; network.peer.address and network.peer.port name the node that
// answered. A message sent again keeps its headers, so every copy of it
// belongs to the same trace.
//
// The process span ("process {destination}", kind consumer) covers the
// handler and is its context's span; see WithParentFromMessage for its
// parent. A message the broker delivered again (Redelivered) carries
// amqpha.message.redelivered=true.
type Tracing struct {
	tp       trace.TracerProvider
	prop     propagation.TextMapPropagator
	linkOnly bool
	tracer   trace.Tracer
}

// New returns a Tracing configured by opts.
func New(opts ...Option) *Tracing {
	t := &Tracing{}
	for _, o := range opts {
		o(t)
	}
	if t.tp == nil {
		t.tp = otel.GetTracerProvider()
	}
	if t.prop == nil {
		t.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	t.tracer = t.tp.Tracer(ScopeName, trace.WithInstrumentationVersion(Version), trace.WithSchemaURL(semconv.SchemaURL))
	return t
}

// Instrument adds t's hooks to cfg.
func (t *Tracing) Instrument(cfg *amqpha.Config) {
	cfg.PublishHooks = append(cfg.PublishHooks, t.Publish)
	cfg.ConsumeHooks = append(cfg.ConsumeHooks, t.Consume)
}

// Publish is an amqpha.PublishHook: it starts the message's publish span
// as a child of ctx's span, injects its context into the message's
// headers, and ends it with the outcome.
func (t *Tracing) Publish(ctx context.Context, m *amqpha.OutgoingMessage) func(amqpha.PublishResult) {
	dest := publishDestination(m.Exchange, m.Key)
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
		semconv.MessagingSystemRabbitMQ,
		semconv.MessagingOperationName("publish"),
		semconv.MessagingOperationTypeSend,
		semconv.MessagingDestinationName(dest),
		semconv.MessagingMessageID(m.Msg.MessageId),
	)
	if m.Key != "" {
		attrs = append(attrs, semconv.MessagingRabbitMQDestinationRoutingKey(m.Key))
	}
	if m.Msg.CorrelationId != "" {
		attrs = append(attrs, semconv.MessagingMessageConversationID(m.Msg.CorrelationId))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...)}
	carrier := publishCarrier{m}
	// A creation context the caller put in the message stays; the span
	// links to it.
	var custom trace.SpanContext
	if len(m.Msg.Headers) > 0 {
		custom = trace.SpanContextFromContext(t.prop.Extract(context.Background(), carrier))
		if custom.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: custom}))
		}
	}
	ctx, span := t.tracer.Start(ctx, "publish "+dest, opts...)
	if !custom.IsValid() {
		t.prop.Inject(ctx, carrier)
	}
	if !span.IsRecording() {
		return nil // nothing to end: amqpha keeps no record for it
	}
	return func(r amqpha.PublishResult) {
		for _, rs := range r.Resends {
			span.AddEvent(ResendEvent, trace.WithTimestamp(rs.At), trace.WithAttributes(
				append(peerAttrs(rs.Peer), ResendReasonKey.String(rs.Reason.String()))...))
		}
		if n := len(r.Resends); n > 0 {
			span.SetAttributes(ResendsKey.Int(n))
		}
		span.SetAttributes(peerAttrs(r.Peer)...)
		if r.Err != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(publishErrorType(r.Err)))
			span.SetStatus(codes.Error, r.Err.Error())
		}
		span.End(trace.WithTimestamp(r.At))
	}
}

// Consume is an amqpha.ConsumeHook: it runs next within the delivery's
// process span, with the baggage the message carries.
func (t *Tracing) Consume(next amqpha.Handler) amqpha.Handler {
	return func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		ambient := trace.SpanFromContext(ctx)
		mctx := t.prop.Extract(ctx, tableCarrier(d.Headers))
		creation := trace.SpanContextFromContext(mctx)
		if creation.Equal(ambient.SpanContext()) {
			creation = trace.SpanContext{} // the message carries none
		}
		dest := consumeDestination(d.Exchange, d.RoutingKey, d.Queue())
		attrs := make([]attribute.KeyValue, 0, 10)
		attrs = append(attrs,
			semconv.MessagingSystemRabbitMQ,
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(dest),
			semconv.MessagingRabbitMQMessageDeliveryTag(int(d.DeliveryTag)),
		)
		if d.RoutingKey != "" {
			attrs = append(attrs, semconv.MessagingRabbitMQDestinationRoutingKey(d.RoutingKey))
		}
		if d.MessageId != "" {
			attrs = append(attrs, semconv.MessagingMessageID(d.MessageId))
		}
		if d.CorrelationId != "" {
			attrs = append(attrs, semconv.MessagingMessageConversationID(d.CorrelationId))
		}
		if d.Redelivered {
			attrs = append(attrs, RedeliveredKey.Bool(true))
		}
		if n, ok := deliveryCount(d.Headers); ok {
			attrs = append(attrs, DeliveryCountKey.Int64(n))
		}
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
		parent := trace.ContextWithSpan(mctx, ambient) // the message's baggage, the handler's span
		if creation.IsValid() {
			links := []trace.Link{{SpanContext: creation}}
			if !t.linkOnly {
				parent = mctx
				if ambient.SpanContext().IsValid() {
					links = append(links, trace.Link{SpanContext: ambient.SpanContext()})
				}
			}
			opts = append(opts, trace.WithLinks(links...))
		}
		ctx, span := t.tracer.Start(parent, "process "+dest, opts...)
		ended := false
		defer func() {
			if !ended { // next panicked: the span says so, the panic goes on
				span.SetAttributes(semconv.ErrorTypeKey.String("panic"))
				span.SetStatus(codes.Error, "handler panicked")
				span.End()
			}
		}()
		a := next(ctx, d)
		span.SetAttributes(ActionKey.String(a.String()))
		ended = true
		span.End()
		return a
	}
}

// publishDestination is messaging.destination.name for a publish:
// "{exchange}:{routing key}", either alone when the other is empty, or
// "amq.default".
func publishDestination(exchange, key string) string {
	switch {
	case exchange != "" && key != "":
		return exchange + ":" + key
	case exchange != "":
		return exchange
	case key != "":
		return key
	}
	return "amq.default"
}

// consumeDestination is messaging.destination.name for a delivery:
// "{exchange}:{routing key}:{queue}" without the empty ones, and the
// routing key once when it is the queue's name.
func consumeDestination(exchange, key, queue string) string {
	if key == queue {
		queue = ""
	}
	dest := exchange
	for _, p := range [...]string{key, queue} {
		switch {
		case p == "":
		case dest == "":
			dest = p
		default:
			dest += ":" + p
		}
	}
	if dest == "" {
		return "amq.default"
	}
	return dest
}

// publishErrorType is error.type for a publish that failed: amqpha's
// outcomes by name, a broker's reply by its code.
func publishErrorType(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{amqpha.ErrNacked, "nacked"}, {amqpha.ErrUnroutable, "unroutable"}, {amqpha.ErrBlocked, "blocked"},
		{amqpha.ErrPoison, "poison"}, {amqpha.ErrInvalidMessage, "invalid_message"}, {amqpha.ErrClosed, "closed"},
		{context.DeadlineExceeded, "deadline_exceeded"}, {context.Canceled, "canceled"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return strconv.Itoa(ae.Code)
	}
	return semconv.ErrorTypeOther.Value.AsString()
}

// peerAttrs is network.peer.address and network.peer.port for addr
// (host:port), none for "".
func peerAttrs(addr string) []attribute.KeyValue {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return []attribute.KeyValue{semconv.NetworkPeerAddress(host)}
	}
	return []attribute.KeyValue{semconv.NetworkPeerAddress(host), semconv.NetworkPeerPort(n)}
}

// deliveryCount reads a quorum queue's x-delivery-count header.
func deliveryCount(h amqp.Table) (int64, bool) {
	switch v := h["x-delivery-count"].(type) {
	case int64:
		return v, true
	case int32:
		return int64(v), true
	case int16:
		return int64(v), true
	case int8:
		return int64(v), true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case int:
		return int64(v), true
	}
	return 0, false
}

// publishCarrier reads and writes an outgoing message's headers; it writes
// through SetHeader, so the caller's map is never changed.
type publishCarrier struct{ m *amqpha.OutgoingMessage }

var _ propagation.TextMapCarrier = publishCarrier{}

func (c publishCarrier) Get(key string) string { return headerString(c.m.Msg.Headers[key]) }
func (c publishCarrier) Set(key, value string) { c.m.SetHeader(key, value) }
func (c publishCarrier) Keys() []string        { return tableCarrier(c.m.Msg.Headers).Keys() }

// tableCarrier reads a delivery's headers (Set is there for the interface:
// extraction never calls it).
type tableCarrier amqp.Table

var _ propagation.TextMapCarrier = tableCarrier{}

func (c tableCarrier) Get(key string) string { return headerString(c[key]) }
func (c tableCarrier) Set(key, value string) { c[key] = value }
func (c tableCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// headerString is a header's value as text: AMQP carries text as a long
// string (string) or, from some clients, as bytes.
func headerString(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case []byte:
		return string(s)
	}
	return ""
}
