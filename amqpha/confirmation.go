package amqpha

import (
	"context"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Confirmation is the outcome of one publish, resolved once: nil when the
// broker confirmed the message, an error otherwise. Its methods are safe for
// concurrent use.
type Confirmation struct {
	p         *Publisher
	exchange  string
	key       string
	msg       amqp.Publishing
	mandatory bool
	ctx       context.Context

	// Guarded by the session that has the message in flight (or by the
	// publisher's mu while queued).
	nacks     int       // nacks so far
	firstNack time.Time // when the first nack came
	sentAt    time.Time // when last sent
	returned  atomic.Bool
	attempts  int           // channel-level failures
	sends     atomic.Uint32 // basic.publish written, counted for Metrics only

	state atomic.Int32 // 0 pending, 1 resolved
	stop  atomic.Pointer[func() bool]
	err   error
	done  chan struct{}
}

// Done is closed when the confirmation is resolved.
func (c *Confirmation) Done() <-chan struct{} { return c.done }

// Err is the outcome once Done is closed: nil means the broker confirmed
// the message. Before that it is nil too; use Wait.
func (c *Confirmation) Err() error {
	if c.state.Load() == 0 {
		return nil
	}
	<-c.done
	return c.err
}

// Wait blocks until the confirmation is resolved and returns its outcome,
// or returns ctx's error if ctx ends first. ctx bounds only the wait: the
// publish itself goes on within the context given to PublishAsync.
func (c *Confirmation) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// MessageID is the message's message-id, given or generated.
func (c *Confirmation) MessageID() string { return c.msg.MessageId }

func (c *Confirmation) resolved() bool { return c.state.Load() != 0 }

// resolve sets the outcome once, counts it, and frees the message's window
// slot; later calls do nothing and report false. The outcome is counted
// before done closes, so a caller that sees it sees the count too. Only the
// dispatcher that had c in flight resolves it with nil, so sentAt is its
// own to read.
func (c *Confirmation) resolve(err error) bool {
	if !c.state.CompareAndSwap(0, 1) {
		return false
	}
	c.err = err
	if m := c.p.metrics; m != nil {
		if err == nil {
			m.Confirmed(time.Since(c.sentAt))
		} else {
			m.PublishFailed(err)
		}
	}
	if stop := c.stop.Load(); stop != nil {
		(*stop)()
	}
	close(c.done)
	c.p.release()
	return true
}

// watchContext resolves c with ctx's error when ctx ends first.
func (c *Confirmation) watchContext() {
	if c.ctx.Done() == nil {
		return
	}
	stop := context.AfterFunc(c.ctx, func() { c.resolve(c.p.contextError(c.ctx)) })
	c.stop.Store(&stop)
	if c.resolved() {
		stop()
	}
}
