package amqpha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/balancer"
	"github.com/amqpha/amqpha/discovery"
)

// attachment is something that lives on the supervisor's connection (a
// publisher, a consumer). The supervisor calls it with its lock held, so
// no method may do I/O or wait: each hands the news to its own goroutines.
type attachment interface {
	// attach tells that connection gen to node n is ready (the recorded
	// topology is declared on it); blocked is the connection's state.
	attach(gen uint64, conn *amqp.Connection, n *nodeAddr, blocked bool)
	// detach tells that connection gen is gone.
	detach(gen uint64)
	// setBlocked tells that the broker blocked or unblocked connection gen.
	setBlocked(gen uint64, blocked bool)
	// isStopping tells that its Close has begun; set before Close removes
	// it, so a closed attachment is never added again.
	isStopping() bool
}

// awaiter is an attachment that can tell whether it awaits the broker's
// answer on a connection (a publisher: messages unconfirmed there).
type awaiter interface {
	awaiting(conn *amqp.Connection) bool
}

// awaiting reports whether an attachment awaits an answer on conn. It takes
// the attachments' locks one at a time, never I/O.
func (s *supervisor) awaiting(conn *amqp.Connection) bool {
	s.mu.Lock()
	atts := append([]attachment(nil), s.attachments...)
	s.mu.Unlock()
	for _, a := range atts {
		if w, ok := a.(awaiter); ok && w.awaiting(conn) {
			return true
		}
	}
	return false
}

// supervisor keeps one connection open on a live node. Its run goroutine
// owns the dialing and the failover; the connection's other goroutines (the
// hang detector and its probes) are counted in wg.
type supervisor struct {
	c     *Client
	role  role
	label string // names the connection in events and logs
	name  string // the connection name shown in the management UI
	log   *slog.Logger
	pool  *pool
	bo    *backoff.ExponentialBackOff

	mu          sync.Mutex
	conn        *amqp.Connection
	tc          *trackedConn // conn's socket
	node        *nodeAddr
	dialing     *nodeAddr    // the node being dialed, claimed against the other connections
	pending     *pendingConn // dialed for a rebalancing move
	gen         uint64
	attachments []attachment
	lastErr     error
	changed     chan struct{} // closed and replaced when conn changes

	ready     chan struct{} // closed when the first connection is ready
	readyOnce sync.Once
	gaveUp    chan error // FailFast: the first pass failed
	done      chan struct{}
	wg        sync.WaitGroup

	reconnects atomic.Uint64
	// blocked is set while the broker blocks the current connection: it
	// then stops reading from it, so silence is no sign of a hang.
	blocked atomic.Bool
}

// newBackoff returns the jittered exponential backoff between reconnection
// passes and between consumer registrations: ReconnectInitial doubling up
// to ReconnectMax, ±50 %, forever.
func (c *Client) newBackoff() *backoff.ExponentialBackOff {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = c.cfg.ReconnectInitial
	bo.MaxInterval = c.cfg.ReconnectMax
	bo.RandomizationFactor = 0.5
	bo.Multiplier = 2
	bo.MaxElapsedTime = 0
	bo.Reset()
	return bo
}

// role says what a connection carries.
type role uint8

const (
	rolePublish role = 1 << iota
	roleConsume
)

func (r role) String() string {
	switch r {
	case rolePublish:
		return "publish"
	case roleConsume:
		return "consume"
	}
	return "publish+consume"
}

func newSupervisor(c *Client, r role, label string) *supervisor {
	bo := c.newBackoff()
	name := c.cfg.ConnectionName
	if label != "publish" && label != "publish+consume" {
		name += " (" + label + ")"
	}
	s := &supervisor{
		c:       c,
		role:    r,
		label:   label,
		name:    name,
		log:     c.log.With("component", "supervisor", "connection", label),
		pool:    newPool(c.cfg.QuarantineBase, c.cfg.QuarantineMax),
		bo:      bo,
		ready:   make(chan struct{}),
		gaveUp:  make(chan error, 1),
		done:    make(chan struct{}),
		changed: make(chan struct{}),
	}
	return s
}

func (s *supervisor) emit(ev Event) {
	ev.Time = time.Now()
	ev.Connection = s.label
	s.c.events.post(ev)
}

// setConnLocked records the current connection (nil while there is none)
// and wakes waitConn callers.
func (s *supervisor) setConnLocked(conn *amqp.Connection, node *nodeAddr) {
	s.conn, s.node = conn, node
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitConn returns the current connection and its generation, waiting for
// one until ctx ends.
func (s *supervisor) waitConn(ctx context.Context) (*amqp.Connection, uint64, error) {
	for {
		s.mu.Lock()
		conn, gen, changed := s.conn, s.gen, s.changed
		s.mu.Unlock()
		if conn != nil && !conn.IsClosed() {
			return conn, gen, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if err := s.lastError(); err != nil {
				return nil, 0, fmt.Errorf("amqpha: no connection: %w (last error: %w)", ctx.Err(), err)
			}
			return nil, 0, fmt.Errorf("amqpha: no connection: %w", ctx.Err())
		case <-s.c.ctx.Done():
			return nil, 0, ErrClosed
		}
	}
}

// currentNode is the redacted address of the connected node, "" while
// there is none.
func (s *supervisor) currentNode() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.node == nil {
		return ""
	}
	return s.node.String()
}

// resolve refreshes the node set; on failure the last good set stays.
// fresh asks a caching resolver to look again (before a reconnection pass);
// otherwise it may answer from its cache (records' TTL).
func (s *supervisor) resolve(fresh bool) {
	ctx, cancel := context.WithTimeout(s.c.ctx, s.c.cfg.DialTimeout)
	defer cancel()
	resolve := s.c.cfg.Resolver.Resolve
	if fresh {
		resolve = func(ctx context.Context) ([]balancer.Node, error) {
			return discovery.ResolveFresh(ctx, s.c.cfg.Resolver)
		}
	}
	nodes, err := resolve(ctx)
	if err != nil {
		s.log.Warn("resolving nodes failed; keeping the last set", "err", err)
		if s.pool.picker == nil {
			s.setLastErr(fmt.Errorf("%w: %w", ErrNoNodes, err))
		}
		return
	}
	for _, err := range s.pool.setNodes(s.c.cfg.Balancer, nodes) {
		s.log.Warn("node left out", "err", err)
	}
}

func (s *supervisor) setLastErr(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

func (s *supervisor) lastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// run connects, serves the connection until it is lost, and moves on, until
// the client closes.
func (s *supervisor) run() {
	defer close(s.done)
	defer s.dropPending()
	ctx := s.c.ctx
	var prev *nodeAddr
	quick := 0 // connections lost soon after they opened, in a row
	for ctx.Err() == nil {
		s.resolve(true)
		if s.pool.picker == nil {
			s.pool.setNodes(s.c.cfg.Balancer, nil)
		}
		s.pool.startPass()
		var errs []error
		connected := false
		for ctx.Err() == nil {
			// Picking and claiming the node is one step across the
			// client's connections, so that two dialing at once do not
			// pick the same node.
			s.c.pickMu.Lock()
			r, addr, ok := s.pool.nextPreferring(time.Now(), s.c.busyElsewhere(s), s.pendingAddr())
			if ok {
				s.mu.Lock()
				s.dialing = addr
				s.mu.Unlock()
			}
			s.c.pickMu.Unlock()
			if !ok {
				break
			}
			s.emit(Event{Kind: EventConnecting, Node: addr.String()})
			lc, err := s.connect(addr)
			s.mu.Lock()
			s.dialing = nil
			s.mu.Unlock()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				errs = append(errs, err)
				s.pool.failed(addr.raw, time.Now(), false)
				done(r, err)
				s.log.Warn("connect failed", "node", addr, "err", err)
				s.emit(Event{Kind: EventConnectFailed, Node: addr.String(), Err: err})
				continue
			}
			readyAt, gen := time.Now(), lc.gen
			s.log.Info("connected", "node", addr, "generation", gen)
			s.emit(Event{Kind: EventReady, Node: addr.String(), Generation: gen})
			if prev != nil && prev.raw != addr.raw {
				s.emit(Event{Kind: EventNodeSwitched, Node: addr.String(), Previous: prev.String(), Generation: gen})
			}
			if m := s.c.cfg.Metrics; m != nil {
				previous := ""
				if prev != nil && prev.raw != addr.raw {
					previous = prev.hostPort()
				}
				m.ConnectionUp(s.label, addr.hostPort(), previous)
			}
			prev = addr
			s.readyOnce.Do(func() { close(s.ready) })

			cause, avoid := s.serve(lc, addr)
			// A connection lost soon after it opened counts as a failed
			// attempt: what kills connections as they open (a poison
			// message, a node that accepts and then fails) must meet the
			// backoff, not a tight loop of new connections. Once as many
			// were lost in a row as there are nodes, the pass counts as
			// failed and the backoff applies before the next.
			lived := time.Since(readyAt) >= shortLived
			if lived || cause == errMoved {
				quick = 0
				s.bo.Reset()
				s.pool.succeeded(addr.raw) // its failures in a row end here
			} else {
				quick++
			}
			connected = quick == 0 || quick < len(s.pool.nodes)
			done(r, cause)
			if m := s.c.cfg.Metrics; m != nil {
				m.ConnectionDown(s.label, addr.hostPort(), ctx.Err() == nil && cause != errMoved)
			}
			if ctx.Err() != nil {
				return
			}
			if cause == errMoved {
				s.log.Info("moving to a less used node", "node", addr)
				break // the old connection closes once its messages are done
			}
			s.reconnects.Add(1)
			q := s.pool.failed(addr.raw, time.Now(), avoid)
			s.setLastErr(cause)
			s.log.Warn("connection lost; moving to another node", "node", addr, "err", cause, "quarantine", q)
			s.emit(Event{Kind: EventReconnecting, Node: addr.String(), Generation: gen, Err: cause})
			if !connected {
				errs = append(errs, &NodeError{Node: addr.String(), Op: "serve", Err: fmt.Errorf("lost %v after it opened: %w", time.Since(readyAt).Round(time.Millisecond), cause)})
			}
			break // a new pass, at once unless connections keep dying as they open
		}
		if connected || ctx.Err() != nil {
			continue
		}
		var err error = ErrNoNodes
		if len(errs) > 0 {
			err = &ConnectError{Errs: errs}
		}
		s.setLastErr(err)
		if s.c.cfg.FailFast && s == s.c.sup && !s.everReady() { // Dial waits on it
			s.gaveUp <- err
			return
		}
		wait := s.bo.NextBackOff()
		s.log.Warn("every node failed; waiting", "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func done(r balancer.Result, err error) {
	if r.Done != nil {
		r.Done(balancer.DoneInfo{Err: err})
	}
}

func (s *supervisor) everReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// connect dials addr, declares the recorded topology on the new
// connection and hands it to every attachment.
func (s *supervisor) connect(addr *nodeAddr) (*liveConn, error) {
	var conn *amqp.Connection
	var tc *trackedConn
	var err error
	if p := s.takePending(addr); p != nil {
		conn, tc = p.conn, p.tc
	} else if conn, tc, err = s.c.dial(s.c.ctx, addr, s.name); err != nil {
		return nil, err
	}
	// Registered first: the broker tells a connection it is blocked once,
	// and may do so before the topology is declared.
	lc := &liveConn{
		conn:   conn,
		tc:     tc,
		closed: conn.NotifyClose(make(chan *amqp.Error, 1)),
		blocks: conn.NotifyBlocked(make(chan amqp.Blocking, 8)),
	}
	if fs := conn.Config.FrameSize; fs > 0 {
		s.c.frames.Store(int64(fs))
	}
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.mu.Unlock()
	s.blocked.Store(false)
	if t := s.c.topo; t != nil {
		// Each declaration is bounded like the dial: a node that hangs
		// right after the handshake must not hold the supervisor, and a
		// long topology that makes progress is not cut short.
		guard := time.AfterFunc(s.c.cfg.DialTimeout, func() { tc.Close() })
		gctx, cancel := context.WithTimeout(s.c.ctx, s.c.cfg.DialTimeout) // for the gate
		err := t.replay(gctx, conn, s.role, s, gen, func() { guard.Reset(s.c.cfg.DialTimeout) })
		cancel()
		guard.Stop()
		if err != nil {
			tc.Close()
			return nil, &NodeError{Node: addr.String(), Op: "attach", Err: err}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.attachments {
		a.attach(gen, conn, addr, false)
	}
	s.setConnLocked(conn, addr)
	s.tc = tc
	lc.gen = gen
	return lc, nil
}

// trackedFor is conn's socket while conn is the supervisor's connection,
// else nil.
func (s *supervisor) trackedFor(conn *amqp.Connection) *trackedConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != conn {
		return nil
	}
	return s.tc
}

// sendProgress tells how many bytes written to the current connection the
// broker has not acknowledged, and how many it acknowledged in all; ok is
// false without a connection or where the system cannot tell.
func (s *supervisor) sendProgress() (pending int, acked uint64, ok bool) {
	s.mu.Lock()
	tc := s.tc
	s.mu.Unlock()
	if tc == nil {
		return 0, 0, false
	}
	return sendState(tc.sock)
}

// liveConn is a connection the supervisor serves, with its notifications.
type liveConn struct {
	conn   *amqp.Connection
	tc     *trackedConn
	gen    uint64
	closed chan *amqp.Error
	blocks chan amqp.Blocking
}

// addAttachment registers a and, if a connection is up, attaches it now;
// an attachment whose Close has begun is left out.
func (s *supervisor) addAttachment(a attachment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.isStopping() {
		// Closed (by Client.Close) while it was being created: its Close
		// found nothing to remove.
		return
	}
	s.attachments = append(s.attachments, a)
	if s.conn != nil && !s.conn.IsClosed() {
		a.attach(s.gen, s.conn, s.node, s.blocked.Load())
	}
}

func (s *supervisor) removeAttachment(a attachment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.attachments {
		if x == a {
			s.attachments = append(s.attachments[:i], s.attachments[i+1:]...)
			return
		}
	}
}

// serve watches an open connection until it is lost or the client closes.
// It returns why, and whether the node asked to be avoided (it closed the
// connection for shutdown or maintenance).
func (s *supervisor) serve(lc *liveConn, addr *nodeAddr) (cause error, avoid bool) {
	conn, tc, gen, closed, blocks := lc.conn, lc.tc, lc.gen, lc.closed, lc.blocks
	ctx, cancel := context.WithCancel(s.c.ctx)
	hung := make(chan time.Duration, 1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.watch(ctx, conn, tc, hung)
	}()
	defer cancel()
	defer s.lost(gen)
	// A rebalancing move dials the new node first, apart from this loop.
	moved := make(chan *pendingConn)
	served := make(chan struct{})
	defer close(served)
	trying := false
	var rebalance <-chan time.Time
	if every := s.c.cfg.RebalanceInterval; every > 0 && s.role == rolePublish {
		t := time.NewTicker(every)
		defer t.Stop()
		rebalance = t.C
	}

	var hangCause error
	for {
		select {
		case e, ok := <-closed:
			switch {
			case hangCause != nil:
				return hangCause, false
			case !ok || e == nil:
				return errors.New("amqpha: connection closed"), false
			default:
				return e, e.Code == amqp.ConnectionForced
			}
		case b, ok := <-blocks:
			if !ok {
				blocks = nil // closed with the connection
				continue
			}
			if b.Active != s.blocked.Load() {
				s.setBlocked(gen, b)
			}
		case idle := <-hung:
			hangCause = fmt.Errorf("%w: nothing received from %s for %v", ErrHung, addr, idle.Round(time.Millisecond))
			tc.Close() // amqp091-go's reader fails and closes the connection
		case <-s.c.ctx.Done():
			conn.CloseDeadline(s.c.closeDeadline())
			tc.Close()
			return ErrClosed, false
		case <-rebalance:
			if hangCause != nil || s.blocked.Load() {
				continue
			}
			if trying {
				continue
			}
			cand, left := s.moveCandidate(addr)
			if cand == nil && left {
				s.retireConn(conn, tc)
				return errMoved, false
			}
			if cand != nil {
				trying = true
				s.wg.Go(func() { s.dialCandidate(cand, moved, served) })
			}
		case m := <-moved:
			trying = false
			if m.err == nil && hangCause != nil {
				m.tc.Close() // the hang is handled first: no move
				m.err = errors.New("the connection hung meanwhile")
			}
			if m.err != nil {
				s.mu.Lock()
				s.dialing = nil
				s.mu.Unlock()
				s.pool.failed(m.addr.raw, time.Now(), false)
				s.log.Info("not moving: the less used node does not answer", "node", m.addr, "err", m.err)
				continue
			}
			s.mu.Lock()
			s.pending = m // s.dialing keeps the node claimed until connect
			s.mu.Unlock()
			s.retireConn(conn, tc)
			return errMoved, false
		}
	}
}

func (s *supervisor) pendingAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == nil {
		return ""
	}
	return s.pending.addr.raw
}

// shortLived: a connection lost sooner after it opened counts as a failed
// connection attempt (see run).
const shortLived = 3 * time.Second

// errMoved ends serve when the connection leaves its node to rebalance.
var errMoved = errors.New("amqpha: moving to a less used node")

// moveGrace is how long a connection left for rebalancing stays open, so
// that the messages in flight on it are confirmed there.
const moveGrace = 5 * time.Second

// retireConn closes a connection left for rebalancing after moveGrace (or
// when the client closes). Messages still unconfirmed then are published
// again on the new connection.
func (s *supervisor) retireConn(conn *amqp.Connection, tc *trackedConn) {
	s.wg.Go(func() {
		t := time.NewTimer(moveGrace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.c.ctx.Done():
		}
		conn.CloseDeadline(s.c.closeDeadline())
		tc.Close()
	})
}

// moveCandidate decides whether a publishing connection on addr should
// move: left reports that addr left the node set; cand is a node of the
// set that no other connection of the client uses and that is not
// quarantined, chosen when addr left or is shared with another of the
// client's connections. The candidate is claimed (s.dialing) until
// dialCandidate's result is handled. At most one connection of the client
// moves per RebalanceInterval.
func (s *supervisor) moveCandidate(addr *nodeAddr) (cand *nodeAddr, left bool) {
	s.resolve(false)
	now := time.Now()
	s.c.pickMu.Lock()
	defer s.c.pickMu.Unlock()
	if now.Sub(s.c.lastMove) < s.c.cfg.RebalanceInterval {
		return nil, false
	}
	left = !slices.ContainsFunc(s.pool.nodes, func(n balancer.Node) bool { return n.Addr == addr.raw })
	busy := s.c.busyElsewhere(s)
	if !left && (busy == nil || !busy(addr.raw)) {
		return nil, false
	}
	for i, n := range s.pool.nodes {
		if n.Addr != addr.raw && (busy == nil || !busy(n.Addr)) && !s.pool.quarantined(i, now) {
			cand = s.pool.addrs[i]
			break
		}
	}
	if cand != nil || left {
		s.c.lastMove = now
	}
	if cand != nil {
		s.mu.Lock()
		s.dialing = cand
		s.mu.Unlock()
	}
	return cand, left
}

// dialCandidate dials cand and hands the result to serve, or closes the
// new connection if serve has ended meanwhile.
func (s *supervisor) dialCandidate(cand *nodeAddr, moved chan<- *pendingConn, served <-chan struct{}) {
	conn, tc, err := s.c.dial(s.c.ctx, cand, s.name)
	select {
	case moved <- &pendingConn{addr: cand, conn: conn, tc: tc, err: err}:
	case <-served:
		if err == nil {
			tc.Close()
		}
		// The run loop clears the claim when it dials next.
	}
}

// pendingConn is a connection dialed for a rebalancing move, waiting for
// the run loop.
type pendingConn struct {
	addr *nodeAddr
	conn *amqp.Connection
	tc   *trackedConn
	err  error
}

// dropPending closes a pending connection nobody adopted.
func (s *supervisor) dropPending() {
	s.mu.Lock()
	p := s.pending
	s.pending = nil
	s.mu.Unlock()
	if p != nil {
		p.tc.Close()
	}
}

// takePending returns the pending connection if it is to addr, and closes
// it otherwise.
func (s *supervisor) takePending(addr *nodeAddr) *pendingConn {
	s.mu.Lock()
	p := s.pending
	s.pending = nil
	s.mu.Unlock()
	if p == nil || p.addr.raw == addr.raw {
		return p
	}
	p.tc.Close()
	return nil
}

// lost forgets connection gen and tells the attachments.
func (s *supervisor) lost(gen uint64) {
	s.mu.Lock()
	if s.gen == gen {
		s.setConnLocked(nil, nil)
		s.tc = nil
	}
	atts := append([]attachment(nil), s.attachments...)
	s.mu.Unlock()
	for _, a := range atts {
		a.detach(gen)
	}
}

func (s *supervisor) setBlocked(gen uint64, b amqp.Blocking) {
	s.blocked.Store(b.Active)
	s.mu.Lock()
	atts := append([]attachment(nil), s.attachments...)
	s.mu.Unlock()
	for _, a := range atts {
		a.setBlocked(gen, b.Active)
	}
	if b.Active {
		s.log.Warn("broker blocked publishing", "reason", b.Reason)
		s.emit(Event{Kind: EventBlocked, Generation: gen, Reason: b.Reason})
	} else {
		s.log.Info("broker unblocked publishing")
		s.emit(Event{Kind: EventUnblocked, Generation: gen})
	}
}

// idleProbeEvery is how often the hang detector asks an idle connection
// (nothing sent since the broker last spoke): under one request a second
// to the broker, and a node that hangs while its connection is idle is
// left within idleProbeEvery + idleAnswer (about 1.75 s by default).
const idleProbeEvery = 1250 * time.Millisecond

// idleAnswer is how long a probe of an idle connection may go unanswered
// before the node is taken for hung: 1.25 × HangTimeout (500 ms by
// default), against HangTimeout/2 while the connection awaits an answer.
func idleAnswer(hangTimeout time.Duration) time.Duration {
	return hangTimeout + hangTimeout/4
}

// watch is the hang detector. A connection that received nothing for
// HangTimeout is reported on hung. While it awaits an answer (a publisher
// has messages unconfirmed on it, or something was sent since the broker
// last spoke: a request, an ack) and is quiet for a quarter of that, a
// cheap request (a passive declare of amq.direct) gives a live broker
// something to answer; under load, confirms and deliveries already do.
// While it awaits nothing, the request goes out only after idleProbeEvery
// of quiet: an idle client costs the broker less than a request a second,
// and the first publish after the quiet makes it awaiting again, so the
// publish's wait on a hung node is bounded as under load.
// While the broker blocks the connection (resource alarm) it reads nothing
// from it and answers nothing, so the detector pauses and heartbeats alone
// watch the connection.
//
// Silence is the broker's fault only if it was asked and did not answer:
// a connection is reported only when a probe has waited for half of
// HangTimeout (idleAnswer if it went out while the connection awaited
// nothing, unless something began to await an answer meanwhile: then half
// of HangTimeout from then), and never while the kernel holds bytes the broker sent that
// this process has not read yet. So a client that was itself stopped or
// starved of CPU (GC, a container's CPU quota, a suspended VM) for longer
// than HangTimeout asks again when it runs and is not fooled by its own
// pause. A probe's wait counts from when it left the socket: while data
// written before it still drains to the broker (a large message over a
// slow link), the broker's TCP acknowledging it keeps the probe's clock at
// zero.
func (s *supervisor) watch(ctx context.Context, conn *amqp.Connection, tc *trackedConn, hung chan<- time.Duration) {
	timeout := s.c.cfg.HangTimeout
	if timeout < 0 {
		return
	}
	quiet := timeout / 4
	idleQuiet := max(idleProbeEvery, quiet)
	tick := time.NewTicker(max(quiet/2, time.Millisecond))
	defer tick.Stop()
	var probing atomic.Bool
	var probeSent time.Time // of the probe in flight while probing
	var probeAwaited bool   // the probe went out while the connection awaited an answer
	var probeWrites uint64  // socket writes before the probe
	var awaitedAt time.Time // an idle probe's connection began to await an answer (zero: not yet)
	var lastAcked uint64    // bytes the broker's TCP acknowledged, at the last tick
	failed := make(chan error, 1)
	// The probes' channel is opened like a probe: a node that hangs before
	// it answers channel.open (right after the handshake) is seen hung too.
	var probe *amqp.Channel
	opened := make(chan *amqp.Channel, 1)
	probing.Store(true)
	probeSent, probeAwaited = time.Now(), true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ch, err := conn.Channel()
		if err != nil {
			select {
			case failed <- err:
			default:
			}
			return
		}
		opened <- ch
		probing.Store(false)
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-failed:
			// The probe channel was closed under us while the connection
			// lives: stop probing rather than report a false hang.
			if !conn.IsClosed() {
				s.log.Warn("hang detector stopped: probe failed", "err", err)
			}
			return
		case <-tick.C:
			if s.blocked.Load() {
				continue
			}
			now := time.Now() // not the tick's time: it may be from before a pause
			if pending, acked, ok := sendState(tc.sock); ok {
				// While bytes written before the probe (a large message,
				// a slow link) still leave the socket and the broker's
				// TCP acknowledges them, the probe is not out yet: its
				// clock starts when they stop moving or are all gone.
				if probing.Load() && pending > 0 && acked != lastAcked {
					probeSent = now
				}
				lastAcked = acked
			}
			idle := tc.idle(now)
			// A probe of an idle connection gets idleAnswer: a broker
			// slowed by load is likelier than a hang then, and nothing
			// waits on it. Once something does (a publish, a request: any
			// write but the probe's), that has HangTimeout/2 from then.
			if probing.Load() && !probeAwaited && awaitedAt.IsZero() &&
				(tc.writes.Load() > probeWrites+1 || s.awaiting(conn)) {
				awaitedAt = now
			}
			if idle >= timeout {
				waited := now.Sub(probeSent)
				asked := probing.Load() && (probeAwaited && waited >= timeout/2 ||
					!probeAwaited && (waited >= idleAnswer(timeout) || !awaitedAt.IsZero() && now.Sub(awaitedAt) >= timeout/2))
				switch {
				case tc.unread():
					tc.touch(now) // the broker answered; we are behind
					continue
				case asked:
					hung <- idle
					return
				}
			}
			if probe == nil {
				select {
				case probe = <-opened:
				default:
					continue // still opening: it is the probe in flight
				}
			}
			if idle < quiet || probing.Load() {
				continue
			}
			awaited := tc.awaiting() || s.awaiting(conn)
			if (idle >= idleQuiet || awaited) && probing.CompareAndSwap(false, true) {
				probeSent, probeAwaited = now, awaited
				probeWrites, awaitedAt = tc.writes.Load(), time.Time{}
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					if err := probe.ExchangeDeclarePassive("amq.direct", "direct", true, false, false, false, nil); err != nil {
						select {
						case failed <- err:
						default:
						}
						return
					}
					probing.Store(false)
				}()
			}
		}
	}
}
