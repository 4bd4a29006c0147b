package amqpha

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unreadBytes returns how many received bytes wait in c's socket buffer
// (SIOCINQ), or 0 when it cannot tell.
func unreadBytes(c net.Conn) int {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	_ = rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil {
			n = v
		}
	})
	return n
}
