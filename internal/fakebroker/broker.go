package fakebroker

import (
	"fmt"
	"strings"
	"time"
)

// builtinExchanges are the exchanges every vhost has.
var builtinExchanges = map[string]bool{
	"": true, "amq.direct": true, "amq.fanout": true, "amq.topic": true, "amq.headers": true, "amq.match": true,
}

// channelRequests are the synchronous (or, for basic.recover-async, plain)
// requests a client may send on an open channel, answered by answer.
var channelRequests = map[methodKey]bool{
	cSelect: true, chanFlow: true,
	exDeclare: true, exDelete: true, exBind: true, exUnbind: true,
	qDeclare: true, qBind: true, qUnbind: true, qPurge: true, qDelete: true,
	bQos: true, bConsume: true, bCancel: true, bGet: true, bRecover: true, bRecoverAsync: true,
	txSelect: true, txCommit: true, txRollback: true,
}

// channelMethod processes a method on an open channel.
func (c *conn) channelMethod(ch *channel, m *inMethod) error {
	switch m.key {
	case bPublish:
		ch.pending = &pendingPublish{m: *m}
		if c.s.store != nil {
			c.s.noteBlockedPublisher(c)
		}
		return nil
	case bAck, bNack, bReject:
		a := Ack{Conn: c.id, Channel: int(ch.id), Tag: m.deliveryTag, Multiple: m.multiple,
			Nack: m.key != bAck, Reject: m.key == bReject, Requeue: m.requeue}
		c.s.mu.Lock()
		c.s.acks = append(c.s.acks, a)
		c.s.mu.Unlock()
		if c.s.store != nil {
			c.settle(ch, m)
		}
		return nil
	case bCancelOk, chanFlowOk, chanCloseOk:
		return nil
	case chanOpen:
		return newConnError(504, m.key, "second 'channel.open' seen on channel %d", ch.id)
	case chanClose:
		c.removeChannel(ch, stateClientClosing)
		rec := c.export(ch.id, m)
		r := c.callHook(rec)
		if r.Drop || r.CloseConnection != 0 {
			c.refuse(ch, r, m.key)
			return nil
		}
		c.enqueue(&outItem{lane: ch, at: delayed(r), kind: itemChanCloseOk, data: methodFrame(ch.id, chanCloseOk, nil)})
		return nil
	}
	if !channelRequests[m.key] {
		if _, known := methodNames[m.key]; known {
			return newConnError(503, m.key, "unexpected %s from a client", m.key)
		}
		return newConnError(540, m.key, "unknown method %s", m.key)
	}
	rec := c.export(ch.id, m)
	if r := c.callHook(rec); c.refuse(ch, r, m.key) {
		return nil
	}
	return c.answer(ch, m, rec.reply)
}

// answer gives a synchronous method its normal answer (which may itself be a
// refusal, like 404 for a passive declare of a missing queue).
func (c *conn) answer(ch *channel, m *inMethod, r Reply) error {
	at := delayed(r)
	var out []byte // the reply frame; nil for none
	s := c.s
	if s.store != nil && c.answerStored(ch, m, at) {
		return nil
	}
	switch m.key {
	case cSelect:
		ch.confirm = true
		out = methodFrame(ch.id, cSelectOk, nil)
	case chanFlow:
		active := m.active
		out = methodFrame(ch.id, chanFlowOk, func(e *encoder) { e.bits(active) })
	case exDeclare:
		s.mu.Lock()
		known := builtinExchanges[m.exchange] || s.exchanges[m.exchange]
		if !m.passive {
			s.exchanges[m.exchange] = true
		}
		s.mu.Unlock()
		if m.passive && !known {
			return c.notFound(ch, m, at, "exchange", m.exchange)
		}
		out = methodFrame(ch.id, exDeclareOk, nil)
	case exDelete:
		s.mu.Lock()
		delete(s.exchanges, m.exchange)
		s.mu.Unlock()
		out = methodFrame(ch.id, exDeleteOk, nil)
	case exBind:
		out = methodFrame(ch.id, exBindOk, nil)
	case exUnbind:
		out = methodFrame(ch.id, exUnbindOk, nil)
	case qDeclare:
		s.mu.Lock()
		name := m.queue
		q := s.queues[name]
		switch {
		case q != nil && q.owner != nil && q.owner != c:
			s.mu.Unlock()
			text := fmt.Sprintf("RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '%s' in vhost '%s'", name, c.vhostName())
			c.enqueue(&outItem{lane: ch, at: at, kind: itemChanClose, data: closeFrame(ch.id, 405, text, m.key)})
			return nil
		case q == nil && m.passive:
			s.mu.Unlock()
			return c.notFound(ch, m, at, "queue", name)
		case q == nil:
			if name == "" {
				s.genQueue++
				name = fmt.Sprintf("amq.gen-%d", s.genQueue)
			}
			q = &queueInfo{autoDelete: m.autoDelete, durable: m.durable, args: m.args}
			if m.exclusive {
				q.owner = c
			}
			s.queues[name] = q
		}
		consumers := uint32(len(s.consumers[name]))
		ready := uint32(len(q.ready))
		s.mu.Unlock()
		out = methodFrame(ch.id, qDeclareOk, func(e *encoder) {
			e.shortstr(name)
			e.long(ready)
			e.long(consumers)
		})
	case qBind:
		out = methodFrame(ch.id, qBindOk, nil)
	case qUnbind:
		out = methodFrame(ch.id, qUnbindOk, nil)
	case qPurge:
		out = methodFrame(ch.id, qPurgeOk, func(e *encoder) { e.long(0) })
	case qDelete:
		// Enqueue the answer before the consumers' cancels are queued, so the
		// deleting channel sees delete-ok first, as from RabbitMQ.
		s.mu.Lock()
		var n uint32
		if q := s.queues[m.queue]; q != nil {
			n = uint32(len(q.ready))
		}
		if !m.noWait {
			c.enqueue(&outItem{lane: ch, at: at, data: methodFrame(ch.id, qDeleteOk, func(e *encoder) { e.long(n) })})
		}
		s.dropQueueLocked(m.queue)
		s.cancelConsumersLocked(m.queue)
		s.mu.Unlock()
		return nil
	case bQos:
		out = methodFrame(ch.id, bQosOk, nil)
	case bConsume:
		return c.consume(ch, m, at)
	case bCancel:
		s.mu.Lock()
		for q, cs := range s.consumers {
			for i, k := range cs {
				if k.c == c && k.ch == ch && k.tag == m.consumerTag {
					s.consumers[q] = append(cs[:i:i], cs[i+1:]...)
					s.consumersChangedLocked(q)
					break
				}
			}
		}
		s.mu.Unlock()
		tag := m.consumerTag
		out = methodFrame(ch.id, bCancelOk, func(e *encoder) { e.shortstr(tag) })
	case bGet:
		out = methodFrame(ch.id, bGetEmpty, func(e *encoder) { e.shortstr("") })
	case bRecover:
		out = methodFrame(ch.id, bRecoverOk, nil)
	case bRecoverAsync:
		return nil
	case txSelect:
		out = methodFrame(ch.id, txSelectOk, nil)
	case txCommit:
		out = methodFrame(ch.id, txCommitOk, nil)
	case txRollback:
		out = methodFrame(ch.id, txRollbackOk, nil)
	default: // not reached: channelMethod lets only channelRequests through
		return newConnError(540, m.key, "%s is not implemented", m.key)
	}
	if m.noWait {
		return nil
	}
	c.enqueue(&outItem{lane: ch, at: at, data: out})
	return nil
}

// notFound closes ch with 404 for a passive declare of a missing entity.
func (c *conn) notFound(ch *channel, m *inMethod, at time.Time, what, name string) error {
	text := fmt.Sprintf("NOT_FOUND - no %s '%s' in vhost '%s'", what, name, c.vhostName())
	c.enqueue(&outItem{lane: ch, at: at, kind: itemChanClose, data: closeFrame(ch.id, 404, text, m.key)})
	return nil
}

// vhostName is the connection's vhost, "/" if the client named none.
func (c *conn) vhostName() string {
	if c.vhost == "" {
		return "/"
	}
	return c.vhost
}

// consume handles basic.consume. The consumer is registered and consume-ok
// queued under one lock, so a Deliver can neither miss a consumer whose
// client already has consume-ok nor overtake the consume-ok.
func (c *conn) consume(ch *channel, m *inMethod, at time.Time) error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	tag := m.consumerTag
	if tag == "" {
		s.genTag++
		tag = fmt.Sprintf("amq.ctag-%d", s.genTag)
	} else {
		for _, cs := range s.consumers {
			for _, k := range cs {
				if k.c == c && k.ch == ch && k.tag == tag {
					return newConnError(530, m.key, "attempt to reuse consumer tag '%s'", tag)
				}
			}
		}
	}
	if !m.noWait {
		c.enqueue(&outItem{lane: ch, at: at, data: methodFrame(ch.id, bConsumeOk, func(e *encoder) { e.shortstr(tag) })})
	}
	k := &consumer{c: c, ch: ch, tag: tag, queue: m.queue, noAck: m.noAck, exclusive: m.exclusive}
	if s.store != nil {
		k.prefetch = s.store.chanLocked(c, ch).prefetch
	}
	s.consumers[m.queue] = append(s.consumers[m.queue], k)
	if q := s.queues[m.queue]; q != nil {
		q.consumed = true
	}
	s.dispatchLocked(m.queue)
	return nil
}

// publish completes the publish whose content has been read on ch.
func (c *conn) publish(ch *channel) error {
	pp := ch.pending
	ch.pending = nil
	var seq uint64
	if ch.confirm {
		ch.nextSeq++
		seq = ch.nextSeq
	}
	p := Publish{
		Conn: c.id, Channel: int(ch.id), Seq: seq,
		Exchange: pp.m.exchange, RoutingKey: pp.m.routingKey,
		Mandatory: pp.m.mandatory, Immediate: pp.m.immediate,
		Props: pp.props, Body: pp.body,
	}
	s := c.s
	s.mu.Lock()
	noExchange := false
	if s.store != nil {
		noExchange = s.kindLocked(p.Exchange) == ""
		if !noExchange {
			p.Queues, p.Refused = s.admitLocked(s.routeLocked(p.Exchange, p.RoutingKey, p.Props.Headers), len(p.Body))
		}
	}
	s.publishes = append(s.publishes, p)
	hook := s.onPublish
	unroutable := (p.Exchange == "" && s.queues[p.RoutingKey] == nil) || strings.HasPrefix(p.RoutingKey, "unroutable")
	if s.store != nil {
		unroutable = len(p.Queues)+len(p.Refused) == 0
	}
	s.mu.Unlock()

	var r Reply
	if hook != nil {
		hp := p
		r = hook(&hp)
	}
	if c.refuse(ch, r, bPublish) {
		return nil
	}
	at := delayed(r)
	if noExchange {
		// RabbitMQ closes the channel; the publish is never confirmed.
		text := fmt.Sprintf("NOT_FOUND - no exchange '%s' in vhost '%s'", p.Exchange, c.vhostName())
		c.enqueue(&outItem{lane: ch, at: at, kind: itemChanClose, data: closeFrame(ch.id, 404, text, bPublish)})
		return nil
	}
	unroutable = unroutable || r.Unroutable
	if s.store != nil && !unroutable && !r.Nack {
		s.mu.Lock()
		s.storeRoutedLocked(p.Queues, p.Refused, Message{Exchange: p.Exchange, RoutingKey: p.RoutingKey, Props: p.Props, Body: p.Body})
		s.mu.Unlock()
		if len(p.Refused) > 0 {
			r.Nack = true // a full queue with reject-publish refused it
		}
	}
	var items []*outItem
	if r.Return || (unroutable && p.Mandatory) {
		ret := methodFrame(ch.id, bReturn, func(e *encoder) {
			e.short(312)
			e.shortstr("NO_ROUTE")
			e.shortstr(p.Exchange)
			e.shortstr(p.RoutingKey)
		})
		data, err := contentFrames(ch.id, ret, p.Props, p.Body, c.frameMax.Load())
		if err != nil {
			return newConnError(541, bPublish, "cannot encode return: %v", err)
		}
		items = append(items, &outItem{lane: ch, data: data})
	}
	if ch.confirm {
		if r.Hold {
			s.mu.Lock()
			s.held = append(s.held, heldConfirm{c: c, ch: ch, seq: seq})
			s.mu.Unlock()
		} else {
			items = append(items, &outItem{lane: ch, data: confirmFrame(ch.id, seq, !r.Nack)})
		}
	}
	if len(items) > 0 {
		items[0].at = at
		c.enqueue(items...)
	}
	return nil
}

// deliver sends a message to consumer k.
func (c *conn) deliver(k *consumer, p Properties, body []byte) error {
	c.mu.Lock()
	if c.ended || c.closing || k.ch.state != stateOpen {
		c.mu.Unlock()
		return fmt.Errorf("fakebroker: channel %d of connection %d is closing", k.ch.id, c.id)
	}
	tag := k.ch.nextTag + 1
	method := methodFrame(k.ch.id, bDeliver, func(e *encoder) {
		e.shortstr(k.tag)
		e.longlong(tag)
		e.bits(false) // redelivered
		e.shortstr("")
		e.shortstr(k.queue)
	})
	data, err := contentFrames(k.ch.id, method, p, body, c.frameMax.Load())
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("fakebroker: %w", err)
	}
	k.ch.nextTag = tag
	c.queue = append(c.queue, &outItem{lane: k.ch, data: data})
	c.mu.Unlock()
	c.wakeWriter()
	return nil
}
