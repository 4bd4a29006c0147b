package amqpha

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// outcomes records what publish hooks heard, by message-id.
type outcomes struct {
	mu   sync.Mutex
	seen map[string][]PublishResult
	log  []string // "before NAME ID" and "done NAME ID", in order
}

func newOutcomes() *outcomes { return &outcomes{seen: map[string][]PublishResult{}} }

// hook is a PublishHook named name that sets header name=id and records
// its calls.
func (o *outcomes) hook(name string) PublishHook {
	return func(ctx context.Context, m *OutgoingMessage) func(PublishResult) {
		id := m.Msg.MessageId
		o.mu.Lock()
		o.log = append(o.log, "before "+name+" "+id)
		o.mu.Unlock()
		m.SetHeader(name, id)
		return func(r PublishResult) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.log = append(o.log, "done "+name+" "+id)
			if name == "outer" {
				o.seen[id] = append(o.seen[id], r)
			}
		}
	}
}

// only returns the one outcome of message id, failing if there is not
// exactly one.
func (o *outcomes) only(t *testing.T, id string) PublishResult {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if n := len(o.seen[id]); n != 1 {
		t.Fatalf("message %s: %d outcomes reported, want 1", id, n)
	}
	return o.seen[id][0]
}

// The hooks run in order in the publishing goroutine, see the message as
// it will be sent, add headers that reach the broker without touching the
// caller's map, and hear the outcome in reverse order, once.
func TestPublishHooksRunInOrderAndAddHeaders(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	o := newOutcomes()
	var sawOuter atomic.Bool
	inner := func(ctx context.Context, m *OutgoingMessage) func(PublishResult) {
		sawOuter.Store(m.Msg.Headers["outer"] == m.Msg.MessageId && m.Msg.DeliveryMode == amqp.Persistent)
		return o.hook("inner")(ctx, m)
	}
	c := fakeClient(t, srv.URL(), func(cfg *Config) { cfg.PublishHooks = []PublishHook{o.hook("outer"), inner} })
	p := newTestPublisher(t, c, PublisherConfig{})
	ctx := testCtx(t, 10*time.Second)

	callers := amqp.Table{"caller": "x"}
	if err := p.Publish(ctx, "", "q", amqp.Publishing{MessageId: "sync", Headers: callers}); err != nil {
		t.Fatal(err)
	}
	// Publish's outcome is heard before it returns.
	r := o.only(t, "sync")
	if r.Err != nil || r.Peer != srv.Addr() || len(r.Resends) != 0 || r.At.IsZero() {
		t.Fatalf("outcome %+v, want nil error from %s, no resends", r, srv.Addr())
	}
	conf, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{MessageId: "async", Headers: callers})
	if err != nil {
		t.Fatal(err)
	}
	if err := conf.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil { // waits for the async outcome
		t.Fatal(err)
	}
	if r := o.only(t, "async"); r.Err != nil || r.Peer != srv.Addr() {
		t.Fatalf("async outcome %+v", r)
	}
	if !sawOuter.Load() {
		t.Error("the second hook did not see the first one's header or the filled-in DeliveryMode")
	}
	if !maps.Equal(callers, amqp.Table{"caller": "x"}) {
		t.Errorf("the caller's headers became %v", callers)
	}
	want := []string{"before outer sync", "before inner sync", "done inner sync", "done outer sync",
		"before outer async", "before inner async", "done inner async", "done outer async"}
	if fmt.Sprint(o.log) != fmt.Sprint(want) {
		t.Errorf("calls %v, want %v", o.log, want)
	}
	pubs := srv.Publishes()
	if len(pubs) != 2 {
		t.Fatalf("%d publishes reached the broker, want 2", len(pubs))
	}
	for _, pub := range pubs {
		id := pub.Props.MessageID
		if h := pub.Props.Headers; h["outer"] != id || h["inner"] != id || h["caller"] != "x" {
			t.Errorf("message %s reached the broker with headers %v", id, h)
		}
	}
}

// Every publish a hook saw gets exactly one outcome, whatever happens to
// it: confirmed after a nack or a lost connection (with the resends
// listed), nacked for good, returned, refused for a header a hook added,
// its context ended while the broker held it.
func TestPublishOutcomeReportedOnce(t *testing.T) {
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			srv := fakebroker.Start(t)
			srv.DeclareQueue("q")
			var mu sync.Mutex
			sends := map[string]int{}
			srv.OnPublish(func(pub *fakebroker.Publish) fakebroker.Reply {
				mu.Lock()
				defer mu.Unlock()
				id := pub.Props.MessageID
				sends[id]++
				switch {
				case id == "nack-once" && sends[id] == 1, id == "nack-always":
					return fakebroker.Reply{Nack: true}
				case id == "drop-once" && sends[id] == 1:
					return fakebroker.Reply{Drop: true}
				case id == "held":
					return fakebroker.Reply{Hold: true}
				}
				return fakebroker.Reply{}
			})
			o := newOutcomes()
			bad := func(_ context.Context, m *OutgoingMessage) func(PublishResult) {
				if m.Msg.MessageId == "bad-header" {
					m.SetHeader("h", struct{}{}) // no AMQP type
				}
				return nil
			}
			c := fakeClient(t, srv.URL(), func(cfg *Config) {
				cfg.PublishHooks = []PublishHook{o.hook("outer"), bad}
				cfg.HangTimeout = -1
			})
			p := newTestPublisher(t, c, PublisherConfig{NackRetryFor: 50 * time.Millisecond})
			publish := func(ctx context.Context, id, key string) error {
				msg := amqp.Publishing{MessageId: id}
				if !async {
					return p.Publish(ctx, "", key, msg)
				}
				conf, err := p.PublishAsync(ctx, "", key, msg)
				if err != nil {
					return err
				}
				return conf.Wait(testCtx(t, 10*time.Second))
			}
			ctx := testCtx(t, 20*time.Second)
			for _, tc := range []struct {
				id, key  string
				timeout  time.Duration // of the publish's own context
				want     error         // errors.Is
				resends  []ResendReason
				answered bool // Peer set
			}{
				{id: "plain", key: "q", answered: true},
				{id: "nack-once", key: "q", resends: []ResendReason{ResendNacked}, answered: true},
				{id: "nack-always", key: "q", want: ErrNacked, answered: true},
				{id: "drop-once", key: "q", resends: []ResendReason{ResendConnectionLost}, answered: true},
				{id: "unroutable", key: "nowhere", want: ErrUnroutable, answered: true},
				{id: "bad-header", key: "q", want: ErrInvalidMessage},
				{id: "held", key: "q", timeout: 200 * time.Millisecond, want: context.DeadlineExceeded},
			} {
				pctx := ctx
				if tc.timeout > 0 {
					pctx = testCtx(t, tc.timeout)
				}
				err := publish(pctx, tc.id, tc.key)
				if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("%s: %v, want %v", tc.id, err, tc.want)
				}
				if async {
					p.user.flush(ctx) // the outcome comes through the client's user calls
				}
				r := o.only(t, tc.id)
				if !errors.Is(r.Err, err) || (r.Err == nil) != (err == nil) {
					t.Errorf("%s: outcome error %v, the caller got %v", tc.id, r.Err, err)
				}
				if (r.Peer != "") != tc.answered {
					t.Errorf("%s: outcome peer %q, want it set: %v", tc.id, r.Peer, tc.answered)
				}
				var reasons []ResendReason
				for _, rs := range r.Resends {
					reasons = append(reasons, rs.Reason)
					if rs.At.IsZero() || rs.At.After(r.At) || rs.Peer != srv.Addr() {
						t.Errorf("%s: resend %+v (outcome at %v)", tc.id, rs, r.At)
					}
				}
				if tc.id == "nack-always" {
					if len(reasons) == 0 || reasons[0] != ResendNacked {
						t.Errorf("%s: resends %v, want nacked ones", tc.id, reasons)
					}
				} else if fmt.Sprint(reasons) != fmt.Sprint(tc.resends) {
					t.Errorf("%s: resends %v, want %v", tc.id, reasons, tc.resends)
				}
			}
			srv.Release(true)
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for id, rs := range o.seen {
				if len(rs) != 1 {
					t.Errorf("message %s: %d outcomes after Close", id, len(rs))
				}
			}
			for _, pub := range srv.Publishes() {
				if pub.Props.MessageID == "bad-header" {
					t.Error("the message a hook spoilt reached the broker")
				}
			}
		})
	}
}

// An outcome function that blocks delays neither confirms nor other
// publishes: PublishAsync's outcomes run on the client's user-code
// goroutine, Publish's in its own caller's goroutine, and a slow hook
// holds up only the caller that runs it.
func TestPublishHooksNeverDelayConfirms(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	release := make(chan struct{})
	var heard atomic.Int64
	hook := func(_ context.Context, m *OutgoingMessage) func(PublishResult) {
		if m.Msg.MessageId == "slow-caller" {
			<-release
		}
		return func(PublishResult) {
			if m.Msg.MessageId != "sync" {
				<-release
			}
			heard.Add(1)
		}
	}
	c := fakeClient(t, srv.URL(), func(cfg *Config) { cfg.PublishHooks = []PublishHook{hook} })
	p := newTestPublisher(t, c, PublisherConfig{})
	ctx := testCtx(t, 10*time.Second)
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // before the client closes, also on failure

	slow := make(chan error, 1)
	go func() { slow <- p.Publish(ctx, "", "q", amqp.Publishing{MessageId: "slow-caller"}) }()
	var confs []*Confirmation
	for i := range 20 {
		conf, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{MessageId: fmt.Sprint("async-", i)})
		if err != nil {
			t.Fatal(err)
		}
		confs = append(confs, conf)
	}
	for i, conf := range confs {
		if err := conf.Wait(ctx); err != nil {
			t.Fatalf("confirmation %d while its outcome function blocks: %v", i, err)
		}
	}
	if err := p.Publish(ctx, "", "q", amqp.Publishing{MessageId: "sync"}); err != nil {
		t.Fatalf("Publish while other outcome functions block: %v", err)
	}
	if n := heard.Load(); n != 1 {
		t.Fatalf("%d outcomes heard before the release, want 1 (Publish's own)", n)
	}
	unblock()
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := heard.Load(); n != 22 {
		t.Fatalf("%d outcomes heard after Close, want 22", n)
	}
}

type ctxKey string

// The handler's context carries the values of the context given to
// Consume, lives on after that context ends, and is what the consume
// hooks make of it; the first hook is the outermost.
func TestConsumeHooksWrapTheHandler(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	var order []string
	var mu sync.Mutex
	wrap := func(name string) ConsumeHook {
		return func(next Handler) Handler {
			return func(ctx context.Context, d *Delivery) Action {
				mu.Lock()
				order = append(order, name)
				mu.Unlock()
				return next(context.WithValue(ctx, ctxKey(name), d.Queue()), d)
			}
		}
	}
	c := fakeClient(t, srv.URL(), func(cfg *Config) { cfg.ConsumeHooks = []ConsumeHook{wrap("outer"), wrap("inner")} })
	type seen struct {
		fromConsume, outer, inner any
		ctxErr                    error
	}
	got := make(chan seen, 1)
	consumeCtx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey("app"), "from Consume"))
	_, err := c.Consume(consumeCtx, "q", ConsumerConfig{}, func(ctx context.Context, d *Delivery) Action {
		got <- seen{ctx.Value(ctxKey("app")), ctx.Value(ctxKey("outer")), ctx.Value(ctxKey("inner")), ctx.Err()}
		return Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	cancel() // bounds only Consume
	if err := srv.Deliver("q", fakebroker.Properties{}, []byte("m")); err != nil {
		t.Fatal(err)
	}
	var s seen
	select {
	case s = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing handled")
	}
	if s.fromConsume != "from Consume" || s.outer != "q" || s.inner != "q" || s.ctxErr != nil {
		t.Fatalf("handler context: %+v; want Consume's value, both hooks' values (the queue's name), not ended", s)
	}
	if fmt.Sprint(order) != "[outer inner]" {
		t.Fatalf("hooks ran %v, want [outer inner]", order)
	}
}

// Nil hooks are refused when the client is configured; a consume hook
// that returns no handler, by Consume.
func TestNilHooksRefused(t *testing.T) {
	for _, cfg := range []Config{
		{Nodes: []string{"amqp://h"}, PublishHooks: []PublishHook{nil}},
		{Nodes: []string{"amqp://h"}, ConsumeHooks: []ConsumeHook{func(h Handler) Handler { return h }, nil}},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", cfg)
		}
	}
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), func(cfg *Config) {
		cfg.ConsumeHooks = []ConsumeHook{func(Handler) Handler { return nil }}
	})
	_, err := c.Consume(testCtx(t, 5*time.Second), "q", ConsumerConfig{}, func(context.Context, *Delivery) Action { return Ack })
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Consume with a hook that returns nil: %v, want ErrInvalidArgument", err)
	}
}

// A hook that clears the message-id or the delivery mode does not take
// away what amqpha promises: a unique id, persistence by default.
func TestHookCannotClearDefaults(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	clear := func(_ context.Context, m *OutgoingMessage) func(PublishResult) {
		m.Msg.MessageId, m.Msg.DeliveryMode = "", 0
		return nil
	}
	c := fakeClient(t, srv.URL(), func(cfg *Config) { cfg.PublishHooks = []PublishHook{clear} })
	p := newTestPublisher(t, c, PublisherConfig{})
	if err := p.Publish(testCtx(t, 10*time.Second), "", "q", amqp.Publishing{}); err != nil {
		t.Fatal(err)
	}
	if pub := srv.Publishes()[0]; pub.Props.MessageID == "" || pub.Props.DeliveryMode != amqp.Persistent {
		t.Fatalf("sent with message-id %q, delivery mode %d", pub.Props.MessageID, pub.Props.DeliveryMode)
	}
}
