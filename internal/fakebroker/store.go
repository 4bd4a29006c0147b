package fakebroker

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// WithStore makes the server a small broker rather than a recorder: it keeps
// exchanges with their types and bindings, routes every publish (direct,
// fanout, topic and headers exchanges, exchange-to-exchange bindings, the
// default exchange), stores messages in queues and delivers them to
// consumers round robin within their prefetch, takes them back on
// acknowledgement, requeues them (redelivered) on requeue and when their
// channel or connection ends, and dead-letters rejected ones to a queue's
// x-dead-letter-exchange. The rules it enforces are listed in the package
// documentation, section "Store".
func WithStore() Option { return func(c *config) { c.store = true } }

// Message is a message a queue holds or held, in WithStore mode.
type Message struct {
	// Exchange and RoutingKey are those the message was published with.
	Exchange, RoutingKey string
	Props                Properties
	Body                 []byte
	// Redelivered is set once the message went back to its queue after a
	// delivery (requeue, or its channel or connection ended).
	Redelivered bool
	// Deliveries counts how often the message was delivered.
	Deliveries int
}

// message is a stored message; queues hold pointers to it.
type message struct {
	Message
}

// binding routes from the exchange source to a queue or an exchange.
type binding struct {
	source     string
	dest       string
	toExchange bool
	key        string
	args       map[string]any
}

// chanKey names a channel of a connection.
type chanKey struct {
	c  *conn
	ch *channel
}

// chanStore is the store's view of a channel: its prefetch settings and
// the deliveries it has not settled.
type chanStore struct {
	prefetch       int // basic.qos global=false: for consumers made later
	globalPrefetch int // basic.qos global=true: for the whole channel
	unacked        map[uint64]*inflight
}

// inflight is a delivered message waiting for its acknowledgement.
type inflight struct {
	queue string
	msg   *message
	k     *consumer // nil for basic.get
}

// store is the state of WithStore mode, guarded by Server.mu.
type store struct {
	kinds    map[string]string // type of each declared exchange
	bindings []binding
	chans    map[chanKey]*chanStore
	acked    map[string][]Message // by queue, in acknowledgement order
	rejected map[string][]Message // nacked or rejected without requeue
	dlDepth  int                  // dead-letterings under way, nested
}

func newStore() *store {
	return &store{
		kinds:    make(map[string]string),
		chans:    make(map[chanKey]*chanStore),
		acked:    make(map[string][]Message),
		rejected: make(map[string][]Message),
	}
}

var builtinKinds = map[string]string{
	"": "direct", "amq.direct": "direct", "amq.fanout": "fanout", "amq.topic": "topic",
	"amq.headers": "headers", "amq.match": "headers",
}

var exchangeKinds = map[string]bool{"direct": true, "fanout": true, "topic": true, "headers": true}

// chanLocked returns the store's view of ch, made on first use.
func (st *store) chanLocked(c *conn, ch *channel) *chanStore {
	k := chanKey{c, ch}
	cs := st.chans[k]
	if cs == nil {
		cs = &chanStore{unacked: make(map[uint64]*inflight)}
		st.chans[k] = cs
	}
	return cs
}

// kindLocked returns the type of exchange name, "" if it does not exist.
func (s *Server) kindLocked(name string) string {
	if k, ok := builtinKinds[name]; ok {
		return k
	}
	if !s.exchanges[name] {
		return ""
	}
	return s.store.kinds[name]
}

// routeLocked returns the queues a message published to exchange with key
// and headers reaches, each once, in binding order.
func (s *Server) routeLocked(exchange, key string, headers map[string]any) []string {
	var out []string
	seen := map[string]bool{}
	visited := map[string]bool{}
	var walk func(ex string)
	walk = func(ex string) {
		if visited[ex] {
			return
		}
		visited[ex] = true
		if ex == "" {
			if s.queues[key] != nil && !seen[key] {
				seen[key] = true
				out = append(out, key)
			}
			return
		}
		kind := s.kindLocked(ex)
		for _, b := range s.store.bindings {
			if b.source != ex || !matches(kind, b, key, headers) {
				continue
			}
			if b.toExchange {
				walk(b.dest)
			} else if !seen[b.dest] && s.queues[b.dest] != nil {
				seen[b.dest] = true
				out = append(out, b.dest)
			}
		}
	}
	walk(exchange)
	return out
}

// matches reports whether binding b of an exchange of type kind routes a
// message with routing key key and headers.
func matches(kind string, b binding, key string, headers map[string]any) bool {
	switch kind {
	case "fanout":
		return true
	case "topic":
		return topicMatch(strings.Split(b.key, "."), strings.Split(key, "."))
	case "headers":
		return headersMatch(b.args, headers)
	}
	return b.key == key
}

// topicMatch matches words against a binding pattern: "*" is one word, "#"
// zero or more. It takes time proportional to len(pattern)*len(words)
// whatever the pattern (a naive backtracking match is exponential in the
// number of "#").
func topicMatch(pattern, words []string) bool {
	// ok[j]: pattern[:i] matches words[:j], for the current i.
	ok := make([]bool, len(words)+1)
	ok[0] = true
	for _, p := range pattern {
		next := make([]bool, len(words)+1)
		for j := range next {
			switch p {
			case "#":
				next[j] = ok[j] || j > 0 && next[j-1]
			case "*":
				next[j] = j > 0 && ok[j-1]
			default:
				next[j] = j > 0 && ok[j-1] && words[j-1] == p
			}
		}
		ok = next
	}
	return ok[len(words)]
}

// headersMatch applies a headers binding: x-match "any" needs one matching
// argument, otherwise ("all", the default) every one; arguments whose name
// starts with "x-" do not take part. A void (nil) argument matches the
// header's presence.
func headersMatch(args, headers map[string]any) bool {
	matchAny := args["x-match"] == "any"
	n, hit := 0, 0
	for k, want := range args {
		if strings.HasPrefix(k, "x-") {
			continue
		}
		n++
		got, ok := headers[k]
		if ok && (want == nil || sameValue(want, got)) {
			hit++
		}
	}
	if matchAny {
		return hit > 0
	}
	return hit == n
}

// sameValue compares table values, integers by value whatever their width.
func sameValue(a, b any) bool {
	ai, aok := asInt(a)
	bi, bok := asInt(b)
	if aok && bok {
		return ai == bi
	}
	return reflect.DeepEqual(a, b)
}

func asInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int8:
		return int64(v), true
	case uint8:
		return int64(v), true
	case int16:
		return int64(v), true
	case uint16:
		return int64(v), true
	case int32:
		return int64(v), true
	case uint32:
		return int64(v), true
	case int:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}

// sameArgs compares two argument tables.
func sameArgs(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || !sameValue(v, w) {
			return false
		}
	}
	return true
}

// storeLocked appends a copy of the message to each queue, delivers what it
// can, and then drops (dead-letters) the oldest ready messages of a queue
// past its length limits (x-overflow drop-head, the default).
func (s *Server) storeLocked(queues []string, m Message) {
	for _, q := range queues {
		qi := s.queues[q]
		if qi == nil {
			continue
		}
		qi.ready = append(qi.ready, &message{Message: m})
		s.dispatchLocked(q)
		for qi.overLimit(0) {
			head := qi.ready[0]
			qi.ready[0] = nil
			qi.ready = qi.ready[1:]
			s.deadLetterLocked(q, head, "maxlen")
		}
	}
}

// admitLocked splits the queues a message of size bytes routes to into
// those that take it and those that refuse it: full, with x-overflow
// reject-publish or reject-publish-dlx.
func (s *Server) admitLocked(queues []string, size int) (take, refuse []string) {
	for _, q := range queues {
		qi := s.queues[q]
		if qi != nil && qi.args["x-overflow"] != nil && qi.args["x-overflow"] != "drop-head" && qi.overLimit(size) {
			refuse = append(refuse, q)
		} else {
			take = append(take, q)
		}
	}
	return take, refuse
}

// storeRoutedLocked stores m in the queues that take it and dead-letters it
// from those that refuse it with reject-publish-dlx.
func (s *Server) storeRoutedLocked(take, refuse []string, m Message) {
	s.storeLocked(take, m)
	for _, q := range refuse {
		if qi := s.queues[q]; qi != nil && qi.args["x-overflow"] == "reject-publish-dlx" {
			s.deadLetterLocked(q, &message{Message: m}, "maxlen")
		}
	}
}

// overLimit reports whether the queue's ready messages, with one more of
// extra bytes if extra > 0, break x-max-length or x-max-length-bytes: for
// extra > 0 whether there is no room for it, otherwise whether there are
// too many already.
func (q *queueInfo) overLimit(extra int) bool {
	n := int64(len(q.ready))
	var bytes int64
	for _, m := range q.ready {
		bytes += int64(len(m.Body))
	}
	if max, ok := asInt(q.args["x-max-length"]); ok && (extra > 0 && n >= max || extra <= 0 && n > max) {
		return true
	}
	if max, ok := asInt(q.args["x-max-length-bytes"]); ok && bytes+int64(max0(extra)) > max {
		return true
	}
	return false
}

func max0(n int) int { return max(n, 0) }

// dispatchAllLocked delivers what it can from every queue.
func (s *Server) dispatchAllLocked() {
	if s.store == nil {
		return
	}
	for q := range s.queues {
		s.dispatchLocked(q)
	}
}

// dispatchLocked delivers ready messages of queue to its consumers, round
// robin, as long as one has room within its prefetch.
func (s *Server) dispatchLocked(queue string) {
	q := s.queues[queue]
	if s.store == nil || q == nil {
		return
	}
	for len(q.ready) > 0 {
		cs := s.consumers[queue]
		var k *consumer
		for i := range cs {
			j := (s.rr[queue] + i) % len(cs)
			if s.hasRoomLocked(cs[j]) {
				k = cs[j]
				s.rr[queue] = j + 1
				break
			}
		}
		if k == nil {
			return
		}
		m := q.ready[0]
		q.ready[0] = nil
		q.ready = q.ready[1:]
		if !s.deliverStoredLocked(k, queue, q, m) {
			q.ready = append([]*message{m}, q.ready...)
			return
		}
	}
}

// hasRoomLocked reports whether consumer k may be sent a message now.
func (s *Server) hasRoomLocked(k *consumer) bool {
	if k.c.node.hung {
		return false
	}
	k.c.mu.Lock()
	gone := k.c.ended || k.c.closing || k.ch.state != stateOpen
	k.c.mu.Unlock()
	if gone {
		return false
	}
	if k.noAck {
		return true
	}
	cs := s.store.chanLocked(k.c, k.ch)
	if k.prefetch > 0 && k.unacked >= k.prefetch {
		return false
	}
	return cs.globalPrefetch == 0 || len(cs.unacked) < cs.globalPrefetch
}

// deliverStoredLocked sends m to consumer k and records it as unacked
// unless k is no-ack. It reports false if the channel is closing.
func (s *Server) deliverStoredLocked(k *consumer, queue string, q *queueInfo, m *message) bool {
	props := deliveryProps(q, m)
	tag, err := k.c.deliverMessage(k.ch, bDeliver, k.tag, queue, &m.Message, props)
	if err != nil {
		return false
	}
	m.Deliveries++
	if !k.noAck {
		s.store.chanLocked(k.c, k.ch).unacked[tag] = &inflight{queue: queue, msg: m, k: k}
		k.unacked++
	}
	return true
}

// deliveryProps are the properties a delivery of m from q carries: a quorum
// queue counts earlier deliveries in the x-delivery-count header.
func deliveryProps(q *queueInfo, m *message) Properties {
	p := m.Props
	if m.Deliveries > 0 && q.args["x-queue-type"] == "quorum" {
		h := make(map[string]any, len(p.Headers)+1)
		for k, v := range p.Headers {
			h[k] = v
		}
		h["x-delivery-count"] = int64(m.Deliveries)
		p.Headers = h
	}
	return p
}

// deliverMessage queues basic.deliver (to consumer tag) or basic.get-ok
// (tag is then ignored) with the next delivery tag of ch, and returns that
// tag. It takes c.mu; the server's mu may be held.
func (c *conn) deliverMessage(ch *channel, k methodKey, tag, queue string, m *Message, props Properties) (uint64, error) {
	c.mu.Lock()
	if c.ended || c.closing || ch.state != stateOpen {
		c.mu.Unlock()
		return 0, fmt.Errorf("fakebroker: channel %d of connection %d is closing", ch.id, c.id)
	}
	dtag := ch.nextTag + 1
	remaining := uint32(0)
	if k == bGetOk {
		if q := c.s.queues[queue]; q != nil {
			remaining = uint32(len(q.ready))
		}
	}
	method := methodFrame(ch.id, k, func(e *encoder) {
		if k == bDeliver {
			e.shortstr(tag)
		}
		e.longlong(dtag)
		e.bits(m.Redelivered)
		e.shortstr(m.Exchange)
		e.shortstr(m.RoutingKey)
		if k == bGetOk {
			e.long(remaining)
		}
	})
	data, err := contentFrames(ch.id, method, props, m.Body, c.frameMax.Load())
	if err != nil {
		c.mu.Unlock()
		return 0, fmt.Errorf("fakebroker: %w", err)
	}
	ch.nextTag = dtag
	c.queue = append(c.queue, &outItem{lane: ch, data: data})
	c.mu.Unlock()
	c.wakeWriter()
	return dtag, nil
}

// settle applies a client's basic.ack, basic.nack or basic.reject in
// WithStore mode. An unknown delivery tag closes the channel with 406, as
// RabbitMQ does.
func (c *conn) settle(ch *channel, m *inMethod) {
	s := c.s
	s.mu.Lock()
	cs := s.store.chanLocked(c, ch)
	var tags []uint64
	if m.multiple {
		for t := range cs.unacked {
			if t <= m.deliveryTag || m.deliveryTag == 0 {
				tags = append(tags, t)
			}
		}
		slices.Sort(tags)
	} else if cs.unacked[m.deliveryTag] != nil {
		tags = []uint64{m.deliveryTag}
	}
	if len(tags) == 0 && (m.deliveryTag != 0 || !m.multiple) {
		s.mu.Unlock()
		text := fmt.Sprintf("PRECONDITION_FAILED - unknown delivery tag %d", m.deliveryTag)
		c.enqueue(&outItem{lane: ch, kind: itemChanClose, data: closeFrame(ch.id, 406, text, m.key)})
		return
	}
	touched := map[string]bool{}
	requeue := map[string][]*message{}
	for _, t := range tags {
		inf := cs.unacked[t]
		delete(cs.unacked, t)
		if inf.k != nil {
			inf.k.unacked--
		}
		touched[inf.queue] = true
		switch {
		case m.key == bAck:
			s.store.acked[inf.queue] = append(s.store.acked[inf.queue], inf.msg.Message)
		case m.requeue:
			requeue[inf.queue] = append(requeue[inf.queue], inf.msg)
		default:
			s.store.rejected[inf.queue] = append(s.store.rejected[inf.queue], inf.msg.Message)
			s.deadLetterLocked(inf.queue, inf.msg, "rejected")
		}
	}
	for q, ms := range requeue {
		s.requeueLocked(q, ms)
	}
	for q := range touched {
		s.dispatchLocked(q)
	}
	s.mu.Unlock()
}

// requeueLocked puts ms back at the head of queue, in their order, marked
// redelivered; in a quorum queue with x-delivery-limit, a message delivered
// more often than the limit is dead-lettered instead.
func (s *Server) requeueLocked(queue string, ms []*message) {
	q := s.queues[queue]
	if q == nil {
		return
	}
	limit, limited := asInt(q.args["x-delivery-limit"])
	limited = limited && q.args["x-queue-type"] == "quorum"
	keep := ms[:0:0]
	for _, m := range ms {
		if limited && int64(m.Deliveries) > limit {
			s.deadLetterLocked(queue, m, "delivery_limit")
			continue
		}
		m.Redelivered = true
		keep = append(keep, m)
	}
	q.ready = append(keep, q.ready...)
}

// deadLetterLocked routes a message leaving queue for reason ("rejected",
// "maxlen", "delivery_limit") to the queue's x-dead-letter-exchange, if it
// has one, with x-death headers; without one it is dropped. A chain of
// dead-letterings deeper than maxDeadLetterDepth (a cycle of full queues)
// drops the message.
func (s *Server) deadLetterLocked(queue string, m *message, reason string) {
	q := s.queues[queue]
	if q == nil || s.store.dlDepth >= maxDeadLetterDepth {
		return
	}
	s.store.dlDepth++
	defer func() { s.store.dlDepth-- }()
	dlx, ok := q.args["x-dead-letter-exchange"].(string)
	if !ok || s.kindLocked(dlx) == "" && dlx != "" {
		return
	}
	key := m.RoutingKey
	if k, ok := q.args["x-dead-letter-routing-key"].(string); ok {
		key = k
	}
	d := m.Message
	d.Redelivered, d.Deliveries = false, 0
	h := make(map[string]any, len(d.Props.Headers)+4)
	for k, v := range d.Props.Headers {
		h[k] = v
	}
	h["x-death"] = addDeath(h["x-death"], queue, reason, m)
	if _, ok := h["x-first-death-queue"]; !ok {
		h["x-first-death-queue"] = queue
		h["x-first-death-reason"] = reason
		h["x-first-death-exchange"] = m.Exchange
	}
	d.Props.Headers = h
	s.storeLocked(s.routeLocked(dlx, key, h), d)
}

// maxDeadLetterDepth bounds chains of dead-lettering within one call.
const maxDeadLetterDepth = 16

// addDeath returns the x-death list with this death counted: the entry for
// queue and reason (moved to the front) or a new one first.
func addDeath(list any, queue, reason string, m *message) []any {
	old, _ := list.([]any)
	out := make([]any, 0, len(old)+1)
	entry := map[string]any{
		"count": int64(1), "reason": reason, "queue": queue, "time": time.Now(),
		"exchange": m.Exchange, "routing-keys": []any{m.RoutingKey},
	}
	for _, e := range old {
		t, ok := e.(map[string]any)
		if ok && t["queue"] == queue && t["reason"] == reason {
			n, _ := asInt(t["count"])
			entry["count"] = n + 1
			continue
		}
		out = append(out, e)
	}
	return append([]any{entry}, out...)
}

// forgetStoreLocked requeues the unsettled deliveries of the channels for
// which match is true and forgets those channels.
func (s *Server) forgetStoreLocked(match func(*conn, *channel) bool) {
	if s.store == nil {
		return
	}
	for k, cs := range s.store.chans {
		if !match(k.c, k.ch) {
			continue
		}
		delete(s.store.chans, k)
		tags := make([]uint64, 0, len(cs.unacked))
		for t := range cs.unacked {
			tags = append(tags, t)
		}
		slices.Sort(tags)
		byQueue := map[string][]*message{}
		var order []string
		for _, t := range tags {
			inf := cs.unacked[t]
			if inf.k != nil {
				inf.k.unacked--
			}
			if byQueue[inf.queue] == nil {
				order = append(order, inf.queue)
			}
			byQueue[inf.queue] = append(byQueue[inf.queue], inf.msg)
		}
		for _, q := range order {
			s.requeueLocked(q, byQueue[q])
		}
	}
}

// dropQueueLocked deletes queue with its messages and bindings and cancels
// its consumers.
func (s *Server) dropQueueLocked(queue string) {
	delete(s.queues, queue)
	if s.store != nil {
		s.store.bindings = slices.DeleteFunc(s.store.bindings, func(b binding) bool {
			return !b.toExchange && b.dest == queue
		})
	}
}

// answerStored handles, in WithStore mode, the methods whose answers depend
// on the stored state. It reports whether it answered; if not, the plain
// answer follows.
func (c *conn) answerStored(ch *channel, m *inMethod, at time.Time) bool {
	s := c.s
	closeCh := func(code uint16, format string, args ...any) bool {
		text := replyText(code) + " - " + fmt.Sprintf(format, args...)
		c.enqueue(&outItem{lane: ch, at: at, kind: itemChanClose, data: closeFrame(ch.id, code, text, m.key)})
		return true
	}
	vhost := c.vhostName()
	s.mu.Lock()
	defer s.mu.Unlock()
	switch m.key {
	case exDeclare:
		if m.passive {
			return false
		}
		if !exchangeKinds[m.kind] {
			c.enqueue(&outItem{lane: c.ch0, at: at, kind: itemConnClose,
				data: closeFrame(0, 503, fmt.Sprintf("COMMAND_INVALID - unknown exchange type '%s'", m.kind), m.key)})
			return true
		}
		if strings.HasPrefix(m.exchange, "amq.") && s.kindLocked(m.exchange) == "" {
			return closeCh(403, "exchange name '%s' contains reserved prefix 'amq.*'", m.exchange)
		}
		if cur := s.kindLocked(m.exchange); cur != "" && cur != m.kind {
			return closeCh(406, "inequivalent arg 'type' for exchange '%s' in vhost '%s': received '%s' but current is '%s'",
				m.exchange, vhost, m.kind, cur)
		}
		if _, builtin := builtinKinds[m.exchange]; !builtin {
			s.store.kinds[m.exchange] = m.kind
		}
	case exDelete:
		if _, builtin := builtinKinds[m.exchange]; builtin {
			return closeCh(403, "operation not permitted on exchange '%s' in vhost '%s'", m.exchange, vhost)
		}
		if m.ifUnused && slices.ContainsFunc(s.store.bindings, func(b binding) bool { return b.source == m.exchange }) {
			return closeCh(406, "exchange '%s' in vhost '%s' in use", m.exchange, vhost)
		}
		delete(s.store.kinds, m.exchange)
		s.store.bindings = slices.DeleteFunc(s.store.bindings, func(b binding) bool {
			return b.source == m.exchange || b.toExchange && b.dest == m.exchange
		})
	case exBind, exUnbind, qBind, qUnbind:
		toExchange := m.key == exBind || m.key == exUnbind
		dest := m.queue
		if toExchange {
			dest = m.destination
		}
		if m.exchange == "" || toExchange && dest == "" {
			return closeCh(403, "operation not permitted on the default exchange")
		}
		if s.kindLocked(m.exchange) == "" {
			return closeCh(404, "no exchange '%s' in vhost '%s'", m.exchange, vhost)
		}
		switch {
		case toExchange && s.kindLocked(dest) == "":
			return closeCh(404, "no exchange '%s' in vhost '%s'", dest, vhost)
		case !toExchange && s.queues[dest] == nil:
			return closeCh(404, "no queue '%s' in vhost '%s'", dest, vhost)
		}
		b := binding{source: m.exchange, dest: dest, toExchange: toExchange, key: m.routingKey, args: m.args}
		same := func(o binding) bool {
			return o.source == b.source && o.dest == b.dest && o.toExchange == b.toExchange &&
				o.key == b.key && sameArgs(o.args, b.args)
		}
		bound := slices.ContainsFunc(s.store.bindings, same)
		switch {
		case m.key == exBind || m.key == qBind:
			if !bound {
				s.store.bindings = append(s.store.bindings, b)
			}
		default:
			s.store.bindings = slices.DeleteFunc(s.store.bindings, same)
		}
	case qDeclare:
		return c.checkQueueDeclareLocked(m, closeCh, vhost)
	case qPurge, bGet, bConsume:
		q := s.queues[m.queue]
		if q == nil {
			return closeCh(404, "no queue '%s' in vhost '%s'", m.queue, vhost)
		}
		if q.owner != nil && q.owner != c {
			return closeCh(405, "cannot obtain exclusive access to locked queue '%s' in vhost '%s'", m.queue, vhost)
		}
		switch m.key {
		case qPurge:
			n := len(q.ready)
			clear(q.ready)
			q.ready = nil
			if !m.noWait {
				c.enqueue(&outItem{lane: ch, at: at, data: methodFrame(ch.id, qPurgeOk, func(e *encoder) { e.long(uint32(n)) })})
			}
			return true
		case bGet:
			return c.getLocked(ch, m, q, at)
		case bConsume:
			for _, k := range s.consumers[m.queue] {
				if k.exclusive || m.exclusive {
					return closeCh(403, "queue '%s' in vhost '%s' in exclusive use", m.queue, vhost)
				}
			}
		}
	case qDelete:
		q := s.queues[m.queue]
		switch {
		case q == nil:
		case m.ifUnused && len(s.consumers[m.queue]) > 0:
			return closeCh(406, "queue '%s' in vhost '%s' in use", m.queue, vhost)
		case m.ifEmpty && len(q.ready) > 0:
			return closeCh(406, "queue '%s' in vhost '%s' is not empty", m.queue, vhost)
		}
	case txSelect, txCommit, txRollback, bRecover, bRecoverAsync:
		// Stored messages are not transactional and not recoverable here:
		// refuse loudly rather than answer -ok and do nothing.
		c.enqueue(&outItem{lane: c.ch0, at: at, kind: itemConnClose,
			data: closeFrame(0, 540, fmt.Sprintf("NOT_IMPLEMENTED - %s is not supported by this test server", m.key), m.key)})
		return true
	case chanFlow:
		if !m.active {
			// RabbitMQ does not let a client stop a channel's deliveries.
			c.enqueue(&outItem{lane: c.ch0, at: at, kind: itemConnClose,
				data: closeFrame(0, 540, "NOT_IMPLEMENTED - active=false", m.key)})
			return true
		}
	case bQos:
		cs := s.store.chanLocked(c, ch)
		if m.global {
			cs.globalPrefetch = int(m.prefetchCount)
		} else {
			cs.prefetch = int(m.prefetchCount)
		}
		s.dispatchAllLocked()
	}
	return false
}

// checkQueueDeclareLocked refuses, as RabbitMQ does, a queue.declare with a
// reserved name, a redeclaration with other properties or arguments (checked
// first), and a new quorum queue with properties it cannot have. It reports
// whether it refused.
func (c *conn) checkQueueDeclareLocked(m *inMethod, closeCh func(uint16, string, ...any) bool, vhost string) bool {
	if m.passive {
		return false
	}
	if strings.HasPrefix(m.queue, "amq.") {
		return closeCh(403, "queue name '%s' contains reserved prefix 'amq.*'", m.queue)
	}
	if typ := m.args["x-queue-type"]; typ == "stream" {
		c.enqueue(&outItem{lane: c.ch0, kind: itemConnClose,
			data: closeFrame(0, 540, "NOT_IMPLEMENTED - this test server has no streams", m.key)})
		return true
	}
	if bad, why := badQueueArg(m.args); bad != "" {
		return closeCh(406, "invalid arg '%s' for queue '%s' in vhost '%s': %s", bad, m.queue, vhost, why)
	}
	q := c.s.queues[m.queue]
	if q == nil || m.queue == "" {
		// A new queue: a quorum queue cannot be exclusive, auto-delete or
		// non-durable.
		if m.args["x-queue-type"] == "quorum" {
			for _, bad := range []struct {
				name string
				set  bool
			}{{"exclusive", m.exclusive}, {"auto-delete", m.autoDelete}, {"non-durable", !m.durable}} {
				if bad.set {
					return closeCh(406, "invalid property '%s' for queue '%s' in vhost '%s'", bad.name, m.queue, vhost)
				}
			}
		}
		return false
	}
	if q.owner != nil && q.owner != c {
		return false // 405, answered by the plain declare
	}
	for _, p := range []struct {
		name     string
		got, cur bool
	}{{"durable", m.durable, q.durable}, {"exclusive", m.exclusive, q.owner != nil}, {"auto_delete", m.autoDelete, q.autoDelete}} {
		if p.got != p.cur {
			return closeCh(406, "inequivalent arg '%s' for queue '%s' in vhost '%s': received '%v' but current is '%v'",
				p.name, m.queue, vhost, p.got, p.cur)
		}
	}
	if !sameArgs(m.args, q.args) {
		for _, k := range argNames(m.args, q.args) {
			if got, cur := m.args[k], q.args[k]; !sameValue(got, cur) {
				return closeCh(406, "inequivalent arg '%s' for queue '%s' in vhost '%s': received %s but current is %s",
					k, m.queue, vhost, argText(got), argText(cur))
			}
		}
	}
	return false
}

// badQueueArg returns the first queue argument the server would misread,
// and why, or "". Limits must be integers of at least 0; x-overflow and
// x-queue-type must name what the server implements.
func badQueueArg(args map[string]any) (name, why string) {
	for _, k := range []string{"x-max-length", "x-max-length-bytes", "x-delivery-limit"} {
		v, ok := args[k]
		if !ok {
			continue
		}
		n, isInt := asInt(v)
		switch {
		case !isInt:
			return k, fmt.Sprintf("{unacceptable_type,%T}", v)
		case n < 0:
			return k, fmt.Sprintf("{value_negative,%d}", n)
		}
	}
	if v, ok := args["x-overflow"]; ok {
		ok := v == "drop-head" || v == "reject-publish" || v == "reject-publish-dlx" && args["x-queue-type"] != "quorum"
		if !ok {
			return "x-overflow", fmt.Sprintf("{unknown_overflow,%v}", v)
		}
	}
	if v, ok := args["x-queue-type"]; ok && v != "classic" && v != "quorum" {
		return "x-queue-type", fmt.Sprintf("{unknown_queue_type,%v}", v)
	}
	if v, ok := args["x-dead-letter-exchange"]; ok {
		if _, isString := v.(string); !isString {
			return "x-dead-letter-exchange", fmt.Sprintf("{unacceptable_type,%T}", v)
		}
	}
	return "", ""
}

func argNames(a, b map[string]any) []string {
	var names []string
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

func argText(v any) string {
	if v == nil {
		return "none"
	}
	return fmt.Sprintf("the value '%v'", v)
}

// getLocked answers basic.get from q.
func (c *conn) getLocked(ch *channel, m *inMethod, q *queueInfo, at time.Time) bool {
	if len(q.ready) == 0 {
		c.enqueue(&outItem{lane: ch, at: at, data: methodFrame(ch.id, bGetEmpty, func(e *encoder) { e.shortstr("") })})
		return true
	}
	msg := q.ready[0]
	q.ready[0] = nil
	q.ready = q.ready[1:]
	tag, err := c.deliverMessage(ch, bGetOk, "", m.queue, &msg.Message, deliveryProps(q, msg))
	if err != nil {
		q.ready = append([]*message{msg}, q.ready...)
		return true
	}
	msg.Deliveries++
	if !m.noAck {
		c.s.store.chanLocked(c, ch).unacked[tag] = &inflight{queue: m.queue, msg: msg}
	}
	return true
}

// Send routes a message as if a client had published it to exchange with
// routing key key, stores it in every queue it reaches and delivers it to
// their consumers. It returns the queues that took it, none if the message
// was unroutable or refused by full queues (x-overflow reject-publish), and
// an error if the server was not started WithStore or the exchange does not
// exist.
func (s *Server) Send(exchange, key string, p Properties, body []byte) ([]string, error) {
	if len(exchange) > 255 || len(key) > 255 {
		return nil, fmt.Errorf("fakebroker: exchange and routing key are short strings, at most 255 bytes (got %d and %d)", len(exchange), len(key))
	}
	if _, err := encodeContentHeader(uint64(len(body)), p); err != nil {
		return nil, fmt.Errorf("fakebroker: message properties: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil, fmt.Errorf("fakebroker: Send needs WithStore")
	}
	if s.kindLocked(exchange) == "" {
		return nil, fmt.Errorf("fakebroker: no exchange %q", exchange)
	}
	take, refuse := s.admitLocked(s.routeLocked(exchange, key, p.Headers), len(body))
	s.storeRoutedLocked(take, refuse, Message{Exchange: exchange, RoutingKey: key, Props: p, Body: slices.Clone(body)})
	return take, nil
}

// Ready returns copies of the messages waiting in queue (not delivered, or
// returned to it), in delivery order; nil without WithStore.
func (s *Server) Ready(queue string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[queue]
	if q == nil {
		return nil
	}
	out := make([]Message, len(q.ready))
	for i, m := range q.ready {
		out[i] = m.Message
	}
	return out
}

// Unacked returns how many messages of queue are delivered and not yet
// settled.
func (s *Server) Unacked(queue string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return 0
	}
	n := 0
	for _, cs := range s.store.chans {
		for _, inf := range cs.unacked {
			if inf.queue == queue {
				n++
			}
		}
	}
	return n
}

// Acked returns the messages of queue that consumers acknowledged, in the
// order the acknowledgements arrived (no-ack deliveries are not counted).
func (s *Server) Acked(queue string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil
	}
	return slices.Clone(s.store.acked[queue])
}

// Rejected returns the messages of queue that consumers nacked or rejected
// without requeueing, in order.
func (s *Server) Rejected(queue string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		return nil
	}
	return slices.Clone(s.store.rejected[queue])
}
