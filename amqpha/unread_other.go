//go:build !linux

package amqpha

import "net"

// unreadBytes cannot tell on this system: 0.
func unreadBytes(net.Conn) int { return 0 }
