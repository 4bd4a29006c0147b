// Package fakebroker is a scriptable, in-process AMQP 0-9-1 server for unit
// tests. It listens on loopback TCP and speaks real frames, so an unmodified
// amqp091-go client can connect to it with amqp.Dial(s.URL()) or amqp.Open
// over a net.Conn, and tests can provoke broker behaviour deterministically:
// acks, nacks, returns, held confirms, connection.blocked followed by not
// reading, channel and connection closes with a given code, dropped sockets
// and delayed replies.
//
// # Behaviour
//
// The server accepts any credentials and any vhost. It offers channel-max
// 2047, frame-max 131072 and heartbeat 0 (see the Options); it sends
// heartbeats when the client's tune-ok asks for them (amqp091-go asks for
// 10 s by default), ignores the client's, and never times a connection out.
// It keeps one set of declared queues and exchanges for the whole server, not
// per connection; without WithStore messages are never stored: publishes
// are recorded (Publishes) and confirmed, and messages reach consumers only
// through Deliver. WithStore (section Store) makes it route, store and
// deliver them.
//
// Answers to the client's methods are normal RabbitMQ answers unless the
// OnMethod or OnPublish hook returns a Reply that says otherwise:
//
//   - queue.declare with an empty name declares "amq.gen-N"; declare-ok
//     reports 0 messages and the queue's consumer count.
//   - A passive queue.declare of an undeclared queue, and a passive
//     exchange.declare of an exchange that is neither built in nor declared,
//     close the channel with 404 NOT_FOUND.
//   - An exclusive queue belongs to the declaring connection: another
//     connection's declare closes its channel with 405 RESOURCE_LOCKED, and
//     the queue is deleted when its connection ends. An auto-delete queue is
//     deleted when its last consumer goes (cancel, channel or connection end).
//   - basic.consume registers a consumer (any queue name is accepted) under
//     the client's tag or "amq.ctag-N"; queue.delete cancels the queue's
//     consumers with a basic.cancel from the server.
//   - confirm.select puts the channel in confirm mode: publishes are then
//     numbered from 1 (Publish.Seq) and each gets its own basic.ack or
//     basic.nack (never multiple).
//   - A mandatory publish that cannot be routed, to the default exchange
//     with a routing key naming no declared queue or with any routing key
//     starting with "unroutable", is returned (312 NO_ROUTE) before its
//     confirm.
//   - basic.get answers get-empty; bindings, purges, qos, recover, tx and
//     channel.flow get their -ok answers; no-wait methods get none
//     (WithStore answers several of them otherwise: section Store).
//   - Protocol errors (bad frames, a channel id above channel-max, an
//     unexpected method) close the connection with the matching code (501,
//     502, 503, 504, 505, 530, 540) and drop it without waiting for close-ok.
//
// # Nodes
//
// WithNodes(n) gives the server n listeners, its nodes, sharing every
// queue, exchange, consumer and stored message like the nodes of one
// cluster. Kill(i) cuts node i's connections and resets new ones until
// Revive(i); Shutdown(i) sends its connections connection.close 320 first;
// Hang(i) stops reading and writing on its connections (heartbeats too) and
// leaves new ones without a handshake. Everything else (Block, StopReading,
// hooks) acts on all nodes.
//
// # Store
//
// WithStore keeps messages, as a broker does, with these rules (which
// differ from the plain mode's where they say so):
//
//   - exchange.declare records the type (direct, fanout, topic, headers; any
//     other closes the connection with 503), refuses a redeclaration with
//     another type (406) and a new name starting with "amq." (403).
//     exchange.delete removes the exchange's bindings both ways; it refuses
//     a built-in exchange (403) and, with if-unused, one that is the source
//     of a binding (406).
//   - queue.declare of an existing queue with another durable, exclusive or
//     auto-delete flag or other arguments closes the channel with 406
//     (inequivalent arg); a new quorum queue (x-queue-type) that is
//     exclusive, auto-delete or not durable gets 406; a name starting with
//     "amq." gets 403. declare-ok counts the ready messages.
//   - queue.bind, exchange.bind and their unbinds need both ends to exist
//     (404) and not be the default exchange (403). Routing follows the
//     exchange types, exchange-to-exchange bindings and the default
//     exchange; a headers binding matches on x-match all (default) or any,
//     integers by value, a void argument on presence.
//   - A publish to an exchange that does not exist closes the channel with
//     404 and is never confirmed. A routed publish is stored in each queue
//     (Publish.Queues) before its ack; a nacked or Reply.Unroutable one is
//     not stored. A mandatory publish that reaches no queue is returned.
//   - basic.consume and basic.get need the queue (404) and, for a queue
//     another connection owns exclusively, give 405; an exclusive consumer
//     excludes others (403 both ways).
//   - Messages go to the queue's consumers round robin, each within its
//     prefetch (basic.qos with global false, set before basic.consume) and
//     its channel's (global true); no-ack consumers take without limit and
//     settle nothing. prefetch-size is ignored. Consumers on a hung node
//     get nothing new.
//   - basic.ack (multiple too), basic.nack and basic.reject settle
//     deliveries; an unknown delivery tag closes the channel with 406.
//     Requeued messages go back to the head of their queue, marked
//     redelivered, as do all unsettled deliveries of a channel that closes
//     or a connection that ends. A quorum queue's redeliveries carry
//     x-delivery-count. A message nacked or rejected without requeue goes
//     to the queue's x-dead-letter-exchange (with x-dead-letter-routing-key
//     if set) with x-death and x-first-death-* headers, or is dropped.
//   - x-max-length and x-max-length-bytes bound a queue's ready messages:
//     x-overflow drop-head (the default) drops or dead-letters the oldest
//     (reason maxlen); reject-publish refuses the publish (Publish.Refused,
//     nacked); reject-publish-dlx also dead-letters it (not for quorum
//     queues). A quorum queue's x-delivery-limit dead-letters a message
//     returned more often than the limit (reason delivery_limit). Such
//     arguments of the wrong type or negative get 406; x-queue-type stream
//     closes the connection with 540. A chain of dead-letterings deeper
//     than 16 (full queues in a cycle) drops the message.
//   - queue.purge and queue.delete count the ready messages; queue.delete
//     honours if-unused and if-empty (406).
//   - tx.select, tx.commit, tx.rollback, basic.recover,
//     basic.recover-async and channel.flow with active false close the
//     connection with 540 NOT_IMPLEMENTED.
//   - Block, as RabbitMQ's resource alarms, applies only to connections that
//     have sent basic.publish: they are sent connection.blocked and not read
//     until Unblock; a connection publishing for the first time while
//     blocked is sent it then, and its reader stops before the content.
//     Other connections go on.
//   - Not modelled: message TTL and expiration, priorities, single active
//     consumer, lazy mode; such arguments are kept (they count in
//     equivalence checks) and have no effect. Vhosts share one namespace.
//
// Send puts a message on the server from the test; Ready, Unacked, Acked
// and Rejected show a queue's state.
//
// # Ordering
//
// Each connection has one writer goroutine. Output is queued per channel
// ("lane") in the order it was produced, and lanes are merged in queue order.
// A Reply with a Delay holds its own lane only: every later frame on the same
// channel (confirms, deliveries, method answers, Release) waits behind it,
// while other channels and channel 0 go on. The reader does not wait for a
// delayed reply: it reads and answers later frames meanwhile.
//
// After the server sends channel.close it discards everything the client sends
// on that channel until channel.close-ok, and writes nothing more on it; after
// it sends connection.close it reads only connection.close and close-ok, for
// at most two seconds.
//
// # Block, StopReading and writes
//
// Block and StopReading only stop the reading side: the reader goroutine stops
// calling Read (and does not process a frame it read just before the switch),
// so the client's frames pile up in socket buffers until the client's writes
// block. Everything the server writes still goes out: Release, Deliver,
// CancelConsumers, CloseConnections and delayed replies. A publish sent while
// blocked is therefore neither in Publishes nor confirmed until Unblock;
// Release while blocked confirms only the publishes read before Block.
//
// # Hooks
//
// Hooks run on the connection's reader goroutine, without the server's lock
// held, so a hook may call Server methods other than Close. While a hook runs,
// its connection reads nothing further.
//
// # Life cycle
//
// Close (registered with t.Cleanup by Start) closes the listener and every
// connection and waits for all the server's goroutines, so tests using
// go.uber.org/goleak see none left behind, provided the clients were closed
// too.
package fakebroker
