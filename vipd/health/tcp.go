package health

import (
	"context"
	"net/netip"
	"time"
)

// TCP is a TCP_CHECK: the check passes when a TCP connection to Addr opens
// within Timeout; the connection is closed at once.
//
// A hung process (SIGSTOP, or stuck in a long pause) still passes: the
// kernel completes the handshake for a listening socket whoever owns it.
// Check RabbitMQ with [AMQP] to catch that.
//
// The zero value (with Addr set) is ready to use. Check may be called from
// several goroutines at once.
type TCP struct {
	// Addr is connect_ip:connect_port.
	Addr netip.AddrPort
	// BindTo is the source address (bindto); the zero value lets the
	// kernel choose.
	BindTo netip.Addr
	// Timeout is connect_timeout; 0 means [DefaultConnectTimeout].
	Timeout time.Duration
}

var _ Checker = (*TCP)(nil)

// Check connects to Addr and closes the connection. It blocks until the
// connection opens, fails, Timeout passes or ctx ends.
func (c *TCP) Check(ctx context.Context) Result {
	start := time.Now()
	timeout := timeoutOr(c.Timeout, DefaultConnectTimeout)
	deadline := start.Add(timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := dialer(c.BindTo).DialContext(ctx, "tcp", c.Addr.String())
	if err != nil {
		if timedOut(ctx, deadline) {
			err = timeoutf(err, "no connection within %v", timeout)
		}
		return fail(start, &CheckError{Check: "TCP_CHECK", Target: c.Addr.String(), Err: err})
	}
	conn.Close()
	return pass(start)
}
