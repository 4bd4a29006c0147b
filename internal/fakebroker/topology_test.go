package fakebroker

import (
	"errors"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestServerNamedQueueAndPassive(t *testing.T) {
	s := Start(t)
	conn := dial(t, s)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(q.Name, "amq.gen-") || q.Messages != 0 || q.Consumers != 0 {
		t.Fatalf("queue %+v", q)
	}
	if _, err := ch.QueueDeclarePassive(q.Name, false, true, true, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclarePassive("amq.topic", "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare("events", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclarePassive("events", "fanout", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}

	closes := ch.NotifyClose(make(chan *amqp.Error, 1))
	_, err = ch.QueueDeclarePassive("missing", false, false, false, false, nil)
	var aerr *amqp.Error
	if !errors.As(err, &aerr) || aerr.Code != 404 || aerr.Reason != "NOT_FOUND - no queue 'missing' in vhost '/'" {
		t.Fatalf("passive declare error %v", err)
	}
	recv(t, closes, "channel close")

	ch2, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	err = ch2.ExchangeDeclarePassive("nope", "direct", false, false, false, false, nil)
	if !errors.As(err, &aerr) || aerr.Code != 404 || !strings.Contains(aerr.Reason, "no exchange 'nope'") {
		t.Fatalf("passive exchange declare error %v", err)
	}
	ms := s.Methods()
	last := ms[len(ms)-1]
	if last.Name != "exchange.declare" || !last.Passive || last.Exchange != "nope" || last.Kind != "direct" || last.Channel != 2 {
		t.Fatalf("last method %+v", last)
	}
}

func TestDeliverAndAck(t *testing.T) {
	s := Start(t)
	if err := s.Deliver("jobs", Properties{}, nil); err == nil {
		t.Fatal("Deliver without consumer succeeded")
	}
	conn := dial(t, s)
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("jobs", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Qos(10, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume("jobs", "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Consumers("jobs") != 1 {
		t.Fatalf("consumers %d", s.Consumers("jobs"))
	}
	for i := range 2 {
		if err := s.Deliver("jobs", Properties{MessageID: "d"}, []byte("work")); err != nil {
			t.Fatal(err)
		}
		d := recv(t, deliveries, "delivery")
		if d.DeliveryTag != uint64(i+1) || d.MessageId != "d" || string(d.Body) != "work" || d.RoutingKey != "jobs" {
			t.Fatalf("delivery %+v", d)
		}
		if i == 0 {
			err = d.Ack(false)
		} else {
			err = d.Nack(false, true)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, s, "acks", func() bool { return len(s.Acks()) == 2 })
	acks := s.Acks()
	if acks[0] != (Ack{Conn: 1, Channel: 1, Tag: 1}) || acks[1] != (Ack{Conn: 1, Channel: 1, Tag: 2, Nack: true, Requeue: true}) {
		t.Fatalf("acks %+v", acks)
	}
}

func TestCancelConsumers(t *testing.T) {
	s := Start(t)
	ch, err := dial(t, s).Channel()
	if err != nil {
		t.Fatal(err)
	}
	cancels := ch.NotifyCancel(make(chan string, 1))
	deliveries, err := ch.Consume("q", "my-tag", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CancelConsumers("q"); n != 1 {
		t.Fatalf("cancelled %d", n)
	}
	if tag := recv(t, cancels, "cancel"); tag != "my-tag" {
		t.Fatalf("cancelled tag %q", tag)
	}
	if _, ok := <-deliveries; ok {
		t.Fatal("delivery after cancel")
	}
	if s.Deliver("q", Properties{}, nil) == nil {
		t.Fatal("Deliver after cancel succeeded")
	}
}

func TestExclusiveAndAutoDeleteQueues(t *testing.T) {
	s := Start(t)
	owner := dial(t, s)
	ch, err := owner.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("mine", false, false, true, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("auto", false, true, false, false, nil); err != nil {
		t.Fatal(err)
	}

	other, err := dial(t, s).Channel()
	if err != nil {
		t.Fatal(err)
	}
	_, err = other.QueueDeclare("mine", false, false, true, false, nil)
	var aerr *amqp.Error
	if !errors.As(err, &aerr) || aerr.Code != 405 {
		t.Fatalf("declare of another connection's exclusive queue: %v", err)
	}

	// An auto-delete queue goes with its last consumer.
	if _, err := ch.Consume("auto", "c1", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Cancel("c1", false); err != nil {
		t.Fatal(err)
	}
	if s.HasQueue("auto") {
		t.Fatal("auto-delete queue survived its last consumer")
	}

	// An exclusive queue goes with its connection.
	if err := owner.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "exclusive queue deleted", func() bool { return !s.HasQueue("mine") })
	if got := s.Queues(); len(got) != 0 {
		t.Fatalf("queues left: %v", got)
	}
}

func TestTopologyMethods(t *testing.T) {
	s := Start(t)
	conn := dialConfig(t, s, amqp.Config{SASL: []amqp.Authentication{&amqp.AMQPlainAuth{Username: "bob", Password: "pw"}}})
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(ch.ExchangeDeclare("src", "topic", true, false, false, false, amqp.Table{"alternate-exchange": "ae"}))
	must(ch.ExchangeDeclare("dst", "fanout", true, false, false, true, nil)) // no-wait
	must(ch.ExchangeBind("dst", "a.#", "src", false, nil))
	must(ch.ExchangeUnbind("dst", "a.#", "src", false, nil))
	_, err = ch.QueueDeclare("work", true, false, false, false, amqp.Table{"x-queue-type": "quorum", "x-max-length": int64(10)})
	must(err)
	must(ch.QueueBind("work", "a.b", "src", false, nil))
	must(ch.QueueUnbind("work", "a.b", "src", nil))
	n, err := ch.QueuePurge("work", false)
	must(err)
	if n != 0 {
		t.Fatalf("purged %d", n)
	}
	must(ch.Qos(5, 0, true))
	_, ok, err := ch.Get("work", false)
	must(err)
	if ok {
		t.Fatal("Get found a message")
	}
	must(ch.Recover(true))
	must(ch.Flow(true))
	must(ch.Tx())
	must(ch.TxCommit())
	must(ch.TxRollback())
	must(conn.UpdateSecret("new", "rotation"))

	cancels := ch.NotifyCancel(make(chan string, 1))
	_, err = ch.Consume("work", "c", true, false, false, false, nil)
	must(err)
	if q, err := ch.QueueDeclarePassive("work", true, false, false, false, nil); err != nil || q.Consumers != 1 {
		t.Fatalf("passive declare %+v %v", q, err)
	}
	_, err = ch.QueueDelete("work", false, false, false)
	must(err)
	if tag := recv(t, cancels, "cancel"); tag != "c" {
		t.Fatalf("cancelled %q", tag)
	}
	must(ch.ExchangeDelete("dst", false, false))

	s.DeclareQueue("external")
	if !s.HasQueue("external") {
		t.Fatal("DeclareQueue")
	}
	s.DeleteQueue("external")
	if s.HasQueue("external") {
		t.Fatal("DeleteQueue")
	}

	var names []string
	for _, m := range s.Methods() {
		names = append(names, m.Name)
	}
	want := "connection.start-ok connection.open channel.open exchange.declare exchange.declare exchange.bind exchange.unbind " +
		"queue.declare queue.bind queue.unbind queue.purge basic.qos basic.get basic.recover channel.flow " +
		"tx.select tx.commit tx.rollback connection.update-secret basic.consume queue.declare queue.delete exchange.delete"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("methods\n%s\nwant\n%s", got, want)
	}
	ms := s.Methods()
	if ms[0].User != "bob" || ms[0].Mechanism != "AMQPLAIN" {
		t.Fatalf("start-ok %+v", ms[0])
	}
	if m := ms[3]; m.Exchange != "src" || m.Kind != "topic" || !m.Durable || m.Args["alternate-exchange"] != "ae" {
		t.Fatalf("exchange.declare %+v", m)
	}
	if m := ms[4]; !m.NoWait {
		t.Fatalf("no-wait exchange.declare %+v", m)
	}
	if m := ms[5]; m.Destination != "dst" || m.Exchange != "src" || m.RoutingKey != "a.#" {
		t.Fatalf("exchange.bind %+v", m)
	}
	if m := ms[7]; m.Args["x-max-length"] != int64(10) || m.Args["x-queue-type"] != "quorum" {
		t.Fatalf("queue.declare %+v", m)
	}
	if m := ms[11]; m.PrefetchCount != 5 || !m.Global {
		t.Fatalf("basic.qos %+v", m)
	}
}
