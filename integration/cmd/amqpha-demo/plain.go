package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// The plain client is what a careful developer writes by hand on
// github.com/rabbitmq/amqp091-go when no HA library is at hand. It is meant
// as an honest baseline, not a strawman:
//
//   - one connection for publishing and one for consuming, as RabbitMQ's
//     documentation advises;
//   - each connection dials the node list in turn, starting after the node
//     it lost, with a 5 s handshake deadline (amqp091-go's Dial waits 30 s);
//     after a whole pass failed it waits plainBackoff and walks again;
//   - on NotifyClose (connection or channel) it waits a fixed plainBackoff
//     (1 s; amqp091-go's own example client waits 5 s) and reconnects,
//     declares its quorum queue again and, for the consumer, consumes again;
//   - heartbeat 10 s (amqp091-go's default), so a hung or cut-off node is
//     noticed when nothing has been read for 3 heartbeats (30 s): there is no
//     other hang detector, no node quarantine, no re-publishing of what was
//     in flight;
//   - publisher confirms, waited for per message with a timeout
//     (plainConfirmTimeout). A publish that is nacked, loses its channel,
//     times out, or finds no connection within the timeout is tried once
//     more after the same fixed plainBackoff, on the same channel if it is
//     still open (same message-id); if that fails too, the error is logged
//     and the producer moves on to the next message;
//   - manual acks after handling, prefetch 100, 4 handler goroutines (as the
//     amqpha side).
//
// amqp091-go's own automatic recovery (Config.Recovery) is left off: the
// point is the loop people write by hand.
const (
	plainHeartbeat      = 10 * time.Second
	plainDialTimeout    = 5 * time.Second
	plainBackoff        = time.Second
	plainConfirmTimeout = 5 * time.Second
	plainPrefetch       = 100
	plainWorkers        = 4
	plainConsumerTag    = "plain-demo"
)

// plainConn is one of the plain client's connections with its reconnect
// loop: the publishing one (handle nil) or the consuming one.
type plainConn struct {
	role     string // "publishing" or "consuming"
	uris     []string
	first    int // index of the first node to dial
	queue    string
	handle   func(amqp.Delivery)     // consuming role: called by a handler goroutine, then the delivery is acked
	say      func(string, ...any)    // prints an event line
	nodeName func(uri string) string // "node N"

	moves   chan plainMove     // placement requests, see place
	readyCh chan struct{}      // closed once the first session is up
	ready   sync.Once          // closes readyCh
	done    chan struct{}      // closed when run returns
	stop    context.CancelFunc // ends run

	use     sync.RWMutex  // shared by each publish attempt, exclusive while a placement swaps channels
	mu      sync.Mutex    // guards cur and changed
	cur     *plainSession // nil while reconnecting
	changed chan struct{} // closed and replaced whenever cur changes
}

// plainMove asks the loop to move its connection to uris[i]. It is the
// demo's, not part of the hand-written client: see placePlain.
type plainMove struct {
	i    int
	done chan error
}

// plainSession is one connection and its channel.
type plainSession struct {
	i          int
	conn       *amqp.Connection
	ch         *amqp.Channel
	connClosed chan *amqp.Error
	chClosed   chan *amqp.Error
	workers    sync.WaitGroup // consuming role: handler goroutines, which end when the deliveries end
}

// startPlainConn starts a connection's loop; it dials uris[first] first.
func startPlainConn(role string, uris []string, first int, queue string, handle func(amqp.Delivery),
	say func(string, ...any), nodeName func(string) string) *plainConn {
	ctx, stop := context.WithCancel(context.Background())
	p := &plainConn{
		role: role, uris: uris, first: first, queue: queue, handle: handle, say: say, nodeName: nodeName,
		moves: make(chan plainMove), done: make(chan struct{}), stop: stop,
		changed: make(chan struct{}), readyCh: make(chan struct{}),
	}
	go p.run(ctx)
	return p
}

// close ends the loop and closes the connection; it blocks until both are
// done. Safe to call twice.
func (p *plainConn) close() {
	p.stop()
	<-p.done
}

// waitReady blocks until the first connection is up or ctx ends.
func (p *plainConn) waitReady(ctx context.Context) error {
	select {
	case <-p.readyCh:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("plain %s connection: %w", p.role, ctx.Err())
	}
}

// node is the index of the node the connection is on, or -1.
func (p *plainConn) node() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return -1
	}
	return p.cur.i
}

func (p *plainConn) set(s *plainSession) {
	p.mu.Lock()
	p.cur = s
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if s != nil {
		p.ready.Do(func() { close(p.readyCh) })
	}
}

// run is the hand-written reconnect loop.
func (p *plainConn) run(ctx context.Context) {
	defer close(p.done)
	next := p.first
	var s *plainSession
	for {
		if s == nil {
			if s = p.connect(ctx, next); s == nil {
				return // ctx ended
			}
			p.set(s)
		}
		var err error
		select {
		case err = <-s.connClosed:
		case err = <-s.chClosed:
		case m := <-p.moves:
			if ns := p.move(s, m); ns != nil {
				s = ns
			}
			continue
		case <-ctx.Done():
			p.set(nil)
			s.close()
			return
		}
		p.set(nil)
		if err == nil {
			err = errors.New("closed")
		}
		p.say("plain %s connection lost on %s: %v", p.role, p.nodeName(p.uris[s.i]), err)
		s.close()
		next = (s.i + 1) % len(p.uris)
		s = nil
		select {
		case <-ctx.Done():
			return
		case <-time.After(plainBackoff):
		}
	}
}

// connect walks the node list from start until a node answers; it returns
// nil only when ctx ends.
func (p *plainConn) connect(ctx context.Context, start int) *plainSession {
	for {
		var last error
		for k := range p.uris {
			if ctx.Err() != nil {
				return nil
			}
			i := (start + k) % len(p.uris)
			s, err := p.open(i)
			if err == nil {
				p.say("plain %s connection on %s", p.role, p.nodeName(p.uris[i]))
				return s
			}
			last = err
		}
		p.say("plain %s connection: no node answered (last: %v); again in %v", p.role, last, plainBackoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(plainBackoff):
		}
	}
}

// open dials uris[i] and sets the connection up: the queue, then confirm
// mode (publishing) or qos and the consumer with its handlers (consuming).
func (p *plainConn) open(i int) (*plainSession, error) {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName("plain-demo-" + p.role)
	conn, err := amqp.DialConfig(p.uris[i], amqp.Config{
		Heartbeat: plainHeartbeat, Dial: amqp.DefaultDial(plainDialTimeout), Properties: props})
	if err != nil {
		return nil, err
	}
	s := &plainSession{i: i, conn: conn}
	s.connClosed = conn.NotifyClose(make(chan *amqp.Error, 1))
	fail := func(err error) (*plainSession, error) {
		s.close()
		return nil, err
	}
	if s.ch, err = conn.Channel(); err != nil {
		return fail(err)
	}
	s.chClosed = s.ch.NotifyClose(make(chan *amqp.Error, 1))
	if _, err = s.ch.QueueDeclare(p.queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return fail(err)
	}
	if p.handle == nil {
		if err := s.ch.Confirm(false); err != nil {
			return fail(err)
		}
		return s, nil
	}
	if err := s.ch.Qos(plainPrefetch, 0, false); err != nil {
		return fail(err)
	}
	deliveries, err := s.ch.Consume(p.queue, plainConsumerTag, false, false, false, false, nil)
	if err != nil {
		return fail(err)
	}
	for range plainWorkers {
		s.workers.Go(func() {
			for m := range deliveries {
				p.handle(m)
				m.Ack(false) // fails on a dead channel; the broker delivers the message again
			}
		})
	}
	return s, nil
}

// close closes the session's connection and waits for its handlers.
func (s *plainSession) close() {
	s.conn.CloseDeadline(time.Now().Add(2 * time.Second))
	s.workers.Wait()
}

// publish publishes msg and waits for its confirm, trying once more if
// that fails, as described above.
func (p *plainConn) publish(ctx context.Context, msg amqp.Publishing) error {
	err := p.publishOnce(ctx, msg)
	if err == nil || ctx.Err() != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return err
	case <-time.After(plainBackoff):
	}
	if err2 := p.publishOnce(ctx, msg); err2 != nil {
		return fmt.Errorf("%w (and on the retry: %v)", err, err2)
	}
	return nil
}

func (p *plainConn) publishOnce(ctx context.Context, msg amqp.Publishing) error {
	wait, cancel := context.WithTimeout(ctx, plainConfirmTimeout)
	defer cancel()
	ch, err := p.channel(wait)
	if err != nil {
		return fmt.Errorf("no connection within %v", plainConfirmTimeout)
	}
	defer p.use.RUnlock()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", p.queue, false, false, msg)
	if err != nil {
		return err
	}
	confirm, cancel := context.WithTimeout(ctx, plainConfirmTimeout)
	defer cancel()
	ok, err := dc.WaitContext(confirm)
	switch {
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("no confirm within %v", plainConfirmTimeout)
	case err != nil:
		return err
	case !ok:
		return errors.New("nacked, or the channel closed before the confirm")
	}
	return nil
}

// channel waits for an open channel; on success it holds p.use shared, for
// the caller to release.
func (p *plainConn) channel(ctx context.Context) (*amqp.Channel, error) {
	for {
		p.use.RLock()
		p.mu.Lock()
		s, changed := p.cur, p.changed
		p.mu.Unlock()
		if s != nil && !s.ch.IsClosed() {
			return s.ch, nil
		}
		p.use.RUnlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// place moves the connection to uris[i] unless it is there already, and
// reports whether it moved. It is the demo's, not the hand-written
// client's: see placePlain.
func (p *plainConn) place(ctx context.Context, i int) (bool, error) {
	if p.node() == i {
		return false, nil
	}
	m := plainMove{i: i, done: make(chan error, 1)}
	select {
	case p.moves <- m:
	case <-ctx.Done():
		return false, ctx.Err()
	case <-p.done:
		return false, errors.New("closed")
	}
	select {
	case err := <-m.done:
		return err == nil, err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// move hands the work over to a new session on uris[m.i] without losing or
// duplicating anything: publishers finish their confirms on the old channel
// first; the old consumer is cancelled and its handlers ack what it holds
// before the old connection closes. It returns the new session, or nil if
// the node could not be dialed (the old session stays).
func (p *plainConn) move(old *plainSession, m plainMove) *plainSession {
	if old.i == m.i {
		m.done <- nil
		return nil
	}
	ns, err := p.open(m.i)
	if err != nil {
		m.done <- err
		return nil
	}
	if p.handle == nil {
		p.use.Lock()
		p.set(ns)
		p.use.Unlock()
	} else {
		if err := old.ch.Cancel(plainConsumerTag, false); err == nil {
			old.workers.Wait() // the deliveries end once the handlers took what was buffered
		}
		p.set(ns)
	}
	old.close()
	m.done <- nil
	return ns
}
