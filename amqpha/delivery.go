package amqpha

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Action is what a Handler decides about a delivery.
type Action int

const (
	// Ack acknowledges the delivery: the broker forgets the message.
	Ack Action = iota
	// Requeue returns the message to its queue (basic.nack, requeue) to be
	// delivered again, possibly to another consumer: at once, or after a
	// delay and at most a number of times with ConsumerConfig.Retry.
	Requeue
	// Nack refuses the message without requeueing it (basic.nack): the
	// broker dead-letters it if the queue has a dead-letter exchange, else
	// drops it.
	Nack
	// Reject refuses the message like Nack, with basic.reject.
	Reject
	// Manual leaves the delivery to the handler, which settles it itself
	// with Delivery.Ack, Nack or Reject (possibly later, from any
	// goroutine). Until it does, the message counts against the prefetch.
	Manual
)

func (a Action) String() string {
	switch a {
	case Ack:
		return "ack"
	case Requeue:
		return "requeue"
	case Nack:
		return "nack"
	case Reject:
		return "reject"
	case Manual:
		return "manual"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Handler handles one delivery and says what to do with it. ctx carries
// the values of the context given to Client.Consume (not its end, which
// bounds only Consume), as changed by Config.ConsumeHooks. It ends when
// the delivery's connection or channel is lost (its acknowledgement can no
// longer reach the broker, which will deliver the message again) or when
// Consumer.Close gives up waiting. Handlers run on the consumer's
// goroutines, at most ConsumerConfig.Concurrency at once.
type Handler func(ctx context.Context, d *Delivery) Action

// Delivery is a message delivered to a consumer. Its embedded
// amqp091.Delivery holds the message; settle it through the methods of
// Delivery, not of the embedded value, so that a delivery of a lost
// channel is never acknowledged on another one.
type Delivery struct {
	amqp.Delivery
	// Generation is the consumers' connection the message came on (it
	// counts that connection's reconnects).
	Generation uint64

	s       *consumerSession
	settled atomic.Bool
}

// Ack acknowledges the delivery. It returns an error wrapping
// ErrStaleDelivery, and sends nothing, if the delivery's channel is gone:
// the broker delivers the message again. A second Ack, Nack or Reject
// returns ErrSettled and sends nothing. Safe from any goroutine.
func (d *Delivery) Ack() error {
	return d.settle("ack", Ack, func() error { return d.Delivery.Ack(false) })
}

// Nack refuses the delivery (basic.nack), returning the message to its
// queue if requeue, else dead-lettering or dropping it. Errors as for Ack.
func (d *Delivery) Nack(requeue bool) error {
	return d.settle("nack", refusal(Nack, requeue), func() error { return d.Delivery.Nack(false, requeue) })
}

// Reject refuses the delivery (basic.reject). Errors as for Ack.
func (d *Delivery) Reject(requeue bool) error {
	return d.settle("reject", refusal(Reject, requeue), func() error { return d.Delivery.Reject(requeue) })
}

// Queue is the current name of the queue the delivery's consumer reads
// (a server-named queue's name changes after a failover).
func (d *Delivery) Queue() string {
	if d.s == nil {
		return ""
	}
	return d.s.k.Queue()
}

// Stale reports whether the delivery's channel is gone, so that it can no
// longer be acknowledged.
func (d *Delivery) Stale() bool { return d.s.dead.Load() }

// refusal is the Action a nack or reject amounts to, for Metrics.
func refusal(a Action, requeue bool) Action {
	if requeue {
		return Requeue
	}
	return a
}

// settle sends op (which amounts to a) once, unless the channel is gone.
func (d *Delivery) settle(op string, a Action, send func() error) error {
	if !d.settled.CompareAndSwap(false, true) {
		return ErrSettled
	}
	defer d.s.settledOne()
	if d.s.dead.Load() {
		return fmt.Errorf("amqpha: %s of delivery %d: %w", op, d.DeliveryTag, ErrStaleDelivery)
	}
	if err := send(); err != nil {
		if errors.Is(err, amqp.ErrClosed) {
			return fmt.Errorf("amqpha: %s of delivery %d: %w: %w", op, d.DeliveryTag, ErrStaleDelivery, err)
		}
		return fmt.Errorf("amqpha: %s of delivery %d: %w", op, d.DeliveryTag, err)
	}
	if m := d.s.k.metrics; m != nil {
		m.Settled(a)
	}
	return nil
}

// apply carries out a handler's decision.
func (d *Delivery) apply(a Action) error {
	switch a {
	case Ack:
		return d.Ack()
	case Requeue:
		if d.s.k.cfg.Retry.MaxAttempts > 0 {
			return d.s.k.retryLater(d)
		}
		return d.Nack(true)
	case Nack:
		return d.Nack(false)
	case Reject:
		return d.Reject(false)
	case Manual:
		return nil
	}
	// An unknown action is a bug in the handler: requeue rather than lose.
	err := d.Nack(true)
	return errors.Join(fmt.Errorf("amqpha: handler returned unknown %v; message requeued", a), err)
}

// consumerSession is one channel on which a consumer is registered. Its
// deliveries are stale once dead is set; its channel is closed once the
// broker stopped delivering on it and every delivery is settled.
type consumerSession struct {
	k      *Consumer
	gen    uint64
	ch     *amqp.Channel
	ctx    context.Context // ends when the channel is lost
	cancel context.CancelFunc
	dead   atomic.Bool

	pumps int // goroutines reading its deliveries

	mu        sync.Mutex
	unsettled int
	pumping   int  // pumps not ended yet
	ended     bool // the broker delivers no more on it (cancelled, or channel gone)
	closing   bool
}

// pumpDone counts a pump ended; after the last, the broker delivers no
// more, and a channel whose deliveries are all settled is closed.
func (s *consumerSession) pumpDone() {
	s.mu.Lock()
	s.pumping--
	s.ended = s.pumping == 0
	done := s.ended && s.unsettled == 0
	s.mu.Unlock()
	if done {
		s.closeChannel()
	}
}

// settledOne counts a delivery settled, and closes a channel that is done.
func (s *consumerSession) settledOne() {
	s.mu.Lock()
	s.unsettled--
	done := s.ended && s.unsettled == 0
	s.mu.Unlock()
	if done {
		s.closeChannel()
	}
}

// die marks the session's deliveries stale. It sets dead under mu, so a
// closeChannel either counted its goroutine before, while the session was
// still in Consumer.all where Consumer.Close finds it, or sees it dead.
func (s *consumerSession) die() {
	s.mu.Lock()
	s.dead.Store(true)
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
}

// closeChannel closes the channel once, in the background (closing waits
// for the broker); unsettled deliveries go back to the queue. A dead
// session's channel went with its connection or by the broker's close and
// is left alone: its last delivery may be settled by the program after
// Consumer.Close stopped waiting for the consumer's goroutines. The
// goroutine is counted under mu, so Consumer.Close, which calls
// closeChannel for each session before it waits, waits for it too.
func (s *consumerSession) closeChannel() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.ch == nil || s.dead.Load() {
		return
	}
	s.closing = true
	s.k.bg.Add(1)
	go func() {
		defer s.k.bg.Done()
		s.ch.Close()
	}()
}
