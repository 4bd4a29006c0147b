package fakebroker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Server is a scriptable in-process AMQP 0-9-1 broker listening on loopback
// TCP. All its methods are safe for concurrent use.
type Server struct {
	nodes []*node // nodes[0] is the server's first listener (URL, Addr)
	cfg   config

	wg        sync.WaitGroup
	closeOnce sync.Once
	stopped   atomic.Bool // mirrors stopReading for the writers' heartbeats

	mu          sync.Mutex
	closed      bool
	conns       map[int]*conn // accepted and not yet ended
	nextConn    int
	onPublish   func(*Publish) Reply
	onMethod    func(*Method) Reply
	blocked     bool
	blockReason string
	blockCh     chan struct{} // open while blocked
	stopReading bool
	stopCh      chan struct{} // open while stopReading

	connections, openConns     int
	channelOpens, openChannels int

	publishes   []Publish
	methods     []Method
	acks        []Ack
	clientProps map[string]any

	queues    map[string]*queueInfo
	exchanges map[string]bool
	consumers map[string][]*consumer // by queue, in registration order
	rr        map[string]int         // round-robin position by queue
	held      []heldConfirm          // in arrival order
	genQueue  int
	genTag    int

	store *store // nil unless WithStore
}

// config holds the tuning the server offers in connection.tune.
type config struct {
	channelMax uint16
	frameMax   uint32
	heartbeat  uint16
	nodes      int
	store      bool
}

// Option changes a setting of a server created by Start or Listen.
type Option func(*config)

// WithChannelMax sets the channel-max the server offers in connection.tune
// (default 2047). Opening a channel with a higher id closes the connection
// with 530 NOT_ALLOWED.
func WithChannelMax(n uint16) Option { return func(c *config) { c.channelMax = n } }

// WithFrameMax sets the frame-max the server offers in connection.tune
// (default 131072). Values below 4096 are raised to 4096.
func WithFrameMax(n uint32) Option {
	return func(c *config) { c.frameMax = max(n, 4096) }
}

// WithHeartbeat sets the heartbeat interval in seconds the server offers in
// connection.tune (default 0). The interval in force is the one the client
// answers in tune-ok (amqp091-go answers its own, 10 s by default, when the
// server offers 0). When it is not 0 the server sends a heartbeat frame
// after half an interval without writing, except while StopReading is in
// effect. The server never times a connection out for missing heartbeats.
func WithHeartbeat(seconds uint16) Option { return func(c *config) { c.heartbeat = seconds } }

// Reply scripts the server's answer to one publish or method. The zero Reply
// answers normally. At most one of Drop, CloseConnection and CloseChannel (or
// Refuse) takes effect, in that order of precedence; when one does, the
// publish gets no return and no confirm, the method no answer.
type Reply struct {
	// Delay postpones the answer. It is applied in the connection's writer:
	// the reader goes on with later frames, other channels are not held, but
	// every later frame on the same channel waits behind the delayed one
	// (replies keep their order per channel). For a held publish it delays
	// only the publish's return, if any.
	Delay time.Duration
	// Nack confirms a publish with basic.nack instead of basic.ack.
	Nack bool
	// Return sends basic.return (312 NO_ROUTE) with the message before its
	// confirm, whether or not the message is mandatory.
	Return bool
	// Hold sends no confirm for a publish until Release or ReleaseChannel.
	// Nack and Hold mean nothing on a channel not in confirm mode.
	Hold bool
	// CloseChannel closes the channel with this reply code (and Text) instead
	// of answering. On channel 0 (connection methods) it closes the connection.
	CloseChannel uint16
	// CloseConnection closes the connection with this reply code (and Text)
	// instead of answering; the server then waits up to two seconds for
	// connection.close-ok.
	CloseConnection uint16
	// Text is the reply text for CloseChannel, CloseConnection and Refuse;
	// empty means the code's standard name, such as "NOT_FOUND".
	Text string
	// Drop closes the TCP socket without a word instead of answering (after
	// Delay, and after the frames queued before it have been written).
	Drop bool
	// Refuse is the same as CloseChannel: a channel-level refusal such as 404.
	Refuse uint16
	// Unroutable treats a publish as if it reached no queue: a mandatory
	// one is returned (312 NO_ROUTE) before its confirm, and in WithStore
	// mode the message is not stored. A nacked publish is not stored either.
	Unroutable bool
}

// Method is a synchronous method a client sent, as recorded by Methods and
// passed to the OnMethod hook. Fields a method does not carry are zero.
type Method struct {
	Conn, Channel int
	Class, ID     uint16
	Name          string // for example "queue.declare"

	Queue, Exchange, RoutingKey, ConsumerTag string
	Passive                                  bool
	Args                                     map[string]any

	// Kind is the exchange type of exchange.declare.
	Kind string
	// Destination is the destination of exchange.bind and exchange.unbind;
	// Exchange holds the source.
	Destination string

	Durable, AutoDelete, Exclusive, Internal, NoWait bool
	NoLocal, NoAck, IfUnused, IfEmpty, Global        bool
	// Active is the argument of channel.flow.
	Active bool

	PrefetchSize  uint32
	PrefetchCount uint16

	// ReplyCode and ReplyText are the arguments of a client's channel.close or
	// connection.close.
	ReplyCode uint16
	ReplyText string

	// Vhost is the virtual host of connection.open.
	Vhost string
	// Mechanism and User are the SASL mechanism and user name of
	// connection.start-ok.
	Mechanism, User string
}

// Publish is a message a client published, as recorded by Publishes and
// passed to the OnPublish hook. Treat its maps and Body as read-only.
type Publish struct {
	Conn, Channel int
	// Seq is the delivery tag of the publish's confirm: 1, 2, ... counted on
	// its channel from confirm.select on; 0 on a channel not in confirm mode.
	Seq        uint64
	Exchange   string
	RoutingKey string
	Mandatory  bool
	Immediate  bool
	Props      Properties
	Body       []byte
	// Queues are the queues the publish was routed to and that take it, in
	// WithStore mode (set before the OnPublish hook runs, which may still
	// prevent storing).
	Queues []string
	// Refused are the queues the publish was routed to that refuse it for
	// being full (x-overflow reject-publish or reject-publish-dlx), in
	// WithStore mode; if there are any, the publish is nacked.
	Refused []string
}

// Ack is a basic.ack, basic.nack or basic.reject a client sent for a
// delivery, as recorded by Acks.
type Ack struct {
	Conn, Channel int
	Tag           uint64
	Multiple      bool
	Nack          bool // basic.nack or basic.reject
	Reject        bool // basic.reject
	Requeue       bool
}

// consumer is a basic.consume registration.
type consumer struct {
	c     *conn
	ch    *channel
	tag   string
	queue string

	// WithStore mode, guarded by s.mu.
	prefetch  int // 0: no limit
	unacked   int
	noAck     bool
	exclusive bool
}

// queueInfo is what the server knows of a declared queue.
type queueInfo struct {
	owner      *conn // the declaring connection of an exclusive queue
	autoDelete bool
	consumed   bool // has had a consumer, so auto-delete applies

	// WithStore mode.
	durable bool
	args    map[string]any
	ready   []*message
}

// heldConfirm is a publish confirm kept back by Reply.Hold.
type heldConfirm struct {
	c   *conn
	ch  *channel
	seq uint64
}

// Start listens on 127.0.0.1:0 and serves until t's cleanup, which calls
// Close. It fails t if it cannot listen.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Listen(opts...)
	if err != nil {
		t.Fatalf("fakebroker: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Listen is Start without a testing.TB: the caller must call Close.
func Listen(opts ...Option) (*Server, error) {
	cfg := config{channelMax: 2047, frameMax: 131072, nodes: 1}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{
		cfg:       cfg,
		conns:     make(map[int]*conn),
		queues:    make(map[string]*queueInfo),
		exchanges: make(map[string]bool),
		consumers: make(map[string][]*consumer),
		rr:        make(map[string]int),
	}
	if cfg.store {
		s.store = newStore()
	}
	for i := range cfg.nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, n := range s.nodes {
				_ = n.ln.Close()
			}
			return nil, err
		}
		s.nodes = append(s.nodes, &node{index: i, ln: ln, addr: ln.Addr().String()})
	}
	for _, n := range s.nodes {
		s.wg.Add(1)
		go s.acceptLoop(n)
	}
	return s, nil
}

// URL returns the AMQP URL of the server's first node,
// "amqp://guest:guest@127.0.0.1:PORT/".
func (s *Server) URL() string { return s.nodes[0].url() }

// Addr returns the first node's listening address, "127.0.0.1:PORT".
func (s *Server) Addr() string { return s.nodes[0].addr }

// Close closes the listener and every connection and waits until all the
// server's goroutines have ended. It is safe to call more than once. It must
// not be called from a hook.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		conns := s.connList(false)
		s.mu.Unlock()
		for _, n := range s.nodes {
			_ = n.ln.Close()
		}
		for _, c := range conns {
			c.shutdown()
		}
	})
	s.wg.Wait()
}

func (s *Server) acceptLoop(n *node) {
	defer s.wg.Done()
	for {
		nc, err := n.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		if n.killed {
			s.mu.Unlock()
			resetClose(nc)
			continue
		}
		s.nextConn++
		c := newConn(s, s.nextConn, nc, n)
		s.conns[c.id] = c
		s.wg.Add(2)
		s.mu.Unlock()
		go c.readLoop()
		go c.writeLoop()
	}
}

// connList returns the connections, only those past connection.open-ok if
// openOnly, ordered by id. s.mu must be held.
func (s *Server) connList(openOnly bool) []*conn {
	out := make([]*conn, 0, len(s.conns))
	for id := 1; id <= s.nextConn; id++ {
		if c, ok := s.conns[id]; ok && (!openOnly || c.open) {
			out = append(out, c)
		}
	}
	return out
}

// OnPublish sets the hook that decides the answer to every publish; nil
// restores the default. The hook runs on the connection's reader goroutine,
// without the server's lock held, so it may call Server methods (not Close);
// while it runs the connection reads no further frames.
//
// Whatever the hook returns, a mandatory publish that cannot be routed (to the
// default exchange with a routing key naming no declared queue, or with a
// routing key starting with "unroutable") is returned before its confirm,
// unless the Reply drops or closes instead.
func (s *Server) OnPublish(f func(p *Publish) Reply) {
	s.mu.Lock()
	s.onPublish = f
	s.mu.Unlock()
}

// OnMethod sets the hook that decides the answer to every synchronous client
// method other than basic.publish, ack, nack and reject: connection.start-ok,
// connection.open, connection.close, channel.open, channel.close,
// confirm.select, exchange.*, queue.*, basic.qos, basic.consume, basic.cancel
// and the rest. nil restores the default. It runs like the OnPublish hook.
// For a client's channel.close and connection.close only Delay, Drop and
// CloseConnection take effect; the close is always answered otherwise.
func (s *Server) OnMethod(f func(m *Method) Reply) {
	s.mu.Lock()
	s.onMethod = f
	s.mu.Unlock()
}

// Release answers every held confirm of every connection, with basic.ack if
// ack is true and basic.nack otherwise, per channel in publish order, and
// returns how many it answered. Confirms of channels or connections that have
// closed since are forgotten, not answered.
func (s *Server) Release(ack bool) int {
	return s.release(func(heldConfirm) bool { return true }, ack)
}

// ReleaseChannel is Release restricted to one channel of one connection.
func (s *Server) ReleaseChannel(conn, channel int, ack bool) int {
	return s.release(func(h heldConfirm) bool {
		return h.c.id == conn && int(h.ch.id) == channel
	}, ack)
}

func (s *Server) release(match func(heldConfirm) bool, ack bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	keep := s.held[:0]
	for _, h := range s.held {
		if !match(h) {
			keep = append(keep, h)
			continue
		}
		h.c.enqueue(&outItem{lane: h.ch, data: confirmFrame(h.ch.id, h.seq, ack)})
		n++
	}
	clear(s.held[len(keep):])
	s.held = keep
	return n
}

// Held returns how many confirms are currently held back.
func (s *Server) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held)
}

// Block sends connection.blocked with reason to every open connection whose
// client announced the connection.blocked capability (amqp091-go does), and
// from then on stops reading from every connection until Unblock: frames the
// client sends stay unread in the socket buffers (at most one frame read just
// before is kept unprocessed). The server still writes (Release, Deliver,
// CloseConnections and delayed replies go out). New connections may still
// complete the handshake; they are sent connection.blocked and then not read.
func (s *Server) Block(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.blocked {
		s.blocked = true
		s.blockCh = make(chan struct{})
	}
	s.blockReason = reason
	for _, c := range s.connList(true) {
		if c.capBlocked && !c.sentBlocked && (s.store == nil || c.published) {
			c.sentBlocked = true
			c.enqueue(&outItem{lane: c.ch0, data: blockedFrame(reason)})
		}
	}
}

// Unblock sends connection.unblocked to the connections that were sent
// connection.blocked and resumes reading.
func (s *Server) Unblock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blocked {
		s.blocked = false
		close(s.blockCh)
	}
	for _, c := range s.connList(true) {
		if c.sentBlocked {
			c.sentBlocked = false
			c.enqueue(&outItem{lane: c.ch0, data: methodFrame(0, connUnblocked, nil)})
		}
	}
}

// StopReading stops reading from every connection, including ones still in
// the handshake and ones accepted later, without telling the clients: a hung
// node. The server still writes, but sends no heartbeats meanwhile. A
// connection the server has sent connection.close is read regardless.
func (s *Server) StopReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopReading {
		s.stopReading = true
		s.stopCh = make(chan struct{})
		s.stopped.Store(true)
	}
}

// ResumeReading undoes StopReading.
func (s *Server) ResumeReading() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopReading {
		s.stopReading = false
		close(s.stopCh)
		s.stopped.Store(false)
		for _, c := range s.conns {
			c.wakeWriter()
		}
	}
}

// CloseConnections sends connection.close with code and text (empty text:
// the code's standard name) to every open connection. Each connection ends
// when its client answers close-ok, or two seconds later.
func (s *Server) CloseConnections(code uint16, text string) {
	if text == "" {
		text = replyText(code)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.connList(true) {
		c.enqueue(&outItem{lane: c.ch0, kind: itemConnClose, data: closeFrame(0, code, text, methodKey{})})
	}
}

// DropConnections closes the socket of every connection, open or still in
// the handshake, at once.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := s.connList(false)
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
}

// Deliver sends basic.deliver with the message (exchange "", routing key
// queue) to one consumer of queue, choosing consumers round robin, and
// returns an error if queue has no consumer. The delivery tag is the next one
// of the consumer's channel, counted from 1.
func (s *Server) Deliver(queue string, p Properties, body []byte) error {
	s.mu.Lock()
	cs := s.consumers[queue]
	if len(cs) == 0 {
		s.mu.Unlock()
		return fmt.Errorf("fakebroker: no consumer on queue %q", queue)
	}
	i := s.rr[queue] % len(cs)
	s.rr[queue] = i + 1
	cons := cs[i]
	s.mu.Unlock()
	return cons.c.deliver(cons, p, body)
}

// CancelConsumers cancels every consumer of queue with a basic.cancel from
// the server (as RabbitMQ does when a queue is deleted) and returns how many
// it cancelled.
func (s *Server) CancelConsumers(queue string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelConsumersLocked(queue)
}

// consumersChangedLocked tidies up after consumers of queue were removed:
// an empty consumer list is dropped and an auto-delete queue that had
// consumers and has none left is deleted. s.mu must be held.
func (s *Server) consumersChangedLocked(queue string) {
	if len(s.consumers[queue]) > 0 {
		return
	}
	delete(s.consumers, queue)
	delete(s.rr, queue)
	if q := s.queues[queue]; q != nil && q.autoDelete && q.consumed {
		s.dropQueueLocked(queue)
	}
}

func (s *Server) cancelConsumersLocked(queue string) int {
	cs := s.consumers[queue]
	delete(s.consumers, queue)
	delete(s.rr, queue)
	for _, k := range cs {
		tag := k.tag
		k.c.enqueue(&outItem{lane: k.ch, data: methodFrame(k.ch.id, bCancel, func(e *encoder) {
			e.shortstr(tag)
			e.bits(true) // no-wait
		})})
	}
	return len(cs)
}

// Consumers returns how many consumers queue has.
func (s *Server) Consumers(queue string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.consumers[queue])
}

// Connections returns how many connections completed connection.open, ever.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connections
}

// OpenConnections returns how many connections that completed
// connection.open are still open.
func (s *Server) OpenConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openConns
}

// ChannelOpens returns how many channel.open the server received, ever.
func (s *Server) ChannelOpens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channelOpens
}

// OpenChannels returns how many channels are open on all connections. A
// channel counts from its channel.open until the client's channel.close, or
// the client's close-ok after the server closed it, or the connection's end.
func (s *Server) OpenChannels() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.openChannels
}

// Publishes returns a copy of every publish received, in arrival order. A
// publish is recorded when its last content frame has been read, before the
// OnPublish hook runs.
func (s *Server) Publishes() []Publish {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Publish(nil), s.publishes...)
}

// Methods returns a copy of every synchronous method received (those the
// OnMethod hook sees), in arrival order.
func (s *Server) Methods() []Method {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Method(nil), s.methods...)
}

// Acks returns a copy of every basic.ack, basic.nack and basic.reject the
// clients sent, in arrival order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Ack(nil), s.acks...)
}

// ClientProperties returns the client-properties table of the latest
// connection.start-ok received, or nil.
func (s *Server) ClientProperties() map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientProps
}

// DeclareQueue records queue as declared (neither exclusive nor
// auto-delete), as if a client had declared it.
func (s *Server) DeclareQueue(queue string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues[queue] == nil {
		s.queues[queue] = &queueInfo{}
	}
}

// DeleteQueue forgets queue, as if a client had deleted it, and cancels its
// consumers with a basic.cancel from the server.
func (s *Server) DeleteQueue(queue string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropQueueLocked(queue)
	s.cancelConsumersLocked(queue)
}

// HasQueue reports whether queue is declared.
func (s *Server) HasQueue(queue string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queues[queue] != nil
}

// Queues returns the names of the declared queues, sorted.
func (s *Server) Queues() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.queues))
	for q := range s.queues {
		names = append(names, q)
	}
	slices.Sort(names)
	return names
}

// WaitFor calls cond every millisecond until it returns true (nil) or ctx
// ends (ctx's error).
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		if cond() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// forgetChannel drops the consumers and held confirms of a channel that is
// closing or closed.
func (s *Server) forgetChannel(c *conn, ch *channel) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forgetLocked(func(cc *conn, cch *channel) bool { return cc == c && cch == ch })
}

// forgetLocked drops the consumers and held confirms for which match is
// true, and deletes auto-delete queues left without consumers. s.mu must be
// held.
func (s *Server) forgetLocked(match func(*conn, *channel) bool) {
	s.forgetStoreLocked(match)
	defer s.dispatchAllLocked()
	for q, cs := range s.consumers {
		keep := cs[:0]
		for _, k := range cs {
			if !match(k.c, k.ch) {
				keep = append(keep, k)
			}
		}
		clear(cs[len(keep):])
		s.consumers[q] = keep
		s.consumersChangedLocked(q)
	}
	keep := s.held[:0]
	for _, h := range s.held {
		if !match(h.c, h.ch) {
			keep = append(keep, h)
		}
	}
	clear(s.held[len(keep):])
	s.held = keep
}

// connEnded updates the server's state for a connection that has ended.
func (s *Server) connEnded(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c.id)
	if c.open {
		c.open = false
		s.openConns--
	}
	c.mu.Lock()
	c.ended = true
	s.openChannels -= len(c.channels)
	clear(c.channels)
	c.mu.Unlock()
	s.forgetLocked(func(cc *conn, _ *channel) bool { return cc == c })
	for name, q := range s.queues {
		if q.owner == c {
			s.dropQueueLocked(name)
			s.cancelConsumersLocked(name)
		}
	}
}

// record appends a method to the record and returns the OnMethod hook.
func (s *Server) record(m Method) func(*Method) Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.methods = append(s.methods, m)
	return s.onMethod
}

// confirmFrame encodes basic.ack or basic.nack for one publish.
func confirmFrame(ch uint16, seq uint64, ack bool) []byte {
	if ack {
		return methodFrame(ch, bAck, func(e *encoder) { e.longlong(seq); e.bits(false) })
	}
	return methodFrame(ch, bNack, func(e *encoder) { e.longlong(seq); e.bits(false, false) })
}

func blockedFrame(reason string) []byte {
	return methodFrame(0, connBlocked, func(e *encoder) { e.shortstr(reason) })
}
