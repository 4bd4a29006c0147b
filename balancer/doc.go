// Package balancer chooses the node each new connection goes to.
//
// A [Balancer] turns a node set into a [Picker], an immutable snapshot that
// is replaced whenever the set changes. The amqpha client asks its picker
// for a node each time it dials and skips the nodes it cannot use right now
// (tried in this pass, quarantined) through [PickInfo.Skip].
//
// Algorithms are named like the LVS schedulers (rr, wrr, lc, wlc, sh, …) so
// that one vocabulary serves the amqpha client and the vipd director. So far
// there is round-robin: [RoundRobin].
package balancer
