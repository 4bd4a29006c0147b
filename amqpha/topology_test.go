package amqpha

import (
	"errors"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

func recordNames(t *topology) []string {
	var out []string
	for _, r := range t.records {
		out = append(out, r.String())
	}
	return out
}

func TestTopologyRecordsInOrderAndReplacesRedeclarations(t *testing.T) {
	tp := newTopology()
	tp.recordExchangeLocked(Exchange{Name: "orders", Kind: "topic"})
	tp.recordQueueLocked(QuorumQueue("q1"), "q1")
	tp.recordQueueBindingLocked(QueueBinding{Queue: "q1", Exchange: "orders", Key: "a"})
	tp.recordQueueBindingLocked(QueueBinding{Queue: "q1", Exchange: "orders", Key: "a"}) // again
	tp.recordExchangeLocked(Exchange{Name: "orders", Kind: "topic", Durable: true})      // changed
	tp.recordExchangeBindingLocked(ExchangeBinding{Destination: "orders", Source: "all", Key: "#"})
	want := []string{
		`exchange "orders"`,
		`queue "q1"`,
		`binding of queue "q1" to exchange "orders" (key "a")`,
		`binding of exchange "orders" to exchange "all" (key "#")`,
	}
	got := recordNames(tp)
	if len(got) != len(want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("record %d is %s, want %s", i, got[i], want[i])
		}
	}
	if !tp.records[0].ex.Durable {
		t.Fatal("a redeclared exchange keeps its old definition")
	}
}

func TestTopologyForgetsDeletedEntitiesAndTheirBindings(t *testing.T) {
	tp := newTopology()
	tp.recordExchangeLocked(Exchange{Name: "x"})
	tp.recordExchangeLocked(Exchange{Name: "y"})
	tp.recordQueueLocked(Queue{Name: "q", Durable: true}, "q")
	tp.recordQueueBindingLocked(QueueBinding{Queue: "q", Exchange: "x", Key: "k"})
	tp.recordQueueBindingLocked(QueueBinding{Queue: "q", Exchange: "y", Key: "k"})
	tp.recordExchangeBindingLocked(ExchangeBinding{Destination: "y", Source: "x"})

	tp.forgetQueueBindingLocked(QueueBinding{Queue: "q", Exchange: "y", Key: "k"})
	if n := len(tp.records); n != 5 {
		t.Fatalf("after unbind: %q", recordNames(tp))
	}
	tp.forgetExchangeLocked("x")
	if got := recordNames(tp); len(got) != 2 || got[0] != `exchange "y"` || got[1] != `queue "q"` {
		t.Fatalf("after deleting exchange x: %q", got)
	}
	tp.forgetQueueLocked("q")
	if got := recordNames(tp); len(got) != 1 || len(tp.queues) != 0 {
		t.Fatalf("after deleting queue q: %q, %d queue names", got, len(tp.queues))
	}
	// A queue declared elsewhere: deleting it forgets its bindings.
	tp.recordQueueBindingLocked(QueueBinding{Queue: "theirs", Exchange: "y"})
	tp.forgetQueueLocked("theirs")
	if got := recordNames(tp); len(got) != 1 {
		t.Fatalf("after deleting an unrecorded queue: %q", got)
	}
}

func TestServerNamedQueueKeepsItsFirstNameForBindingsAndConsumers(t *testing.T) {
	const first = "amq.gen-JzTY20BRgKO-HjmUJj0wLg" // as the first connection's broker named it
	tp := newTopology()
	tp.recordQueueLocked(Queue{Exclusive: true}, first)
	tp.recordQueueBindingLocked(QueueBinding{Queue: first, Exchange: "events"})
	q := tp.queues[first]
	if q.home() != roleConsume {
		t.Fatalf("a server-named exclusive queue's home is %v, want the consumers' connection", q.home())
	}
	if h := tp.homeLocked(tp.records[1]); h != roleConsume {
		t.Fatalf("its binding's home is %v, want the consumers' connection", h)
	}
	// A failover: the queue is declared again on a new connection, and
	// the broker names it anew.
	srv := fakebroker.Start(t)
	redeclare := func() string {
		t.Helper()
		conn, err := amqp.Dial("amqp://guest:guest@" + srv.Addr() + "/")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		renamed, err := tp.declare(ch, tp.records[0])
		if err != nil {
			t.Fatal(err)
		}
		return renamed
	}
	second := redeclare()
	if second == "" || second == first {
		t.Fatalf("declared again, the queue was renamed to %q; want the broker's new name", second)
	}
	if got := tp.currentName(first); got != second {
		t.Fatalf("current name of %s is %q, want %q, the name the broker gave", first, got, second)
	}
	// The program may bind with either name; the record keeps the first.
	tp.recordQueueBindingLocked(QueueBinding{Queue: second, Exchange: "more"})
	if b := tp.records[2].qb; b.Queue != first {
		t.Fatalf("binding recorded for queue %q, want its first name", b.Queue)
	}
	// Another failover: the name in between is forgotten.
	third := redeclare()
	if third == "" || third == second {
		t.Fatalf("declared a third time, the queue was renamed to %q", third)
	}
	if got := tp.currentName(first); got != third {
		t.Fatalf("current name of %s is %q, want %q", first, got, third)
	}
	if tp.queues[second] != nil {
		t.Fatalf("the name %s the queue no longer has is still recorded", second)
	}
	if got := tp.currentName("unknown"); got != "unknown" {
		t.Fatalf("an unknown name maps to %q", got)
	}
	// Durable named queues live on every connection.
	tp.recordQueueLocked(QuorumQueue("jobs"), "jobs")
	if h := tp.queues["jobs"].home(); h != rolePublish|roleConsume {
		t.Fatalf("a named durable queue's home is %v", h)
	}
}

func TestRecordedArgumentsAreCopies(t *testing.T) {
	tp := newTopology()
	args := amqp.Table{"x-max-length": int32(10)}
	tp.recordQueueLocked(Queue{Name: "q", Args: args}, "q")
	args["x-max-length"] = int32(20)
	if v := tp.queues["q"].decl.Args["x-max-length"]; v != int32(10) {
		t.Fatalf("the record changed with the caller's table: %v", v)
	}
}

func TestBrokerRefusalTellsChannelErrorsFromConnectionErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&amqp.Error{Code: amqp.PreconditionFailed, Server: true}, true},
		{&amqp.Error{Code: amqp.NotFound, Server: true}, true},
		{&amqp.Error{Code: amqp.ResourceLocked, Server: true}, true},
		{&amqp.Error{Code: amqp.ConnectionForced, Server: true}, false},
		{amqp.ErrClosed, false},
		{errors.New("eof"), false},
	} {
		if got := isBrokerRefusal(tc.err); got != tc.want {
			t.Errorf("isBrokerRefusal(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
