// Package prommetrics counts what an [amqpha.Client] does in Prometheus
// metrics: [New] returns an [amqpha.Metrics] to set in
// [amqpha.Config.Metrics], registered on a [prometheus.Registerer].
//
// # Metrics
//
// Publishing (no labels unless said):
//
//	amqpha_published_total                 basic.publish written, sends again included
//	amqpha_republished_total               of those, messages sent again (connection or channel lost, stuck channel, nack)
//	amqpha_confirmed_total                 messages the broker confirmed: Publish returned nil
//	amqpha_confirm_latency_seconds         histogram: last basic.publish to the broker's ack
//	amqpha_nacked_total                    basic.nack received (a nacked message is retried)
//	amqpha_publish_errors_total{reason}    publishes that returned an error: nacked, unroutable, blocked, closed, context, other
//
// Consuming:
//
//	amqpha_deliveries_total                deliveries handed to handlers
//	amqpha_settled_total{action}           settlements sent: ack, requeue, nack, reject
//
// Connections, by connection name ("publish", "publish-N", "consume",
// "publish+consume") and node host:port:
//
//	amqpha_reconnects_total{connection}        connections lost, after which the client reconnected
//	amqpha_node_switches_total{connection}     connections that came up on another node than before
//	amqpha_connected{connection,node}          1 while the connection is open on node; absent otherwise
//
// The confirm latency buckets run from 0.5 ms to 10 s; [Buckets] sets
// others.
//
// # Several clients
//
// A Metrics serves one client: its connection gauges are keyed by
// connection name, which repeats across clients. For several clients in
// one process, give each its own Metrics on a registerer that tells them
// apart, e.g. prometheus.WrapRegistererWith(prometheus.Labels{"client":
// "orders"}, reg), every one of them wrapped so: registering two with the
// same labels on one registry fails.
package prommetrics
