package amqpha

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

func TestWithChannelNilFn(t *testing.T) {
	var c Client
	if err := c.WithChannel(context.Background(), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("WithChannel(nil) = %v, want ErrInvalidArgument", err)
	}
}

// passive counts the fn runs that declare queue passively.
func passive(queue string, runs *atomic.Int32) ChannelFunc {
	return func(ctx context.Context, ch *amqp.Channel) error {
		runs.Add(1)
		_, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
		return err
	}
}

func TestWithChannelRetriesOnlyALostConnection(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	var drops atomic.Int32
	srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if m.Name != "queue.declare" {
			return fakebroker.Reply{}
		}
		switch m.Queue {
		case "dropped-once":
			if drops.Add(1) == 1 {
				return fakebroker.Reply{Drop: true}
			}
			return fakebroker.Reply{}
		case "always-dropped":
			return fakebroker.Reply{Drop: true}
		case "kills-the-connection":
			return fakebroker.Reply{CloseConnection: 503}
		case "shutdown":
			if drops.Add(1) == 1 {
				return fakebroker.Reply{CloseConnection: 320}
			}
		}
		return fakebroker.Reply{}
	})
	srv.DeclareQueue("dropped-once")
	srv.DeclareQueue("always-dropped")
	srv.DeclareQueue("kills-the-connection")
	srv.DeclareQueue("shutdown")
	c := fakeClient(t, srv.URL(), func(cfg *Config) { cfg.FailFast = false })
	ctx := testCtx(t, 30*time.Second)
	for _, tc := range []struct {
		queue string
		runs  int32
		check func(error) bool
	}{
		{"q", 1, func(err error) bool { return err == nil }},
		{"missing", 1, func(err error) bool { // the broker's answer; the connection goes on
			var ae *amqp.Error
			return errors.As(err, &ae) && ae.Code == amqp.NotFound
		}},
		{"dropped-once", 2, func(err error) bool { return err == nil }},
		{"shutdown", 2, func(err error) bool { return err == nil }},
		{"kills-the-connection", 1, func(err error) bool {
			var ae *amqp.Error
			return errors.As(err, &ae) && ae.Code == amqp.CommandInvalid
		}},
		{"always-dropped", maxAttempts, func(err error) bool { return errors.Is(err, ErrPoison) }},
	} {
		drops.Store(0)
		var runs atomic.Int32
		err := c.WithChannel(ctx, passive(tc.queue, &runs))
		if !tc.check(err) || runs.Load() != tc.runs {
			t.Errorf("%s: %v after %d runs, want %d runs", tc.queue, err, runs.Load(), tc.runs)
		}
	}
}

func TestWithChannelReturnsByCtx(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("slow")
	srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if m.Name == "queue.declare" {
			return fakebroker.Reply{Delay: 2 * time.Second}
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, srv.URL(), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var runs atomic.Int32
	if err := c.WithChannel(ctx, passive("slow", &runs)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WithChannel = %v, want DeadlineExceeded", err)
	}
	// Close waits for the fn still running, within its ctx.
	if err := c.Close(testCtx(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.WithChannel(context.Background(), passive("slow", &runs)); !errors.Is(err, ErrClosed) {
		t.Fatalf("WithChannel after Close = %v, want ErrClosed", err)
	}
}

func TestWithChannelPanicReachesTheCaller(t *testing.T) {
	srv := fakebroker.Start(t)
	c := fakeClient(t, srv.URL(), nil)
	defer func() {
		if v := recover(); v != "boom" {
			t.Fatalf("recovered %v, want boom", v)
		}
	}()
	c.WithChannel(testCtx(t, 10*time.Second), func(context.Context, *amqp.Channel) error { panic("boom") })
	t.Fatal("WithChannel returned")
}

func TestWithChannelChannelIsFnsAlone(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 10*time.Second)
	pub := newTestPublisher(t, c, PublisherConfig{})
	var kept *amqp.Channel
	err := c.WithChannel(ctx, func(ctx context.Context, ch *amqp.Channel) error {
		kept = ch
		// A channel error on fn's channel is fn's alone.
		_, err := ch.QueueDeclarePassive("missing", false, false, false, false, nil)
		return err
	})
	if err == nil {
		t.Fatal("passive declare of a missing queue succeeded")
	}
	if !kept.IsClosed() {
		t.Error("fn's channel is still open after WithChannel returned")
	}
	if err := pub.Publish(ctx, "", "q", amqp.Publishing{}); err != nil {
		t.Fatalf("publish after fn's channel error: %v", err)
	}
	if c.Reconnects() != 0 {
		t.Errorf("%d reconnects", c.Reconnects())
	}
}

// An fn that ends its goroutine (runtime.Goexit: t.FailNow, testify's
// require) ends the caller's the same way, as if fn ran there; WithChannel
// used to wait for a result that never came, until ctx ended (forever
// without a deadline).
func TestWithChannelGoexitReachesTheCaller(t *testing.T) {
	srv := fakebroker.Start(t)
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 10*time.Second)
	returned := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		returned <- c.WithChannel(ctx, func(context.Context, *amqp.Channel) error {
			runtime.Goexit()
			return nil
		})
	}()
	select {
	case <-exited:
	case <-ctx.Done():
		t.Fatal("the caller's goroutine neither returned nor exited")
	}
	select {
	case err := <-returned:
		t.Fatalf("WithChannel returned %v; want the caller's goroutine ended by Goexit", err)
	default:
	}
}
