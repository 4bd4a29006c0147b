package amqpha

import (
	"errors"
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// recorder is an amqp091.Acknowledger that records what would be sent.
type recorder struct {
	mu   sync.Mutex
	sent []string
	err  error
}

func (r *recorder) note(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.sent = append(r.sent, s)
	return nil
}
func (r *recorder) Ack(tag uint64, multiple bool) error { return r.note("ack") }
func (r *recorder) Nack(tag uint64, multiple, requeue bool) error {
	if requeue {
		return r.note("nack-requeue")
	}
	return r.note("nack")
}
func (r *recorder) Reject(tag uint64, requeue bool) error { return r.note("reject") }

func testDelivery(ack amqp.Acknowledger) (*Delivery, *consumerSession) {
	s := &consumerSession{k: &Consumer{}, unsettled: 1}
	return &Delivery{Delivery: amqp.Delivery{Acknowledger: ack, DeliveryTag: 7}, s: s}, s
}

func TestActionsSendWhatTheySay(t *testing.T) {
	for a, want := range map[Action]string{Ack: "ack", Requeue: "nack-requeue", Nack: "nack", Reject: "reject"} {
		r := &recorder{}
		d, s := testDelivery(r)
		if err := d.apply(a); err != nil {
			t.Fatalf("%v: %v", a, err)
		}
		if len(r.sent) != 1 || r.sent[0] != want {
			t.Fatalf("%v sent %q, want %q", a, r.sent, want)
		}
		if s.unsettled != 0 {
			t.Fatalf("%v left %d unsettled", a, s.unsettled)
		}
	}
	r := &recorder{}
	d, s := testDelivery(r)
	if err := d.apply(Manual); err != nil || len(r.sent) != 0 || s.unsettled != 1 {
		t.Fatalf("Manual: err %v, sent %q, unsettled %d", err, r.sent, s.unsettled)
	}
	if err := d.apply(Action(99)); err == nil || len(r.sent) != 1 || r.sent[0] != "nack-requeue" {
		t.Fatalf("an unknown action: err %v, sent %q; want an error and the message requeued", err, r.sent)
	}
}

func TestStaleDeliveryIsNeverAcknowledged(t *testing.T) {
	r := &recorder{}
	d, s := testDelivery(r)
	s.die()
	if !d.Stale() {
		t.Fatal("a delivery of a dead session is not stale")
	}
	for _, settle := range []func() error{d.Ack, func() error { return d.Nack(true) }} {
		err := settle()
		if !errors.Is(err, ErrStaleDelivery) && !errors.Is(err, ErrSettled) {
			t.Fatalf("settling a stale delivery: %v", err)
		}
	}
	if len(r.sent) != 0 {
		t.Fatalf("a stale delivery sent %q", r.sent)
	}
}

func TestChannelClosedUnderTheAckIsStale(t *testing.T) {
	d, _ := testDelivery(&recorder{err: amqp.ErrClosed})
	if err := d.Ack(); !errors.Is(err, ErrStaleDelivery) || !errors.Is(err, amqp.ErrClosed) {
		t.Fatalf("ack on a closed channel: %v, want ErrStaleDelivery wrapping amqp.ErrClosed", err)
	}
}

func TestSecondSettlementSendsNothing(t *testing.T) {
	r := &recorder{}
	d, s := testDelivery(r)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { errs <- d.Ack() })
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, ErrSettled):
			t.Fatalf("concurrent ack: %v", err)
		}
	}
	if ok != 1 || len(r.sent) != 1 || s.unsettled != 0 {
		t.Fatalf("%d acks succeeded, %d sent, %d unsettled; want 1, 1, 0", ok, len(r.sent), s.unsettled)
	}
}

// The last delivery of a lost channel, settled by the program (Manual),
// perhaps after Consumer.Close stopped waiting for the consumer's
// goroutines, starts no close of that channel: it is gone already, and a
// goroutine counted after Close's wait would race with it.
func TestSettlingALostChannelsLastDeliveryClosesNothing(t *testing.T) {
	srv := fakebroker.Start(t)
	conn, err := amqp.Dial(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	for name, settle := range map[string]func(*Delivery) error{
		"ack":  (*Delivery).Ack,
		"nack": func(d *Delivery) error { return d.Nack(true) },
	} {
		s := &consumerSession{k: &Consumer{}, ch: ch, unsettled: 1, ended: true}
		s.die()
		d := &Delivery{Delivery: amqp.Delivery{Acknowledger: ch, DeliveryTag: 1}, s: s}
		if err := settle(d); !errors.Is(err, ErrStaleDelivery) {
			t.Fatalf("%s: %v, want ErrStaleDelivery", name, err)
		}
		s.mu.Lock()
		closing, unsettled := s.closing, s.unsettled
		s.mu.Unlock()
		if closing || unsettled != 0 {
			t.Fatalf("%s: closing %v, unsettled %d; want the lost channel left alone and the delivery counted settled", name, closing, unsettled)
		}
	}
	// The same for the end of its last pump.
	s := &consumerSession{k: &Consumer{}, ch: ch, pumping: 1}
	s.die()
	s.pumpDone()
	if s.closing {
		t.Fatal("the end of a lost channel's last pump started closing it")
	}

	// A live channel's last delivery still closes it, on a goroutine the
	// consumer's count (which Consumer.Close waits on) includes.
	live, err := amqp.Dial(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	lch, err := live.Channel()
	if err != nil {
		t.Fatal(err)
	}
	k := &Consumer{}
	s = &consumerSession{k: k, ch: lch, unsettled: 1, ended: true}
	d := &Delivery{Delivery: amqp.Delivery{Acknowledger: &recorder{}, DeliveryTag: 1}, s: s}
	if err := d.Ack(); err != nil {
		t.Fatal(err)
	}
	k.bg.Wait()
	if !lch.IsClosed() {
		t.Fatal("the last delivery of a live, ended channel settled, and the channel is not closed once the consumer's goroutines are done")
	}
}
