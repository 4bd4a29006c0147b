// Package balancer chooses the node each new connection goes to.
//
// Algorithms are named like the LVS schedulers (rr, wrr, lc, wlc, sh, …) so
// that one vocabulary serves the amqpha client and the vipd director. The
// package is being built and has no API yet.
package balancer
