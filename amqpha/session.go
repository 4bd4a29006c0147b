package amqpha

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// errSessionGone: the session takes no more messages; send elsewhere.
var errSessionGone = errors.New("amqpha: channel gone")

// maxAttempts bounds how often one message may be charged with the close
// of its channel or connection (a poison message) before it fails with
// ErrPoison. Losses that are not the message's doing (a node that died, a
// connection closed by an operator) are retried without limit.
const maxAttempts = 3

// session is one confirm-mode channel of a publisher. Messages are sent on
// it by callers' goroutines and the publisher's flush goroutine (serialized
// by sendMu); its dispatch goroutine matches confirms and returns to them.
// No I/O happens under mu.
type session struct {
	p     *Publisher
	id    uint64
	gen   uint64
	vhost string // of the connection, to read the broker's reasons exactly
	conn  *amqp.Connection
	ch    *amqp.Channel

	sendMu sync.Mutex

	mu       sync.Mutex
	inflight map[uint64]*Confirmation // by delivery tag
	returned map[uint64]bool          // delivery tags the broker returned
	// since restarts the confirm timeout: messages sent while the
	// connection was blocked wait for confirms from when it is unblocked.
	since    time.Time
	dead     bool
	retiring bool // no new messages; closed once inflight drains
	closing  bool

	confirms chan amqp.Confirmation
	returns  chan amqp.Return
	closed   chan *amqp.Error
}

func (p *Publisher) openSession(gen uint64, conn *amqp.Connection, vhost string) (*session, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, fmt.Errorf("amqpha: open channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return nil, fmt.Errorf("amqpha: confirm mode: %w", err)
	}
	buf := p.cfg.Window + 64
	s := &session{
		p:        p,
		id:       p.sessionSeq.Add(1),
		gen:      gen,
		vhost:    vhost,
		conn:     conn,
		ch:       ch,
		inflight: make(map[uint64]*Confirmation, p.cfg.Window),
		confirms: ch.NotifyPublish(make(chan amqp.Confirmation, buf)),
		returns:  ch.NotifyReturn(make(chan amqp.Return, buf)),
		closed:   ch.NotifyClose(make(chan *amqp.Error, 1)),
	}
	p.wg.Add(1)
	go s.dispatch()
	return s, nil
}

// publish sends c on the session. errSessionGone means it was not sent and
// the session takes no more; any other error means the message itself
// cannot be sent (c is resolved with it). nil means c was sent, or taken
// back by the dispatcher because the channel died meanwhile, or resolved
// before it could be sent.
func (s *session) publish(c *Confirmation) error {
	if !c.claim() {
		c.drop() // resolved while it waited: nothing to send
		return nil
	}
	defer c.unclaim()
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	if s.dead || s.retiring {
		s.mu.Unlock()
		return errSessionGone
	}
	// Registered before the send, so that the confirm cannot come first.
	tag := s.ch.GetNextPublishSeqNo()
	c.sentAt = time.Now()
	s.inflight[tag] = c
	s.mu.Unlock()

	err := s.ch.Publish(c.exchange, c.key, c.mandatory, false, c.msg)
	if err == nil {
		if m := s.p.metrics; m != nil {
			m.Published(c.sends.Add(1) > 1)
		}
		return nil
	}
	s.mu.Lock()
	_, mine := s.inflight[tag]
	delete(s.inflight, tag)
	s.mu.Unlock()
	if !mine {
		return nil // the dispatcher took it back and requeued it
	}
	if isEncodingError(err) {
		// amqp091-go refused to encode the message: sending it again
		// cannot help. (checkPublishing refuses what it would refuse.)
		err = fmt.Errorf("%w: %w", ErrInvalidMessage, err)
		c.resolve(err)
		return err
	}
	return errSessionGone
}

func (s *session) dispatch() {
	defer s.p.wg.Done()
	returns := s.returns
	for {
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			s.onReturn(r)
		case c, ok := <-s.confirms:
			if !ok {
				s.die()
				return
			}
			// A basic.return comes before its message's ack, and
			// amqp091-go hands them over in that order, so any return
			// for this ack is already waiting.
			s.drainReturns()
			s.onConfirm(c)
		}
	}
}

func (s *session) drainReturns() {
	for {
		select {
		case r, ok := <-s.returns:
			if !ok {
				return
			}
			s.onReturn(r)
		default:
			return
		}
	}
}

// onReturn marks the publish a basic.return belongs to. The broker returns
// messages in the order they were published, before their acks, and a
// return carries the message: it belongs to the earliest unconfirmed,
// not yet returned mandatory publish on this channel with the same
// exchange, routing key, message-id, correlation-id and body. Two
// messages alike in all of these are told apart by order alone.
func (s *session) onReturn(r amqp.Return) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var tags []uint64
	for tag, c := range s.inflight {
		if c.mandatory && !s.returned[tag] && c.exchange == r.Exchange && c.key == r.RoutingKey &&
			c.msg.MessageId == r.MessageId && c.msg.CorrelationId == r.CorrelationId && len(c.msg.Body) == len(r.Body) {
			tags = append(tags, tag)
		}
	}
	slices.Sort(tags)
	for _, tag := range tags {
		c := s.inflight[tag]
		if len(tags) > 1 {
			if !c.claim() {
				continue // resolved meanwhile: its outcome is known
			}
			same := bytes.Equal(c.msg.Body, r.Body)
			c.unclaim()
			if !same {
				continue
			}
		}
		if s.returned == nil {
			s.returned = make(map[uint64]bool)
		}
		s.returned[tag] = true
		return
	}
}

func (s *session) onConfirm(conf amqp.Confirmation) {
	s.mu.Lock()
	c := s.inflight[conf.DeliveryTag]
	delete(s.inflight, conf.DeliveryTag)
	returned := s.returned[conf.DeliveryTag]
	if returned {
		delete(s.returned, conf.DeliveryTag)
	}
	drained := s.retiring && len(s.inflight) == 0
	s.mu.Unlock()
	if drained {
		s.closeChannel()
	}
	if c == nil {
		return
	}
	switch {
	case conf.Ack && returned:
		c.settle(fmt.Errorf("%w: exchange %q, routing key %q", ErrUnroutable, c.exchange, c.key))
	case conf.Ack:
		c.settle(nil)
	default:
		s.p.nacked(s, c)
	}
}

// retire stops new messages on the session and closes its channel once the
// messages in flight are confirmed. It reports whether it was live.
func (s *session) retire() bool {
	s.mu.Lock()
	if s.dead || s.retiring {
		s.mu.Unlock()
		return false
	}
	s.retiring = true
	drained := len(s.inflight) == 0
	s.mu.Unlock()
	if drained {
		s.closeChannel()
	}
	return true
}

// unblocked restarts the confirm timeout of the messages in flight.
func (s *session) unblocked(now time.Time) {
	s.mu.Lock()
	s.since = now
	s.mu.Unlock()
}

// takeIfStuck retires the session and takes back every message in flight if
// the oldest of them waited longer than timeout before now.
func (s *session) takeIfStuck(now time.Time, timeout time.Duration) ([]*Confirmation, time.Duration) {
	s.mu.Lock()
	if s.dead || s.retiring || len(s.inflight) == 0 {
		s.mu.Unlock()
		return nil, 0
	}
	var oldest time.Time
	for _, c := range s.inflight {
		if oldest.IsZero() || c.sentAt.Before(oldest) {
			oldest = c.sentAt
		}
	}
	if oldest.Before(s.since) {
		oldest = s.since
	}
	if now.Sub(oldest) < timeout {
		s.mu.Unlock()
		return nil, 0
	}
	taken := s.takeAllLocked()
	s.retiring = true
	s.mu.Unlock()
	s.closeChannel()
	return taken, now.Sub(oldest)
}

// takeAllLocked empties inflight and returns its messages in publish order.
func (s *session) takeAllLocked() []*Confirmation {
	tags := make([]uint64, 0, len(s.inflight))
	for t := range s.inflight {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	taken := make([]*Confirmation, len(tags))
	for i, t := range tags {
		taken[i] = s.inflight[t]
	}
	clear(s.inflight)
	clear(s.returned)
	return taken
}

// closeChannel closes the channel once, without waiting for the broker;
// the dispatcher ends when amqp091-go closes the confirm channel.
func (s *session) closeChannel() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.mu.Unlock()
	s.p.wg.Add(1)
	go func() {
		defer s.p.wg.Done()
		s.ch.Close()
	}()
}

// die takes back every message in flight when the channel has closed. The
// message whose publish made the broker close the channel or the
// connection is charged with it and fails once it has done so
// maxAttempts times; every other message is sent again elsewhere.
func (s *session) die() {
	s.mu.Lock()
	s.dead = true
	taken := s.takeAllLocked()
	s.mu.Unlock()

	var chErr *amqp.Error
	select {
	case chErr = <-s.closed:
	default:
	}
	s.p.sessionDead(s)
	culprits := s.culprits(chErr, taken)
	for _, c := range taken {
		if c.resolved() {
			c.drop()
			continue
		}
		if named, blamed := culprits[c]; blamed {
			c.attempts++
			if named && permanentRefusal(chErr) {
				c.settle(fmt.Errorf("amqpha: publish to exchange %q: %w", c.exchange, chErr))
				continue
			}
			if c.attempts >= maxAttempts {
				c.settle(fmt.Errorf("%w (%d times): %w", ErrPoison, c.attempts, chErr))
				continue
			}
		}
		s.p.requeue(c)
	}
	if len(culprits) > 0 {
		s.p.userCall(func() {
			s.p.log.Warn("publisher channel closed by the broker", "code", chErr.Code, "reason", chErr.Reason)
		})
	}
}

// culprits finds the messages in flight that the broker's close chErr
// blames: those its reason names (the exchange that does not exist or may
// not be written to, the size over the limit), or else, when the broker
// closed the channel or the connection for a fault in what was sent, the
// first unconfirmed message. A close that is no message's doing (a lost
// connection, a node shutting down) blames none.
//
// The map holds the blamed messages, true for those the reason names.
func (s *session) culprits(chErr *amqp.Error, taken []*Confirmation) map[*Confirmation]bool {
	if chErr == nil || !chErr.Server || len(taken) == 0 {
		return nil
	}
	if !isChannelError(chErr.Code) && !isProtocolError(chErr.Code) {
		return nil
	}
	blamed := map[*Confirmation]bool{}
	for _, c := range taken {
		if s.reasonNames(chErr, c) {
			blamed[c] = true
		}
	}
	if len(blamed) == 0 {
		blamed[taken[0]] = false // the first the broker did not confirm
	}
	return blamed
}

// reasonNames reports whether RabbitMQ's reason text for chErr names c's
// exchange (404 no exchange, 403 access refused) or its size (406 over the
// configured max size), compared exactly.
func (s *session) reasonNames(chErr *amqp.Error, c *Confirmation) bool {
	ex := "'" + c.exchange + "' in vhost '" + s.vhost + "'"
	switch chErr.Code {
	case amqp.NotFound:
		return c.exchange != "" && chErr.Reason == "NOT_FOUND - no exchange "+ex
	case amqp.AccessRefused:
		return strings.HasPrefix(chErr.Reason, "ACCESS_REFUSED - access to exchange "+ex+" refused")
	case amqp.PreconditionFailed:
		return strings.HasPrefix(chErr.Reason, "PRECONDITION_FAILED - message size "+strconv.Itoa(len(c.msg.Body))+" is larger than")
	}
	return false
}

// permanentRefusal reports a close that sending the message again cannot
// change: its exchange does not exist, or the user may not write to it.
func permanentRefusal(chErr *amqp.Error) bool {
	return chErr.Code == amqp.NotFound || chErr.Code == amqp.AccessRefused
}

// isChannelError reports AMQP reply codes that close a channel, not the
// connection.
func isChannelError(code int) bool {
	switch code {
	case amqp.ContentTooLarge, amqp.NoConsumers, amqp.AccessRefused, amqp.NotFound, amqp.ResourceLocked, amqp.PreconditionFailed:
		return true
	}
	return false
}

// isProtocolError reports connection-level reply codes with which the
// broker refuses what a client sent (a malformed frame or method), as
// opposed to a shutdown or a forced close.
func isProtocolError(code int) bool {
	switch code {
	case amqp.FrameError, amqp.SyntaxError, amqp.CommandInvalid, amqp.UnexpectedFrame, amqp.NotImplemented:
		return true
	}
	return false
}

// isEncodingError reports a publish error that is not the channel's or
// the connection's (an *amqp091.Error, a network error), so the message
// itself could not be written.
func isEncodingError(err error) bool {
	var ae *amqp.Error
	var ne net.Error
	return !errors.As(err, &ae) && !errors.As(err, &ne) &&
		!errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed)
}
