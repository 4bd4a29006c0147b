// Package vrrp tests vipd against real keepalived, on the wire, in network
// namespaces: each test builds a segment of directors and a client (package
// integration/netns), runs vipd and keepalived on the directors with the
// same keepalived.conf text, and watches from the client which director
// answers on the virtual IP while directors crash, come back and resign.
//
// The tests need root (namespaces, raw sockets) and keepalived; they run in
// the integration phase (build tag integration), one package at a time, as
// their takeover times are measured.
package vrrp
