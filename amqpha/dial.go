package amqpha

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// trackedConn notes when the connection last received and last sent
// anything, for the hang detector. amqp091-go sees it as the net.Conn it
// is (deadlines work).
type trackedConn struct {
	net.Conn
	sock      net.Conn     // the TCP connection under TLS, if any
	lastRead  atomic.Int64 // monotonic nanoseconds since monoBase
	lastWrite atomic.Int64 // monotonic nanoseconds since monoBase, taken after the write
	// Write coalescing: while a publish is corked (others wait to send
	// behind it), what amqp091-go writes is kept in wbuf and goes out
	// with the next write, or at flush, in one system call. wmu is the
	// socket's write lock: amqp091-go already writes one frame batch at a
	// time; wmu orders those with a flush from amqpha.
	wmu   sync.Mutex
	corks int
	wbuf  []byte
	// writes counts the socket writes (the hang detector, tests).
	writes atomic.Uint64
}

// corkMax bounds the bytes held back by a cork: beyond it they go out at
// once, so that a long queue of senders still streams to the broker.
const corkMax = 64 << 10

// monoBase anchors trackedConn's times: they are kept as offsets from it,
// so that they compare on the monotonic clock (a wall-clock step cannot
// make a connection look idle, awaiting or hung).
var monoBase = time.Now()

func mono(t time.Time) int64 { return int64(t.Sub(monoBase)) }

// touch records that the connection is alive at now.
func (c *trackedConn) touch(now time.Time) { c.lastRead.Store(mono(now)) }

// unread reports whether the kernel holds bytes received on the
// connection that nobody has read yet: the broker answered, and it is this
// process that is behind (stopped, starved of CPU, throttled).
func (c *trackedConn) unread() bool { return unreadBytes(c.sock) > 0 }

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.touch(time.Now())
	}
	return n, err
}

func (c *trackedConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.wbuf)+len(b) <= corkMax && (c.corks > 0 || len(c.wbuf) > 0) {
		c.wbuf = append(c.wbuf, b...)
		if c.corks > 0 {
			return len(b), nil
		}
		// The held bytes go out with b. The count is b's alone: a
		// bufio.Writer slices its input by it.
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.writeLocked(b)
}

// writeLocked writes b to the socket; wmu is held.
func (c *trackedConn) writeLocked(b []byte) (int, error) {
	c.writes.Add(1)
	n, err := c.Conn.Write(b)
	if n > 0 {
		// Taken after the write: an answer read meanwhile leaves the
		// connection awaiting, which costs at most one probe more.
		c.lastWrite.Store(mono(time.Now()))
	}
	return n, err
}

// flushLocked writes what a cork held back; wmu is held.
func (c *trackedConn) flushLocked() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	_, err := c.writeLocked(c.wbuf)
	c.wbuf = c.wbuf[:0]
	return err
}

// cork holds back what is written until uncork and the next write or
// flush (publish, while other sends wait behind it).
func (c *trackedConn) cork() {
	c.wmu.Lock()
	c.corks++
	c.wmu.Unlock()
}

func (c *trackedConn) uncork() {
	c.wmu.Lock()
	c.corks--
	c.wmu.Unlock()
}

// flush writes what a cork held back. A failed write closes the socket:
// amqp091-go then sees the connection fail as if its own write had.
func (c *trackedConn) flush() {
	c.wmu.Lock()
	err := c.flushLocked()
	c.wmu.Unlock()
	if err != nil {
		c.Conn.Close()
	}
}

// awaiting reports whether something was sent since the broker last sent
// anything: a request awaiting its reply, a probe its answer, an ack. It
// does not see a publish whose confirm is still due after other frames
// came in: the hang detector asks the publishers for those.
func (c *trackedConn) awaiting() bool { return c.lastWrite.Load() > c.lastRead.Load() }

// idle is how long the connection has received nothing.
func (c *trackedConn) idle(now time.Time) time.Duration {
	return time.Duration(mono(now) - c.lastRead.Load())
}

// dial opens an AMQP connection to one node within its dial timeout
// (the URI's connection_timeout, else DialTimeout) and ctx: TCP connect
// with the context, TLS handshake with the context, then the AMQP
// handshake under a deadline that the context's end also cuts short.
// Every attempt builds a fresh amqp091.Config (amqp091-go zeroes a
// password it has used) and leaves amqp091-go's own recovery off.
func (c *Client) dial(ctx context.Context, a *nodeAddr, name string) (*amqp.Connection, *trackedConn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.dialTimeout(a))
	defer cancel()
	var tlsCfg *tls.Config
	if a.uri.Scheme == "amqps" {
		// Before the socket: the files are read again (renewed
		// certificates take effect), and may have gone bad since.
		var err error
		if tlsCfg, err = nodeTLS(c.cfg.TLS, a); err != nil {
			return nil, nil, &NodeError{Node: a.String(), Op: "tls", Err: err}
		}
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", a.hostPort())
	if err != nil {
		return nil, nil, &NodeError{Node: a.String(), Op: "dial", Err: err}
	}
	conn := raw
	if tlsCfg != nil {
		tc := tls.Client(raw, tlsCfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, nil, &NodeError{Node: a.String(), Op: "tls", Err: err}
		}
		conn = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl) // amqp091-go clears it once open
	}
	tracked := &trackedConn{Conn: conn, sock: raw}
	tracked.touch(time.Now())
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	cfg, secretVersion := c.creds.apply(c.amqpConfig(a, name))
	ac, err := amqp.Open(tracked, cfg)
	if err == nil {
		// A secret set while this dial logged in is pushed now, under
		// the dial's deadline.
		err = c.creds.opened(ac, secretVersion, a.String())
	}
	if !stop() {
		// ctx ended while Open ran: whatever Open returned, the deadline
		// is spoilt.
		if err == nil {
			conn.Close()
			err = ctx.Err()
		}
	}
	if err != nil {
		conn.Close()
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = errors.Join(ctx.Err(), err)
		}
		return nil, nil, &NodeError{Node: a.String(), Op: "amqp", Err: err}
	}
	return ac, tracked, nil
}

// dialTimeout bounds one dial to a: the URI's connection_timeout takes
// precedence over Config.DialTimeout, as it is the node's own.
func (c *Client) dialTimeout(a *nodeAddr) time.Duration {
	if a.params.dialTimeout > 0 {
		return a.params.dialTimeout
	}
	return c.cfg.DialTimeout
}

// amqpConfig is the amqp091-go configuration of one dial to a. The URI's
// heartbeat takes precedence over Config.Heartbeat (as in amqp091-go's
// DialConfig); its channel_max and frame_max are asked of the broker,
// which may lower them.
func (c *Client) amqpConfig(a *nodeAddr, name string) amqp.Config {
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(name)
	heartbeat := max(c.cfg.Heartbeat, 0) // 0: as the broker proposes
	if a.params.hasHeartbeat {
		heartbeat = a.params.heartbeat
	}
	return amqp.Config{
		SASL:       c.saslFor(a),
		Vhost:      a.uri.Vhost,
		Heartbeat:  heartbeat,
		Locale:     "en_US",
		Properties: props,
		ChannelMax: a.params.channelMax,
		FrameSize:  a.params.frameMax,
	}
}

// saslFor is the one place where a dial gets its credentials: the
// SASL mechanisms the URI's auth_mechanism lists, in its order (PLAIN by
// default), with the URI's user and password; EXTERNAL sends neither and
// lets the broker take the user from the client certificate. Each call
// builds new values: amqp091-go zeroes a password it has used.
func (c *Client) saslFor(a *nodeAddr) []amqp.Authentication {
	if len(a.params.sasl) == 0 {
		return []amqp.Authentication{a.uri.PlainAuth()}
	}
	sasl := make([]amqp.Authentication, 0, len(a.params.sasl))
	for _, m := range a.params.sasl {
		switch m {
		case "EXTERNAL":
			sasl = append(sasl, &amqp.ExternalAuth{})
		case "AMQPLAIN":
			sasl = append(sasl, a.uri.AMQPlainAuth())
		default:
			sasl = append(sasl, a.uri.PlainAuth())
		}
	}
	return sasl
}
