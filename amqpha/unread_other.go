//go:build !linux

package amqpha

import "net"

// unreadBytes cannot tell on this system: 0.
func unreadBytes(net.Conn) int { return 0 }

// sendState cannot tell on this system.
func sendState(net.Conn) (pending int, acked uint64, ok bool) { return 0, 0, false }
