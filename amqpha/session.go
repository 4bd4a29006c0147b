package amqpha

import (
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// maxNotifyBuffer caps the buffers of a channel's confirm and return
// notifications (Window + 64 below it).
const maxNotifyBuffer = 4096

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

	// sendSem serializes sends; a channel so that a caller waiting for it
	// (behind a write the broker does not read) leaves at its ctx's end.
	sendSem chan struct{}
	// waiting counts the sends waiting for sendSem. A send with others
	// behind it corks tc (its frames go out with the next send's, in one
	// system call); the last send of a queue, or a waiter that gives up
	// as the last, flushes. tc is nil where corking is off.
	waiting atomic.Int32
	tc      *trackedConn

	mu       sync.Mutex
	inflight map[uint64]*Confirmation // by delivery tag
	returned map[uint64]bool          // delivery tags the broker returned
	// since restarts the confirm timeout: messages sent while the
	// connection was blocked wait for confirms from when it is unblocked.
	since    time.Time
	dead     bool
	retiring bool // no new messages; closed once inflight drains
	closing  bool

	// pending holds the deferred confirmations of the messages sent, in
	// publish (delivery tag) order, from head on; the dispatcher waits
	// for them in that order, as amqp091-go's NotifyPublish would hand
	// them over, but without its timer per confirm. added wakes the
	// dispatcher when pending was empty.
	pending []pendingConfirm
	head    int
	added   chan struct{}

	returns chan amqp.Return
	closed  chan *amqp.Error
	// closeErr is the broker's reason for the channel's close once it
	// came on closed (dispatcher only).
	closeErr *amqp.Error
}

// afterWriteHook, when set (by tests only), runs in publish between a
// message's write and the record of its deferred confirmation.
var afterWriteHook atomic.Pointer[func()]

// pendingConfirm is a message sent on the session, awaiting its confirm.
type pendingConfirm struct {
	tag uint64
	dc  *amqp.DeferredConfirmation
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
	// amqp091-go waits for returns (and drops them after 5 s); the
	// dispatcher never blocks on user code, so a bounded buffer is enough.
	buf := min(p.cfg.Window+64, maxNotifyBuffer)
	s := &session{
		sendSem:  make(chan struct{}, 1),
		p:        p,
		id:       p.sessionSeq.Add(1),
		gen:      gen,
		vhost:    vhost,
		conn:     conn,
		ch:       ch,
		inflight: make(map[uint64]*Confirmation, p.cfg.Window),
		tc:       p.sup.trackedFor(conn),
		added:    make(chan struct{}, 1),
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
	select {
	case s.sendSem <- struct{}{}:
	default:
		s.waiting.Add(1)
		select {
		case s.sendSem <- struct{}{}:
			s.waiting.Add(-1)
		case <-c.ctx.Done():
			s.stopWaiting()
			c.resolve(s.p.contextError(c.ctx))
			c.drop()
			return nil
		case <-s.p.stop:
			s.stopWaiting()
			c.settle(ErrClosed)
			return nil
		}
	}
	defer s.endSend()
	switch c.claim() {
	case resolved:
		c.drop() // nothing to send
		return nil
	case busy:
		return nil // requeued when the other send ends
	}
	defer c.unclaim()
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

	corked := s.tc != nil && s.waiting.Load() > 0
	if corked {
		s.tc.cork()
	}
	dc, err := s.ch.PublishWithDeferredConfirm(c.exchange, c.key, c.mandatory, false, c.msg)
	if corked {
		s.tc.uncork()
	}
	if err == nil && dc == nil {
		err = errors.New("amqpha: channel not in confirm mode")
	}
	if err == nil {
		if h := afterWriteHook.Load(); h != nil {
			(*h)() // tests: a send preempted between its write and its record
		}
		long := time.Since(c.sentAt) > time.Millisecond
		s.mu.Lock()
		if long && s.inflight[tag] == c {
			// A long write (a large message, a slow link): its confirm
			// is waited for from the write's end.
			c.sentAt = time.Now()
		}
		wake := s.head == len(s.pending)
		s.pending = append(s.pending, pendingConfirm{tag: dc.DeliveryTag, dc: dc})
		s.mu.Unlock()
		if wake {
			select {
			case s.added <- struct{}{}:
			default:
			}
		}
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

// endSend ends a send: sendSem is freed, and what corks held back goes out
// unless another send waits to take it along.
func (s *session) endSend() {
	if s.tc != nil && s.waiting.Load() == 0 {
		s.tc.flush()
	}
	<-s.sendSem
}

// stopWaiting ends a wait for sendSem that gave up. The last waiter to give
// up flushes: the send before it may have left its frames for it to take.
func (s *session) stopWaiting() {
	if s.waiting.Add(-1) == 0 && s.tc != nil {
		s.tc.flush()
	}
}

// dispatch hands the session's confirms and returns to their messages, in
// publish order, until the channel closes.
func (s *session) dispatch() {
	defer s.p.wg.Done()
	returns, closed := s.returns, s.closed
	for {
		var done <-chan struct{}
		next, ok := s.nextPending()
		if ok {
			done = next.dc.Done()
		}
		select {
		case r, ok := <-returns:
			if !ok {
				returns = nil
				continue
			}
			s.onReturn(r)
		case <-s.added:
		case <-done:
			// The confirms that came together (one multiple ack) are
			// handed over in one go, without a select for each.
			for {
				// When the channel closes, amqp091-go closes the
				// NotifyClose channel first and then nacks every
				// confirmation still pending: a nack seen once
				// NotifyClose is closed is the channel's death, not the
				// broker's answer. (A real nack read just before a close
				// the dispatcher sees only after both is taken for the
				// death: the message is sent again, without counting as
				// a nack.)
				ack := next.dc.Acked()
				if !ack && s.closedNow() {
					s.end()
					return
				}
				tag := next.tag
				next, ok = s.popPending()
				// A basic.return comes before its message's ack, and
				// amqp091-go hands it over before it reads the ack, so
				// any return for this ack is already waiting.
				s.drainReturns()
				s.onConfirm(amqp.Confirmation{DeliveryTag: tag, Ack: ack})
				if !ok || !isClosed(next.dc.Done()) {
					break
				}
			}
		case e, ok := <-closed:
			if ok {
				// The reason comes first; acks and nacks read before
				// the close are still handed over until the channel
				// is closed for good.
				s.closeErr = e
				continue
			}
			s.end()
			return
		}
	}
}

// closedNow reports whether amqp091-go has closed the session's NotifyClose
// channel (noting the reason if it is still there to take).
func (s *session) closedNow() bool {
	for {
		select {
		case e, ok := <-s.closed:
			if !ok {
				return true
			}
			s.closeErr = e
		default:
			return false
		}
	}
}

// end takes back what is in flight once the channel has closed: first the
// acks read before the close, then the rest (die).
func (s *session) end() {
	// A send under way may have written a message whose ack came before
	// the close, and not yet registered its confirmation: let it finish
	// (on a closed channel it does at once; the bound is for a write
	// stuck in a socket the broker does not read).
	select {
	case s.sendSem <- struct{}{}:
		<-s.sendSem
	case <-s.p.stop:
	case <-time.After(time.Second):
	}
	s.confirmAcked()
	s.die(s.closeErr)
}

// confirmAcked hands over the acks that arrived before the channel closed
// (amqp091-go reports the close as soon as it reads it, maybe before the
// dispatcher took acks read just before): those messages are confirmed,
// not sent again nor suspected of the close.
func (s *session) confirmAcked() {
	var acked []uint64
	s.mu.Lock()
	for _, pc := range s.pending[s.head:] {
		if pc.dc.Acked() {
			acked = append(acked, pc.tag)
		}
	}
	s.mu.Unlock()
	if len(acked) == 0 {
		return
	}
	s.drainReturns()
	for _, tag := range acked {
		s.onConfirm(amqp.Confirmation{DeliveryTag: tag, Ack: true})
	}
}

// nextPending is the oldest message awaiting its confirm, if any.
func (s *session) nextPending() (pendingConfirm, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.pending) {
		return pendingConfirm{}, false
	}
	return s.pending[s.head], true
}

// popPending drops the oldest pending confirm, reusing the slice once it
// is empty or mostly consumed, and returns the next one, if any.
func (s *session) popPending() (pendingConfirm, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[s.head] = pendingConfirm{}
	s.head++
	switch {
	case s.head == len(s.pending):
		s.pending, s.head = s.pending[:0], 0
		return pendingConfirm{}, false
	case s.head >= 1024 && s.head*2 >= len(s.pending):
		n := copy(s.pending, s.pending[s.head:])
		clear(s.pending[n:])
		s.pending, s.head = s.pending[:n], 0
	}
	return s.pending[s.head], true
}

// isClosed reports whether done is closed, without waiting.
func isClosed(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
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
// exchange, routing key, message-id, correlation-id and body size. (Two
// publishes alike in all of these are routed alike, unless a binding
// changed between them; then the earlier takes the return.) The caller's
// body is not read here: the message may be resolved, and reused.
func (s *session) onReturn(r amqp.Return) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first uint64
	for tag, c := range s.inflight {
		if c.mandatory && !s.returned[tag] && c.exchange == r.Exchange && c.key == r.RoutingKey &&
			c.msg.MessageId == r.MessageId && c.msg.CorrelationId == r.CorrelationId && len(c.msg.Body) == len(r.Body) &&
			(first == 0 || tag < first) {
			first = tag
		}
	}
	if first == 0 {
		return // its publish is no longer in flight here
	}
	if s.returned == nil {
		s.returned = make(map[uint64]bool)
	}
	s.returned[first] = true
}

func (s *session) onConfirm(conf amqp.Confirmation) {
	s.mu.Lock()
	c := s.inflight[conf.DeliveryTag]
	delete(s.inflight, conf.DeliveryTag)
	returned := s.returned[conf.DeliveryTag]
	if returned {
		delete(s.returned, conf.DeliveryTag)
	}
	idle := len(s.inflight) == 0
	drained := s.retiring && idle
	s.mu.Unlock()
	if drained {
		s.closeChannel()
	}
	if idle && s.p.isolating.Load() > 0 {
		s.p.kickFlush() // the next message may go
	}
	if c == nil {
		return
	}
	c.notePeer(s.conn)
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

// idle reports whether no message is in flight on the session.
func (s *session) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight) == 0
}

// isGone reports whether the session takes no more messages.
func (s *session) isGone() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dead || s.retiring
}

// unblocked restarts the confirm timeout of the messages in flight.
func (s *session) unblocked(now time.Time) {
	s.mu.Lock()
	s.since = now
	s.mu.Unlock()
}

// takeIfStuck retires the session and takes back every message in flight if
// the oldest of them waited longer than timeout before now, counting from
// notBefore at the earliest. A retiring
// session (replaced after a nack) is watched too: its messages must not
// wait for ever behind a stale channel.
func (s *session) takeIfStuck(now time.Time, timeout time.Duration, notBefore time.Time) ([]*Confirmation, time.Duration) {
	if len(s.sendSem) > 0 {
		return nil, 0 // a write is under way: not stuck, or the hang detector's
	}
	s.mu.Lock()
	if s.dead || len(s.inflight) == 0 {
		s.mu.Unlock()
		return nil, 0
	}
	var oldest time.Time
	for _, c := range s.inflight {
		if oldest.IsZero() || c.sentAt.Before(oldest) {
			oldest = c.sentAt
		}
	}
	for _, t := range []time.Time{s.since, notBefore} {
		if oldest.Before(t) {
			oldest = t
		}
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
// the dispatcher ends when amqp091-go reports the channel closed.
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
func (s *session) die(chErr *amqp.Error) {
	s.mu.Lock()
	s.dead = true
	taken := s.takeAllLocked()
	s.pending, s.head = nil, 0
	s.mu.Unlock()

	s.p.sessionDead(s)
	culprits, suspects := s.culprits(chErr, taken)
	for _, c := range taken {
		if c.resolved() {
			c.drop()
			continue
		}
		if suspects && c.suspect.CompareAndSwap(false, true) {
			s.p.isolating.Add(1)
		}
		if named, blamed := culprits[c]; blamed {
			c.attempts++
			if named {
				// Refused for what it is: sending it again cannot help.
				c.settle(fmt.Errorf("amqpha: publish to exchange %q refused: %w", c.exchange, chErr))
				continue
			}
			if c.attempts >= maxAttempts {
				c.settle(fmt.Errorf("%w (%d times): %w", ErrPoison, c.attempts, chErr))
				continue
			}
		}
		c.noteResend(resendReasonFor(chErr), s.conn)
		s.p.requeue(c)
	}
	if len(culprits) > 0 || suspects {
		s.p.userCall(func() {
			s.p.log.Warn("publisher channel closed by the broker", "code", chErr.Code, "reason", chErr.Reason)
		})
	}
}

// culprits finds the messages in flight that the broker's close chErr
// blames. A close that is no message's doing (a lost connection, a node
// shutting down) blames none. Otherwise the messages its reason names
// (true in the map), or else the only unconfirmed message (false); with
// several unconfirmed and none named, none is blamed and suspects is true:
// they are sent again one at a time, so that the next close names its
// message.
func (s *session) culprits(chErr *amqp.Error, taken []*Confirmation) (blamed map[*Confirmation]bool, suspects bool) {
	if chErr == nil || !chErr.Server || len(taken) == 0 {
		return nil, false
	}
	if !isChannelError(chErr.Code) && !isProtocolError(chErr.Code) {
		return nil, false
	}
	blamed = map[*Confirmation]bool{}
	for _, c := range taken {
		if s.reasonNames(chErr, c) {
			blamed[c] = true
		}
	}
	switch {
	case len(blamed) > 0:
	case len(taken) == 1:
		blamed[taken[0]] = false
	default:
		return nil, true
	}
	return blamed, false
}

// reasonNames reports whether RabbitMQ's reason text for chErr names c:
// its exchange (404 no exchange; 403 no write access, or internal), its
// size (406 over max_message_size), its expiration or user-id (406),
// compared exactly.
func (s *session) reasonNames(chErr *amqp.Error, c *Confirmation) bool {
	ex := "exchange '" + c.exchange + "' in vhost '" + s.vhost + "'"
	r := chErr.Reason
	switch chErr.Code {
	case amqp.NotFound:
		return c.exchange != "" && r == "NOT_FOUND - no "+ex
	case amqp.AccessRefused:
		return strings.HasPrefix(r, "ACCESS_REFUSED - write access to "+ex+" refused for user '") ||
			r == "ACCESS_REFUSED - cannot publish to internal "+ex
	case amqp.PreconditionFailed:
		return strings.HasPrefix(r, "PRECONDITION_FAILED - message size "+strconv.Itoa(len(c.msg.Body))+" is larger than") ||
			c.msg.Expiration != "" && strings.HasPrefix(r, "PRECONDITION_FAILED - invalid expiration '"+c.msg.Expiration+"'") ||
			c.msg.UserId != "" && strings.HasPrefix(r, "PRECONDITION_FAILED - user_id property set to '"+c.msg.UserId+"' but")
	}
	return false
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
