package amqpha

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// Tests of what a real broker cannot be made to do on demand, against the
// scripted broker in internal/fakebroker. The real-cluster tests in
// integration/failover remain the proof of failover itself.

// fakeClient dials a client to srv (at vhost path, "/" for the default) and
// closes it when the test ends.
func fakeClient(t *testing.T, url string, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{Nodes: []string{url}, FailFast: true}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func newTestPublisher(t *testing.T, c *Client, cfg PublisherConfig) *Publisher {
	t.Helper()
	p, err := c.NewPublisher(cfg)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	return p
}

// Item 1: a basic.return is matched to the publish it belongs to, not by
// the caller's MessageId. Two mandatory messages with one id are in flight
// together (the broker holds its answers to the first), one of them
// unroutable, in both orders.
func TestReturnBelongsToItsOwnPublish(t *testing.T) {
	for _, unroutableFirst := range []bool{true, false} {
		name := "routable first"
		if unroutableFirst {
			name = "unroutable first"
		}
		t.Run(name, func(t *testing.T) {
			srv := fakebroker.Start(t)
			srv.DeclareQueue("q")
			first := true
			var mu sync.Mutex
			srv.OnPublish(func(p *fakebroker.Publish) fakebroker.Reply {
				mu.Lock()
				defer mu.Unlock()
				r := fakebroker.Reply{Return: p.RoutingKey == "nowhere"}
				if first && p.Exchange == "" {
					first = false
					r.Delay = 100 * time.Millisecond // the second is sent meanwhile
				}
				return r
			})
			c := fakeClient(t, srv.URL(), nil)
			p := newTestPublisher(t, c, PublisherConfig{})
			ctx := testCtx(t, 10*time.Second)
			keys := []string{"q", "nowhere"}
			if unroutableFirst {
				keys = []string{"nowhere", "q"}
			}
			var confs []*Confirmation
			for _, k := range keys {
				cf, err := p.PublishAsync(ctx, "", k, amqp.Publishing{MessageId: "order-42", Body: []byte(k)})
				if err != nil {
					t.Fatal(err)
				}
				confs = append(confs, cf)
			}
			for i, cf := range confs {
				err := cf.Wait(ctx)
				if keys[i] == "nowhere" && !errors.Is(err, ErrUnroutable) {
					t.Errorf("unroutable message resolved %v, want ErrUnroutable", err)
				}
				if keys[i] == "q" && err != nil {
					t.Errorf("routed message resolved %v, want nil", err)
				}
			}
		})
	}
}

// Item 2: a message returned on a channel that died before its ack is sent
// again; routed the second time, it is confirmed.
func TestReturnDoesNotOutliveItsChannel(t *testing.T) {
	srv := fakebroker.Start(t)
	var n atomic.Int32
	srv.OnPublish(func(p *fakebroker.Publish) fakebroker.Reply {
		if n.Add(1) == 1 {
			return fakebroker.Reply{Return: true, Hold: true}
		}
		return fakebroker.Reply{}
	})
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), nil)
	p := newTestPublisher(t, c, PublisherConfig{})
	ctx := testCtx(t, 10*time.Second)
	cf, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	// The return has arrived; its ack never will on this channel.
	if err := srv.WaitFor(ctx, func() bool { return srv.Held() == 1 }); err != nil {
		t.Fatal(err)
	}
	waitReturned(t, ctx, p)
	srv.CloseConnections(320, "CONNECTION_FORCED - test")
	if err := cf.Wait(ctx); err != nil {
		t.Fatalf("message routed when sent again resolved %v, want nil", err)
	}
	if got := n.Load(); got != 2 {
		t.Fatalf("published %d times, want 2", got)
	}
}

// waitReturned waits until one of p's sessions noted a return.
func waitReturned(t *testing.T, ctx context.Context, p *Publisher) {
	t.Helper()
	for ctx.Err() == nil {
		p.mu.Lock()
		n := 0
		for s := range p.sessions {
			s.mu.Lock()
			n += len(s.returned)
			s.mu.Unlock()
		}
		p.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("no return noted")
}

// Items 5 and 6: a message the protocol cannot carry fails its own call at
// once, opens no channel and no connection, and the next valid message is
// confirmed.
func TestInvalidMessageTouchesNoChannel(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	// No hang detector: its probe channel opens when it likes.
	c := fakeClient(t, srv.URL(), func(c *Config) { c.HangTimeout = -1 })
	p := newTestPublisher(t, c, PublisherConfig{})
	ctx := testCtx(t, 10*time.Second)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("warm up")}); err != nil {
		t.Fatal(err)
	}
	conns, opens := srv.Connections(), srv.ChannelOpens()
	long := strings.Repeat("x", 256)
	for _, tc := range []struct {
		name, exchange, key string
		msg                 amqp.Publishing
	}{
		{name: "nested map header", key: "q", msg: amqp.Publishing{Headers: amqp.Table{"m": map[string]any{"a": 1}}}},
		{name: "uint64 header", key: "q", msg: amqp.Publishing{Headers: amqp.Table{"u": uint64(1)}}},
		{name: "[]string header", key: "q", msg: amqp.Publishing{Headers: amqp.Table{"s": []string{"a"}}}},
		{name: "long MessageId", key: "q", msg: amqp.Publishing{MessageId: long}},
		{name: "long CorrelationId", key: "q", msg: amqp.Publishing{CorrelationId: long}},
		{name: "long exchange", exchange: long, key: "q"},
		{name: "long routing key", key: long},
		{name: "long header key", key: "q", msg: amqp.Publishing{Headers: amqp.Table{long: "v"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := p.Publish(ctx, tc.exchange, tc.key, tc.msg)
			if !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("err = %v, want ErrInvalidMessage", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("took %v to fail", d)
			}
			if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("valid")}); err != nil {
				t.Fatalf("a valid message after it: %v", err)
			}
		})
	}
	if got := srv.Connections() - conns; got != 0 {
		t.Errorf("%d new connections", got)
	}
	if got := srv.ChannelOpens() - opens; got != 0 {
		t.Errorf("%d channel opens", got)
	}
}

// Item 6: consumer settings the protocol cannot carry fail Consume at once.
func TestInvalidConsumerTouchesNoChannel(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), func(c *Config) { c.HangTimeout = -1 })
	ctx := testCtx(t, 10*time.Second)
	handler := func(context.Context, *Delivery) Action { return Ack }
	k, err := c.Consume(ctx, "q", ConsumerConfig{}, handler)
	if err != nil {
		t.Fatal(err)
	}
	k.Close(ctx)
	conns, opens := srv.Connections(), srv.ChannelOpens()
	for _, tc := range []struct {
		name  string
		queue string
		cfg   ConsumerConfig
	}{
		{"long tag", "q", ConsumerConfig{Tag: strings.Repeat("t", 256)}},
		{"long queue", strings.Repeat("q", 256), ConsumerConfig{}},
		{"prefetch 65536", "q", ConsumerConfig{Prefetch: 65536}},
		{"bad args", "q", ConsumerConfig{Args: amqp.Table{"x": map[string]any{}}}},
		{"a million handlers", "q", ConsumerConfig{Concurrency: 1 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := c.Consume(ctx, tc.queue, tc.cfg, handler)
			if !errors.Is(err, ErrInvalidArgument) {
				if k != nil {
					k.Close(ctx)
				}
				t.Fatalf("err = %v, want ErrInvalidArgument", err)
			}
		})
	}
	if got := srv.Connections() - conns; got != 0 {
		t.Errorf("%d new connections", got)
	}
	if got := srv.ChannelOpens() - opens; got != 0 {
		t.Errorf("%d channel opens", got)
	}
}

// Item 7: a channel closed because of one message charges that message
// only, and the broker's 404 reason is read exactly: a message to an
// exchange named like the vhost stays in flight and is confirmed, the
// message to the missing exchange fails at once.
func TestChannelCloseChargesOnlyItsCause(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.OnPublish(func(p *fakebroker.Publish) fakebroker.Reply {
		switch {
		case p.Exchange == "missing":
			return fakebroker.Reply{CloseChannel: 404, Text: "NOT_FOUND - no exchange 'missing' in vhost 'prod'"}
		case len(srv.Publishes()) == 1:
			return fakebroker.Reply{Hold: true}
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, srv.URL()+"prod", nil)
	ctx := testCtx(t, 10*time.Second)
	if err := c.DeclareExchange(ctx, Exchange{Name: "prod", Kind: "fanout"}); err != nil {
		t.Fatal(err)
	}
	p := newTestPublisher(t, c, PublisherConfig{AllowUnroutable: true})
	good, err := p.PublishAsync(ctx, "prod", "", amqp.Publishing{Body: []byte("good")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitFor(ctx, func() bool { return srv.Held() == 1 }); err != nil {
		t.Fatal(err)
	}
	err = p.Publish(ctx, "missing", "", amqp.Publishing{Body: []byte("bad")})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != 404 {
		t.Fatalf("publish to a missing exchange: %v, want the broker's 404", err)
	}
	if err := good.Wait(ctx); err != nil {
		t.Fatalf("the message in flight beside it: %v, want nil", err)
	}
}

// Item 6: a message that makes the broker close its channel, or the whole
// connection, every time fails as poison after a few attempts; a good
// message sent after it is confirmed, and the connections it cost are few.
func TestPoisonMessageFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply fakebroker.Reply
	}{
		{"channel", fakebroker.Reply{CloseChannel: 406, Text: "PRECONDITION_FAILED - invalid message"}},
		{"connection", fakebroker.Reply{CloseConnection: 501, Text: "FRAME_ERROR - bad frame"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakebroker.Start(t)
			srv.DeclareQueue("q")
			srv.OnPublish(func(p *fakebroker.Publish) fakebroker.Reply {
				if string(p.Body) == "poison" {
					return tc.reply
				}
				return fakebroker.Reply{}
			})
			c := fakeClient(t, srv.URL(), func(c *Config) { c.ReconnectInitial = 10 * time.Millisecond })
			p := newTestPublisher(t, c, PublisherConfig{})
			ctx := testCtx(t, 20*time.Second)
			err := p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("poison")})
			if !errors.Is(err, ErrPoison) {
				t.Fatalf("err = %v, want ErrPoison", err)
			}
			var ae *amqp.Error
			if !errors.As(err, &ae) || ae.Code != int(max(tc.reply.CloseChannel, tc.reply.CloseConnection)) {
				t.Fatalf("err = %v, does not carry the broker's reason", err)
			}
			if n := len(srv.Publishes()); n != maxAttempts {
				t.Fatalf("sent %d times, want %d", n, maxAttempts)
			}
			if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("good")}); err != nil {
				t.Fatalf("good message after it: %v", err)
			}
			if n := srv.Connections(); n > maxAttempts+1 {
				t.Fatalf("%d connections", n)
			}
		})
	}
}

// Item 6: a connection that dies right after it opened counts as a failed
// attempt: the client backs off between such connections instead of
// opening them in a tight loop.
func TestShortLivedConnectionsBackOff(t *testing.T) {
	srv := fakebroker.Start(t)
	var kill atomic.Bool
	srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if kill.Load() && m.Name == "channel.open" {
			return fakebroker.Reply{CloseConnection: 541, Text: "INTERNAL_ERROR - test"}
		}
		return fakebroker.Reply{}
	})
	var mu sync.Mutex
	var failed []Event
	c := fakeClient(t, srv.URL(), func(c *Config) {
		c.ReconnectInitial = 50 * time.Millisecond
		c.OnEvent = func(e Event) {
			if e.Kind == EventReconnecting {
				mu.Lock()
				failed = append(failed, e)
				mu.Unlock()
			}
		}
	})
	_ = c
	ctx := testCtx(t, 20*time.Second)
	kill.Store(true)
	srv.DropConnections()
	start, before := time.Now(), srv.Connections()
	const want = 5
	if err := srv.WaitFor(ctx, func() bool { return srv.Connections()-before >= want }); err != nil {
		t.Fatal(err)
	}
	// Jittered backoff of 50 ms doubling, ±50 %: at least 25+50+100+200 ms
	// between the five connections. A tight loop takes a few milliseconds.
	if d := time.Since(start); d < 375*time.Millisecond {
		t.Fatalf("%d connections in %v: no backoff", want, d)
	}
}

// Item 10: the messages a Publisher holds are bounded by its window, also
// when callers' contexts end while nothing can be sent.
func TestWindowBoundsHeldMessages(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), nil)
	const window = 4
	p := newTestPublisher(t, c, PublisherConfig{Window: window})
	ctx := testCtx(t, 10*time.Second)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{}); err != nil {
		t.Fatal(err)
	}
	srv.Block("test")
	if err := waitBlocked(ctx, p, true); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var most atomic.Int64
	stop := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				pctx, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
				p.Publish(pctx, "", "q", amqp.Publishing{Body: make([]byte, 1024)})
				cancel()
				p.mu.Lock()
				n := int64(len(p.queue))
				p.mu.Unlock()
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond) // callers keep timing out meanwhile
	close(stop)
	wg.Wait()
	if m := most.Load(); m > window {
		t.Fatalf("the queue held %d messages, window %d", m, window)
	}
	srv.Unblock()
}

func waitBlocked(ctx context.Context, p *Publisher, want bool) error {
	for !(p.isBlocked() == want) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// Item 11: a publisher created while the broker blocks the connection
// starts blocked: with FailWhenBlocked it fails at once, and it does not
// write into a socket the broker does not read.
func TestPublisherCreatedDuringABlockStartsBlocked(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 10*time.Second)
	first := newTestPublisher(t, c, PublisherConfig{})
	if err := first.Publish(ctx, "", "q", amqp.Publishing{}); err != nil {
		t.Fatal(err)
	}
	srv.Block("memory")
	if err := waitBlocked(ctx, first, true); err != nil {
		t.Fatal(err)
	}
	p := newTestPublisher(t, c, PublisherConfig{FailWhenBlocked: true})
	if err := p.Publish(ctx, "", "q", amqp.Publishing{}); !errors.Is(err, ErrBlocked) {
		t.Fatalf("err = %v, want ErrBlocked", err)
	}
	srv.Unblock()
}

// Item 11: messages in flight when the broker blocked the connection wait
// for their confirms from the unblock on: they are not taken for stuck and
// sent again before the backlog's acks arrive.
func TestUnblockRestartsConfirmTimeout(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	srv.OnPublish(func(*fakebroker.Publish) fakebroker.Reply { return fakebroker.Reply{Hold: true} })
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 10*time.Second)
	const timeout = 200 * time.Millisecond
	p := newTestPublisher(t, c, PublisherConfig{ConfirmTimeout: timeout})
	var confs []*Confirmation
	for range 3 {
		cf, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{})
		if err != nil {
			t.Fatal(err)
		}
		confs = append(confs, cf)
	}
	if err := srv.WaitFor(ctx, func() bool { return srv.Held() == 3 }); err != nil {
		t.Fatal(err)
	}
	srv.Block("memory")
	if err := waitBlocked(ctx, p, true); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * timeout) // longer than ConfirmTimeout, while blocked
	srv.Unblock()
	if err := waitBlocked(ctx, p, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(timeout / 4)
	srv.Release(true)
	for _, cf := range confs {
		if err := cf.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Publishes()); n != 3 {
		t.Fatalf("%d publishes, want 3: messages sent again after the unblock", n)
	}
}

// Item 8: NewPublisher, Publisher.Close, DeclareQueue, QueueName,
// Client.Connections and Client.Close return by their contexts while the
// broker blocks the connection and reads nothing.
func TestCallsReturnDuringABlock(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 10*time.Second)
	p := newTestPublisher(t, c, PublisherConfig{})
	if err := p.Publish(ctx, "", "q", amqp.Publishing{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeclareQueue(ctx, Queue{Name: "known"}); err != nil {
		t.Fatal(err)
	}
	srv.Block("memory")
	if err := waitBlocked(ctx, p, true); err != nil {
		t.Fatal(err)
	}
	srv.StopReading()
	defer srv.ResumeReading()
	const limit = 200 * time.Millisecond
	within := func(name string, f func(ctx context.Context)) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		start := time.Now()
		f(cctx)
		// Generous for a loaded CI machine: what fails here is a call that
		// waits for the broker (it never answers) instead of its context.
		if d := time.Since(start); d > limit+500*time.Millisecond {
			t.Errorf("%s took %v with a %v context", name, d, limit)
		}
	}
	within("NewPublisher", func(context.Context) { newTestPublisher(t, c, PublisherConfig{}) })
	within("DeclareQueue", func(ctx context.Context) {
		if _, err := c.DeclareQueue(ctx, Queue{Name: "new"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("DeclareQueue: %v, want the context's error", err)
		}
	})
	within("a second DeclareQueue", func(ctx context.Context) { c.DeclareQueue(ctx, Queue{Name: "new2"}) })
	within("QueueName", func(context.Context) {
		if got := c.QueueName("known"); got != "known" {
			t.Errorf("QueueName = %q", got)
		}
	})
	within("Connections", func(context.Context) { c.Connections() })
	within("Publisher.Close", func(ctx context.Context) { p.Close(ctx) })
	within("Client.Close", func(ctx context.Context) { c.Close(ctx) })
}

// A pending confirmation does not claim to be confirmed.
func TestConfirmationErrIsPendingUntilResolved(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	srv.OnPublish(func(*fakebroker.Publish) fakebroker.Reply { return fakebroker.Reply{Hold: true} })
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 10*time.Second)
	p := newTestPublisher(t, c, PublisherConfig{})
	cf, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cf.Err(); !errors.Is(err, ErrPending) {
		t.Fatalf("Err() before the confirm = %v, want ErrPending", err)
	}
	if err := srv.WaitFor(ctx, func() bool { return srv.Held() == 1 }); err != nil {
		t.Fatal(err)
	}
	srv.Release(true)
	if err := cf.Wait(ctx); err != nil || cf.Err() != nil {
		t.Fatalf("after the ack: Wait %v, Err %v", err, cf.Err())
	}
}

// Item 9: a connection with many publishers is set up by each publisher on
// its own, concurrently, not inside the dial's deadline: with 200
// publishers and a broker that takes 15 ms per channel.open, the client
// reconnects on the first try.
func TestReconnectWithManyPublishers(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if m.Name == "channel.open" {
			return fakebroker.Reply{Delay: 15 * time.Millisecond}
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, srv.URL(), func(c *Config) { c.DialTimeout = 500 * time.Millisecond })
	ctx := testCtx(t, 30*time.Second)
	const n = 200
	pubs := make([]*Publisher, n)
	for i := range pubs {
		pubs[i] = newTestPublisher(t, c, PublisherConfig{})
	}
	publishAll := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, p := range pubs {
			wg.Go(func() { errs <- p.Publish(ctx, "", "q", amqp.Publishing{}) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	publishAll()
	srv.DropConnections()
	publishAll()
	if got := srv.Connections(); got != 2 {
		t.Fatalf("%d connections, want 2 (the first, one reconnection)", got)
	}
}

// Item 3: once Publish returned, amqpha never reads the caller's message
// again. The message waits out a block, so the publisher's own goroutine
// writes it; the broker reads nothing meanwhile, and the caller's context
// ends during the write. Publish returns only once the write ended, so
// the bytes the caller writes into its buffer afterwards never reach the
// broker. (Before: Publish returned at once and the broker got them.)
func TestCallerMessageIsNotReadAfterPublishReturns(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), func(c *Config) { c.HangTimeout = -1 })
	p := newTestPublisher(t, c, PublisherConfig{})
	ctx := testCtx(t, 30*time.Second)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{}); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 32<<20) // more than the sockets' buffers hold
	for i := range body {
		body[i] = 'a'
	}
	srv.Block("test")
	if err := waitBlocked(ctx, p, true); err != nil {
		t.Fatal(err)
	}
	srv.StopReading()
	resumed := make(chan struct{})
	go func() {
		defer close(resumed)
		time.Sleep(100 * time.Millisecond)
		srv.Unblock() // the publisher writes into a socket nobody reads
		time.Sleep(500 * time.Millisecond)
		srv.ResumeReading() // after the caller's context ended
	}()
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err := p.Publish(pctx, "", "q", amqp.Publishing{Body: body})
	cancel()
	tail := body[len(body)-1<<20:]
	for i := range tail {
		tail[i] = 'b'
	}
	<-resumed
	t.Logf("Publish: %v", err)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	for _, pub := range srv.Publishes() {
		if len(pub.Body) == len(body) && bytes.IndexByte(pub.Body, 'b') >= 0 {
			t.Fatal("the broker received bytes the caller wrote after Publish returned")
		}
	}
}

// throttle forwards TCP connections to target, passing what the client
// sends at most rate bytes a second, and what the server sends at once.
func throttle(t *testing.T, target string, rate int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", target)
			if err != nil {
				client.Close()
				continue
			}
			mu.Lock()
			open = append(open, client, server)
			mu.Unlock()
			wg.Go(func() { io.Copy(client, server); client.Close() })
			wg.Go(func() {
				defer server.Close()
				const chunk = 16 << 10
				buf := make([]byte, chunk)
				for {
					n, err := client.Read(buf)
					if n > 0 {
						if _, err := server.Write(buf[:n]); err != nil {
							return
						}
						time.Sleep(time.Duration(n) * time.Second / time.Duration(rate))
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	return ln.Addr().String()
}

// Item 12: a probe queued behind a large message on a slow link is not an
// unanswered probe: the message arrives whole over a link that takes
// seconds to carry it, and the connection is never taken for hung.
func TestLargeMessageOverASlowLinkIsNotAHang(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	addr := throttle(t, srv.Addr(), 4<<20) // 4 MiB/s
	var hung atomic.Int32
	c := fakeClient(t, "amqp://guest:guest@"+addr+"/", func(c *Config) {
		c.HangTimeout = 400 * time.Millisecond
		c.OnEvent = func(e Event) {
			if e.Kind == EventReconnecting {
				hung.Add(1)
			}
		}
	})
	p := newTestPublisher(t, c, PublisherConfig{})
	ctx := testCtx(t, 30*time.Second)
	body := make([]byte, 8<<20) // 2 s on this link
	if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: body}); err != nil {
		t.Fatal(err)
	}
	if n := c.Reconnects(); n != 0 {
		t.Fatalf("%d reconnections (the connection was taken for hung)", n)
	}
	if n := len(srv.Publishes()); n != 1 {
		t.Fatalf("%d publishes, want 1", n)
	}
}

// Exclusive and server-named queues that no consumer reads are forgotten
// when their connection closes (a reply queue per request must not grow
// the record, and every replay, for ever); one a consumer reads is
// declared again under a new name.
func TestUnusedServerNamedQueuesAreForgotten(t *testing.T) {
	srv := fakebroker.Start(t)
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 10*time.Second)
	var replies []string
	for range 20 {
		name, err := c.DeclareQueue(ctx, Queue{Exclusive: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.BindQueue(ctx, QueueBinding{Queue: name, Exchange: "amq.direct", Key: name}); err != nil {
			t.Fatal(err)
		}
		replies = append(replies, name)
	}
	kept, err := c.DeclareQueue(ctx, Queue{Exclusive: true})
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.Consume(ctx, kept, ConsumerConfig{}, func(context.Context, *Delivery) Action { return Ack })
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(ctx)
	before := srv.Connections()
	srv.DropConnections()
	if err := srv.WaitFor(ctx, func() bool { return k.Registrations() == 2 && srv.Connections() >= before+2 }); err != nil {
		t.Fatal(err)
	}
	c.topo.mu.Lock()
	records := len(c.topo.records)
	c.topo.mu.Unlock()
	if records != 1 {
		t.Fatalf("%d records after the reconnection, want 1 (the consumed queue)", records)
	}
	if now := c.QueueName(kept); now == kept || !srv.HasQueue(now) {
		t.Fatalf("the consumed queue is %q now (was %q)", now, kept)
	}
	if got := c.QueueName(replies[0]); got != replies[0] {
		t.Fatalf("a forgotten queue still maps to %q", got)
	}
}

// Item 10: during an outage, with callers timing out, the memory a
// Publisher holds is bounded by its window. AMQPHA_OUTAGE_SECONDS sets
// the outage's length (1 s by default; BENCHMARKS.md has the 10 s figure).
func TestOutageMemoryIsBoundedByTheWindow(t *testing.T) {
	outage := time.Second
	if s := os.Getenv("AMQPHA_OUTAGE_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("AMQPHA_OUTAGE_SECONDS=%q: %v", s, err)
		}
		outage = time.Duration(n) * time.Second
	}
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	var down atomic.Bool
	srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if down.Load() && m.Name == "connection.open" {
			return fakebroker.Reply{CloseConnection: 530, Text: "NOT_ALLOWED - node down"}
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, srv.URL(), nil)
	const window, size = 16, 64 << 10
	p := newTestPublisher(t, c, PublisherConfig{Window: window})
	ctx := testCtx(t, outage+30*time.Second)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{}); err != nil {
		t.Fatal(err)
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	down.Store(true)
	srv.DropConnections()
	var wg sync.WaitGroup
	var calls, most atomic.Int64
	stop := time.Now().Add(outage)
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(stop) {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
				p.Publish(pctx, "", "q", amqp.Publishing{Body: make([]byte, size)})
				cancel()
				calls.Add(1)
				held := int64(len(p.sem)) // slots taken: messages amqpha holds
				for m := most.Load(); held > m && !most.CompareAndSwap(m, held); m = most.Load() {
				}
			}
		})
	}
	wg.Wait()
	p.mu.Lock()
	queued := len(p.queue)
	p.mu.Unlock()
	grown := int64(heap()) - int64(before)
	t.Logf("outage of %v, window %d, %d KiB messages: %d Publish calls timed out; at most %d messages held, %d queued at the end; heap %+.1f MiB",
		outage, window, size>>10, calls.Load(), most.Load(), queued, float64(grown)/(1<<20))
	if most.Load() > window || queued > window {
		t.Fatalf("held %d, queued %d: more than the window (%d)", most.Load(), queued, window)
	}
	if limit := int64(window*size + 8<<20); grown > limit {
		t.Fatalf("heap grew %d bytes, more than the window's messages and 8 MiB", grown)
	}
	down.Store(false)
}

// A large message on a slow link is not taken for stuck while it still
// drains to the broker: its confirm is waited for from when the broker's
// TCP stopped acknowledging progress, and it is sent once.
func TestLargeMessageOverASlowLinkIsNotTakenForStuck(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	addr := throttle(t, srv.Addr(), 4<<20) // 4 MiB/s
	c := fakeClient(t, "amqp://guest:guest@"+addr+"/", nil)
	// The write takes 2 s, four times ConfirmTimeout; once it is through,
	// the broker has the whole ConfirmTimeout to confirm (a loaded machine
	// running the race detector needed more than 200 ms).
	p := newTestPublisher(t, c, PublisherConfig{ConfirmTimeout: 500 * time.Millisecond})
	ctx := testCtx(t, 30*time.Second)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: make([]byte, 8<<20)}); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Publishes()); n != 1 {
		t.Fatalf("%d publishes, want 1", n)
	}
}

// A message taken back from a channel while it is still being written there
// (the channel died meanwhile) is busy for another send: it is sent again
// once that write ends, never let go of unresolved. A resolution during a
// claim waits for the claim's end.
func TestClaims(t *testing.T) {
	p := &Publisher{kick: make(chan struct{}, 1), sem: make(chan struct{}, 1)}
	p.sem <- struct{}{}
	c := &Confirmation{p: p, done: make(chan struct{})}
	p.unresolved.Add(1)
	if got := c.claim(); got != claimed {
		t.Fatalf("first claim: %v", got)
	}
	if got := c.claim(); got != busy {
		t.Fatalf("claim during a claim: %v, want busy", got)
	}
	c.unclaim()
	if len(p.queue) != 1 || p.queue[0] != c {
		t.Fatalf("after the claim ended, queue = %v, want the message", p.queue)
	}
	p.queue = nil
	if got := c.claim(); got != claimed {
		t.Fatalf("claim: %v", got)
	}
	if !c.resolve(ErrClosed) {
		t.Fatal("resolve during a claim refused")
	}
	select {
	case <-c.Done():
		t.Fatal("resolved while claimed: the caller could reuse a message being read")
	default:
	}
	if got := c.claim(); got != resolved {
		t.Fatalf("claim of a message with a resolution waiting: %v, want resolved", got)
	}
	c.unclaim()
	if err := c.Err(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after the claim: %v", err)
	}
	c.drop()
	c.drop()
	if len(p.sem) != 0 {
		t.Fatal("the window slot is still held after drop")
	}
}

// A channel closed for a reason that names no message, with several in
// flight: none of them is charged; they are sent again one at a time, so
// the culprit is found and fails as poison, and the innocent one (held
// whenever it shares a channel with the culprit, released 200 ms after
// each later send if its channel still lives) is confirmed. Charging the
// first unconfirmed message made the innocent one poison.
func TestUnexplainedCloseFindsItsCulprit(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	var goodSends atomic.Int32
	srv.OnPublish(func(p *fakebroker.Publish) fakebroker.Reply {
		switch string(p.Body) {
		case "bad":
			return fakebroker.Reply{CloseChannel: 406, Text: "PRECONDITION_FAILED - something about it"}
		case "good":
			if goodSends.Add(1) > 1 {
				conn, ch := p.Conn, p.Channel
				time.AfterFunc(200*time.Millisecond, func() { srv.ReleaseChannel(conn, ch, true) })
			}
			return fakebroker.Reply{Hold: true} // unconfirmed while "bad" follows it
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, srv.URL(), nil)
	p := newTestPublisher(t, c, PublisherConfig{})
	ctx := testCtx(t, 20*time.Second)
	good, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{Body: []byte("good")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitFor(ctx, func() bool { return srv.Held() == 1 }); err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("bad")}); !errors.Is(err, ErrPoison) {
		t.Fatalf("the culprit: %v, want ErrPoison", err)
	}
	if err := good.Wait(ctx); err != nil {
		t.Fatalf("the innocent message: %v, want nil", err)
	}
	if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("after")}); err != nil {
		t.Fatalf("after the isolation: %v", err)
	}
}

// RabbitMQ's 403 for a publish names the exchange ("write access to
// exchange … refused for user …"): that message fails at once, the one
// beside it is sent again.
func TestAccessRefusedFailsItsMessageAtOnce(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	srv.OnPublish(func(p *fakebroker.Publish) fakebroker.Reply {
		switch {
		case p.Exchange == "secret":
			return fakebroker.Reply{CloseChannel: 403, Text: "ACCESS_REFUSED - write access to exchange 'secret' in vhost '/' refused for user 'guest'"}
		case len(srv.Publishes()) == 1:
			return fakebroker.Reply{Hold: true}
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, srv.URL(), nil)
	p := newTestPublisher(t, c, PublisherConfig{AllowUnroutable: true})
	ctx := testCtx(t, 10*time.Second)
	other, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitFor(ctx, func() bool { return srv.Held() == 1 }); err != nil {
		t.Fatal(err)
	}
	err = p.Publish(ctx, "secret", "", amqp.Publishing{})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != 403 || errors.Is(err, ErrPoison) {
		t.Fatalf("publish to a forbidden exchange: %v, want the broker's 403 at once", err)
	}
	if n := len(srv.Publishes()); n > 3 {
		t.Fatalf("%d publishes: the refused message was sent again", n)
	}
	if err := other.Wait(ctx); err != nil {
		t.Fatalf("the message beside it: %v", err)
	}
}

// A channel retired after a nack still has its confirm timeout: a message
// left unconfirmed on it is sent again on a fresh channel. (amqp091-go
// hands confirms over in publish order, so the nacked message goes first,
// its nack delayed until the held one is in flight behind it.)
func TestRetiredChannelStillTimesOut(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	var n atomic.Int32
	srv.OnPublish(func(p *fakebroker.Publish) fakebroker.Reply {
		switch n.Add(1) {
		case 1:
			return fakebroker.Reply{Nack: true, Delay: 100 * time.Millisecond} // retires the channel, once "stuck" is on it
		case 2:
			return fakebroker.Reply{Hold: true} // never confirmed on this channel
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, srv.URL(), nil)
	p := newTestPublisher(t, c, PublisherConfig{ConfirmTimeout: 500 * time.Millisecond})
	ctx := testCtx(t, 10*time.Second)
	nacked, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{Body: []byte("nacked once")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitFor(ctx, func() bool { return len(srv.Publishes()) == 1 }); err != nil {
		t.Fatal(err)
	}
	stuck, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{Body: []byte("stuck")})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitFor(ctx, func() bool { return srv.Held() == 1 }); err != nil {
		t.Fatal(err)
	}
	if err := nacked.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := stuck.Wait(ctx); err != nil {
		t.Fatalf("message left on the retired channel: %v", err)
	}
}

// A declaration the broker refuses by closing the whole connection (an
// exchange type it does not know: 503 on RabbitMQ 3.10) is its answer: it
// is returned, not asked again of every next connection.
func TestConnectionLevelRefusalIsNotRetried(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if m.Name == "exchange.declare" && m.Kind == "x-unknown" {
			return fakebroker.Reply{CloseConnection: 503, Text: "COMMAND_INVALID - unknown exchange type 'x-unknown'"}
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 10*time.Second)
	err := c.DeclareExchange(ctx, Exchange{Name: "e", Kind: "x-unknown"})
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != 503 {
		t.Fatalf("DeclareExchange: %v, want the broker's 503", err)
	}
	asked := 0
	for _, m := range srv.Methods() {
		if m.Name == "exchange.declare" && m.Kind == "x-unknown" {
			asked++
		}
	}
	if asked != 1 {
		t.Fatalf("asked %d times", asked)
	}
}

// Publishes racing with Close all resolve: none is left in a queue that
// nobody reads any more.
func TestPublishesRacingCloseAllResolve(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	srv.OnPublish(func(*fakebroker.Publish) fakebroker.Reply { return fakebroker.Reply{Delay: time.Millisecond} })
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 30*time.Second)
	for range 20 {
		p := newTestPublisher(t, c, PublisherConfig{Window: 8})
		var wg sync.WaitGroup
		var mu sync.Mutex
		var confs []*Confirmation
		for range 4 {
			wg.Go(func() {
				for range 50 {
					cf, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{})
					if err != nil {
						return // closed
					}
					mu.Lock()
					confs = append(confs, cf)
					mu.Unlock()
				}
			})
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
		p.Close(cctx)
		cancel()
		wg.Wait()
		for _, cf := range confs {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := cf.Wait(wctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("a publish made while closing never resolved")
			}
		}
	}
}

// gateCtx stops the first caller of Done until gate is closed: a Publish
// paused after its closed check, as a preempted goroutine would be.
type gateCtx struct {
	context.Context
	once    sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func (g *gateCtx) Done() <-chan struct{} {
	g.once.Do(func() {
		close(g.entered)
		<-g.gate
	})
	return g.Context.Done()
}

// The deterministic companion of TestPublishesRacingCloseAllResolve: a
// PublishAsync that passed the closed check is held while Close runs to
// its end; its confirmation still resolves.
func TestPublishPausedAcrossCloseResolves(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 30*time.Second)
	p := newTestPublisher(t, c, PublisherConfig{})
	g := &gateCtx{Context: ctx, entered: make(chan struct{}), gate: make(chan struct{})}
	type result struct {
		cf  *Confirmation
		err error
	}
	res := make(chan result, 1)
	go func() {
		cf, err := p.PublishAsync(g, "", "q", amqp.Publishing{})
		res <- result{cf, err}
	}()
	<-g.entered
	cctx, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	p.Close(cctx)
	cancel()
	close(g.gate)
	r := <-res
	t.Logf("PublishAsync: %v", r.err)
	if r.err != nil {
		return // refused: nothing to resolve
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := r.cf.Wait(wctx)
	t.Logf("Wait: %v", err)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("a publish made while closing never resolved")
	}
}

// stuckMetrics is a Metrics whose Confirmed blocks until release closes,
// as a slow metrics backend would.
type stuckMetrics struct {
	metricsLog
	release chan struct{}
}

func (m *stuckMetrics) Confirmed(time.Duration) { <-m.release }

// Item 4: user code (Metrics here) never runs where it can delay confirms:
// with Confirmed blocked, the next publishes are still confirmed.
func TestSlowMetricsDoNotDelayConfirms(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	m := &stuckMetrics{release: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(m.release)
		}
	}
	defer release()
	c := fakeClient(t, srv.URL(), func(c *Config) { c.Metrics = m })
	p := newTestPublisher(t, c, PublisherConfig{})
	ctx := testCtx(t, 10*time.Second)
	for i := range 5 {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := p.Publish(pctx, "", "q", amqp.Publishing{})
		cancel()
		if err != nil {
			t.Fatalf("publish %d while Metrics.Confirmed blocks: %v", i, err)
		}
	}
	release()
}

// Messages published one after another from one goroutine reach the broker
// in that order, also while the publisher's channel is still being opened
// (the first ones wait in the queue; later ones must not overtake them).
func TestOrderKeptFromTheFirstMessage(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	srv.OnMethod(func(m *fakebroker.Method) fakebroker.Reply {
		if m.Name == "confirm.select" {
			return fakebroker.Reply{Delay: 5 * time.Millisecond} // the channel opens while messages come
		}
		return fakebroker.Reply{}
	})
	c := fakeClient(t, srv.URL(), nil)
	ctx := testCtx(t, 10*time.Second)
	p := newTestPublisher(t, c, PublisherConfig{})
	const n = 300
	confs := make([]*Confirmation, 0, n)
	for i := range n {
		cf, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{Body: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		confs = append(confs, cf)
	}
	for _, cf := range confs {
		if err := cf.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, pub := range srv.Publishes() {
		if string(pub.Body) != strconv.Itoa(i) {
			t.Fatalf("publish %d carried message %s: order lost", i, pub.Body)
		}
	}
}
