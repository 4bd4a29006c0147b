package fakebroker

import (
	"fmt"
	"strings"
)

// AMQP 0-9-1 class ids.
const (
	classConnection = 10
	classChannel    = 20
	classExchange   = 40
	classQueue      = 50
	classBasic      = 60
	classConfirm    = 85
	classTx         = 90
)

// methodKey identifies a method by class and method id.
type methodKey struct{ class, id uint16 }

// Method ids, as (class, method) pairs.
var (
	connStart        = methodKey{10, 10}
	connStartOk      = methodKey{10, 11}
	connSecure       = methodKey{10, 20}
	connSecureOk     = methodKey{10, 21}
	connTune         = methodKey{10, 30}
	connTuneOk       = methodKey{10, 31}
	connOpen         = methodKey{10, 40}
	connOpenOk       = methodKey{10, 41}
	connClose        = methodKey{10, 50}
	connCloseOk      = methodKey{10, 51}
	connBlocked      = methodKey{10, 60}
	connUnblocked    = methodKey{10, 61}
	connUpdateSecret = methodKey{10, 70}
	connUpdateSecOk  = methodKey{10, 71}
	chanOpen         = methodKey{20, 10}
	chanOpenOk       = methodKey{20, 11}
	chanFlow         = methodKey{20, 20}
	chanFlowOk       = methodKey{20, 21}
	chanClose        = methodKey{20, 40}
	chanCloseOk      = methodKey{20, 41}
	exDeclare        = methodKey{40, 10}
	exDeclareOk      = methodKey{40, 11}
	exDelete         = methodKey{40, 20}
	exDeleteOk       = methodKey{40, 21}
	exBind           = methodKey{40, 30}
	exBindOk         = methodKey{40, 31}
	exUnbind         = methodKey{40, 40}
	exUnbindOk       = methodKey{40, 51}
	qDeclare         = methodKey{50, 10}
	qDeclareOk       = methodKey{50, 11}
	qBind            = methodKey{50, 20}
	qBindOk          = methodKey{50, 21}
	qPurge           = methodKey{50, 30}
	qPurgeOk         = methodKey{50, 31}
	qDelete          = methodKey{50, 40}
	qDeleteOk        = methodKey{50, 41}
	qUnbind          = methodKey{50, 50}
	qUnbindOk        = methodKey{50, 51}
	bQos             = methodKey{60, 10}
	bQosOk           = methodKey{60, 11}
	bConsume         = methodKey{60, 20}
	bConsumeOk       = methodKey{60, 21}
	bCancel          = methodKey{60, 30}
	bCancelOk        = methodKey{60, 31}
	bPublish         = methodKey{60, 40}
	bReturn          = methodKey{60, 50}
	bDeliver         = methodKey{60, 60}
	bGet             = methodKey{60, 70}
	bGetOk           = methodKey{60, 71}
	bGetEmpty        = methodKey{60, 72}
	bAck             = methodKey{60, 80}
	bReject          = methodKey{60, 90}
	bRecoverAsync    = methodKey{60, 100}
	bRecover         = methodKey{60, 110}
	bRecoverOk       = methodKey{60, 111}
	bNack            = methodKey{60, 120}
	cSelect          = methodKey{85, 10}
	cSelectOk        = methodKey{85, 11}
	txSelect         = methodKey{90, 10}
	txSelectOk       = methodKey{90, 11}
	txCommit         = methodKey{90, 20}
	txCommitOk       = methodKey{90, 21}
	txRollback       = methodKey{90, 30}
	txRollbackOk     = methodKey{90, 31}
)

var methodNames = map[methodKey]string{
	connStart: "connection.start", connStartOk: "connection.start-ok",
	connSecure: "connection.secure", connSecureOk: "connection.secure-ok",
	connTune: "connection.tune", connTuneOk: "connection.tune-ok",
	connOpen: "connection.open", connOpenOk: "connection.open-ok",
	connClose: "connection.close", connCloseOk: "connection.close-ok",
	connBlocked: "connection.blocked", connUnblocked: "connection.unblocked",
	connUpdateSecret: "connection.update-secret", connUpdateSecOk: "connection.update-secret-ok",
	chanOpen: "channel.open", chanOpenOk: "channel.open-ok",
	chanFlow: "channel.flow", chanFlowOk: "channel.flow-ok",
	chanClose: "channel.close", chanCloseOk: "channel.close-ok",
	exDeclare: "exchange.declare", exDeclareOk: "exchange.declare-ok",
	exDelete: "exchange.delete", exDeleteOk: "exchange.delete-ok",
	exBind: "exchange.bind", exBindOk: "exchange.bind-ok",
	exUnbind: "exchange.unbind", exUnbindOk: "exchange.unbind-ok",
	qDeclare: "queue.declare", qDeclareOk: "queue.declare-ok",
	qBind: "queue.bind", qBindOk: "queue.bind-ok",
	qPurge: "queue.purge", qPurgeOk: "queue.purge-ok",
	qDelete: "queue.delete", qDeleteOk: "queue.delete-ok",
	qUnbind: "queue.unbind", qUnbindOk: "queue.unbind-ok",
	bQos: "basic.qos", bQosOk: "basic.qos-ok",
	bConsume: "basic.consume", bConsumeOk: "basic.consume-ok",
	bCancel: "basic.cancel", bCancelOk: "basic.cancel-ok",
	bPublish: "basic.publish", bReturn: "basic.return", bDeliver: "basic.deliver",
	bGet: "basic.get", bGetOk: "basic.get-ok", bGetEmpty: "basic.get-empty",
	bAck: "basic.ack", bReject: "basic.reject", bNack: "basic.nack",
	bRecoverAsync: "basic.recover-async", bRecover: "basic.recover", bRecoverOk: "basic.recover-ok",
	cSelect: "confirm.select", cSelectOk: "confirm.select-ok",
	txSelect: "tx.select", txSelectOk: "tx.select-ok",
	txCommit: "tx.commit", txCommitOk: "tx.commit-ok",
	txRollback: "tx.rollback", txRollbackOk: "tx.rollback-ok",
}

func (k methodKey) String() string {
	if n, ok := methodNames[k]; ok {
		return n
	}
	return fmt.Sprintf("method(%d,%d)", k.class, k.id)
}

// inMethod is a decoded client method with every argument the server cares
// about; fields a method does not have stay zero.
type inMethod struct {
	key methodKey

	queue, exchange, routingKey, consumerTag, kind, destination string
	args                                                        map[string]any

	passive, durable, autoDelete, exclusive, internal, noWait bool
	noLocal, noAck, ifUnused, ifEmpty, global, active         bool
	multiple, requeue, mandatory, immediate                   bool

	prefetchSize  uint32
	prefetchCount uint16
	deliveryTag   uint64

	replyCode             uint16
	replyText             string
	failClass, failMethod uint16

	clientProps                 map[string]any
	mechanism, response, locale string
	channelMax, heartbeat       uint16
	frameMax                    uint32
	vhost                       string
}

// decodeMethod parses a method frame payload sent by a client. Methods the
// server does not expect from a client decode with only key set; the caller
// decides what to do with them.
func decodeMethod(payload []byte) (inMethod, error) {
	d := decoder{b: payload}
	var m inMethod
	m.key = methodKey{d.short(), d.short()}
	if d.err != nil {
		return m, d.err
	}
	switch m.key {
	case connStartOk:
		m.clientProps = d.table()
		m.mechanism = d.shortstr()
		m.response = d.longstr()
		m.locale = d.shortstr()
	case connSecureOk:
		m.response = d.longstr()
	case connTuneOk:
		m.channelMax = d.short()
		m.frameMax = d.long()
		m.heartbeat = d.short()
	case connOpen:
		m.vhost = d.shortstr()
		d.shortstr() // reserved (capabilities)
		d.bits()     // reserved (insist)
	case connClose, chanClose:
		m.replyCode = d.short()
		m.replyText = d.shortstr()
		m.failClass = d.short()
		m.failMethod = d.short()
	case chanOpen:
		d.shortstr() // reserved (out-of-band)
	case chanFlow, chanFlowOk:
		m.active = bit(d.bits(), 0)
	case exDeclare:
		d.short() // reserved (ticket)
		m.exchange = d.shortstr()
		m.kind = d.shortstr()
		b := d.bits()
		m.passive, m.durable, m.autoDelete, m.internal, m.noWait = bit(b, 0), bit(b, 1), bit(b, 2), bit(b, 3), bit(b, 4)
		m.args = d.table()
	case exDelete:
		d.short()
		m.exchange = d.shortstr()
		b := d.bits()
		m.ifUnused, m.noWait = bit(b, 0), bit(b, 1)
	case exBind, exUnbind:
		d.short()
		m.destination = d.shortstr()
		m.exchange = d.shortstr() // source
		m.routingKey = d.shortstr()
		m.noWait = bit(d.bits(), 0)
		m.args = d.table()
	case qDeclare:
		d.short()
		m.queue = d.shortstr()
		b := d.bits()
		m.passive, m.durable, m.exclusive, m.autoDelete, m.noWait = bit(b, 0), bit(b, 1), bit(b, 2), bit(b, 3), bit(b, 4)
		m.args = d.table()
	case qBind:
		d.short()
		m.queue = d.shortstr()
		m.exchange = d.shortstr()
		m.routingKey = d.shortstr()
		m.noWait = bit(d.bits(), 0)
		m.args = d.table()
	case qUnbind:
		d.short()
		m.queue = d.shortstr()
		m.exchange = d.shortstr()
		m.routingKey = d.shortstr()
		m.args = d.table()
	case qPurge:
		d.short()
		m.queue = d.shortstr()
		m.noWait = bit(d.bits(), 0)
	case qDelete:
		d.short()
		m.queue = d.shortstr()
		b := d.bits()
		m.ifUnused, m.ifEmpty, m.noWait = bit(b, 0), bit(b, 1), bit(b, 2)
	case bQos:
		m.prefetchSize = d.long()
		m.prefetchCount = d.short()
		m.global = bit(d.bits(), 0)
	case bConsume:
		d.short()
		m.queue = d.shortstr()
		m.consumerTag = d.shortstr()
		b := d.bits()
		m.noLocal, m.noAck, m.exclusive, m.noWait = bit(b, 0), bit(b, 1), bit(b, 2), bit(b, 3)
		m.args = d.table()
	case bCancel:
		m.consumerTag = d.shortstr()
		m.noWait = bit(d.bits(), 0)
	case bCancelOk:
		m.consumerTag = d.shortstr()
	case bPublish:
		d.short()
		m.exchange = d.shortstr()
		m.routingKey = d.shortstr()
		b := d.bits()
		m.mandatory, m.immediate = bit(b, 0), bit(b, 1)
	case bGet:
		d.short()
		m.queue = d.shortstr()
		m.noAck = bit(d.bits(), 0)
	case bAck:
		m.deliveryTag = d.longlong()
		m.multiple = bit(d.bits(), 0)
	case bReject:
		m.deliveryTag = d.longlong()
		m.requeue = bit(d.bits(), 0)
	case bNack:
		m.deliveryTag = d.longlong()
		b := d.bits()
		m.multiple, m.requeue = bit(b, 0), bit(b, 1)
	case bRecover, bRecoverAsync:
		m.requeue = bit(d.bits(), 0)
	case cSelect:
		m.noWait = bit(d.bits(), 0)
	}
	return m, d.err
}

// saslUser extracts the user name from a PLAIN or AMQPLAIN response.
func saslUser(mechanism, response string) string {
	switch mechanism {
	case "PLAIN":
		// authzid NUL authcid NUL password
		parts := strings.SplitN(response, "\x00", 3)
		if len(parts) == 3 {
			return parts[1]
		}
	case "AMQPLAIN":
		// A field table without its length prefix.
		d := decoder{b: []byte(response)}
		for len(d.b) > 0 && d.err == nil {
			name := d.shortstr()
			v := d.field(0)
			if s, ok := v.(string); ok && d.err == nil && name == "LOGIN" {
				return s
			}
		}
	}
	return ""
}

// methodFrame encodes a complete method frame for channel ch.
func methodFrame(ch uint16, k methodKey, args func(e *encoder)) []byte {
	var e encoder
	e.short(k.class)
	e.short(k.id)
	if args != nil {
		args(&e)
	}
	return appendFrame(nil, frameMethod, ch, e.b)
}

// closeFrame encodes connection.close (ch 0) or channel.close.
func closeFrame(ch uint16, code uint16, text string, failed methodKey) []byte {
	k := chanClose
	if ch == 0 {
		k = connClose
	}
	return methodFrame(ch, k, func(e *encoder) {
		e.short(code)
		e.shortstr(text)
		e.short(failed.class)
		e.short(failed.id)
	})
}

// contentFrames encodes a content method (deliver, return) followed by its
// header frame and body frames split so no frame exceeds frameMax.
func contentFrames(ch uint16, method []byte, props Properties, body []byte, frameMax uint32) ([]byte, error) {
	hdr, err := encodeContentHeader(uint64(len(body)), props)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), method...)
	out = appendFrame(out, frameHeader, ch, hdr)
	chunk := len(body)
	if frameMax > frameOverhead {
		chunk = int(frameMax - frameOverhead)
	}
	for len(body) > 0 {
		n := min(chunk, len(body))
		out = appendFrame(out, frameBody, ch, body[:n])
		body = body[n:]
	}
	return out, nil
}

// replyText is the standard text for an AMQP reply code.
func replyText(code uint16) string {
	switch code {
	case 200:
		return "OK"
	case 311:
		return "CONTENT_TOO_LARGE"
	case 312:
		return "NO_ROUTE"
	case 313:
		return "NO_CONSUMERS"
	case 320:
		return "CONNECTION_FORCED"
	case 402:
		return "INVALID_PATH"
	case 403:
		return "ACCESS_REFUSED"
	case 404:
		return "NOT_FOUND"
	case 405:
		return "RESOURCE_LOCKED"
	case 406:
		return "PRECONDITION_FAILED"
	case 501:
		return "FRAME_ERROR"
	case 502:
		return "SYNTAX_ERROR"
	case 503:
		return "COMMAND_INVALID"
	case 504:
		return "CHANNEL_ERROR"
	case 505:
		return "UNEXPECTED_FRAME"
	case 506:
		return "RESOURCE_ERROR"
	case 530:
		return "NOT_ALLOWED"
	case 540:
		return "NOT_IMPLEMENTED"
	case 541:
		return "INTERNAL_ERROR"
	}
	return fmt.Sprintf("ERROR_%d", code)
}
