// Package balancer chooses the node each new connection goes to.
//
// A [Balancer] turns a node set into a [Picker], an immutable snapshot that
// is replaced whenever the set changes. The amqpha client asks its picker
// for a node each time it dials and skips the nodes it cannot use right now
// (tried in this pass, quarantined) through [PickInfo.Skip].
//
// Algorithms are named like the LVS schedulers so that one vocabulary serves
// the amqpha client and the vipd director, and [New] returns one by name:
//
//   - rr, [RoundRobin]: every node in turn, from a random start;
//   - wrr, [WeightedRoundRobin]: turns in proportion to Node.Weight, spread
//     out (smooth weighted round-robin);
//   - lc, [LeastConnections]: the node with the fewest connections open
//     from this process; wlc, [WeightedLeastConnections]: fewest per unit
//     of weight;
//   - p2c, [PowerOfTwoChoices]: the less loaded of two random nodes;
//   - sh, [SourceHash]: consistent (rendezvous) hashing of a key, so one
//     producer keeps its node, and a node joining moves only 1/N of keys;
//   - random, [Random];
//   - [Priority] wraps any of them ("priority+wrr"): nodes of the lowest
//     Node.Priority first, the next priority only when all of those are
//     down — e.g. to prefer RAM nodes, as the source documents advise.
//
// [Register] adds algorithms of your own. Pickers are immutable snapshots
// and Pick never blocks; least-connection counts live in the balancer, so
// they survive a new node set.
package balancer
