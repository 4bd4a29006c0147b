package fakebroker

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// chanState is the life-cycle state of a channel (and of its output lane).
type chanState int

const (
	stateOpen          chanState = iota
	stateClosing                 // the server sent channel.close, waiting for close-ok
	stateClientClosing           // the client sent channel.close, close-ok queued
	stateFreed                   // gone; its queued output is discarded
)

// channel is one AMQP channel of a connection. It doubles as the output lane
// of its frames; channel 0 has a lane that is never closed.
type channel struct {
	id uint16

	// state is guarded by conn.mu.
	state chanState
	// nextTag is the last delivery tag used; guarded by conn.mu.
	nextTag uint64

	// Owned by the reader goroutine.
	confirm bool
	nextSeq uint64
	pending *pendingPublish
}

// pendingPublish is a basic.publish whose content is still being read.
type pendingPublish struct {
	m          inMethod
	headerSeen bool
	size       uint64
	props      Properties
	body       []byte
}

// conn is one client connection, served by a reader and a writer goroutine.
type conn struct {
	s         *Server
	id        int
	node      *node
	nc        net.Conn
	br        *bufio.Reader
	done      chan struct{} // closed by shutdown
	closingCh chan struct{} // closed when the server has sent connection.close
	wake      chan struct{}
	endOnce   sync.Once
	frameMax  atomic.Uint32 // negotiated; limits frames in both directions
	heartbeat atomic.Uint32 // negotiated, in seconds

	// Owned by the reader goroutine.
	channelMax uint16
	vhost      string

	// Guarded by s.mu.
	open        bool // past connection.open-ok
	capBlocked  bool // client announced the connection.blocked capability
	sentBlocked bool
	published   bool // has sent basic.publish (WithStore: Block applies)

	// Guarded by mu.
	mu       sync.Mutex
	queue    []*outItem
	channels map[uint16]*channel
	ch0      *channel
	closing  bool
	ended    bool
}

func newConn(s *Server, id int, nc net.Conn, n *node) *conn {
	c := &conn{
		s:         s,
		id:        id,
		node:      n,
		nc:        nc,
		br:        bufio.NewReader(nc),
		done:      make(chan struct{}),
		closingCh: make(chan struct{}),
		wake:      make(chan struct{}, 1),
		channels:  make(map[uint16]*channel),
		ch0:       &channel{},
	}
	c.frameMax.Store(s.cfg.frameMax)
	return c
}

// shutdown ends the connection: closes the socket, stops both goroutines and
// updates the server's state. It is idempotent and may be called from any
// goroutine that holds neither s.mu nor c.mu.
func (c *conn) shutdown() {
	c.endOnce.Do(func() {
		close(c.done)
		_ = c.nc.Close()
		c.s.connEnded(c)
	})
}

// connError is a connection-level protocol error found while reading: the
// server sends connection.close with it and drops the connection.
type connError struct {
	code   uint16
	text   string
	failed methodKey
}

func (e *connError) Error() string { return fmt.Sprintf("%d %s", e.code, e.text) }

func newConnError(code uint16, failed methodKey, format string, args ...any) *connError {
	return &connError{code: code, text: replyText(code) + " - " + fmt.Sprintf(format, args...), failed: failed}
}

// errEnd ends the connection quietly.
var errEnd = errors.New("connection ended")

// readLoop is the connection's reader: the handshake, then one frame at a
// time, each handled before the next is read.
func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer c.shutdown()
	err := c.handshake()
	for err == nil {
		if !c.gate(false) {
			return
		}
		var f frame
		f, err = readFrame(c.br, c.frameMax.Load())
		if err != nil {
			break
		}
		if !c.gate(false) {
			return
		}
		err = c.handle(f)
	}
	var fe *frameError
	var ce *connError
	switch {
	case errors.As(err, &fe):
		c.closeAndDrop(fe.code, fe.text, methodKey{})
	case errors.As(err, &ce):
		c.closeAndDrop(ce.code, ce.text, ce.failed)
	}
}

// closeAndDrop sends connection.close and then ends the connection without
// waiting for close-ok.
func (c *conn) closeAndDrop(code uint16, text string, failed methodKey) {
	c.enqueue(&outItem{lane: c.ch0, kind: itemCloseDrop, force: true, data: closeFrame(0, code, text, failed)})
	c.drain()
}

// drain reads and discards what the client sends until it closes the socket,
// for at most closeTimeout, so that closing the socket afterwards does not
// reset the connection before the client has read the server's last frames.
// The caller ends the connection afterwards.
func (c *conn) drain() {
	_ = c.nc.SetReadDeadline(time.Now().Add(closeTimeout))
	_, _ = io.Copy(io.Discard, c.br)
}

// gate blocks while the server does not read from connections: during
// StopReading, and during Block unless handshake is true. It returns false if
// the connection ended meanwhile. A closing connection is never gated, so the
// client's close-ok can be read.
func (c *conn) gate(handshake bool) bool {
	for {
		c.s.mu.Lock()
		var wait chan struct{}
		switch {
		case c.node.hung:
			wait = c.node.hungCh
		case c.s.stopReading:
			wait = c.s.stopCh
		case c.s.blocked && !handshake && (c.s.store == nil || c.published):
			wait = c.s.blockCh
		}
		c.s.mu.Unlock()
		if wait == nil {
			return true
		}
		select {
		case <-wait:
		case <-c.closingCh:
			return true
		case <-c.done:
			return false
		}
	}
}

// handshake runs the connection.start/tune/open exchange. It returns nil when
// the reader should go on to the main loop: either the connection is open or
// a hook refused it and the refusal is queued.
func (c *conn) handshake() error {
	if !c.gate(true) {
		return errEnd
	}
	hdr := make([]byte, len(protocolHeader))
	if _, err := io.ReadFull(c.br, hdr); err != nil {
		return err
	}
	if !bytes.Equal(hdr, protocolHeader) {
		// Spec 4.2.2: answer with the supported protocol header and close.
		c.enqueue(&outItem{lane: c.ch0, kind: itemCloseDrop, data: protocolHeader})
		c.drain()
		return errEnd
	}

	c.enqueue(&outItem{lane: c.ch0, data: methodFrame(0, connStart, func(e *encoder) {
		e.octet(0)
		e.octet(9)
		_ = e.table(serverProperties())
		e.longstr("PLAIN AMQPLAIN")
		e.longstr("en_US")
	})})

	m, err := c.readHandshake(connStartOk)
	if err != nil {
		return err
	}
	user := saslUser(m.mechanism, m.response)
	caps, _ := m.clientProps["capabilities"].(map[string]any)
	capBlocked, _ := caps["connection.blocked"].(bool)
	c.s.mu.Lock()
	c.s.clientProps = m.clientProps
	c.capBlocked = capBlocked
	c.s.mu.Unlock()
	rec := c.export(0, &m)
	rec.Mechanism, rec.User = m.mechanism, user
	if r := c.callHook(rec); c.refuse(c.ch0, r, m.key) {
		return nil
	}

	cfg := c.s.cfg
	c.enqueue(&outItem{lane: c.ch0, data: methodFrame(0, connTune, func(e *encoder) {
		e.short(cfg.channelMax)
		e.long(cfg.frameMax)
		e.short(cfg.heartbeat)
	})})
	m, err = c.readHandshake(connTuneOk)
	if err != nil {
		return err
	}
	c.channelMax = cfg.channelMax
	if m.channelMax != 0 && (c.channelMax == 0 || m.channelMax < c.channelMax) {
		c.channelMax = m.channelMax
	}
	if m.frameMax != 0 && m.frameMax < cfg.frameMax {
		c.frameMax.Store(max(m.frameMax, 4096))
	}
	c.heartbeat.Store(uint32(m.heartbeat))
	c.wakeWriter()

	m, err = c.readHandshake(connOpen)
	if err != nil {
		return err
	}
	c.vhost = m.vhost
	rec = c.export(0, &m)
	if r := c.callHook(rec); c.refuse(c.ch0, r, m.key) {
		return nil
	}
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	if c.ended {
		return errEnd
	}
	c.open = true
	c.s.connections++
	c.s.openConns++
	c.enqueue(&outItem{lane: c.ch0, at: delayed(rec.reply), data: methodFrame(0, connOpenOk, func(e *encoder) { e.shortstr("") })})
	if c.s.blocked && c.capBlocked && c.s.store == nil {
		c.sentBlocked = true
		c.enqueue(&outItem{lane: c.ch0, data: blockedFrame(c.s.blockReason)})
	}
	return nil
}

// readHandshake reads frames until the method want arrives on channel 0,
// skipping heartbeats. A client's connection.close is answered and ends the
// connection.
func (c *conn) readHandshake(want methodKey) (inMethod, error) {
	for {
		if !c.gate(true) {
			return inMethod{}, errEnd
		}
		limit := c.frameMax.Load()
		f, err := readFrame(c.br, limit)
		if err != nil {
			return inMethod{}, err
		}
		if f.typ == frameHeartbeat {
			continue
		}
		if f.typ != frameMethod || f.channel != 0 {
			return inMethod{}, newConnError(505, methodKey{}, "expected %s", want)
		}
		m, err := decodeMethod(f.payload)
		if err != nil {
			return inMethod{}, newConnError(502, m.key, "cannot decode %s: %v", m.key, err)
		}
		switch m.key {
		case want:
			return m, nil
		case connClose:
			c.enqueue(&outItem{lane: c.ch0, kind: itemConnCloseOk, force: true, data: methodFrame(0, connCloseOk, nil)})
			<-c.done
			return inMethod{}, errEnd
		}
		return inMethod{}, newConnError(503, m.key, "expected %s, got %s", want, m.key)
	}
}

// serverProperties is the server-properties table of connection.start.
func serverProperties() map[string]any {
	return map[string]any{
		"product":  "fakebroker",
		"version":  "0.0.0",
		"platform": "Go",
		"capabilities": map[string]any{
			"publisher_confirms":           true,
			"exchange_exchange_bindings":   true,
			"basic.nack":                   true,
			"consumer_cancel_notify":       true,
			"connection.blocked":           true,
			"authentication_failure_close": true,
		},
	}
}

// handle processes one frame read after the handshake.
func (c *conn) handle(f frame) error {
	if f.typ == frameHeartbeat {
		return nil
	}
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		// After connection.close only close and close-ok count.
		if f.typ == frameMethod && f.channel == 0 {
			k, _ := decodeMethod(f.payload)
			switch k.key {
			case connCloseOk:
				return errEnd
			case connClose:
				c.enqueue(&outItem{lane: c.ch0, kind: itemConnCloseOk, force: true, data: methodFrame(0, connCloseOk, nil)})
			}
		}
		return nil
	}
	if f.channel == 0 {
		return c.handleConnection(f)
	}
	return c.handleChannel(f)
}

// handleConnection processes a frame on channel 0.
func (c *conn) handleConnection(f frame) error {
	if f.typ != frameMethod {
		return newConnError(505, methodKey{}, "frame type %d on channel 0", f.typ)
	}
	m, err := decodeMethod(f.payload)
	if err != nil {
		return newConnError(502, m.key, "cannot decode %s: %v", m.key, err)
	}
	switch m.key {
	case connClose:
		rec := c.export(0, &m)
		r := c.callHook(rec)
		if r.Drop || r.CloseConnection != 0 {
			c.refuse(c.ch0, r, m.key)
			return nil
		}
		c.enqueue(&outItem{lane: c.ch0, at: delayed(r), kind: itemConnCloseOk, force: true, data: methodFrame(0, connCloseOk, nil)})
		return nil
	case connUpdateSecret:
		rec := c.export(0, &m)
		if r := c.callHook(rec); c.refuse(c.ch0, r, m.key) {
			return nil
		}
		c.enqueue(&outItem{lane: c.ch0, at: delayed(rec.reply), data: methodFrame(0, connUpdateSecOk, nil)})
		return nil
	case connCloseOk, connBlocked, connUnblocked:
		return nil
	}
	return newConnError(503, m.key, "unexpected %s on channel 0", m.key)
}

// handleChannel processes a frame on a channel other than 0.
func (c *conn) handleChannel(f frame) error {
	c.mu.Lock()
	ch := c.channels[f.channel]
	var state chanState
	if ch != nil {
		state = ch.state
	}
	c.mu.Unlock()

	if ch == nil || state == stateClosing {
		if f.typ != frameMethod {
			if ch == nil {
				return newConnError(504, methodKey{}, "frame on channel %d which is not open", f.channel)
			}
			return nil // content of a publish on a closing channel
		}
		m, err := decodeMethod(f.payload)
		if err != nil {
			return newConnError(502, m.key, "cannot decode %s: %v", m.key, err)
		}
		switch {
		case m.key == chanCloseOk && ch != nil:
			c.freeChannel(ch)
		case m.key == chanClose && ch != nil:
			// Both sides closed at once: answer, keep waiting for close-ok.
			c.enqueue(&outItem{lane: ch, force: true, data: methodFrame(ch.id, chanCloseOk, nil)})
		case m.key == chanClose:
			c.enqueue(&outItem{lane: &channel{id: f.channel, state: stateClientClosing},
				data: methodFrame(f.channel, chanCloseOk, nil)})
		case m.key == chanOpen && ch == nil:
			return c.openChannel(f.channel, &m)
		case ch == nil && m.key != chanCloseOk:
			return newConnError(504, m.key, "expected 'channel.open' on channel %d", f.channel)
		}
		return nil
	}

	switch f.typ {
	case frameMethod:
		if ch.pending != nil {
			return newConnError(505, methodKey{}, "expected content header for class 60, got a method frame on channel %d", ch.id)
		}
		m, err := decodeMethod(f.payload)
		if err != nil {
			return newConnError(502, m.key, "cannot decode %s: %v", m.key, err)
		}
		return c.channelMethod(ch, &m)
	case frameHeader:
		p := ch.pending
		if p == nil || p.headerSeen {
			return newConnError(505, methodKey{}, "unexpected content header on channel %d", ch.id)
		}
		h, err := decodeContentHeader(f.payload)
		if err != nil {
			return newConnError(502, bPublish, "cannot decode content header: %v", err)
		}
		if h.class != classBasic {
			return newConnError(505, bPublish, "content header class %d, want 60", h.class)
		}
		p.headerSeen, p.size, p.props = true, h.bodySize, h.props
		p.body = make([]byte, 0, min(h.bodySize, 1<<20))
		if p.size == 0 {
			return c.publish(ch)
		}
	case frameBody:
		p := ch.pending
		if p == nil || !p.headerSeen {
			return newConnError(505, methodKey{}, "unexpected content body on channel %d", ch.id)
		}
		if uint64(len(p.body))+uint64(len(f.payload)) > p.size {
			return newConnError(501, bPublish, "content body longer than its header's body-size %d", p.size)
		}
		p.body = append(p.body, f.payload...)
		if uint64(len(p.body)) == p.size {
			return c.publish(ch)
		}
	}
	return nil
}

// openChannel handles channel.open on a channel id not in use.
func (c *conn) openChannel(id uint16, m *inMethod) error {
	if c.channelMax != 0 && id > c.channelMax {
		return newConnError(530, m.key, "channel id %d exceeds negotiated channel_max (%d)", id, c.channelMax)
	}
	ch := &channel{id: id}
	c.s.mu.Lock()
	c.mu.Lock()
	ended := c.ended
	if !ended {
		c.channels[id] = ch
		c.s.channelOpens++
		c.s.openChannels++
	}
	c.mu.Unlock()
	c.s.mu.Unlock()
	if ended {
		return errEnd
	}
	rec := c.export(ch.id, m)
	if r := c.callHook(rec); c.refuse(ch, r, m.key) {
		return nil
	}
	c.enqueue(&outItem{lane: ch, at: delayed(rec.reply), data: methodFrame(id, chanOpenOk, func(e *encoder) { e.longstr("") })})
	return nil
}

// removeChannel takes ch out of the connection's open channels and forgets
// its consumers and held confirms. It reports whether ch was still there.
func (c *conn) removeChannel(ch *channel, newState chanState) bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.mu.Lock()
	present := c.channels[ch.id] == ch
	if present {
		delete(c.channels, ch.id)
		c.s.openChannels--
	}
	ch.state = newState
	c.mu.Unlock()
	c.s.forgetLocked(func(cc *conn, cch *channel) bool { return cc == c && cch == ch })
	return present
}

// freeChannel handles the client's close-ok after the server closed ch.
func (c *conn) freeChannel(ch *channel) {
	c.removeChannel(ch, stateFreed)
}

// reply carries the hook's answer along with a recorded method.
type recorded struct {
	Method
	reply Reply
}

// export converts a decoded method to its record.
func (c *conn) export(ch uint16, m *inMethod) *recorded {
	return &recorded{Method: Method{
		Conn: c.id, Channel: int(ch),
		Class: m.key.class, ID: m.key.id, Name: m.key.String(),
		Queue: m.queue, Exchange: m.exchange, RoutingKey: m.routingKey, ConsumerTag: m.consumerTag,
		Passive: m.passive, Args: m.args,
		Kind: m.kind, Destination: m.destination,
		Durable: m.durable, AutoDelete: m.autoDelete, Exclusive: m.exclusive, Internal: m.internal, NoWait: m.noWait,
		NoLocal: m.noLocal, NoAck: m.noAck, IfUnused: m.ifUnused, IfEmpty: m.ifEmpty, Global: m.global,
		Active:       m.active,
		PrefetchSize: m.prefetchSize, PrefetchCount: m.prefetchCount,
		ReplyCode: m.replyCode, ReplyText: m.replyText,
		Vhost: m.vhost,
	}}
}

// callHook records the method and runs the OnMethod hook, if any, without
// any lock held. It stores the hook's Reply in rec and returns it.
func (c *conn) callHook(rec *recorded) Reply {
	hook := c.s.record(rec.Method)
	if hook != nil {
		m := rec.Method
		rec.reply = hook(&m)
	}
	return rec.reply
}

// delayed returns the time a reply is due, zero for now.
func delayed(r Reply) time.Time {
	if r.Delay <= 0 {
		return time.Time{}
	}
	return time.Now().Add(r.Delay)
}

// refuse queues what a Reply says instead of a normal answer: a drop, a
// connection close or a channel close on lane. It reports whether it queued
// anything. failed is the method the close blames.
func (c *conn) refuse(lane *channel, r Reply, failed methodKey) bool {
	at := delayed(r)
	chanCode := r.CloseChannel
	if chanCode == 0 {
		chanCode = r.Refuse
	}
	switch {
	case r.Drop:
		c.enqueue(&outItem{lane: lane, at: at, kind: itemDrop, force: true})
	case r.CloseConnection != 0 || (chanCode != 0 && lane.id == 0):
		code := r.CloseConnection
		if code == 0 {
			code = chanCode
		}
		c.enqueue(&outItem{lane: lane, at: at, kind: itemConnClose, data: closeFrame(0, code, textFor(r.Text, code), failed)})
	case chanCode != 0:
		c.enqueue(&outItem{lane: lane, at: at, kind: itemChanClose, data: closeFrame(lane.id, chanCode, textFor(r.Text, chanCode), failed)})
	default:
		return false
	}
	return true
}

func textFor(text string, code uint16) string {
	if text != "" {
		return text
	}
	return replyText(code)
}
