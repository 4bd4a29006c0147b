package amqpha

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// storedQueue starts a storing fake broker whose queue "q" holds n
// messages with bodies "0", "1", … and a client on it.
func storedQueue(t *testing.T, n int) (*fakebroker.Server, *Client) {
	t.Helper()
	srv := filledQueue(t, n, func(i int) []byte { return []byte(fmt.Sprint(i)) })
	return srv, fakeClient(t, srv.URL(), func(c *Config) { c.HangTimeout = -1 })
}

// filledQueue starts a storing fake broker whose queue "q" holds n
// messages, message i with body(i).
func filledQueue(tb testing.TB, n int, body func(i int) []byte) *fakebroker.Server {
	tb.Helper()
	srv := fakebroker.Start(tb, fakebroker.WithStore())
	srv.DeclareQueue("q")
	for i := range n {
		if _, err := srv.Send("", "q", fakebroker.Properties{}, body(i)); err != nil {
			tb.Fatal(err)
		}
	}
	return srv
}

// waitUntil waits up to 10 s for cond.
func waitUntil(t *testing.T, srv *fakebroker.Server, what string, cond func() bool) {
	t.Helper()
	if err := srv.WaitFor(testCtx(t, 10*time.Second), cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Concurrency bounds the handlers running at once across all of the
// consumer's channels: a consumer registered again while the handlers of
// its first channel still run starts none beyond the bound.
func TestConcurrencyBoundsHandlersAcrossChannels(t *testing.T) {
	const concurrency, n = 3, 30
	srv, c := storedQueue(t, n)
	var running, most, handled atomic.Int32
	release := make(chan struct{})
	ctx := context.Background()
	k, err := c.Consume(ctx, "q", ConsumerConfig{Prefetch: 10, Concurrency: concurrency}, func(context.Context, *Delivery) Action {
		now := running.Add(1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		<-release
		running.Add(-1)
		handled.Add(1)
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, srv, "3 handlers running", func() bool { return running.Load() == concurrency })
	// The broker cancels the consumer: it registers again on a new channel,
	// which gets deliveries of its own while the first channel's handlers
	// still hold every slot.
	srv.CancelConsumers("q")
	waitUntil(t, srv, "registered again with deliveries", func() bool {
		return k.Registrations() == 2 && srv.Unacked("q") > 10
	})
	if r := running.Load(); r != concurrency {
		t.Fatalf("%d handlers running, bound %d", r, concurrency)
	}
	close(release)
	waitUntil(t, srv, "every message handled", func() bool { return handled.Load() == n })
	if m := most.Load(); m != concurrency {
		t.Fatalf("at most %d handlers ran at once, want %d", m, concurrency)
	}
}

// One handler (the default) takes the queue's messages in order.
func TestOneHandlerKeepsTheOrder(t *testing.T) {
	const n = 500
	_, c := storedQueue(t, n)
	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	_, err := c.Consume(context.Background(), "q", ConsumerConfig{}, func(_ context.Context, d *Delivery) Action {
		mu.Lock()
		got = append(got, string(d.Body))
		if len(got) == n {
			close(done)
		}
		mu.Unlock()
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("not every message handled in 10 s")
	}
	mu.Lock()
	defer mu.Unlock()
	for i, b := range got {
		if b != fmt.Sprint(i) {
			t.Fatalf("handled %q as message %d", b, i)
		}
	}
}

// Client.Close returns by its ctx even while a handler ignores its
// cancelled ctx: handlers run in the consumer's pumps, which Close waited
// for without a bound before.
func TestClientCloseReturnsByCtxBehindAStuckHandler(t *testing.T) {
	_, c := storedQueue(t, 1)
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	if _, err := c.Consume(context.Background(), "q", ConsumerConfig{}, func(context.Context, *Delivery) Action {
		close(started)
		<-release // ignores its ctx
		return Ack
	}); err != nil {
		t.Fatal(err)
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- c.Close(ctx) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: %v, want the ctx's deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Client.Close did not return by its ctx while a handler was stuck")
	}
}

// A Client.Close that comes while Consume or NewPublisher starts its
// consumer or publisher (recorded in the client, its goroutines not
// started, not attached to the connection yet) closes it for good:
// Client.Close's wait includes those goroutines, Consume returns ErrClosed,
// and nothing closed is left attached to the client's connection.
func TestClientCloseWhileConsumeStarts(t *testing.T) {
	for _, what := range []string{"consumer", "publisher"} {
		t.Run(what, func(t *testing.T) {
			srv := fakebroker.Start(t, fakebroker.WithStore())
			srv.DeclareQueue("q")
			c := fakeClient(t, srv.URL(), func(c *Config) { c.HangTimeout = -1 })
			var started attachment
			closed := make(chan error, 1)
			hook := func(a attachment) {
				started = a
				go func() { closed <- c.Close(testCtx(t, 10*time.Second)) }()
				// Close has removed it from its connection once these
				// end; its wait for the goroutines comes next.
				switch a := a.(type) {
				case *Consumer:
					<-a.hard.Done()
				case *Publisher:
					<-a.stop
				}
			}
			recordedHook.Store(&hook)
			t.Cleanup(func() { recordedHook.Store(nil) })
			if what == "consumer" {
				k, err := c.Consume(testCtx(t, 10*time.Second), "q", ConsumerConfig{}, func(context.Context, *Delivery) Action { return Ack })
				if !errors.Is(err, ErrClosed) || k != nil {
					t.Fatalf("Consume during Client.Close: %v, %v; want ErrClosed", k, err)
				}
			} else if _, err := c.NewPublisher(PublisherConfig{}); err != nil {
				t.Fatalf("NewPublisher during Client.Close: %v", err)
			}
			if err := <-closed; err != nil {
				t.Fatalf("Client.Close: %v", err)
			}
			var sup *supervisor
			switch a := started.(type) {
			case *Consumer:
				sup = a.sup
			case *Publisher:
				sup = a.sup
			}
			sup.mu.Lock()
			attached := slices.Contains(sup.attachments, started)
			sup.mu.Unlock()
			if attached {
				t.Fatalf("the %s closed by Client.Close is still attached to the client's connection", what)
			}
		})
	}
}
