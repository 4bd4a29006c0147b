package amqpha

import "time"

// Metrics receives the client's counts: messages published, confirmed,
// nacked and failed, deliveries handed to handlers and settled, and the
// connections' moves from node to node. Set it in [Config.Metrics];
// package [github.com/amqpha/amqpha/amqpha/prommetrics] implements it for
// Prometheus.
//
// The client calls the methods on its hot paths, from many goroutines at
// once: the callers of Publish, the consumers' handler goroutines and the
// connections' supervisors. What the confirm path counts (Confirmed,
// Nacked, PublishFailed) is handed to a goroutine of the client's, so that
// a slow implementation cannot delay confirms: those counts may land just
// after the Publish they count returned (Publisher.Close and Client.Close
// wait for them). An
// implementation must be safe for concurrent use, must not block and
// should cost about an atomic add; it must not call back into the client.
// With Config.Metrics nil the client only checks for nil.
//
// Labels an implementation derives from the arguments stay few: conn is
// one of the names [Client.Connections] lists ("publish", "publish-N",
// "consume", "publish+consume") and node is a node's host:port, never its
// user, password or vhost.
//
// Abilities added later come as interfaces of their own, which the client
// looks for with a type assertion, so implementations of this one keep
// compiling.
type Metrics interface {
	// Published counts a message handed to the broker (basic.publish
	// written to the connection). again reports a message sent before:
	// its channel or connection was lost before the confirm, its channel
	// gave no confirm within ConfirmTimeout, or the broker nacked it.
	Published(again bool)
	// Confirmed counts a message the broker acknowledged, whose Publish
	// therefore returns nil (or whose Confirmation resolves to nil).
	// latency is the time from its last basic.publish to the ack.
	Confirmed(latency time.Duration)
	// Nacked counts a basic.nack from the broker. The message is sent
	// again until PublisherConfig.NackRetryFor has passed, so one message
	// may be nacked several times; when it fails, PublishFailed follows.
	Nacked()
	// PublishFailed counts a publish that returned err to its caller,
	// from Publish, PublishAsync or a Confirmation: err matches (with
	// errors.Is) ErrNacked, ErrUnroutable (a mandatory message the
	// broker returned), ErrBlocked, ErrClosed, a context error, or none
	// of them (the broker closed the channel because of the message).
	PublishFailed(err error)
	// Delivered counts a delivery handed to a consumer's handler.
	Delivered()
	// Settled counts a delivery's settlement sent to the broker: a is
	// Ack, Requeue (a nack or reject that requeues), Nack or Reject.
	// Settlements that sent nothing (a stale delivery, a second one) are
	// not counted.
	Settled(a Action)
	// ConnectionUp reports that connection conn is open on node and
	// ready. previous is the node it was on before, if it moved ("" for
	// its first node or the same node again).
	ConnectionUp(conn, node, previous string)
	// ConnectionDown reports that connection conn left node. lost is true
	// when the connection failed (node down, hung, unreachable, closed by
	// the broker) and the client reconnects; false for a rebalancing move
	// or Client.Close.
	ConnectionDown(conn, node string, lost bool)
}
