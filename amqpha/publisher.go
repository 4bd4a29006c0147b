package amqpha

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// PublisherConfig configures a Publisher. The zero value works.
type PublisherConfig struct {
	// Window is the most messages that may be published and not yet
	// resolved; Publish waits for room (within its context). 0 means 256.
	Window int
	// AllowUnroutable publishes without the mandatory flag: a message that
	// no queue takes is confirmed and dropped by the broker. By default
	// messages are mandatory and such a message fails with ErrUnroutable.
	AllowUnroutable bool
	// FailWhenBlocked makes Publish fail at once with ErrBlocked while the
	// broker blocks publishing (resource alarm). By default Publish waits
	// for the block to lift, within its context.
	FailWhenBlocked bool
	// NackRetryFor is how long a message the broker nacks keeps being
	// sent again, each time on a fresh channel after a short pause (5 ms
	// doubling up to 40 ms), before Publish returns ErrNacked. A quorum
	// queue nacks while it elects a new leader, and a RabbitMQ 3.10 channel
	// can keep nacking after a leader change until it is replaced; a queue
	// that is full with x-overflow reject-publish nacks for good, and its
	// publishers learn it after this long. 0 means 1 s; negative means no
	// retry.
	NackRetryFor time.Duration
	// ConfirmTimeout is how long a message may wait for its confirm on a
	// live, unblocked connection before its channel is taken for stuck: the
	// channel is replaced and every message still unconfirmed on it is
	// sent again on the fresh one (duplicates are possible). RabbitMQ 3.10
	// can hold a quorum queue's messages unconfirmed for tens of seconds
	// after the whole cluster restarted, then nack them, and a channel can
	// keep a stale quorum queue leader after a leader change. 0 means 2 s;
	// negative disables. Behind a hung quorum leader (until net_ticktime
	// declares it down) this sends the window again every 2–2.5 s.
	ConfirmTimeout time.Duration
}

const (
	defaultWindow       = 256
	maxWindow           = 1 << 20
	defaultNackRetryFor = time.Second
	// A quorum queue nacks at once while it elects a leader (150-300 ms
	// after a kill here); short pauses find the new leader within
	// nackRetryMax of its election, where 25 ms doubling to 200 ms cost up
	// to 600 ms. Each retry goes out on a fresh channel, and the retries
	// end after NackRetryFor.
	nackRetryBase         = 5 * time.Millisecond
	nackRetryMax          = 40 * time.Millisecond
	defaultConfirmTimeout = 2 * time.Second
)

// Publisher publishes messages with publisher confirms over the client's
// connection, following it from node to node. Publish returns nil only
// after the broker confirmed the message; a message whose connection died
// before its confirm is published again on the next connection, with the
// same message-id, so duplicates are possible (at most Window of them per
// failover) and loss is not. Messages are persistent unless the caller
// sets DeliveryMode to amqp091.Transient. There is no ordering guarantee
// across a failover.
//
// A Publisher is safe for concurrent use by many goroutines.
type Publisher struct {
	c   *Client
	sup *supervisor // the connection it publishes on
	cfg PublisherConfig
	log *slog.Logger
	// metrics is Config.Metrics; nil costs a nil check.
	metrics Metrics
	// user runs Metrics calls and logs of the confirm path; nil (in
	// tests) runs them at once.
	user *userCalls
	// hooks is Config.PublishHooks (hooks.go); lastPeer names the last
	// connection that answered a message they follow.
	hooks    []PublishHook
	lastPeer atomic.Pointer[connAddr]

	sem        chan struct{} // one token per message amqpha holds
	isolating  atomic.Int32  // suspects of an unexplained channel close not let go of yet
	unresolved atomic.Int64  // messages taken and not resolved yet
	frameMax   atomic.Int64  // the connection's frame size, for checkPublishing
	idPrefix   string
	idSeq      atomic.Uint64
	sessionSeq atomic.Uint64

	mu        sync.Mutex
	conn      *amqp.Connection // the client's current connection, nil while none
	gen       uint64
	vhost     string   // the current connection's
	openFails int      // channel opens failed in a row on the current connection
	cur       *session // where new messages go; nil while none
	sessions  map[*session]struct{}
	queue     []*Confirmation // waiting for a session or for the block to lift
	blocked   bool
	flushing  bool // the flush goroutine sends a batch taken from queue
	closing   bool // Close began: no new messages
	closed    bool // Close gave up waiting: what is left fails

	// Of the flush goroutine: the broker's TCP progress on the connection,
	// for the confirm timeout.
	lastAcked  uint64
	progressAt time.Time

	kick      chan struct{}
	closingCh chan struct{} // closed when Close begins
	stop      chan struct{} // closed when Close gives up waiting
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// NewPublisher creates a publisher on the client's publishing connection
// (the one with the fewest publishers, with Config.Connections > 1). It
// returns at once, without network I/O: the publisher opens its channel in
// the background on the current connection, or on the next one, and
// messages published meanwhile wait for it within their contexts.
func (c *Client) NewPublisher(cfg PublisherConfig) (*Publisher, error) {
	if cfg.Window < 0 || cfg.Window > maxWindow {
		return nil, fmt.Errorf("%w: PublisherConfig.Window = %d, want 0 (the default, %d) to %d", ErrInvalidArgument, cfg.Window, defaultWindow, maxWindow)
	}
	orDefault(&cfg.Window, defaultWindow)
	orDefault(&cfg.ConfirmTimeout, defaultConfirmTimeout)
	orDefault(&cfg.NackRetryFor, defaultNackRetryFor)
	prefix := make([]byte, 8)
	rand.Read(prefix)
	p := &Publisher{
		c:         c,
		cfg:       cfg,
		log:       c.log.With("component", "publisher"),
		metrics:   c.cfg.Metrics,
		user:      c.user,
		hooks:     c.cfg.PublishHooks,
		sem:       make(chan struct{}, cfg.Window),
		idPrefix:  hex.EncodeToString(prefix) + "-",
		sessions:  make(map[*session]struct{}),
		kick:      make(chan struct{}, 1),
		closingCh: make(chan struct{}),
		stop:      make(chan struct{}),
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	p.sup = c.leastUsedLocked()
	c.publishers[p] = struct{}{}
	// Counted while Client.Close cannot have found p yet, so that its
	// wait for p includes the flush loop.
	p.wg.Add(1)
	c.mu.Unlock()
	p.frameMax.Store(defaultFrameMax)
	if h := recordedHook.Load(); h != nil {
		(*h)(p)
	}
	go p.flushLoop()
	p.sup.addAttachment(p)
	return p, nil
}

// Publish publishes msg to exchange with routing key key and waits for the
// broker's confirm. It returns nil only once the broker has confirmed the
// message (for a persistent message to a durable queue: written to disk, on
// a quorum queue: by a majority). Otherwise it returns an error that
// errors.Is matches against ErrNacked, ErrUnroutable, ErrBlocked, ErrClosed
// or ctx's error; on ctx's error the message may or may not have reached
// the broker.
//
// msg.DeliveryMode 0 is sent as persistent; an empty msg.MessageId is
// filled with a unique id.
func (p *Publisher) Publish(ctx context.Context, exchange, key string, msg amqp.Publishing) error {
	// This goroutine waits for ctx itself: the confirmation needs no
	// watcher of its own (context.AfterFunc costs 4 allocations a message).
	c, err := p.publishAsync(ctx, exchange, key, msg, false)
	if err != nil {
		return err
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		c.resolve(p.contextError(ctx))
		p.kickFlush() // the flush goroutine lets go of it if it waits in the queue
		<-c.done      // a send under way ends first: then the message is not read again
	}
	if c.trace != nil {
		c.report()
	}
	return c.err
}

// PublishAsync publishes msg like Publish but returns as soon as the message
// is handed over (waiting only for room in the window), with a Confirmation
// that resolves the way Publish returns. ctx bounds the whole publish,
// including sends again after failovers; when it ends first the
// confirmation resolves with its error. An error returned here means the
// message was not taken. A message the protocol cannot carry (a short
// string over 255 bytes, a header value AMQP cannot encode) is refused at
// once with an error matching ErrInvalidMessage that names the field.
//
// amqpha reads msg.Body and msg.Headers until the confirmation resolves,
// never after: the caller may reuse them once Publish returned or the
// confirmation is done.
func (p *Publisher) PublishAsync(ctx context.Context, exchange, key string, msg amqp.Publishing) (*Confirmation, error) {
	return p.publishAsync(ctx, exchange, key, msg, true)
}

// publishAsync is PublishAsync; watch has the confirmation resolved when
// ctx ends (Publish, which waits for ctx itself, does without).
func (p *Publisher) publishAsync(ctx context.Context, exchange, key string, msg amqp.Publishing, watch bool) (*Confirmation, error) {
	if err := ctx.Err(); err != nil {
		return nil, p.refuse(nil, err)
	}
	if msg.DeliveryMode == 0 {
		msg.DeliveryMode = amqp.Persistent
	}
	if msg.MessageId == "" {
		msg.MessageId = p.newID()
	}
	var tr *publishTrace
	if len(p.hooks) > 0 {
		msg, tr = p.runHooks(ctx, exchange, key, msg)
	}
	if err := checkPublishing(exchange, key, &msg, int(p.frameMax.Load())); err != nil {
		return nil, p.refuse(tr, err)
	}
	if p.isClosed() {
		return nil, p.refuse(tr, ErrClosed)
	}
	if p.cfg.FailWhenBlocked && p.isBlocked() {
		return nil, p.refuse(tr, ErrBlocked)
	}
	select {
	case p.sem <- struct{}{}:
	default:
		select {
		case p.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, p.refuse(tr, p.contextError(ctx))
		case <-p.closingCh:
			return nil, p.refuse(tr, ErrClosed)
		}
	}
	c := &Confirmation{
		p:         p,
		exchange:  exchange,
		key:       key,
		msg:       msg,
		mandatory: !p.cfg.AllowUnroutable,
		ctx:       ctx,
		trace:     tr,
		async:     watch,
		done:      make(chan struct{}),
	}
	p.unresolved.Add(1)
	if watch {
		c.watchContext()
	}
	p.send(c)
	return c, nil
}

func (p *Publisher) newID() string {
	var b [40]byte
	out := append(b[:0], p.idPrefix...)
	out = strconv.AppendUint(out, p.idSeq.Add(1), 36)
	return string(out)
}

// userCall runs f, a call into user code (Metrics, the logger), on the
// client's userCalls goroutine: never on a goroutine that handles confirms.
func (p *Publisher) userCall(f func()) {
	if p.user == nil {
		f()
		return
	}
	p.user.post(f)
}

// refuse counts a message PublishAsync did not take, tells its hooks (tr),
// and returns err.
func (p *Publisher) refuse(tr *publishTrace, err error) error {
	tr.refused(err)
	if p.metrics != nil {
		p.metrics.PublishFailed(err)
	}
	return err
}

// release frees one window slot.
func (p *Publisher) release() { <-p.sem }

// contextError explains why ctx ended a publish.
func (p *Publisher) contextError(ctx context.Context) error {
	if p.isBlocked() {
		return fmt.Errorf("amqpha: not confirmed: %w while %w", ctx.Err(), ErrBlocked)
	}
	if err := p.sup.lastError(); err != nil && p.sup.currentNode() == "" {
		return fmt.Errorf("amqpha: not confirmed: %w while reconnecting (last error: %w)", ctx.Err(), err)
	}
	return fmt.Errorf("amqpha: not confirmed: %w", ctx.Err())
}

// isClosed reports whether Close has begun.
func (p *Publisher) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}

func (p *Publisher) isBlocked() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blocked
}

// send publishes c on the current session, or queues it for the flush
// goroutine when there is none, the broker blocks us, or others wait.
func (p *Publisher) send(c *Confirmation) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.settle(ErrClosed)
		return
	}
	s := p.cur
	if s == nil || p.blocked || p.flushing || len(p.queue) > 0 || p.isolating.Load() > 0 {
		p.queue = append(p.queue, c)
		p.mu.Unlock()
		p.kickFlush()
		return
	}
	p.mu.Unlock()
	switch err := s.publish(c); {
	case err == errSessionGone:
		p.sessionGone(s)
		p.requeue(c)
	case err != nil:
		c.drop() // the message itself cannot be sent
	}
}

// requeue puts c back in the queue to be sent again, or lets go of it if
// it is resolved.
func (p *Publisher) requeue(c *Confirmation) {
	if c.resolved() {
		c.drop()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.settle(ErrClosed)
		return
	}
	p.queue = append(p.queue, c)
	p.mu.Unlock()
	p.kickFlush()
}

func (p *Publisher) kickFlush() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// sessionGone stops sending on s; the flush goroutine opens another.
func (p *Publisher) sessionGone(s *session) {
	p.mu.Lock()
	if p.cur == s {
		p.cur = nil
	}
	p.mu.Unlock()
	p.kickFlush()
}

// sessionDead forgets s after its dispatcher ended.
func (p *Publisher) sessionDead(s *session) {
	p.mu.Lock()
	delete(p.sessions, s)
	if p.cur == s {
		p.cur = nil
	}
	p.mu.Unlock()
	p.kickFlush()
}

// nacked handles a nack of c on session s: the channel is replaced, and c
// is sent again after a pause, or fails once NackRetryFor has passed since
// its first nack.
func (p *Publisher) nacked(s *session, c *Confirmation) {
	if m := p.metrics; m != nil {
		p.userCall(m.Nacked)
	}
	p.retire(s)
	now := time.Now()
	if c.nacks == 0 {
		c.firstNack = now
	}
	c.nacks++
	if now.Sub(c.firstNack) >= p.cfg.NackRetryFor {
		c.settle(fmt.Errorf("%w (%d times in %v)", ErrNacked, c.nacks, now.Sub(c.firstNack).Round(time.Millisecond)))
		return
	}
	c.noteResend(ResendNacked, s.conn)
	pause := nackPause(c.nacks)
	p.wg.Add(1) // Close waits for it: c is resolved by then
	time.AfterFunc(pause, func() {
		defer p.wg.Done()
		p.requeue(c)
	})
}

// nackPause is the pause before the retry that follows a message's n-th
// nack (n ≥ 1): nackRetryBase doubling up to nackRetryMax.
func nackPause(n int) time.Duration {
	return min(nackRetryBase<<min(max(n, 1)-1, 8), nackRetryMax)
}

// retire replaces s by a fresh channel for new messages.
func (p *Publisher) retire(s *session) {
	if s.retire() {
		p.userCall(func() { p.log.Warn("broker nacked a message; retrying it on a fresh channel", "session", s.id) })
	}
	p.sessionGone(s)
}

func (p *Publisher) flushLoop() {
	defer p.wg.Done()
	var stalls <-chan time.Time
	if p.cfg.ConfirmTimeout > 0 {
		t := time.NewTicker(max(p.cfg.ConfirmTimeout/4, time.Millisecond))
		defer t.Stop()
		stalls = t.C
	}
	for {
		select {
		case <-p.stop:
			return
		case <-p.kick:
			p.flush()
		case now := <-stalls:
			p.replaceStuck(now)
		}
	}
}

// replaceStuck replaces every channel whose oldest unconfirmed message
// waited longer than ConfirmTimeout, and sends its messages again.
func (p *Publisher) replaceStuck(now time.Time) {
	p.mu.Lock()
	if p.blocked {
		p.mu.Unlock()
		return // a blocked connection confirms nothing; that is not a stuck channel
	}
	sessions := make([]*session, 0, len(p.sessions))
	for s := range p.sessions {
		sessions = append(sessions, s)
	}
	p.mu.Unlock()
	// While what was written still drains to the broker (a large message,
	// a slow link), confirms are not late: the wait counts from when the
	// broker's TCP last acknowledged progress.
	if pending, acked, ok := p.sup.sendProgress(); ok {
		if pending > 0 && acked != p.lastAcked {
			p.progressAt = now
		}
		p.lastAcked = acked
	}
	for _, s := range sessions {
		taken, waited := s.takeIfStuck(now, p.cfg.ConfirmTimeout, p.progressAt)
		if len(taken) == 0 {
			continue
		}
		p.log.Warn("no confirm in time; replacing the channel and sending its messages again",
			"session", s.id, "waited", waited.Round(time.Millisecond), "messages", len(taken))
		p.sessionGone(s)
		for _, c := range taken {
			c.noteResend(ResendConfirmTimeout, s.conn)
			p.requeue(c)
		}
	}
}

// flush opens a session if the connection has none, then sends what waits.
// Messages resolved while they waited (their context ended) are let go of
// at once, also while nothing can be sent, so the queue never holds more
// than the window.
func (p *Publisher) flush() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.queue = p.compactLocked(p.queue)
	if p.blocked {
		// A blocked connection reads nothing: no channel is opened and
		// nothing written until the block lifts.
		q := p.queue
		if p.cfg.FailWhenBlocked {
			p.queue = nil
		}
		p.mu.Unlock()
		if p.cfg.FailWhenBlocked {
			for _, c := range q {
				c.settle(ErrBlocked)
			}
		}
		return
	}
	if p.cur == nil && p.conn != nil {
		p.openLocked()
	}
	s := p.cur
	if s == nil || p.blocked {
		p.mu.Unlock()
		return
	}
	q := p.queue
	p.queue = nil
	isolating := p.isolating.Load() > 0
	// Until this batch is sent, new messages queue behind it (send), so
	// that they do not overtake it.
	p.flushing = true
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.flushing = false
		more := len(p.queue) > 0
		p.mu.Unlock()
		if more {
			p.kickFlush()
		}
	}()

	for i, c := range q {
		if isolating && (i > 0 || !s.idle()) {
			// After a channel close that no reason explained, one
			// message at a time until the suspects are through, so
			// the next close names its message.
			p.putBack(s, q[i:])
			return
		}
		switch err := s.publish(c); {
		case err == errSessionGone:
			p.putBack(s, q[i:])
			p.kickFlush()
			return
		case err != nil:
			c.drop()
		}
	}
}

// putBack returns the messages q that flush did not send to the head of
// the queue; s is the session it sent on.
func (p *Publisher) putBack(s *session, q []*Confirmation) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		for _, c := range q {
			c.settle(ErrClosed)
		}
		return
	}
	p.queue = append(q[:len(q):len(q)], p.queue...)
	if s.isGone() && p.cur == s {
		p.cur = nil
	}
	p.mu.Unlock()
}

// compactLocked lets go of the resolved messages in q.
func (p *Publisher) compactLocked(q []*Confirmation) []*Confirmation {
	out := q[:0]
	for _, c := range q {
		if c.resolved() {
			c.drop()
			continue
		}
		out = append(out, c)
	}
	clear(q[len(out):])
	return out
}

// openLocked opens the publisher's channel on the current connection,
// releasing mu for the I/O. A failure is retried with backoff while the
// connection lives.
func (p *Publisher) openLocked() {
	conn, gen, vhost := p.conn, p.gen, p.vhost
	p.mu.Unlock()
	s, err := p.openSession(gen, conn, vhost)
	p.mu.Lock()
	switch {
	case err != nil:
		if !conn.IsClosed() && p.conn == conn {
			p.openFails++
			wait := min(openRetryBase<<min(p.openFails-1, 8), openRetryMax)
			p.userCall(func() { p.log.Warn("cannot open a publishing channel; retrying", "err", err, "wait", wait) })
			time.AfterFunc(wait, p.kickFlush)
		}
	case p.conn == conn && p.cur == nil && !p.closed:
		p.openFails = 0
		p.cur = s
		p.sessions[s] = struct{}{}
	default:
		s.retire()
	}
}

const (
	openRetryBase = 100 * time.Millisecond
	openRetryMax  = 5 * time.Second
	// defaultFrameMax is RabbitMQ's frame_max, assumed until a connection
	// tells.
	defaultFrameMax = 131072
)

// attach follows a new connection (supervisor): the flush goroutine opens
// the channel on it. No I/O here: the supervisor calls it with its lock
// held.
func (p *Publisher) attach(gen uint64, conn *amqp.Connection, n *nodeAddr, blocked bool) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.conn, p.gen, p.blocked, p.openFails = conn, gen, blocked, 0
	p.vhost = n.uri.Vhost
	if fs := conn.Config.FrameSize; fs > 0 {
		p.frameMax.Store(int64(fs))
	}
	if p.cur != nil {
		p.cur.retire()
		p.cur = nil
	}
	p.mu.Unlock()
	p.kickFlush()
}

// awaiting reports whether a message sent on conn awaits its confirm
// (supervisor's hang detector).
func (p *Publisher) awaiting(conn *amqp.Connection) bool {
	p.mu.Lock()
	sessions := make([]*session, 0, len(p.sessions))
	for s := range p.sessions {
		if s.conn == conn {
			sessions = append(sessions, s)
		}
	}
	p.mu.Unlock()
	for _, s := range sessions {
		if !s.idle() {
			return true
		}
	}
	return false
}

// detach forgets connection gen (supervisor).
func (p *Publisher) detach(gen uint64) {
	p.mu.Lock()
	if p.gen == gen {
		p.conn, p.cur, p.blocked = nil, nil, false
	}
	p.mu.Unlock()
}

// setBlocked follows connection.blocked / unblocked (supervisor). Messages
// in flight when the block lifts wait for their confirms from then on.
func (p *Publisher) setBlocked(gen uint64, blocked bool) {
	p.mu.Lock()
	if p.gen == gen {
		p.blocked = blocked
	}
	var sessions []*session
	if !blocked {
		for s := range p.sessions {
			sessions = append(sessions, s)
		}
	}
	p.mu.Unlock()
	now := time.Now()
	for _, s := range sessions {
		s.unblocked(now)
	}
	p.kickFlush()
}

// Close stops taking messages, waits until every outstanding one is
// resolved or ctx ends (messages are still sent again after a failover
// meanwhile), fails the rest with ErrClosed, and closes the publisher's
// channels. It is safe to call twice; the second call returns the first's
// result.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closing = true
		p.mu.Unlock()
		close(p.closingCh)

		var err error
		tick := time.NewTicker(5 * time.Millisecond)
		for p.unresolved.Load() > 0 && err == nil {
			select {
			case <-ctx.Done():
				err = fmt.Errorf("amqpha: publisher closed with %d messages unconfirmed: %w", p.unresolved.Load(), ctx.Err())
			case <-tick.C:
			}
		}
		tick.Stop()

		p.sup.removeAttachment(p)
		close(p.stop)
		p.mu.Lock()
		p.closed = true
		q := p.queue
		p.queue = nil
		sessions := make([]*session, 0, len(p.sessions))
		for s := range p.sessions {
			sessions = append(sessions, s)
		}
		p.cur, p.conn = nil, nil
		p.mu.Unlock()
		for _, c := range q {
			c.settle(ErrClosed)
		}
		for _, s := range sessions {
			s.mu.Lock()
			for _, c := range s.inflight {
				c.resolve(ErrClosed)
			}
			s.mu.Unlock()
			s.closeChannel()
		}
		p.c.mu.Lock()
		delete(p.c.publishers, p)
		p.c.mu.Unlock()
		// Closing a channel waits for the broker, which reads nothing while
		// it blocks the connection: wait within ctx. Client.Close waits for
		// the rest once the connection is closed.
		if werr := waitCtx(ctx, &p.wg); werr != nil && err == nil {
			err = fmt.Errorf("amqpha: publisher channels not closed yet: %w", werr)
		}
		if p.user != nil {
			p.user.flush(ctx) // what was counted is visible once Close returns
		}
		p.closeErr = err
	})
	return p.closeErr
}

// waitCtx waits for wg until ctx ends.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) error { return waitFor(ctx, wg.Wait) }

// waitFor runs wait until it returns or ctx ends; then wait goes on in
// the background until it returns.
func waitFor(ctx context.Context, wait func()) error {
	done := make(chan struct{})
	go func() {
		wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isStopping tells that Close has begun (attachment).
func (p *Publisher) isStopping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closing
}
