package amqpha

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// control runs f on c's socket, and reports whether it could.
func control(c net.Conn, f func(fd int)) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	return rc.Control(func(fd uintptr) { f(int(fd)) }) == nil
}

// unreadBytes returns how many received bytes wait in c's socket buffer
// (SIOCINQ), or 0 when it cannot tell.
func unreadBytes(c net.Conn) int {
	n := 0
	control(c, func(fd int) {
		if v, err := unix.IoctlGetInt(fd, unix.SIOCINQ); err == nil {
			n = v
		}
	})
	return n
}

// sendState returns how many bytes written to c the peer has not
// acknowledged yet (SIOCOUTQ) and how many it acknowledged in all (TCP_INFO
// bytes_acked); ok is false when it cannot tell.
func sendState(c net.Conn) (pending int, acked uint64, ok bool) {
	control(c, func(fd int) {
		v, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
		if err != nil {
			return
		}
		info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return
		}
		pending, acked, ok = v, info.Bytes_acked, true
	})
	return pending, acked, ok
}
