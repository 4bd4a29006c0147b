package fakebroker

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// channelOf opens a plain channel on a fresh connection to s.
func channelOf(t *testing.T, s *Server) *amqp.Channel {
	t.Helper()
	ch, err := dial(t, s).Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

// mustDo fails t if err is not nil.
func mustDo(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantAMQPError fails t unless err is an *amqp.Error with code and text
// containing sub.
func wantAMQPError(t *testing.T, err error, code int, sub string) {
	t.Helper()
	var ae *amqp.Error
	if !errors.As(err, &ae) || ae.Code != code || !strings.Contains(ae.Reason, sub) {
		t.Fatalf("error %v, want %d containing %q", err, code, sub)
	}
}

func declareQ(t *testing.T, ch *amqp.Channel, name string, args amqp.Table) {
	t.Helper()
	_, err := ch.QueueDeclare(name, true, false, false, false, args)
	mustDo(t, "declare "+name, err)
}

func TestStoreRouting(t *testing.T) {
	s := Start(t, WithStore())
	ch := channelOf(t, s)
	for _, q := range []string{"d", "f1", "f2", "t", "h", "e2e"} {
		declareQ(t, ch, q, nil)
	}
	mustDo(t, "ex direct", ch.ExchangeDeclare("xd", "direct", true, false, false, false, nil))
	mustDo(t, "ex fanout", ch.ExchangeDeclare("xf", "fanout", true, false, false, false, nil))
	mustDo(t, "ex topic", ch.ExchangeDeclare("xt", "topic", true, false, false, false, nil))
	mustDo(t, "ex headers", ch.ExchangeDeclare("xh", "headers", true, false, false, false, nil))
	mustDo(t, "ex inner", ch.ExchangeDeclare("inner", "direct", true, false, false, false, nil))
	mustDo(t, "bind d", ch.QueueBind("d", "k", "xd", false, nil))
	mustDo(t, "bind d again", ch.QueueBind("d", "k", "xd", false, nil)) // idempotent
	mustDo(t, "bind f1", ch.QueueBind("f1", "", "xf", false, nil))
	mustDo(t, "bind f2", ch.QueueBind("f2", "ignored", "xf", false, nil))
	mustDo(t, "bind t", ch.QueueBind("t", "order.*.eu.#", "xt", false, nil))
	mustDo(t, "bind h", ch.QueueBind("h", "", "xh", false, amqp.Table{"x-match": "any", "a": int32(1), "b": "two"}))
	mustDo(t, "bind e2e", ch.ExchangeBind("inner", "k", "xd", false, nil))
	mustDo(t, "bind e2e queue", ch.QueueBind("e2e", "k", "inner", false, nil))

	for _, c := range []struct {
		exchange, key string
		headers       amqp.Table
		want          string
	}{
		{"", "d", nil, "[d]"},
		{"", "nope", nil, "[]"},
		{"xd", "k", nil, "[d e2e]"},
		{"xd", "other", nil, "[]"},
		{"xf", "anything", nil, "[f1 f2]"},
		{"xt", "order.new.eu", nil, "[t]"},
		{"xt", "order.new.eu.fr.paris", nil, "[t]"},
		{"xt", "order.eu", nil, "[]"},
		{"xt", "order.new.us", nil, "[]"},
		{"xh", "", amqp.Table{"a": int64(1)}, "[h]"},
		{"xh", "", amqp.Table{"b": "two"}, "[h]"},
		{"xh", "", amqp.Table{"b": "three"}, "[]"},
		{"amq.fanout", "", nil, "[]"},
	} {
		got, err := s.Send(c.exchange, c.key, Properties{Headers: c.headers}, []byte("x"))
		if err != nil {
			t.Fatalf("Send(%q, %q): %v", c.exchange, c.key, err)
		}
		if fmt.Sprint(got) != c.want {
			t.Errorf("Send(%q, %q, %v) routed to %v, want %s", c.exchange, c.key, c.headers, got, c.want)
		}
	}
	mustDo(t, "unbind", ch.QueueUnbind("f2", "ignored", "xf", nil))
	if got, _ := s.Send("xf", "", Properties{}, nil); fmt.Sprint(got) != "[f1]" {
		t.Errorf("after unbind, fanout routed to %v, want [f1]", got)
	}
	mustDo(t, "delete inner", ch.ExchangeDelete("inner", false, false))
	if got, _ := s.Send("xd", "k", Properties{}, nil); fmt.Sprint(got) != "[d]" {
		t.Errorf("after deleting the inner exchange, routed to %v, want [d]", got)
	}
	if _, err := s.Send("missing", "k", Properties{}, nil); err == nil {
		t.Error("Send to a missing exchange: no error")
	}
	if _, err := s.Send("", strings.Repeat("k", 256), Properties{}, nil); err == nil {
		t.Error("Send with a 256-byte routing key: no error")
	}
	if _, err := s.Send("", "d", Properties{Headers: map[string]any{"bad": struct{}{}}}, nil); err == nil {
		t.Error("Send with an unencodable header: no error")
	}
	if n := len(s.Ready("d")); n != 3 {
		t.Errorf("queue d holds %d messages, want 3", n)
	}

	// A header table with the headers exchange's default x-match (all).
	declareQ(t, ch, "hall", nil)
	mustDo(t, "bind hall", ch.QueueBind("hall", "", "xh", false, amqp.Table{"a": int32(1), "b": nil}))
	if got, _ := s.Send("xh", "", Properties{Headers: map[string]any{"a": int16(1)}}, nil); fmt.Sprint(got) != "[h]" {
		t.Errorf("all-binding matched without b: routed to %v", got)
	}
	if got, _ := s.Send("xh", "", Properties{Headers: map[string]any{"a": int16(1), "b": "any value"}}, nil); fmt.Sprint(got) != "[h hall]" {
		t.Errorf("routed to %v, want [h hall]", got)
	}
}

func TestStorePublishConsumeAck(t *testing.T) {
	s := Start(t, WithStore())
	conn := dial(t, s)
	ch := confirmChannel(t, conn)
	declareQ(t, ch, "q", nil)
	for i := range 5 {
		if !waitConfirm(t, publish(t, ch, "q", true, amqp.Publishing{Body: fmt.Appendf(nil, "%d", i)})) {
			t.Fatal("nacked")
		}
	}
	if ps := s.Publishes(); fmt.Sprint(ps[0].Queues) != "[q]" {
		t.Fatalf("Publish.Queues = %v, want [q]", ps[0].Queues)
	}
	q, err := ch.QueueDeclarePassive("q", true, false, false, false, nil)
	mustDo(t, "passive declare", err)
	if q.Messages != 5 {
		t.Fatalf("declare-ok counts %d messages, want 5", q.Messages)
	}
	cons := channelOf(t, s)
	mustDo(t, "qos", cons.Qos(2, 0, false))
	ds, err := cons.Consume("q", "c1", false, false, false, false, nil)
	mustDo(t, "consume", err)
	d1 := recv(t, ds, "delivery 1")
	d2 := recv(t, ds, "delivery 2")
	waitFor(t, s, "2 unacked", func() bool { return s.Unacked("q") == 2 && len(s.Ready("q")) == 3 })
	select {
	case d := <-ds:
		t.Fatalf("delivery %q beyond the prefetch of 2", d.Body)
	default:
	}
	mustDo(t, "ack multiple", d2.Ack(true))
	_ = d1
	d3 := recv(t, ds, "delivery 3")
	d4 := recv(t, ds, "delivery 4")
	mustDo(t, "nack requeue", d3.Nack(false, true))
	d := recv(t, ds, "redelivery")
	if string(d.Body) != "2" || !d.Redelivered {
		t.Fatalf("after requeue got %q redelivered=%v, want \"2\" redelivered", d.Body, d.Redelivered)
	}
	mustDo(t, "reject", d4.Reject(false))
	mustDo(t, "ack", d.Ack(false))
	d5 := recv(t, ds, "delivery 5")
	mustDo(t, "ack 5", d5.Ack(false))
	waitFor(t, s, "all settled", func() bool { return len(s.Acked("q")) == 4 && len(s.Rejected("q")) == 1 })
	var bodies []string
	for _, m := range s.Acked("q") {
		bodies = append(bodies, string(m.Body))
	}
	if fmt.Sprint(bodies) != "[0 1 2 4]" || string(s.Rejected("q")[0].Body) != "3" {
		t.Fatalf("acked %v rejected %q; want [0 1 2 4] and 3", bodies, s.Rejected("q")[0].Body)
	}
	if s.Unacked("q") != 0 || len(s.Ready("q")) != 0 {
		t.Fatalf("left: %d unacked, %d ready", s.Unacked("q"), len(s.Ready("q")))
	}
}

func TestStoreUnknownTagClosesChannel(t *testing.T) {
	s := Start(t, WithStore())
	ch := channelOf(t, s)
	declareQ(t, ch, "q", nil)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	mustDo(t, "ack", ch.Ack(42, false))
	err := recv(t, closed, "channel close")
	wantAMQPError(t, err, 406, "unknown delivery tag 42")
}

func TestStoreRequeueOnChannelAndConnectionEnd(t *testing.T) {
	s := Start(t, WithStore(), WithNodes(2))
	if got, err := s.Send("", "q", Properties{}, nil); err != nil || len(got) != 0 {
		t.Fatalf("Send to an undeclared queue's name: %v, %v; want no queue, no error", got, err)
	}
	s.DeclareQueue("q")
	for i := range 3 {
		_, err := s.Send("", "q", Properties{MessageID: fmt.Sprint(i)}, nil)
		mustDo(t, "send", err)
	}
	ch := channelOf(t, s)
	ds, err := ch.Consume("q", "", false, false, false, false, nil)
	mustDo(t, "consume", err)
	for range 3 {
		recv(t, ds, "delivery")
	}
	mustDo(t, "close channel", ch.Close())
	waitFor(t, s, "requeue after channel close", func() bool { return len(s.Ready("q")) == 3 })
	for i, m := range s.Ready("q") {
		if !m.Redelivered || m.Props.MessageID != fmt.Sprint(i) || m.Deliveries != 1 {
			t.Fatalf("ready[%d] = %+v, want message %d redelivered after 1 delivery, in order", i, m, i)
		}
	}
	conn, err := amqp.Dial(s.NodeURL(1))
	mustDo(t, "dial node 1", err)
	ch2, err := conn.Channel()
	mustDo(t, "channel", err)
	ds2, err := ch2.Consume("q", "", false, false, false, false, nil)
	mustDo(t, "consume", err)
	for range 3 {
		recv(t, ds2, "delivery")
	}
	s.Kill(1)
	waitFor(t, s, "requeue after the kill", func() bool { return len(s.Ready("q")) == 3 })
	_ = conn.Close()
}

func TestStoreGetPurgeDelete(t *testing.T) {
	s := Start(t, WithStore())
	ch := channelOf(t, s)
	declareQ(t, ch, "q", nil)
	_, ok, err := ch.Get("q", false)
	if err != nil || ok {
		t.Fatalf("Get on an empty queue: ok=%v err=%v", ok, err)
	}
	for range 3 {
		_, err := s.Send("", "q", Properties{}, []byte("m"))
		mustDo(t, "send", err)
	}
	d, ok, err := ch.Get("q", false)
	if err != nil || !ok || d.MessageCount != 2 || d.DeliveryTag != 1 {
		t.Fatalf("Get: ok=%v err=%v count=%d tag=%d; want a message, 2 left, tag 1", ok, err, d.MessageCount, d.DeliveryTag)
	}
	mustDo(t, "nack requeue", d.Nack(false, true))
	_, err = ch.QueueDelete("q", false, true, false)
	wantAMQPError(t, err, 406, "is not empty")
	ch = channelOf(t, s)
	n, err := ch.QueuePurge("q", false)
	if err != nil || n != 3 {
		t.Fatalf("purge: %d, %v; want 3", n, err)
	}
	_, err = s.Send("", "q", Properties{}, []byte("m"))
	mustDo(t, "send", err)
	n, err = ch.QueueDelete("q", false, false, false)
	if err != nil || n != 1 {
		t.Fatalf("delete: %d, %v; want 1", n, err)
	}
	if _, err := ch.QueuePurge("q", false); err == nil {
		t.Fatal("purge of a deleted queue: no error")
	} else {
		wantAMQPError(t, err, 404, "no queue 'q'")
	}
}

func TestStoreRefusals(t *testing.T) {
	s := Start(t, WithStore())
	setup := channelOf(t, s)
	declareQ(t, setup, "q", amqp.Table{"x-queue-type": "quorum"})
	mustDo(t, "exchange", setup.ExchangeDeclare("x", "topic", true, false, false, false, nil))
	mustDo(t, "exclusive consumer", func() error {
		_, err := setup.Consume("q", "only", false, true, false, false, nil)
		return err
	}())
	for _, c := range []struct {
		name string
		do   func(ch *amqp.Channel) error
		code int
		sub  string
	}{
		{"durable differs", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("q", false, false, false, false, amqp.Table{"x-queue-type": "quorum"})
			return err
		}, 406, "inequivalent arg 'durable'"},
		{"args differ", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("q", true, false, false, false, nil)
			return err
		}, 406, "inequivalent arg 'x-queue-type'"},
		{"quorum auto-delete", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("q2", true, true, false, false, amqp.Table{"x-queue-type": "quorum"})
			return err
		}, 406, "invalid property 'auto-delete'"},
		{"reserved queue name", func(ch *amqp.Channel) error {
			_, err := ch.QueueDeclare("amq.mine", true, false, false, false, nil)
			return err
		}, 403, "reserved prefix"},
		{"exchange type differs", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare("x", "direct", true, false, false, false, nil)
		}, 406, "inequivalent arg 'type'"},
		{"bind to a missing queue", func(ch *amqp.Channel) error { return ch.QueueBind("nope", "k", "x", false, nil) }, 404, "no queue 'nope'"},
		{"bind from a missing exchange", func(ch *amqp.Channel) error { return ch.QueueBind("q", "k", "nope", false, nil) }, 404, "no exchange 'nope'"},
		{"bind the default exchange", func(ch *amqp.Channel) error { return ch.QueueBind("q", "k", "", false, nil) }, 403, "default exchange"},
		{"bind from a missing exchange named as the queue", func(ch *amqp.Channel) error { return ch.QueueBind("q", "k", "q", false, nil) }, 404, "no exchange 'q'"},
		{"bind to a missing exchange", func(ch *amqp.Channel) error { return ch.ExchangeBind("nope", "k", "x", false, nil) }, 404, "no exchange 'nope'"},
		{"consume a missing queue", func(ch *amqp.Channel) error {
			_, err := ch.Consume("nope", "", false, false, false, false, nil)
			return err
		}, 404, "no queue 'nope'"},
		{"consume beside an exclusive consumer", func(ch *amqp.Channel) error {
			_, err := ch.Consume("q", "", false, false, false, false, nil)
			return err
		}, 403, "exclusive use"},
		{"publish to a missing exchange", func(ch *amqp.Channel) error {
			mustDo(t, "confirm", ch.Confirm(false))
			closed := ch.NotifyClose(make(chan *amqp.Error, 1))
			mustDo(t, "publish", ch.PublishWithContext(ctx(t), "nope", "k", false, false, amqp.Publishing{}))
			return recv(t, closed, "channel close")
		}, 404, "no exchange 'nope'"},
		{"unknown exchange type", func(ch *amqp.Channel) error {
			return ch.ExchangeDeclare("y", "x-delayed-message", true, false, false, false, nil)
		}, 503, "unknown exchange type"},
		{"delete a built-in exchange", func(ch *amqp.Channel) error { return ch.ExchangeDelete("amq.topic", false, false) }, 403, "amq.topic"},
		{"delete an exchange in use if unused", func(ch *amqp.Channel) error {
			mustDo(t, "bind", ch.QueueBind("q", "#", "x", false, nil))
			return ch.ExchangeDelete("x", true, false)
		}, 406, "in use"},
		{"tx.select", func(ch *amqp.Channel) error { return ch.Tx() }, 540, "tx.select"},
		{"channel.flow false", func(ch *amqp.Channel) error { return ch.Flow(false) }, 540, "active=false"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantAMQPError(t, c.do(channelOf(t, s)), c.code, c.sub)
		})
	}
	if s.HasQueue("q2") || s.HasQueue("amq.mine") || s.HasExchange("y") {
		t.Fatal("a refused declare declared something")
	}
}

func TestStoreDeadLetter(t *testing.T) {
	s := Start(t, WithStore())
	ch := channelOf(t, s)
	mustDo(t, "dlx", ch.ExchangeDeclare("dlx", "fanout", true, false, false, false, nil))
	declareQ(t, ch, "dead", nil)
	mustDo(t, "bind", ch.QueueBind("dead", "", "dlx", false, nil))
	declareQ(t, ch, "work", amqp.Table{"x-dead-letter-exchange": "dlx", "x-queue-type": "quorum"})
	_, err := s.Send("", "work", Properties{MessageID: "m1"}, []byte("x"))
	mustDo(t, "send", err)
	ds, err := ch.Consume("work", "", false, false, false, false, nil)
	mustDo(t, "consume", err)
	d := recv(t, ds, "delivery")
	mustDo(t, "requeue", d.Nack(false, true))
	d = recv(t, ds, "redelivery")
	if d.Headers["x-delivery-count"] != int64(1) {
		t.Fatalf("quorum redelivery x-delivery-count = %v, want 1", d.Headers["x-delivery-count"])
	}
	mustDo(t, "reject", d.Reject(false))
	waitFor(t, s, "dead-lettered", func() bool { return len(s.Ready("dead")) == 1 })
	m := s.Ready("dead")[0]
	if m.Props.MessageID != "m1" || m.Props.Headers["x-first-death-reason"] != "rejected" || m.Props.Headers["x-first-death-queue"] != "work" {
		t.Fatalf("dead-lettered message %+v", m)
	}
}

func TestNodes(t *testing.T) {
	s := Start(t, WithStore(), WithNodes(3))
	if s.Nodes() != 3 || s.NodeURL(0) != s.URL() || s.NodeAddr(1) == s.NodeAddr(2) {
		t.Fatalf("nodes %d, urls %s %s %s", s.Nodes(), s.NodeURL(0), s.NodeURL(1), s.NodeURL(2))
	}
	// One namespace: declared on node 0, seen on node 2.
	declareQ(t, channelOf(t, s), "shared", nil)
	c2, err := amqp.Dial(s.NodeURL(2))
	mustDo(t, "dial node 2", err)
	defer c2.Close()
	ch2, err := c2.Channel()
	mustDo(t, "channel", err)
	_, err = ch2.QueueDeclarePassive("shared", true, false, false, false, nil)
	mustDo(t, "passive declare on another node", err)
	if s.OpenConnectionsOn(2) != 1 || s.OpenConnectionsOn(1) != 0 {
		t.Fatalf("connections per node: %d %d, want 0 on node 1 and 1 on node 2", s.OpenConnectionsOn(1), s.OpenConnectionsOn(2))
	}
	closed := c2.NotifyClose(make(chan *amqp.Error, 1))
	s.Kill(2)
	recv(t, closed, "close of the killed node's connection")
	if _, err := amqp.Dial(s.NodeURL(2)); err == nil {
		t.Fatal("dial of a killed node succeeded")
	}
	s.Revive(2)
	c3, err := amqp.Dial(s.NodeURL(2))
	mustDo(t, "dial of a revived node", err)
	closed = c3.NotifyClose(make(chan *amqp.Error, 1))
	s.Shutdown(2)
	wantAMQPError(t, recv(t, closed, "shutdown close"), 320, "shutdown")
	if _, err := amqp.Dial(s.NodeURL(2)); err == nil {
		t.Fatal("dial of a shut-down node succeeded")
	}
	s.Revive(2)

	// A hung node writes nothing: a publish on it gets no confirm until
	// Revive, and a new connection gets no handshake.
	c4, err := amqp.Dial(s.NodeURL(1))
	mustDo(t, "dial node 1", err)
	defer c4.Close()
	ch4 := confirmChannel(t, c4)
	s.Hang(1)
	dc := publish(t, ch4, "shared", true, amqp.Publishing{})
	select {
	case <-dc.Done():
		t.Fatal("a hung node confirmed")
	default:
	}
	if _, err := amqp.DialConfig(s.NodeURL(1), amqp.Config{Dial: amqp.DefaultDial(200 * time.Millisecond)}); err == nil {
		t.Fatal("handshake with a hung node succeeded")
	}
	s.Revive(1)
	if !waitConfirm(t, dc) {
		t.Fatal("nacked after Revive")
	}
	if s.NodeOf(1) != 0 || s.NodeOf(999) != -1 {
		t.Fatalf("NodeOf: %d, %d", s.NodeOf(1), s.NodeOf(999))
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("Kill(3) of a 3-node server did not panic")
			}
		}()
		s.Kill(3)
	}()
}

// A hung node writes nothing, deliveries included, until Revive.
func TestHangWritesNothing(t *testing.T) {
	s := Start(t, WithNodes(2))
	conn := dial(t, s)
	ch, err := conn.Channel()
	mustDo(t, "channel", err)
	ds, err := ch.Consume("q", "", true, false, false, false, nil)
	mustDo(t, "consume", err)
	s.Hang(0)
	mustDo(t, "deliver", s.Deliver("q", Properties{}, []byte("held")))
	// A connection to the other node works meanwhile: the hang is node 0's.
	other, err := amqp.Dial(s.NodeURL(1))
	mustDo(t, "dial node 1", err)
	mustDo(t, "close node 1", other.Close())
	select {
	case d := <-ds:
		t.Fatalf("a hung node delivered %q", d.Body)
	default:
	}
	s.Revive(0)
	if d := recv(t, ds, "delivery after Revive"); string(d.Body) != "held" {
		t.Fatalf("got %q", d.Body)
	}
}

func TestStoreLengthLimits(t *testing.T) {
	s := Start(t, WithStore())
	ch := confirmChannel(t, dial(t, s))
	mustDo(t, "dlx", ch.ExchangeDeclare("dlx", "fanout", true, false, false, false, nil))
	declareQ(t, ch, "dead", nil)
	mustDo(t, "bind", ch.QueueBind("dead", "", "dlx", false, nil))
	declareQ(t, ch, "head", amqp.Table{"x-max-length": int64(2), "x-dead-letter-exchange": "dlx"})
	declareQ(t, ch, "reject", amqp.Table{"x-max-length": int32(1), "x-overflow": "reject-publish"})
	declareQ(t, ch, "rejectdlx", amqp.Table{"x-max-length-bytes": int64(5), "x-overflow": "reject-publish-dlx", "x-dead-letter-exchange": "dlx"})
	for i := range 3 {
		if !waitConfirm(t, publish(t, ch, "head", true, amqp.Publishing{Body: fmt.Appendf(nil, "%d", i)})) {
			t.Fatal("drop-head nacked")
		}
	}
	if r := s.Ready("head"); len(r) != 2 || string(r[0].Body) != "1" {
		t.Fatalf("drop-head queue holds %d, first %q; want 2, first \"1\"", len(r), r[0].Body)
	}
	waitFor(t, s, "the dropped head dead-lettered", func() bool { return len(s.Ready("dead")) == 1 })
	if d := s.Ready("dead")[0]; string(d.Body) != "0" || d.Props.Headers["x-first-death-reason"] != "maxlen" {
		t.Fatalf("dead letter %q reason %v", d.Body, d.Props.Headers["x-first-death-reason"])
	}
	if !waitConfirm(t, publish(t, ch, "reject", true, amqp.Publishing{Body: []byte("a")})) {
		t.Fatal("first publish to reject-publish queue nacked")
	}
	if waitConfirm(t, publish(t, ch, "reject", true, amqp.Publishing{Body: []byte("b")})) {
		t.Fatal("publish to a full reject-publish queue acked")
	}
	if p := s.Publishes(); fmt.Sprint(p[len(p)-1].Refused) != "[reject]" || len(p[len(p)-1].Queues) != 0 {
		t.Fatalf("refused publish recorded with Queues %v Refused %v", p[len(p)-1].Queues, p[len(p)-1].Refused)
	}
	if !waitConfirm(t, publish(t, ch, "rejectdlx", true, amqp.Publishing{Body: []byte("12345")})) {
		t.Fatal("a message of exactly x-max-length-bytes nacked")
	}
	if waitConfirm(t, publish(t, ch, "rejectdlx", true, amqp.Publishing{Body: []byte("6")})) {
		t.Fatal("publish past x-max-length-bytes acked")
	}
	waitFor(t, s, "the refused message dead-lettered", func() bool { return len(s.Ready("dead")) == 2 })
	if got, _ := s.Send("", "reject", Properties{}, []byte("c")); len(got) != 0 {
		t.Fatalf("Send to a full reject-publish queue stored in %v", got)
	}
}

func TestStoreDeliveryLimit(t *testing.T) {
	s := Start(t, WithStore())
	ch := channelOf(t, s)
	declareQ(t, ch, "dead", nil)
	declareQ(t, ch, "q", amqp.Table{"x-queue-type": "quorum", "x-delivery-limit": int64(1), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
	_, err := s.Send("", "q", Properties{}, []byte("m"))
	mustDo(t, "send", err)
	ds, err := ch.Consume("q", "", false, false, false, false, nil)
	mustDo(t, "consume", err)
	for i := range 2 {
		d := recv(t, ds, "delivery")
		if want := i > 0; d.Redelivered != want {
			t.Fatalf("delivery %d redelivered %v", i+1, d.Redelivered)
		}
		mustDo(t, "requeue", d.Nack(false, true))
	}
	waitFor(t, s, "dead-lettered after the limit", func() bool { return len(s.Ready("dead")) == 1 })
	if r := s.Ready("dead")[0].Props.Headers["x-first-death-reason"]; r != "delivery_limit" {
		t.Fatalf("reason %v, want delivery_limit", r)
	}
	if len(s.Ready("q")) != 0 || s.Unacked("q") != 0 {
		t.Fatal("the message is still in q")
	}
}

// A full drop-head queue dead-lettering into itself ends (the chain is
// bounded) instead of recursing forever.
func TestStoreDeadLetterCycle(t *testing.T) {
	s := Start(t, WithStore())
	ch := channelOf(t, s)
	declareQ(t, ch, "loop", amqp.Table{"x-max-length": int64(1), "x-dead-letter-exchange": ""})
	// The default exchange with the queue's own name as the routing key.
	_, err := s.Send("", "loop", Properties{}, []byte("1"))
	mustDo(t, "send", err)
	_, err = s.Send("", "loop", Properties{}, []byte("2"))
	mustDo(t, "send", err)
	if n := len(s.Ready("loop")); n != 1 {
		t.Fatalf("loop holds %d messages, want 1", n)
	}
}

func TestStoreBadQueueArgs(t *testing.T) {
	s := Start(t, WithStore())
	for _, c := range []struct {
		args amqp.Table
		code int
		sub  string
	}{
		{amqp.Table{"x-max-length": int64(-1)}, 406, "invalid arg 'x-max-length'"},
		{amqp.Table{"x-max-length": "10"}, 406, "invalid arg 'x-max-length'"},
		{amqp.Table{"x-max-length-bytes": int32(-5)}, 406, "value_negative"},
		{amqp.Table{"x-delivery-limit": 1.5}, 406, "invalid arg 'x-delivery-limit'"},
		{amqp.Table{"x-overflow": "drop-tail"}, 406, "invalid arg 'x-overflow'"},
		{amqp.Table{"x-overflow": "reject-publish-dlx", "x-queue-type": "quorum"}, 406, "invalid arg 'x-overflow'"},
		{amqp.Table{"x-queue-type": "lazy"}, 406, "invalid arg 'x-queue-type'"},
		{amqp.Table{"x-dead-letter-exchange": int32(1)}, 406, "invalid arg 'x-dead-letter-exchange'"},
		{amqp.Table{"x-queue-type": "stream"}, 540, "no streams"},
	} {
		t.Run(fmt.Sprint(c.args), func(t *testing.T) {
			_, err := channelOf(t, s).QueueDeclare("bad", true, false, false, false, c.args)
			wantAMQPError(t, err, c.code, c.sub)
		})
	}
	if s.HasQueue("bad") {
		t.Fatal("a queue with a bad argument was declared")
	}
	for i, args := range []amqp.Table{{"x-max-length": int64(0)}, {"x-overflow": "reject-publish", "x-queue-type": "quorum"}, {"x-queue-type": "classic"}} {
		_, err := channelOf(t, s).QueueDeclare(fmt.Sprint("ok", i), true, false, false, false, args)
		mustDo(t, fmt.Sprint("declare with ", args), err)
	}
}

// In store mode Block stops only connections that publish, as RabbitMQ's
// alarms do; one that first publishes while blocked is told then.
func TestStoreBlockOnlyPublishers(t *testing.T) {
	s := Start(t, WithStore())
	s.DeclareQueue("q")
	consumer := channelOf(t, s)
	ds, err := consumer.Consume("q", "", false, false, false, false, nil)
	mustDo(t, "consume", err)
	pconn := dial(t, s)
	blocked := pconn.NotifyBlocked(make(chan amqp.Blocking, 2))
	pch := confirmChannel(t, pconn)
	s.Block("disk")
	_, err = s.Send("", "q", Properties{}, []byte("during"))
	mustDo(t, "send", err)
	mustDo(t, "ack while blocked", recv(t, ds, "delivery while blocked").Ack(false))
	waitFor(t, s, "the consumer's ack read", func() bool { return len(s.Acked("q")) == 1 })
	select {
	case b := <-blocked:
		t.Fatalf("connection.blocked %+v before publishing", b)
	default:
	}
	dc := publish(t, pch, "q", true, amqp.Publishing{Body: []byte("waits")})
	if b := recv(t, blocked, "connection.blocked at the first publish"); !b.Active || b.Reason != "disk" {
		t.Fatalf("blocking %+v", b)
	}
	select {
	case <-dc.Done():
		t.Fatal("a blocked publish was confirmed")
	default:
	}
	s.Unblock()
	if !waitConfirm(t, dc) {
		t.Fatal("nacked after Unblock")
	}
}

// Close ends a server whose node hangs with connections on it, leaving no
// goroutine (TestMain's goleak checks).
func TestCloseWhileHung(t *testing.T) {
	s, err := Listen(WithNodes(2), WithStore())
	mustDo(t, "listen", err)
	conn, err := amqp.Dial(s.NodeURL(1))
	mustDo(t, "dial", err)
	defer conn.Close()
	s.Hang(1)
	s.Kill(0)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(waitLong):
		t.Fatal("Close of a hung server did not return")
	}
}
