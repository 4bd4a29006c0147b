package amqpha

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Check them with errors.Is: the errors amqpha returns wrap
// them, often together with the cause (an *amqp091.Error, a context error).
var (
	// ErrClosed: the client or publisher was closed.
	ErrClosed = errors.New("amqpha: closed")
	// ErrNacked: the broker refused the message (basic.nack), on two
	// channels in a row, so it is not a stale channel's doing.
	ErrNacked = errors.New("amqpha: message nacked by the broker")
	// ErrUnroutable: the message was published as mandatory and no queue
	// was bound to take it (basic.return).
	ErrUnroutable = errors.New("amqpha: message unroutable")
	// ErrBlocked: the broker blocks publishing because of a resource alarm
	// (connection.blocked).
	ErrBlocked = errors.New("amqpha: connection blocked by the broker")
	// ErrHung: the hang detector dropped the connection: the broker
	// answered nothing, not even a request made for that purpose, for
	// HangTimeout. It is the Err of the EventReconnecting that follows.
	ErrHung = errors.New("amqpha: node taken for hung")
	// ErrNoNodes: there is no node to connect to.
	ErrNoNodes = errors.New("amqpha: no nodes")
	// ErrStaleDelivery: the delivery came on a channel that is gone (its
	// connection was lost, or the channel closed), so it cannot be
	// acknowledged; nothing was sent, and the broker delivers the message
	// again. Acknowledging it on another channel would make the broker
	// close that channel (406 PRECONDITION_FAILED, unknown delivery tag).
	ErrStaleDelivery = errors.New("amqpha: stale delivery: its channel is gone")
	// ErrSettled: the delivery was already acknowledged, nacked or
	// rejected; nothing was sent (a second acknowledgement of one delivery
	// tag would make the broker close the channel).
	ErrSettled = errors.New("amqpha: delivery already settled")
	// ErrInvalidMessage: the message, its exchange or routing key cannot
	// be sent as given (a short string over 255 bytes, a header value of a
	// type AMQP has no encoding for, properties too large for one frame).
	// The error names the field. Nothing was sent and no channel or
	// connection was affected.
	ErrInvalidMessage = errors.New("amqpha: invalid message")
	// ErrInvalidArgument: a consumer's or a declaration's settings cannot
	// be sent as given (a name over 255 bytes, an argument table AMQP
	// cannot encode, a prefetch over 65535). The error names the field;
	// nothing was sent.
	ErrInvalidArgument = errors.New("amqpha: invalid argument")
	// ErrPoison: the message made the broker close its channel or
	// connection several times in a row; it is not sent again. The error
	// wraps the broker's last reason (an *amqp091.Error) when there is one.
	// Client.WithChannel returns it when the connection was lost three
	// times while its fn ran.
	ErrPoison = errors.New("amqpha: message closed its channel or connection repeatedly")
	// ErrPending: Confirmation.Err was called before the outcome is known.
	ErrPending = errors.New("amqpha: not resolved yet")
)

// ConnectError reports a reconnection pass in which every node failed, with
// each node's error. Node addresses in it are redacted.
type ConnectError struct {
	Errs []error // one per node tried, each a *NodeError
}

func (e *ConnectError) Error() string {
	parts := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		parts[i] = err.Error()
	}
	return fmt.Sprintf("amqpha: no node could be reached: %s", strings.Join(parts, "; "))
}

func (e *ConnectError) Unwrap() []error { return e.Errs }

// NodeError is a failure to connect to one node. Node is the node's address
// with its password redacted.
type NodeError struct {
	Node string
	Op   string // "dial", "tls", "amqp", "attach"
	Err  error
}

func (e *NodeError) Error() string { return e.Op + " " + e.Node + ": " + e.Err.Error() }
func (e *NodeError) Unwrap() error { return e.Err }
