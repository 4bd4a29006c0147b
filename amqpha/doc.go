// Package amqpha keeps RabbitMQ producers and consumers working while the
// nodes of a cluster fail, on top of github.com/rabbitmq/amqp091-go.
//
// A [Client] holds the cluster's nodes (AMQP URIs, or a
// [github.com/amqpha/amqpha/discovery.Resolver]), keeps a connection on a
// live node for publishers and another for consumers, notices when a node
// dies, hangs, becomes unreachable or shuts down, and moves to another. A
// [Publisher] publishes persistent messages with publisher confirms; a
// [Consumer] hands deliveries to a [Handler]; both follow their connection
// from node to node. Exchanges, queues and bindings declared through the
// client ([Client.DeclareQueue] and friends) are declared again on every new
// connection before publishers and consumers resume.
//
// # What nil means
//
// [Publisher.Publish] returns nil only after the broker confirmed the
// message: for a persistent message routed to a durable queue, RabbitMQ has
// written it to disk; for a quorum queue, a majority of its replicas have.
// Whatever node dies afterwards, the message is not lost (unless a majority
// of a quorum queue's replicas lose their disks).
//
// If the connection dies before the confirm, the message is published again
// on the next connection with the same message-id, still within the
// caller's context. So a message may arrive twice (at most one window of
// messages per failover); it is never lost. Consumers that must not process
// a message twice de-duplicate by message-id, which amqpha always sets.
//
// Every other outcome is an error, distinguishable with errors.Is:
// [ErrNacked] (the broker refused the message, after retries on fresh
// channels), [ErrUnroutable] (mandatory, and no queue took it),
// [ErrBlocked] (a resource alarm blocks publishing), [ErrClosed],
// [ErrPoison] (the message made the broker close its channel or connection
// again and again), or the context's error (the message may or may not
// have reached the broker).
//
// # Invalid input
//
// What the protocol cannot carry fails the call that takes it, at once,
// touching no channel and no connection: [ErrInvalidMessage] for a message
// (a short string over 255 bytes, a header value AMQP has no type for,
// properties larger than a frame), [ErrInvalidArgument] for consumer
// settings and declarations. The error names the field. What only the
// broker can judge (an exchange that does not exist) stays the broker's
// answer. Once Publish returned, amqpha never reads the message's Body or
// Headers again.
//
// # Contexts and locks
//
// Every call that needs the network takes a context and returns by its
// end, also while the broker reads nothing (a resource alarm); calls that
// do not need it ([Client.NewPublisher], [Client.QueueName],
// [Client.Connections]) never wait for it. Metrics calls and logs of the
// confirm path run on a goroutine of their own, so user code cannot delay
// confirms and returns.
//
// # Deliveries
//
// Deliveries are at least once. A [Delivery] remembers its channel: once the
// channel or its connection is gone, [Delivery.Ack] returns an error
// matching [ErrStaleDelivery] and sends nothing (a stale delivery tag on a
// new channel would make the broker close it), and the broker delivers the
// message again. Consumers are registered again after every reconnect and,
// with backoff, after the broker cancels them.
//
// [ConsumerConfig.Retry] makes a handler's [Requeue] a retry after a
// growing delay, and dead-letters the message after a number of attempts
// counted by the broker (a quorum queue's x-delivery-count): no hot loop of
// redeliveries (see [RetryPolicy]).
//
// # Beyond what amqpha wraps
//
// [Client.WithChannel] runs a function with a channel of its own on the
// live connection, for basic.get, queue.purge, a passive declare for a
// queue's depth or any other call; it runs again on the next node if the
// connection dies under it. [Client.UpdateSecret] hands the client a new
// password or OAuth 2 token: later logins use it, and live connections are
// told with connection.update-secret.
//
// # Failover
//
// The client walks the nodes without sleeping until each has failed once,
// then waits with jittered exponential backoff between passes. A node that
// failed is tried after the others for a while (quarantine); a node that
// closed the connection for shutdown or maintenance is tried last. A node
// that answers nothing is caught by a detector of the client's own within
// [Config.HangTimeout] (400 ms by default): AMQP heartbeats are whole
// seconds and take several of them. The detector blames the node only for
// a request it left unanswered, never for a pause of the client's own.
//
// # TLS and URI parameters
//
// An amqps:// node's certificate is always verified (against the system's
// roots, or the CA a node URI's cacertfile names, or [Config.TLS]). A node
// URI's query parameters mean what amqp091-go says they mean, for that
// node: cacertfile, certfile and keyfile, server_name_indication,
// auth_mechanism (external: SASL EXTERNAL with the client certificate),
// heartbeat, connection_timeout, channel_max, and frame_max. An unknown,
// repeated or empty parameter is refused by [Config.Validate] and [Dial]
// rather than ignored; see [Config.Nodes].
//
// # Events
//
// [Config.OnEvent] receives [Event] values (connecting, ready,
// reconnecting, node switched, blocked, unblocked, closed, topology failed,
// queue renamed, consumer cancelled and registered) in order, on one
// goroutine of the client's; the connections never wait for it.
//
// # Hooks and tracing
//
// [Config.PublishHooks] run for every message in the publishing goroutine
// (they may add headers) and hear its outcome once, with every resend;
// [Config.ConsumeHooks] wrap every handler. They never run where confirms
// are handled. A handler's context carries the values of the context given
// to [Client.Consume]. Package otelamqpha (module
// github.com/amqpha/amqpha/amqpha/otelamqpha) makes OpenTelemetry spans
// with them; amqpha itself does not depend on OpenTelemetry.
//
// # Metrics
//
// [Config.Metrics] takes a [Metrics]: publishes, confirms with their
// latency, nacks, failures, deliveries, settlements and the connections'
// moves, counted on the hot paths (nil costs a nil check). Package
// [github.com/amqpha/amqpha/amqpha/prommetrics] exports them to Prometheus.
package amqpha
