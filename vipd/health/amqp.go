package health

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/vipd/config"
)

// AMQP is an AMQP_CHECK, vipd's own checker: a full AMQP 0-9-1 handshake
// with the real server (protocol header, SASL PLAIN login, tuning, opening
// VHost), then, when Queue is set, a passive declare of Queue on a fresh
// channel; the connection is closed afterwards. Everything, from the TCP
// connect to the close, must finish within Timeout.
//
// Unlike [TCP] it fails for a hung node: the kernel still completes the
// TCP handshake of a SIGSTOPped RabbitMQ, but no connection.start comes.
// It also fails for a node that refuses logins, has lost the vhost or the
// queue, or is in maintenance mode (a drained RabbitMQ 3.10 node closes
// its AMQP listener).
//
// The password never appears in errors or logs ([config.Secret] prints
// as "<redacted>"). Check may be called from several goroutines at once.
type AMQP struct {
	// Addr is connect_ip:connect_port.
	Addr   netip.AddrPort
	BindTo netip.Addr
	// Timeout (connect_timeout) bounds the whole check; 0 means
	// [DefaultConnectTimeout].
	Timeout time.Duration
	// User and Password log in; an empty User means guest/guest, as in an
	// AMQP URI without credentials.
	User     string
	Password config.Secret
	// VHost is the virtual host to open; "" means "/".
	VHost string
	// Queue, when set, is declared passively: the check fails if it does
	// not exist.
	Queue string
}

var _ Checker = (*AMQP)(nil)

// LogValue describes the check without its password.
func (c *AMQP) LogValue() slog.Value {
	return slog.GroupValue(slog.String("addr", c.Addr.String()), slog.String("user", c.user()),
		slog.String("vhost", c.vhost()), slog.String("queue", c.Queue))
}

func (c *AMQP) user() string {
	if c.User == "" {
		return "guest"
	}
	return c.User
}

func (c *AMQP) vhost() string {
	if c.VHost == "" {
		return "/"
	}
	return c.VHost
}

// Check runs the handshake once. It blocks until the check is done,
// Timeout passes or ctx ends.
func (c *AMQP) Check(ctx context.Context) Result {
	start := time.Now()
	timeout := timeoutOr(c.Timeout, DefaultConnectTimeout)
	deadline := start.Add(timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	sock := &socket{}
	// amqp091-go bounds nothing after the handshake and keeps a reader
	// goroutine on the socket: closing the socket when ctx ends unblocks
	// every step and ends that goroutine.
	defer context.AfterFunc(ctx, sock.close)()
	defer sock.close()

	err := c.run(ctx, sock)
	if err == nil {
		return pass(start)
	}
	switch {
	case timedOut(ctx, deadline):
		err = timeoutf(err, "%s not done within %v", sock.stage(), timeout)
	case ctx.Err() != nil:
		err = fmt.Errorf("%s: %w", sock.stage(), ctx.Err())
	}
	return fail(start, &CheckError{Check: "AMQP_CHECK", Target: c.Addr.String(), Err: err})
}

func (c *AMQP) run(ctx context.Context, sock *socket) error {
	password := c.Password.Reveal()
	if c.User == "" {
		password = "guest"
	}
	cfg := amqp.Config{
		// Fresh per dial: amqp091-go zeroes the password after opening.
		SASL:  []amqp.Authentication{&amqp.PlainAuth{Username: c.user(), Password: password}},
		Vhost: c.vhost(),
		Properties: amqp.Table{
			"connection_name": "vipd health check",
			"product":         "vipd",
		},
		// Dial Addr itself: the URI below cannot carry an IPv6 zone.
		Dial: func(network, _ string) (net.Conn, error) {
			conn, err := dialer(c.BindTo).DialContext(ctx, network, c.Addr.String())
			if err != nil {
				return nil, err
			}
			if dl, ok := ctx.Deadline(); ok {
				conn.SetDeadline(dl)
			}
			if !sock.set(conn) {
				return nil, ctx.Err()
			}
			return conn, nil
		},
	}
	// No credentials in the URI: they go in cfg.SASL, and amqp091-go's
	// errors cannot quote them.
	conn, err := amqp.DialConfig("amqp://"+unzoned(c.Addr)+"/", cfg)
	if err != nil {
		if sock.conn() == nil {
			return fmt.Errorf("connect: %w", err)
		}
		return fmt.Errorf("AMQP handshake (user %q, vhost %q): %w", c.user(), c.vhost(), err)
	}
	defer conn.Close()
	if c.Queue == "" {
		sock.advance("connection.close")
		return conn.Close()
	}
	sock.advance("channel.open")
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("channel.open: %w", err)
	}
	sock.advance("queue.declare (passive)")
	if _, err := ch.QueueDeclarePassive(c.Queue, false, false, false, false, nil); err != nil {
		return fmt.Errorf("queue %q in vhost %q: %w", c.Queue, c.vhost(), err)
	}
	sock.advance("connection.close")
	return conn.Close()
}

// socket holds the connection a check dialed, so that it can be closed
// from another goroutine, and the step the check is at, for errors.
type socket struct {
	mu     sync.Mutex
	c      net.Conn
	closed bool
	step   string
}

// set records c; if the socket is already closed it closes c and returns
// false.
func (s *socket) set(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		c.Close()
		return false
	}
	s.c, s.step = c, "AMQP handshake"
	return true
}

func (s *socket) conn() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *socket) advance(step string) {
	s.mu.Lock()
	s.step = step
	s.mu.Unlock()
}

func (s *socket) stage() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.step == "" {
		return "TCP connect"
	}
	return s.step
}

func (s *socket) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.c != nil {
		s.c.Close()
	}
}
