// Package vip puts virtual addresses on an interface and tells the segment
// where they now live.
//
// # Addresses
//
// [Link] adds and removes addresses with netlink (github.com/vishvananda/netlink).
// IPv6 addresses are added without duplicate address detection, so a new
// master answers at once. Adding an address that is present and removing one
// that is absent both succeed: the daemon states what it wants, not what it
// did before.
//
// # Announcements
//
// A new master's MAC address is not the old one's (vipd, like keepalived
// without use_vmac, keeps the interface's own MAC), so neighbours must be
// told: [Announcer] sends gratuitous ARP requests for IPv4 addresses and
// unsolicited neighbour advertisements for IPv6 ones, as Ethernet frames on
// a packet socket. [GratuitousARP] and [UnsolicitedNA] build those frames and
// are pure functions.
//
// Linux only: elsewhere [OpenLink] and [NewAnnouncer] return
// [errors.ErrUnsupported].
package vip
