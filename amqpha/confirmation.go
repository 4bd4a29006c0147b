package amqpha

import (
	"context"
	"sync"
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
	// trace is what the publish hooks wait for (nil without them); async:
	// PublishAsync's, whose hooks hear the outcome from userCalls.
	trace *publishTrace
	async bool

	// Guarded by the session that has the message in flight (or by the
	// publisher's mu while queued).
	nacks     int           // nacks so far
	firstNack time.Time     // when the first nack came
	sentAt    time.Time     // when last sent
	attempts  int           // channel or connection closes charged to it
	sends     atomic.Uint32 // basic.publish written, counted for Metrics only

	// The caller's Body and Headers are read only while the message is
	// claimed (a send), and never after
	// it resolved: a resolution that comes during a claim waits for its
	// end, so that once Publish or Wait returned, amqpha never reads the
	// caller's message again.
	mu      sync.Mutex
	claimed bool
	want    bool  // resolve when the claim ends
	wantErr error // with this
	again   bool  // send again when the claim ends (it was taken back meanwhile)
	// suspect: in flight when its channel closed for a reason that named
	// no message; sent alone until let go of (Publisher.isolating).
	suspect atomic.Bool
	state   atomic.Int32 // 0 pending, 1 resolved
	stop    atomic.Pointer[func() bool]
	err     error
	done    chan struct{}
	// dropped is set when amqpha let go of the message (its window slot
	// is free): it is resolved and in no queue, session or timer.
	dropped atomic.Bool
}

// Done is closed when the confirmation is resolved.
func (c *Confirmation) Done() <-chan struct{} { return c.done }

// Err is the outcome once Done is closed: nil means the broker confirmed
// the message. Before that it returns ErrPending; use Wait to wait.
func (c *Confirmation) Err() error {
	if c.state.Load() == 0 {
		return ErrPending
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

// claimState is what claim found.
type claimState uint8

const (
	claimed  claimState = iota // the caller may read the message until unclaim
	resolved                   // the outcome is known (or will be when a claim ends)
	busy                       // another send holds it; it is sent again after
)

// claim reserves the right to read the caller's message. A message being
// written on another channel (taken back from it meanwhile) is busy: it is
// requeued when that write ends. unclaim ends a claim.
func (c *Confirmation) claim() claimState {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.want || c.state.Load() != 0:
		return resolved
	case c.claimed:
		c.again = true
		return busy
	}
	c.claimed = true
	return claimed
}

// unclaim ends a claim. A resolution that waited for it completes now; a
// message taken back during the claim is requeued (requeue lets go of it if
// it is resolved).
func (c *Confirmation) unclaim() {
	c.mu.Lock()
	c.claimed = false
	want, err, again := c.want, c.wantErr, c.again
	c.want, c.wantErr, c.again = false, nil, false
	c.mu.Unlock()
	if want {
		c.finish(err)
	}
	if again {
		c.p.requeue(c)
	}
}

// resolve sets the outcome once and counts it; later calls do nothing and
// report false. The count goes through the client's userCalls, so it may
// come just after done closes. Only the dispatcher that had c in flight
// resolves it with nil, so sentAt is its own to read. resolve does not free
// the window slot: drop does, when amqpha lets go of the message.
func (c *Confirmation) resolve(err error) bool {
	c.mu.Lock()
	if c.state.Load() != 0 || c.want {
		c.mu.Unlock()
		return false
	}
	if c.claimed {
		c.want, c.wantErr = true, err
		c.mu.Unlock()
		return true
	}
	c.state.Store(1)
	c.mu.Unlock()
	c.complete(err)
	return true
}

// finish resolves c when a claim ends with a resolution waiting.
func (c *Confirmation) finish(err error) {
	c.mu.Lock()
	first := c.state.CompareAndSwap(0, 1)
	c.mu.Unlock()
	if first {
		c.complete(err)
	}
}

func (c *Confirmation) complete(err error) {
	c.err = err
	if c.trace != nil {
		c.trace.at = time.Now()
		if c.async {
			c.p.userCall(c.report) // Publish reports its own, in its caller's goroutine
		}
	}
	if m := c.p.metrics; m != nil {
		if err == nil {
			latency := time.Since(c.sentAt)
			c.p.userCall(func() { m.Confirmed(latency) })
		} else {
			c.p.userCall(func() { m.PublishFailed(err) })
		}
	}
	if stop := c.stop.Load(); stop != nil {
		(*stop)()
	}
	c.p.unresolved.Add(-1)
	close(c.done)
}

// drop frees the message's window slot once, when amqpha holds it nowhere
// any more. c must be resolved.
func (c *Confirmation) drop() {
	if c.dropped.CompareAndSwap(false, true) {
		if c.suspect.Load() {
			c.p.isolating.Add(-1)
			c.p.kickFlush()
		}
		c.p.release()
	}
}

// settle resolves c with err and lets go of it.
func (c *Confirmation) settle(err error) {
	c.resolve(err)
	c.drop()
}

// watchContext resolves c with ctx's error when ctx ends first, and has
// the flush goroutine let go of it if it waits in the queue.
func (c *Confirmation) watchContext() {
	if c.ctx.Done() == nil {
		return
	}
	stop := context.AfterFunc(c.ctx, func() {
		c.resolve(c.p.contextError(c.ctx))
		c.p.kickFlush()
	})
	c.stop.Store(&stop)
	if c.resolved() {
		stop()
	}
}
