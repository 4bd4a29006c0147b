package amqpha

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// errSessionGone: the session takes no more messages; send elsewhere.
var errSessionGone = errors.New("amqpha: channel gone")

// maxChannelAttempts bounds how often one message may be in flight on a
// channel that the broker closed with a channel error (a poison message),
// not counting connection losses, which are retried without limit.
const maxChannelAttempts = 3

// session is one confirm-mode channel of a publisher. Messages are sent on
// it by callers' goroutines and the publisher's flush goroutine (serialized
// by sendMu); its dispatch goroutine matches confirms and returns to them.
// No I/O happens under mu.
type session struct {
	p    *Publisher
	id   uint64
	gen  uint64
	conn *amqp.Connection
	ch   *amqp.Channel

	sendMu sync.Mutex

	mu       sync.Mutex
	inflight map[uint64]*Confirmation // by delivery tag
	byID     map[string]*Confirmation // mandatory messages in flight, by message-id
	dead     bool
	retiring bool // no new messages; closed once inflight drains
	closing  bool

	confirms chan amqp.Confirmation
	returns  chan amqp.Return
	closed   chan *amqp.Error
}

func (p *Publisher) openSession(gen uint64, conn *amqp.Connection) (*session, error) {
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
		conn:     conn,
		ch:       ch,
		inflight: make(map[uint64]*Confirmation, p.cfg.Window),
		byID:     make(map[string]*Confirmation),
		confirms: ch.NotifyPublish(make(chan amqp.Confirmation, buf)),
		returns:  ch.NotifyReturn(make(chan amqp.Return, buf)),
		closed:   ch.NotifyClose(make(chan *amqp.Error, 1)),
	}
	p.wg.Add(1)
	go s.dispatch()
	return s, nil
}

// publish sends c on the session. errSessionGone means it was not sent;
// any other error means the channel failed and c is either not sent or
// already taken back by the dispatcher.
func (s *session) publish(c *Confirmation) error {
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
	if c.mandatory {
		s.byID[c.msg.MessageId] = c
	}
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
	if c.mandatory {
		delete(s.byID, c.msg.MessageId)
	}
	s.mu.Unlock()
	if !mine {
		return nil // the dispatcher took it back and requeued it
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

func (s *session) onReturn(r amqp.Return) {
	s.mu.Lock()
	c := s.byID[r.MessageId]
	s.mu.Unlock()
	if c != nil {
		c.returned.Store(true)
	}
}

func (s *session) onConfirm(conf amqp.Confirmation) {
	s.mu.Lock()
	c := s.inflight[conf.DeliveryTag]
	delete(s.inflight, conf.DeliveryTag)
	if c != nil && c.mandatory {
		delete(s.byID, c.msg.MessageId)
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
	case conf.Ack && c.returned.Load():
		c.resolve(fmt.Errorf("%w: exchange %q, routing key %q", ErrUnroutable, c.exchange, c.key))
	case conf.Ack:
		c.resolve(nil)
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

// takeIfStuck retires the session and takes back every message in flight if
// the oldest of them was sent longer than timeout before now.
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
	if now.Sub(oldest) < timeout {
		s.mu.Unlock()
		return nil, 0
	}
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
	clear(s.byID)
	s.retiring = true
	s.mu.Unlock()
	s.closeChannel()
	return taken, now.Sub(oldest)
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

// die takes back every message in flight when the channel has closed, and
// sends them again elsewhere, or fails them when the broker closed the
// channel because of them.
func (s *session) die() {
	s.mu.Lock()
	s.dead = true
	taken := s.inflight
	s.inflight, s.byID = nil, nil
	s.mu.Unlock()

	var chErr *amqp.Error
	select {
	case chErr = <-s.closed:
	default:
	}
	s.p.sessionDead(s)
	tags := make([]uint64, 0, len(taken))
	for t := range taken {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	channelFault := chErr != nil && chErr.Server && isChannelError(chErr.Code)
	for _, t := range tags {
		c := taken[t]
		if c.resolved() {
			continue
		}
		if channelFault {
			c.attempts++
			if chErr.Code == amqp.NotFound && c.exchange != "" && strings.Contains(chErr.Reason, "'"+c.exchange+"'") {
				c.resolve(fmt.Errorf("amqpha: publish to exchange %q: %w", c.exchange, chErr))
				continue
			}
			if c.attempts >= maxChannelAttempts {
				c.resolve(fmt.Errorf("amqpha: channel closed %d times while publishing: %w", c.attempts, chErr))
				continue
			}
		}
		s.p.requeue(c)
	}
	if channelFault {
		s.p.log.Warn("publisher channel closed by the broker", "code", chErr.Code, "reason", chErr.Reason)
	}
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
