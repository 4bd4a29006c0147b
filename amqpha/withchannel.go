package amqpha

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ChannelFunc is what [Client.WithChannel] runs with a channel of its own.
type ChannelFunc func(ctx context.Context, ch *amqp.Channel) error

// WithChannel runs fn with a fresh channel of the client's (first)
// publishing connection, for what amqpha does not wrap: basic.get,
// queue.purge, a passive declare to read a queue's depth, and the like.
// The channel is fn's alone and is closed when fn returns; the channels of
// publishers and consumers are never handed out, so nothing fn does to its
// channel (using it after a channel error, closing it) reaches them.
//
// WithChannel waits for a connection within ctx, like a declaration. fn
// runs on a goroutine of the client's with a context that ends when ctx
// does or the client closes.
//
// # Failover
//
// If the connection is lost while fn runs (the node died, hung, was cut
// off or shut down), fn is run again, from the start, with a fresh channel
// on the next connection, until it returns or ctx ends. fn may therefore
// run more than once: make it safe to repeat (a basic.get acknowledged on
// a connection that then died is delivered again; a purge repeated purges
// what arrived meanwhile). For the failover to see a lost connection, fn
// returns the channel's error, wrapped with %w if at all.
//
// What is not retried, and returned as it is: nil; an error fn made itself
// (not an *amqp091.Error); an error the broker answered while the
// connection lives (a channel error such as 404 NOT_FOUND for a passive
// declare or basic.get of a missing queue, 406 PRECONDITION_FAILED, 403
// ACCESS_REFUSED: the channel is closed and fn's call failed, the
// connection goes on); and a connection error the broker sent because of
// fn's request (such as 503 COMMAND_INVALID or 530 NOT_ALLOWED), which
// would close the next connection too. A connection lost three times in a
// row while fn ran returns an error matching [ErrPoison]: fn may be what
// kills it (amqp091-go drops the whole connection when it cannot encode a
// message), and amqpha's publishers and consumers share that connection.
//
// # Contexts
//
// WithChannel returns by ctx's end even when the broker answers nothing
// (a hung node, or a connection blocked by a resource alarm); fn may then
// still be running, until the connection answers or is lost. Do not read
// what fn writes unless WithChannel returned fn's own result. [Client.Close]
// waits for a running fn until its ctx ends.
//
// # What fn must not do
//
// The connection is shared with amqpha's publishers (and consumers, with
// Config.SharedConnection): amqp091-go's reader stops while any Notify*
// channel or a Consume delivery channel registered on fn's channel is
// full, so fn must read what it registers for until it returns, or not
// register for it. A panic in fn is raised again in the caller's goroutine,
// and an fn that ends its goroutine (runtime.Goexit, as t.FailNow does)
// ends the caller's.
// Server-named queues get a new name after a failover: pass
// [Client.QueueName]'s answer to fn's calls.
func (c *Client) WithChannel(ctx context.Context, fn ChannelFunc) error {
	if fn == nil {
		return fmt.Errorf("%w: WithChannel: nil fn", ErrInvalidArgument)
	}
	lost := 0
	for {
		conn, _, err := c.sup.waitConn(ctx)
		if err != nil {
			return fmt.Errorf("amqpha: WithChannel: %w", err)
		}
		err = c.runOnChannel(ctx, conn, fn)
		if err == nil || ctx.Err() != nil || !lostUnder(err, conn) {
			return err
		}
		if lost++; lost >= maxAttempts {
			return fmt.Errorf("amqpha: WithChannel: %w (%d connections lost while fn ran): %w", ErrPoison, lost, err)
		}
		c.log.Info("WithChannel: connection lost under fn; running it again on the next connection", "err", err)
		// waitConn hands out only a connection that is not closed: the
		// next one, after the supervisor's failover (and its backoff).
	}
}

// lostUnder reports whether err, returned by fn on a channel of conn, is
// the loss of conn (not the broker's answer to fn's request), so that fn
// may be run again on the next connection.
func lostUnder(err error, conn *amqp.Connection) bool {
	if !conn.IsClosed() {
		return false // a channel error, or fn's own: the connection goes on
	}
	var ae *amqp.Error
	if !errors.As(err, &ae) {
		return false
	}
	// Server: the broker closed the connection. For shutdown or
	// maintenance (320) that is the node's doing; any other code answers
	// a request, fn's or another's, and would close the next connection
	// too if fn's. Not from the server: the socket failed, the hang
	// detector dropped it, or amqp091-go's ErrClosed.
	return !ae.Server || ae.Code == amqp.ConnectionForced
}

// channelRun is the outcome of one run of fn.
type channelRun struct {
	err      error
	panicked bool
	value    any
	goexit   bool // fn ended its goroutine (runtime.Goexit: t.FailNow)
}

// raise ends the caller's goroutine as fn ended its own, if it did.
func (r channelRun) raise() {
	switch {
	case r.panicked:
		panic(r.value)
	case r.goexit:
		runtime.Goexit()
	}
}

// runOnChannel runs fn with a fresh channel of conn on a goroutine of the
// client's, and returns its result, or ctx's error when ctx ends first.
func (c *Client) runOnChannel(ctx context.Context, conn *amqp.Connection, fn ChannelFunc) error {
	if err := c.startCall(); err != nil {
		return err
	}
	fctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	var (
		mu        sync.Mutex
		abandoned bool
	)
	res := make(chan channelRun, 1)
	go func() {
		defer c.calls.Done()
		defer cancel()
		defer stop()
		// Handed over by a deferred call, which runs also when fn ends
		// the goroutine with runtime.Goexit (then r stays so).
		r := channelRun{goexit: true}
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			if abandoned && r.panicked {
				panic(r.value) // nobody to hand it to: as if fn ran here
			}
			res <- r
		}()
		r = callOnChannel(fctx, conn, fn)
	}()
	select {
	case r := <-res:
		r.raise()
		return r.err
	case <-ctx.Done():
		mu.Lock()
		abandoned = true
		mu.Unlock()
		select {
		case r := <-res: // it finished first
			r.raise()
			return r.err
		default:
		}
		return fmt.Errorf("amqpha: WithChannel: %w", ctx.Err())
	}
}

// callOnChannel opens a channel on conn, runs fn with it and closes it.
func callOnChannel(ctx context.Context, conn *amqp.Connection, fn ChannelFunc) (r channelRun) {
	ch, err := conn.Channel()
	if err != nil {
		return channelRun{err: fmt.Errorf("amqpha: WithChannel: open channel: %w", err)}
	}
	defer ch.Close() // after a channel error: at once; else one round trip
	defer func() {
		if v := recover(); v != nil {
			r = channelRun{panicked: true, value: v}
		}
	}()
	return channelRun{err: fn(ctx, ch)}
}

// startCall counts a call that Close waits for (c.calls), unless the
// client is closed.
func (c *Client) startCall() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.calls.Add(1)
	return nil
}
