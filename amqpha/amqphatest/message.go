package amqphatest

import (
	"slices"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// Message is a message as the server saw it. The embedded Publishing holds
// its properties and body.
type Message struct {
	amqp.Publishing
	// Exchange and RoutingKey are those it was published with.
	Exchange, RoutingKey string
	// Mandatory is the publish's mandatory flag (Published only).
	Mandatory bool
	// Queues are the queues the server stored the message in: for
	// Published, all of them, none if it was unroutable, nacked by
	// NackNext or NackAll, or sent to an exchange that does not exist (the
	// server closed the channel); a message a full queue refused (Nacked)
	// lists the other queues it reached. For Ready, Acked and Rejected, the
	// queue asked about.
	Queues []string
	// Node is the node a published message arrived on (Published only;
	// -1 elsewhere, or if its connection ended before the server noted it).
	Node int
	// Nacked is set when the server answered the publish with basic.nack:
	// NackNext, NackAll, or a full queue with x-overflow reject-publish.
	// Published only.
	Nacked bool
	// Returned is set when the server sent the message back with
	// basic.return (312 NO_ROUTE): it was mandatory and no queue took it.
	// Published only.
	Returned bool
	// Redelivered is set for a message that went back to its queue after a
	// delivery (requeued, or its consumer's channel or connection ended):
	// its next delivery has the redelivered flag. Ready, Acked, Rejected.
	Redelivered bool
	// Deliveries counts how often the message was delivered. Ready, Acked,
	// Rejected.
	Deliveries int
}

// Stored reports whether the server stored a published message in at
// least one queue, that is, whether a broker would have it.
func (m Message) Stored() bool { return len(m.Queues) > 0 }

// toProps converts a Publishing's properties to the server's.
func toProps(p amqp.Publishing) fakebroker.Properties {
	var h map[string]any
	if p.Headers != nil {
		h, _ = toServer(p.Headers).(map[string]any)
	}
	return fakebroker.Properties{
		ContentType: p.ContentType, ContentEncoding: p.ContentEncoding, Headers: h,
		DeliveryMode: p.DeliveryMode, Priority: p.Priority, CorrelationID: p.CorrelationId,
		ReplyTo: p.ReplyTo, Expiration: p.Expiration, MessageID: p.MessageId, Timestamp: p.Timestamp,
		Type: p.Type, UserID: p.UserId, AppID: p.AppId,
	}
}

// toPublishing converts the server's properties and body to a Publishing.
func toPublishing(p fakebroker.Properties, body []byte) amqp.Publishing {
	var h amqp.Table
	if p.Headers != nil {
		h, _ = toClient(p.Headers).(amqp.Table)
	}
	return amqp.Publishing{
		ContentType: p.ContentType, ContentEncoding: p.ContentEncoding, Headers: h,
		DeliveryMode: p.DeliveryMode, Priority: p.Priority, CorrelationId: p.CorrelationID,
		ReplyTo: p.ReplyTo, Expiration: p.Expiration, MessageId: p.MessageID, Timestamp: p.Timestamp,
		Type: p.Type, UserId: p.UserID, AppId: p.AppID,
		Body: body,
	}
}

// fromStored converts messages of one queue.
func fromStored(ms []fakebroker.Message, queue string) []Message {
	if len(ms) == 0 {
		return nil
	}
	out := make([]Message, len(ms))
	for i, m := range ms {
		out[i] = Message{
			Publishing: toPublishing(m.Props, slices.Clone(m.Body)),
			Exchange:   m.Exchange, RoutingKey: m.RoutingKey,
			Queues: []string{queue}, Node: -1,
			Redelivered: m.Redelivered, Deliveries: m.Deliveries,
		}
	}
	return out
}

// toClient converts a header value as the server decoded it to the types
// amqp091-go gives a consumer: nested tables as amqp.Table, decimals as
// amqp.Decimal. Tables and arrays are copied.
func toClient(v any) any {
	switch v := v.(type) {
	case amqp.Table:
		return toClient(map[string]any(v))
	case map[string]any:
		t := make(amqp.Table, len(v))
		for k, x := range v {
			t[k] = toClient(x)
		}
		return t
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = toClient(x)
		}
		return out
	case fakebroker.Decimal:
		return amqp.Decimal{Scale: v.Scale, Value: v.Value}
	}
	return v
}

// toServer converts a header value from amqp091-go's types to the server's;
// values of other types stay as they are (the server refuses those it
// cannot encode).
func toServer(v any) any {
	switch v := v.(type) {
	case amqp.Table:
		return toServer(map[string]any(v))
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = toServer(x)
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = toServer(x)
		}
		return out
	case amqp.Decimal:
		return fakebroker.Decimal{Scale: v.Scale, Value: v.Value}
	}
	return v
}
