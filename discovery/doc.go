// Package discovery tells amqpha where the cluster's nodes are.
//
// A [Resolver] returns the whole current node set. The client asks it at
// the start of every reconnection pass and keeps the last good set when it
// fails. So far there is a static list: [Static]. DNS and the RabbitMQ
// management API come next.
package discovery
