// Package amqphatest runs an in-process AMQP 0-9-1 broker with several
// nodes, for unit tests of code that publishes and consumes through
// [github.com/amqpha/amqpha/amqpha], without RabbitMQ.
//
//	srv := amqphatest.NewServer(t)              // 3 nodes on 127.0.0.1, closed by t.Cleanup
//	client, err := amqpha.Dial(ctx, srv.Config()) // or your own Config with srv.URLs()
//	...                                          // run the code under test
//	srv.PublishedTo("orders")                    // what it published
//	srv.Publish("", "orders", msg)               // a message for its consumers
//	srv.Kill(1)                                  // and what happens when node 1 dies
//
// The server speaks real AMQP frames over TCP, so the code under test runs
// unchanged, with its own amqpha.Config (only the node URIs differ), and
// amqpha does against it what it does against a cluster: it fails over
// between the nodes, publishes unconfirmed messages again, waits for
// confirms, declares its topology again on every new connection, and a
// consumer gets the messages it had not acknowledged again (redelivered)
// after its node dies.
//
// # Faults
//
// Each switch acts at once and holds until undone:
//
//   - [Server.Kill]: a node crashes; its connections are cut, new ones
//     reset, until [Server.Revive].
//   - [Server.Shutdown]: a node shuts down; its clients get
//     connection.close 320 CONNECTION_FORCED first.
//   - [Server.Hang]: a node stops (SIGSTOP): nothing is read or written on
//     its connections, handshakes stall. amqpha's hang detector
//     (Config.HangTimeout) leaves it.
//   - [Server.NackNext] and [Server.NackAll]: publishes are nacked (not
//     stored). amqpha retries a nacked message on a fresh channel for
//     PublisherConfig.NackRetryFor before returning ErrNacked.
//   - [Server.ReturnNext]: publishes are unroutable (mandatory ones come
//     back with basic.return: ErrUnroutable).
//   - [Server.Block]: a resource alarm; publishing connections get
//     connection.blocked and are read no further until [Server.Unblock]
//     (ErrBlocked or a wait, as configured); consuming ones go on.
//   - [Server.CancelConsumers] and [Server.DeleteQueue]: the server cancels
//     a queue's consumers (basic.cancel), or an operator deletes the queue.
//
// # What it implements
//
// All nodes share one set of exchanges, queues, bindings and messages, as
// the nodes of a cluster do, and any user, password and vhost is accepted
// (vhosts share that one set). It implements, with RabbitMQ's answers and
// error codes:
//
//   - connections, channels, heartbeats when the client asks for them,
//     publisher confirms (each publish acked once stored in every queue it
//     routes to), basic.return of unroutable mandatory messages,
//     connection.blocked, connection.update-secret (accepted);
//   - exchange.declare/delete of direct, fanout, topic and headers
//     exchanges, exchange-to-exchange bindings, the default exchange and the
//     amq.* exchanges; queue.declare (server-named, exclusive, auto-delete,
//     durable, passive), queue.bind/unbind, queue.purge, queue.delete with
//     if-unused and if-empty;
//   - basic.qos (prefetch count, per consumer or per channel), basic.consume
//     (exclusive, no-ack), basic.cancel, cancellation of consumers when their
//     queue is deleted, basic.get, basic.ack (multiple), basic.nack and
//     basic.reject with or without requeue;
//   - redelivery: a message delivered and not settled when its channel
//     closes or its connection ends goes back to the head of its queue with
//     the redelivered flag; a quorum queue's (x-queue-type "quorum")
//     redeliveries carry x-delivery-count;
//   - dead-lettering of nacked and rejected messages to x-dead-letter-exchange
//     (and x-dead-letter-routing-key), with x-death headers;
//   - queue length limits: x-max-length and x-max-length-bytes with
//     x-overflow drop-head (dead-letters the oldest), reject-publish (nacks
//     the publish: ErrNacked) and reject-publish-dlx; a quorum queue's
//     x-delivery-limit (a message returned more often is dead-lettered);
//   - RabbitMQ's refusals: redeclaring a queue or exchange with other
//     properties or arguments (406), a quorum queue that is exclusive,
//     auto-delete or not durable (406), reserved "amq." names (403), missing
//     queues and exchanges (404, also for a publish to a missing exchange),
//     another connection's exclusive queue (405), an exclusive consumer
//     beside others (403), an acknowledgement with an unknown delivery tag
//     (406).
//
// It refuses, closing the connection with 540 NOT_IMPLEMENTED: tx.select,
// tx.commit, tx.rollback, basic.recover, and channel.flow with active false
// (RabbitMQ refuses that too). An unknown exchange type closes it with 503.
//
// # What it is not
//
// It is not RabbitMQ, and a test that passes against it says nothing about
// what only a real cluster does. There are no quorum or mirrored queue
// semantics: every queue behaves as if replicated to every node with a
// healthy majority, so a kill never loses or delays a message, there is no
// leader to elect and no nack while one is elected (use NackNext for that).
// Nothing is written to disk. Not modelled, though their arguments are
// accepted and kept (they take part in the equivalence checks): message
// TTL and expiration, priorities, single active consumer, lazy queues.
// Streams are refused (540). There are no users or permissions, no flow control
// (credit-based slowing of publishers), no management API, no
// TLS, and prefetch-size is ignored. A hung node keeps the messages its
// consumers held until Revive or Kill, where RabbitMQ would give them to
// others once the cluster declares the node down. Timing (how long a
// failover takes) says nothing about a real cluster; the project measures
// that against RabbitMQ in BENCHMARKS.md.
//
// # Tests with it
//
// Every method is safe for concurrent use. Inspect with [Server.Published],
// [Server.PublishedTo], [Server.Ready], [Server.Unacked], [Server.Acked],
// [Server.Rejected], [Server.Consumers] and [Server.Connections], and wait
// for a condition with [Server.Wait] instead of sleeping. Close the client
// under test before the server (register its Close after NewServer): the
// server's Close then leaves no goroutine behind, which go.uber.org/goleak
// checks in this package's own tests.
package amqphatest
