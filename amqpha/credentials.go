package amqpha

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// UpdateSecret replaces the password (an OAuth 2 access token, say) that
// the client logs in with: every later connection logs in with secret in
// place of the nodes' URI passwords (and of the Resolver's), keeping each
// URI's user name, and every live connection is told with
// connection.update-secret, so the broker does not close it when the old
// token expires. reason is shown in the broker's log.
//
// It returns once the broker of every live connection accepted the secret,
// or ctx ends. A connection that is lost meanwhile is not an error: the
// next one logs in with the new secret. A connection that is opening while
// UpdateSecret runs is told before it is used. Calls to UpdateSecret may
// overlap; the latest secret wins on every connection.
//
// With RabbitMQ's internal user database the broker accepts any new
// secret on a live connection and checks it only at the next login: change
// the user's password first, then call UpdateSecret. With the OAuth 2
// backend it checks the token at once, and a refusal closes the connection
// (error 530); the client then reconnects with the refused secret, and
// keeps failing until a valid one is given.
//
// secret must not be empty and must not contain a NUL byte (PLAIN's
// separator); it and reason must fit in a frame, and a login with it (the
// connection.start-ok of the client's logins so far, with the secret in
// place of the password) in AMQP's frame-min-size, 4096 bytes: a login
// comes before the frame size is negotiated, and RabbitMQ before 4.1
// refuses a larger one (its initial_frame_max), so every later connection
// would fail to log in. Neither appears in the
// client's logs, events or errors. Connections that log in with EXTERNAL
// (client certificates) ignore the secret.
func (c *Client) UpdateSecret(ctx context.Context, secret, reason string) error {
	if err := checkSecret(secret, reason, c.frameMax(), c.creds.overhead()); err != nil {
		return err
	}
	if err := c.startCall(); err != nil {
		return err
	}
	targets := c.creds.set(secret, reason)
	errc := make(chan error, len(targets))
	go func() {
		defer c.calls.Done()
		var wg sync.WaitGroup
		for _, t := range targets {
			wg.Go(func() { errc <- c.creds.push(t) })
		}
		wg.Wait()
		close(errc)
	}()
	var errs []error
	for {
		select {
		case err, ok := <-errc:
			if !ok {
				return errors.Join(errs...)
			}
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("amqpha: update secret: %w (the connections not told yet are told in the background)", ctx.Err())
		}
	}
}

// checkSecret checks what UpdateSecret sends, and what later logins send:
// loginOverhead is the size of their connection.start-ok without the
// password (0: no login with a password seen yet). Its errors never
// contain the secret.
func checkSecret(secret, reason string, frameMax, loginOverhead int) error {
	if secret == "" {
		return fmt.Errorf("%w: UpdateSecret: empty secret", ErrInvalidArgument)
	}
	if strings.IndexByte(secret, 0) >= 0 {
		return fmt.Errorf("%w: UpdateSecret: the secret contains a NUL byte, which PLAIN authentication cannot carry", ErrInvalidArgument)
	}
	if err := checkShortString(ErrInvalidArgument, "UpdateSecret reason", reason); err != nil {
		return err
	}
	if loginOverhead > 0 && loginOverhead+len(secret) > frameMinSize {
		return invalid(ErrInvalidArgument, "UpdateSecret secret", "%d bytes: a login with it takes %d bytes, more than the %d a broker must accept before the frame size is negotiated (RabbitMQ before 4.1 refuses it unless initial_frame_max is raised), so no later connection could log in; at most %d bytes fit",
			len(secret), loginOverhead+len(secret), frameMinSize, frameMinSize-loginOverhead)
	}
	// connection.update-secret: a long string and a short string.
	return checkFrame("UpdateSecret secret", methodOverhead+4+len(secret)+1+len(reason), frameMax)
}

// frameMinSize is AMQP's frame-min-size: until connection.tune sets the
// frame size, a peer need accept no larger frame, and RabbitMQ before 4.1
// accepts no larger one. A login (connection.start-ok) must fit in it.
const frameMinSize = 4096

// loginOverhead is the size of the connection.start-ok frame a login with
// cfg sends, less the length of the password, for the mechanism among
// cfg.SASL with a password that sends the most (0 when none has one).
func loginOverhead(cfg amqp.Config) int {
	n := 0
	for _, a := range cfg.SASL {
		var response string
		switch a := a.(type) {
		case *amqp.PlainAuth:
			response = (&amqp.PlainAuth{Username: a.Username}).Response()
		case *amqp.AMQPlainAuth:
			response = (&amqp.AMQPlainAuth{Username: a.Username}).Response()
		default:
			continue // EXTERNAL and others carry no password
		}
		n = max(n, 1+len(a.Mechanism())+4+len(response))
	}
	if n == 0 {
		return 0
	}
	// amqp091-go sends the properties with its capabilities table.
	props := maps.Clone(cfg.Properties)
	if props == nil {
		props = amqp.NewConnectionProperties()
	}
	props["capabilities"] = amqp.Table{
		"connection.blocked": true, "consumer_cancel_notify": true, "basic.nack": true, "publisher_confirms": true,
	}
	size, err := checkTable(ErrInvalidArgument, "client properties", props)
	if err != nil {
		return 0 // amqp091-go could not send it either; Open fails
	}
	// Frame header and end (8), class and method ids (4), the locale.
	return 8 + 4 + size + n + 1 + len(cfg.Locale)
}

// credentials holds the secret UpdateSecret set, and the connections that
// must be told of a new one. Its lock guards memory only.
type credentials struct {
	mu      sync.Mutex
	version uint64 // of secret; 0 while the URIs' passwords apply
	// login is the largest loginOverhead of the dials so far.
	login  int
	secret string
	reason string
	conns  map[*amqp.Connection]*secretConn
}

// secretConn is a live connection and the secret version it last got.
type secretConn struct {
	conn *amqp.Connection
	node string        // redacted, for errors
	turn chan struct{} // one push at a time, so the last one sent is the latest
	sent uint64        // the version it logged in with or was last told (under turn)
}

// apply returns cfg logging in with the current secret, and that secret's
// version for opened.
func (cr *credentials) apply(cfg amqp.Config) (amqp.Config, uint64) {
	login := loginOverhead(cfg)
	cr.mu.Lock()
	cr.login = max(cr.login, login)
	v, secret := cr.version, cr.secret
	cr.mu.Unlock()
	if v == 0 {
		return cfg, 0
	}
	sasl := make([]amqp.Authentication, len(cfg.SASL))
	for i, a := range cfg.SASL {
		switch a := a.(type) {
		case *amqp.PlainAuth:
			sasl[i] = &amqp.PlainAuth{Username: a.Username, Password: secret}
		case *amqp.AMQPlainAuth:
			sasl[i] = &amqp.AMQPlainAuth{Username: a.Username, Password: secret}
		default:
			sasl[i] = a // EXTERNAL and others carry no password
		}
	}
	cfg.SASL = sasl
	return cfg, v
}

// overhead is the largest loginOverhead of the dials so far.
func (cr *credentials) overhead() int {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.login
}

// opened registers a connection that logged in with secret version v, and
// tells it of a secret set since, before the caller uses it. The caller
// bounds the push (a deadline on the socket).
func (cr *credentials) opened(conn *amqp.Connection, v uint64, node string) error {
	t := &secretConn{conn: conn, node: node, turn: make(chan struct{}, 1), sent: v}
	cr.mu.Lock()
	if cr.conns == nil {
		cr.conns = make(map[*amqp.Connection]*secretConn)
	}
	cr.pruneLocked()
	cr.conns[conn] = t
	stale := cr.version != v
	cr.mu.Unlock()
	if !stale {
		return nil
	}
	return cr.push(t)
}

// set makes secret the current one and returns the live connections to
// tell.
func (cr *credentials) set(secret, reason string) []*secretConn {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.version++
	cr.secret, cr.reason = secret, reason
	cr.pruneLocked()
	out := make([]*secretConn, 0, len(cr.conns))
	for _, t := range cr.conns {
		out = append(out, t)
	}
	return out
}

// pruneLocked forgets closed connections.
func (cr *credentials) pruneLocked() {
	for conn := range cr.conns {
		if conn.IsClosed() {
			delete(cr.conns, conn)
		}
	}
}

// maxPushes bounds how often one push goes round while UpdateSecret keeps
// setting newer secrets under it.
const maxPushes = 8

// push tells t's connection the current secret, again if a newer one was
// set while it did. One push at a time per connection, so that the last
// secret the broker got is the last one sent. A connection lost meanwhile
// is not an error; one the broker closed to refuse the secret is. The wait
// for a turn and each update-secret end with the broker's answer or the
// connection.
func (cr *credentials) push(t *secretConn) error {
	t.turn <- struct{}{} // the push holding it ends with its answer or the connection
	defer func() { <-t.turn }()
	for range maxPushes {
		cr.mu.Lock()
		v, secret, reason := cr.version, cr.secret, cr.reason
		cr.mu.Unlock()
		if t.sent == v {
			return nil
		}
		if err := t.conn.UpdateSecret(secret, reason); err != nil {
			var ae *amqp.Error
			refused := errors.As(err, &ae) && ae.Server && ae.Code != amqp.ConnectionForced
			if !refused && t.conn.IsClosed() {
				return nil // lost: its successor logs in with the new secret
			}
			return fmt.Errorf("amqpha: update secret on the connection to %s: %w", t.node, err)
		}
		t.sent = v
	}
	return nil
}
