package amqphatest_test

import (
	"slices"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha/amqphatest"
)

// FuzzPublish gives Server.Publish any exchange, routing key, body and
// header: it routes by the rules or returns an error, never panics, and
// what it stores is what was given.
func FuzzPublish(f *testing.F) {
	f.Add("", "q1", []byte("body"), "h", "v")
	f.Add("t", "any.key", []byte{}, "x-match", "any")
	f.Add("missing", "k", []byte(nil), "", "")
	f.Add("amq.fanout", "", []byte{0, 1, 2}, "k\x00", "\xff")
	srv := amqphatest.NewServer(f, amqphatest.WithNodes(1))
	conn, err := amqp.Dial(srv.URL(0))
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		f.Fatal(err)
	}
	if _, err := ch.QueueDeclare("q1", true, false, false, false, nil); err != nil {
		f.Fatal(err)
	}
	if err := ch.ExchangeDeclare("t", "topic", true, false, false, false, nil); err != nil {
		f.Fatal(err)
	}
	if err := ch.QueueBind("q1", "#", "t", false, nil); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, exchange, key string, body []byte, hk, hv string) {
		before := len(srv.Ready("q1"))
		msg := amqp.Publishing{Body: body, Headers: amqp.Table{hk: hv}}
		queues, err := srv.Publish(exchange, key, msg)
		known := exchange == "" || exchange == "t" || slices.Contains([]string{"amq.direct", "amq.fanout", "amq.topic", "amq.headers", "amq.match"}, exchange)
		fits := len(exchange) <= 255 && len(key) <= 255 && len(hk) <= 255
		if (err == nil) != (known && fits) {
			t.Fatalf("Publish(%q, %q) = %v; exchange known %v, sizes fit %v", exchange, key, err, known, fits)
		}
		if err != nil {
			return
		}
		want := (exchange == "" && key == "q1") || exchange == "t"
		if got := slices.Equal(queues, []string{"q1"}); got != want {
			t.Fatalf("Publish(%q, %q) routed to %v", exchange, key, queues)
		}
		ready := srv.Ready("q1")
		if !want {
			if len(ready) != before {
				t.Fatal("an unrouted message was stored")
			}
			return
		}
		m := ready[len(ready)-1]
		if string(m.Body) != string(body) || m.Headers[hk] != hv || m.Exchange != exchange || m.RoutingKey != key {
			t.Fatalf("stored %+v, want body %q header %q=%q", m, body, hk, hv)
		}
	})
}

// FuzzNodeIndex: any string names a node or none, never a panic; a node's
// own URL, its host:port and amqpha's redacted form name it.
func FuzzNodeIndex(f *testing.F) {
	srv := amqphatest.NewServer(f, amqphatest.WithNodes(2))
	for _, s := range []string{srv.URL(1), "amqp://guest:xxxxx@" + srv.URL(0)[len("amqp://guest:guest@"):], "", "%", "amqp://[::1", "127.0.0.1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		i := srv.NodeIndex(addr)
		if i < -1 || i >= srv.Nodes() {
			t.Fatalf("NodeIndex(%q) = %d", addr, i)
		}
		if i >= 0 && !strings.Contains(addr, srv.URL(i)[len("amqp://guest:guest@"):len(srv.URL(i))-1]) {
			t.Fatalf("NodeIndex(%q) = %d, whose address it does not contain", addr, i)
		}
	})
}
