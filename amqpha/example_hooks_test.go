package amqpha_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/amqpha/amqpha/amqpha"
)

type requestIDKey struct{}

// Hooks that carry a request id from the publisher's context to the
// handler's, and log every message that was sent again or failed. (Package
// otelamqpha does the same with OpenTelemetry spans.)
func ExamplePublishHook() {
	stamp := func(ctx context.Context, m *amqpha.OutgoingMessage) func(amqpha.PublishResult) {
		if id, ok := ctx.Value(requestIDKey{}).(string); ok {
			m.SetHeader("x-request-id", id) // on a copy of the caller's headers
		}
		id := m.Msg.MessageId                 // filled in by amqpha if the caller left it empty
		return func(r amqpha.PublishResult) { // once, never where confirms are handled
			if r.Err != nil || len(r.Resends) > 0 {
				slog.Warn("publish", "message_id", id, "err", r.Err, "resends", len(r.Resends), "node", r.Peer)
			}
		}
	}
	unstamp := func(next amqpha.Handler) amqpha.Handler {
		return func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
			if id, ok := d.Headers["x-request-id"].(string); ok {
				ctx = context.WithValue(ctx, requestIDKey{}, id)
			}
			return next(ctx, d)
		}
	}
	client, err := amqpha.Dial(context.Background(), amqpha.Config{
		Nodes:        []string{"amqp://guest:guest@127.0.0.1:5672/"},
		PublishHooks: []amqpha.PublishHook{stamp},
		ConsumeHooks: []amqpha.ConsumeHook{unstamp},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
}
