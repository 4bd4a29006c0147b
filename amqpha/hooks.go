package amqpha

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// PublishHook is called once for every message given to Publisher.Publish
// or PublishAsync that amqpha goes on to handle (not for a call whose
// context had already ended), in the caller's goroutine, before the message
// is checked and sent. It sees the message as it will be sent (MessageId
// and DeliveryMode filled in) and may add headers (SetHeader) or change
// other properties (a MessageId or DeliveryMode it clears is filled in
// again); what it leaves is checked like the caller's message, so a header
// AMQP cannot carry fails the call with ErrInvalidMessage. m is valid only
// during the call.
//
// The function it returns, if not nil, receives the message's outcome
// exactly once: for Publish in the caller's goroutine just before Publish
// returns; for PublishAsync, on a goroutine of the client's that runs the
// client's calls into user code in order (so maybe just after the
// Confirmation resolved; Publisher.Close and Client.Close wait for it); for
// a message refused at once, in the caller's goroutine before the call
// returns. It never runs on the goroutines that receive confirms. With
// several hooks ([Config.PublishHooks]) they run in order and their outcome
// functions in the reverse order, like deferred calls.
//
// A PublishHook must be safe for concurrent use: many goroutines publish at
// once. It slows only the caller that runs it; an outcome function of
// PublishAsync delays the client's other calls into user code (Metrics,
// logs), never confirms.
type PublishHook func(ctx context.Context, m *OutgoingMessage) (done func(PublishResult))

// ConsumeHook wraps the handler of every consumer of the client
// ([Config.ConsumeHooks]); Client.Consume calls it once, and refuses a
// nil Handler with ErrInvalidArgument. It returns a Handler that calls
// next, typically with a context derived from ctx and the delivery (for
// instance one that carries a span started from the delivery's headers),
// and may look at what next decided. The first hook is the outermost. The
// Handler it returns runs on the consumer's handler goroutines, like the
// handler.
type ConsumeHook func(next Handler) Handler

// OutgoingMessage is a message on its way to the broker, as a PublishHook
// sees it.
type OutgoingMessage struct {
	// Exchange and Key say where the message goes; changing them changes
	// nothing.
	Exchange string
	Key      string
	// Msg is the message as it will be sent. A hook may change its fields,
	// but must not change the map Msg.Headers in place: it is the
	// caller's. SetHeader adds a header to a copy.
	Msg amqp.Publishing

	ownHeaders bool // Msg.Headers is amqpha's copy
}

// SetHeader sets header key to value in the message's headers, copying
// the caller's headers first (once), so that the caller's map is never
// written. value must be of a type AMQP tables carry (see
// amqp091.Table); otherwise the publish fails with ErrInvalidMessage.
func (m *OutgoingMessage) SetHeader(key string, value any) {
	if !m.ownHeaders {
		h := make(amqp.Table, len(m.Msg.Headers)+2)
		maps.Copy(h, m.Msg.Headers)
		m.Msg.Headers = h
		m.ownHeaders = true
	}
	m.Msg.Headers[key] = value
}

// PublishResult is the outcome of one published message, handed to the
// function a PublishHook returned.
type PublishResult struct {
	// Err is what Publish returned or the Confirmation resolved to: nil
	// when the broker confirmed the message.
	Err error
	// At is when the outcome was known (the confirm's arrival, for
	// instance), which may be a little before the outcome function runs.
	At time.Time
	// Peer is the address (host:port) of the connection whose broker gave
	// the answer: the ack, the final nack or the return. "" when no broker
	// answered (the context ended, the publisher closed, the message was
	// refused).
	Peer string
	// Resends lists, oldest first, each time the message was taken back
	// to be sent again: after a nack, after its channel or connection was
	// lost, or after its confirm took too long.
	Resends []Resend
}

// Resend is one time a message was taken back to be sent again.
type Resend struct {
	At     time.Time
	Reason ResendReason
	// Peer is the address (host:port) of the connection the message was
	// on.
	Peer string
}

// ResendReason says why a message was sent again.
type ResendReason int

const (
	// ResendNacked: the broker nacked the message; it is sent again on a
	// fresh channel after a short pause (PublisherConfig.NackRetryFor).
	ResendNacked ResendReason = iota + 1
	// ResendConnectionLost: the connection was lost (or closed it for
	// shutdown) before the confirm: the message goes out again on the
	// next connection, maybe on another node, so the broker may hold it
	// twice.
	ResendConnectionLost
	// ResendChannelClosed: the broker closed the message's channel, for a
	// reason that did not name this message, before its confirm.
	ResendChannelClosed
	// ResendConfirmTimeout: no confirm came within
	// PublisherConfig.ConfirmTimeout; the channel was replaced.
	ResendConfirmTimeout
)

func (r ResendReason) String() string {
	switch r {
	case ResendNacked:
		return "nacked"
	case ResendConnectionLost:
		return "connection_lost"
	case ResendChannelClosed:
		return "channel_closed"
	case ResendConfirmTimeout:
		return "confirm_timeout"
	}
	return fmt.Sprintf("ResendReason(%d)", int(r))
}

// publishTrace is what a message's hooks wait for: set up by runHooks,
// filled by the goroutines that handle the message (under the
// Confirmation's mu), read once it is resolved.
type publishTrace struct {
	first   func(PublishResult)   // the first hook's
	more    []func(PublishResult) // the others', in hook order
	resends []Resend
	peer    *amqp.Connection // the connection that answered
	at      time.Time        // when the outcome was known (complete)
}

// runHooks runs the publisher's hooks on a message about to be handled,
// and returns it as they left it, with what waits for the outcome (nil
// when no hook wants it).
func (p *Publisher) runHooks(ctx context.Context, exchange, key string, msg amqp.Publishing) (amqp.Publishing, *publishTrace) {
	m := OutgoingMessage{Exchange: exchange, Key: key, Msg: msg}
	var tr *publishTrace
	for _, h := range p.hooks {
		switch done := h(ctx, &m); {
		case done == nil:
		case tr == nil:
			tr = &publishTrace{first: done}
		default:
			tr.more = append(tr.more, done)
		}
	}
	// The hooks may not change where the message goes (exchange and key
	// are the caller's) nor take away what amqpha promises of it.
	if m.Msg.DeliveryMode == 0 {
		m.Msg.DeliveryMode = amqp.Persistent
	}
	if m.Msg.MessageId == "" {
		m.Msg.MessageId = p.newID()
	}
	return m.Msg, tr
}

// report hands a refused message's outcome to its hooks.
func (tr *publishTrace) refused(err error) {
	if tr != nil {
		tr.deliver(PublishResult{Err: err, At: time.Now()})
	}
}

// deliver runs the outcome functions, last hook first.
func (tr *publishTrace) deliver(r PublishResult) {
	for i := len(tr.more) - 1; i >= 0; i-- {
		tr.more[i](r)
	}
	tr.first(r)
}

// report hands c's outcome to its hooks; c is resolved.
func (c *Confirmation) report() {
	tr := c.trace
	c.mu.Lock()
	r := PublishResult{Err: c.err, At: tr.at, Resends: slices.Clone(tr.resends)}
	peer := tr.peer
	c.mu.Unlock()
	if peer != nil {
		r.Peer = c.p.peerName(peer)
	}
	tr.deliver(r)
}

// peerName is conn's remote address as text, remembered for the last
// connection asked about (it is the same for every message on it).
func (p *Publisher) peerName(conn *amqp.Connection) string {
	if last := p.lastPeer.Load(); last != nil && last.conn == conn {
		return last.addr
	}
	addr := addrOf(conn)
	p.lastPeer.Store(&connAddr{conn, addr})
	return addr
}

type connAddr struct {
	conn *amqp.Connection
	addr string
}

// noteResend records that c, taken back from a session on conn, is sent
// again for reason. Memory only: it runs on the confirm path.
func (c *Confirmation) noteResend(reason ResendReason, conn *amqp.Connection) {
	if c.trace == nil || c.resolved() {
		return
	}
	c.mu.Lock()
	c.trace.resends = append(c.trace.resends, Resend{At: time.Now(), Reason: reason, Peer: addrOf(conn)})
	c.mu.Unlock()
}

// notePeer records that the broker on conn answered c.
func (c *Confirmation) notePeer(conn *amqp.Connection) {
	if c.trace == nil {
		return
	}
	c.mu.Lock()
	c.trace.peer = conn
	c.mu.Unlock()
}

// resendReasonFor is why a message taken back after its channel closed
// with chErr is sent again.
func resendReasonFor(chErr *amqp.Error) ResendReason {
	if chErr != nil && chErr.Server && isChannelError(chErr.Code) {
		return ResendChannelClosed
	}
	return ResendConnectionLost
}

func addrOf(conn *amqp.Connection) string {
	if conn == nil {
		return ""
	}
	return conn.RemoteAddr().String()
}

// checkHooks refuses nil hooks.
func checkHooks(pub []PublishHook, cons []ConsumeHook) error {
	for i, h := range pub {
		if h == nil {
			return fmt.Errorf("amqpha: config: PublishHooks[%d] is nil", i)
		}
	}
	for i, h := range cons {
		if h == nil {
			return fmt.Errorf("amqpha: config: ConsumeHooks[%d] is nil", i)
		}
	}
	return nil
}

// wrapHandler applies the client's consume hooks to h, the first
// outermost.
// A hook that returns a nil Handler is refused.
func wrapHandler(h Handler, hooks []ConsumeHook) (Handler, error) {
	for i := len(hooks) - 1; i >= 0; i-- {
		if h = hooks[i](h); h == nil {
			return nil, fmt.Errorf("%w: Config.ConsumeHooks[%d] returned a nil Handler", ErrInvalidArgument, i)
		}
	}
	return h, nil
}
