// Package vrrp implements the Virtual Router Redundancy Protocol as vipd
// speaks it: versions 2 (RFC 3768) and 3 (RFC 5798 / RFC 9568), over IPv4
// and IPv6, on the wire compatible with keepalived.
//
// # Parts
//
//   - The packet codec ([Advert], [Marshal], [Parse]) turns advertisements
//     into bytes and back, with both checksum styles that VRRPv3 over IPv4
//     meets in the field.
//   - The state machine ([Machine]) is pure logic: it is fed events with the
//     time they happened and answers with actions to take. It starts no
//     goroutine and does no I/O, so it is tested with injected time.
//   - The daemon (package main in vipd) owns the sockets, the timers and the
//     virtual addresses, and runs one machine per vrrp_instance.
package vrrp
