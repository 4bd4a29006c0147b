// Package discovery tells amqpha where the cluster's nodes are.
//
// A [Resolver] returns the whole current node set. The client asks it at
// the start of every reconnection pass and keeps the last good set when it
// fails. There are three sources:
//
//   - [Static]: a fixed list;
//   - [DNS]: A/AAAA records (every address a node) or SRV records (SRV
//     priority and weight become the nodes' balancer priority and weight),
//     looked up with github.com/miekg/dns, over TCP when truncated;
//   - [Management]: the RabbitMQ management API of any of several seeds:
//     the running members and their AMQP listeners, and optionally which
//     node leads a queue;
//   - [Fallback]: the first of several that finds nodes (DNS, else a
//     static list).
//
// DNS and Management ask at most once per MinInterval, keep their last
// good set while their source fails (backing off), and give a lookup at
// most 300 ms once they have a set, so that a dead DNS server or
// management API barely delays a reconnection.
package discovery
