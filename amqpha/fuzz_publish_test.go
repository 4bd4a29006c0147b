package amqpha

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// fuzzValue turns a kind and a few bytes into a header or argument value,
// valid or not.
func fuzzValue(kind uint8, s string, n int64) any {
	switch kind % 16 {
	case 0:
		return s
	case 1:
		return n
	case 2:
		return int(n) // over 32 bits is refused
	case 3:
		return uint64(n) // never encodable
	case 4:
		return map[string]any{s: n} // not an amqp.Table
	case 5:
		return amqp.Table{s: n}
	case 6:
		return []any{s, n, amqp.Table{s: uint64(n)}}
	case 7:
		return []string{s}
	case 8:
		return []byte(s)
	case 9:
		return float64(n)
	case 10:
		return nil
	case 11:
		return time.Unix(n%1e10, 0)
	case 12:
		return amqp.Decimal{Scale: uint8(n), Value: int32(n)}
	case 13:
		return int32(n)
	case 14:
		return strings.Repeat(s, int(n%5000+5000)) // large strings: past a frame with several headers
	}
	return struct{}{}
}

// FuzzPublishInput: whatever a caller passes to PublishAsync and Consume
// either fails the call at once with ErrInvalidMessage / ErrInvalidArgument
// or works (the message is confirmed, the consumer registered), and costs
// at most one channel and no new connection.
func FuzzPublishInput(f *testing.F) {
	f.Add("", "q", "id", "h", uint8(0), "v", int64(1), []byte("body"), "tag", 0)
	f.Add(strings.Repeat("e", 256), "q", "id", "h", uint8(3), "v", int64(1), []byte{}, "", 10)
	f.Add("ex", strings.Repeat("k", 300), strings.Repeat("i", 255), strings.Repeat("h", 256), uint8(4), "v", int64(-1), []byte("x"), strings.Repeat("t", 256), 70000)
	f.Add("", "q", "", "big", uint8(14), strings.Repeat("v", 40), int64(9000), []byte(nil), "", -1)
	f.Add("", "q", "id", "n", uint8(2), "v", int64(1)<<40, []byte("b"), "t", 65535)

	srv := fakebroker.Start(f)
	srv.DeclareQueue("q")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c, err := Dial(ctx, Config{Nodes: []string{srv.URL()}, FailFast: true})
	cancel()
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	p, err := c.NewPublisher(PublisherConfig{AllowUnroutable: true})
	if err != nil {
		f.Fatal(err)
	}
	handler := func(context.Context, *Delivery) Action { return Ack }
	// The consumers' connection is up before the first input.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	k, err := c.Consume(ctx, "q", ConsumerConfig{}, handler)
	if err == nil {
		err = k.Close(ctx)
	}
	cancel()
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, exchange, key, id, hkey string, kind uint8, hval string, n int64, body []byte, tag string, prefetch int) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conns, opens := srv.Connections(), srv.ChannelOpens()
		v := fuzzValue(kind, hval, n)
		msg := amqp.Publishing{MessageId: id, Body: body, Headers: amqp.Table{hkey: v, "x-" + hkey: v}}
		start := time.Now()
		conf, err := p.PublishAsync(ctx, exchange, key, msg)
		if err != nil {
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("PublishAsync: %v, want nil or ErrInvalidMessage", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("refused after %v", d)
			}
		} else if err := conf.Wait(ctx); err != nil {
			t.Fatalf("taken, then: %v", err)
		}

		k, err := c.Consume(ctx, "q", ConsumerConfig{Tag: tag, Prefetch: prefetch, Args: amqp.Table{hkey: v}}, handler)
		if err != nil {
			if !errors.Is(err, ErrInvalidArgument) {
				t.Fatalf("Consume: %v, want nil or ErrInvalidArgument", err)
			}
		} else if err := k.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := srv.Connections() - conns; got != 0 {
			t.Fatalf("%d new connections", got)
		}
		most := 1 // the publisher's channel, if the last input killed it
		if k != nil {
			most++ // the consumer's
		}
		if got := srv.ChannelOpens() - opens; got > most {
			t.Fatalf("%d channel opens, want at most %d", got, most)
		}
	})
}
