package amqpha

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/amqpha/amqpha/balancer"
	"github.com/amqpha/amqpha/discovery"
)

// Config configures a Client. The zero value with Nodes set works; Dial
// fills every other zero field from DefaultConfig.
type Config struct {
	// Nodes are the cluster's nodes as AMQP URIs (amqp:// or amqps://,
	// with user, password and vhost as amqp091-go reads them). Ignored
	// when Resolver is set.
	//
	// Every query parameter amqp091-go reads means what it means there,
	// for that node: certfile and keyfile (a client certificate, both or
	// neither), cacertfile (the CA the server's certificate must chain
	// to, instead of the system's roots), server_name_indication,
	// auth_mechanism (plain, amqplain, external; repeated for a list in
	// order of preference), heartbeat (whole seconds; it takes precedence
	// over Heartbeat), connection_timeout (milliseconds; it takes
	// precedence over DialTimeout for that node's dials) and channel_max
	// (at least 2: each connection takes one channel for the hang
	// detector and one per publisher and consumer);
	// and frame_max (bytes, 0 or 4096 and up), verify=verify_peer. The
	// TLS parameters need amqps://. auth_mechanism=external logs in with
	// the client certificate (SASL EXTERNAL; RabbitMQ's
	// rabbitmq_auth_mechanism_ssl plugin) and needs one, from certfile or
	// TLS. Unlike amqp091-go, amqpha refuses, in Validate and Dial, an
	// unknown parameter (a typo would otherwise go unnoticed), a
	// parameter given twice, an empty one, and verify=verify_none. The
	// files are read when the URI is checked and again at every dial.
	Nodes []string
	// Resolver finds the nodes; its nodes' Addr are AMQP URIs. It is asked
	// again before every reconnection pass.
	Resolver discovery.Resolver
	// Balancer chooses the node for each dial. Nil uses BalancerName.
	Balancer balancer.Balancer
	// BalancerName names the algorithm when Balancer is nil, as
	// balancer.New reads it: "rr" (the default), "wrr", "lc", "wlc", "p2c",
	// "sh", "random", or "priority+" one of them. The client's connections
	// share one balancer, so least-connection counts cover them all.
	BalancerName string

	// TLS configures amqps:// nodes. Nil uses the system's roots and the
	// node's host name. Certificates are always verified unless the
	// caller's config says InsecureSkipVerify. A node URI's cacertfile,
	// certfile and server_name_indication add to it for that node; a URI
	// that sets what TLS sets already (RootCAs, Certificates or
	// GetClientCertificate, ServerName), or asks for the verification
	// that InsecureSkipVerify turns off (cacertfile, verify=verify_peer),
	// is an error, not a silent choice.
	TLS *tls.Config
	// Heartbeat is the AMQP heartbeat asked of the broker, in whole
	// seconds, at most 65535 s; a node URI's heartbeat parameter takes
	// precedence for its node (0 there, like a negative value here, takes
	// the broker's). Hangs are caught sooner by HangTimeout, which a
	// URI's heartbeat does not change.
	// Negative asks for none, and the broker's value applies: AMQP lets a
	// client lower the broker's heartbeat, not refuse it (RabbitMQ offers
	// 60 s unless configured to offer 0).
	Heartbeat time.Duration
	// DialTimeout bounds one connection attempt to one node: TCP connect,
	// TLS and the AMQP handshake together. A node URI's
	// connection_timeout takes precedence for its node.
	DialTimeout time.Duration
	// HangTimeout is how long a connection may receive nothing at all
	// before it is taken for hung and dropped. While a connection awaits an
	// answer (a publish its confirm) and has been quiet for HangTimeout/4,
	// the client sends it a cheap request so a live broker always has
	// something to answer; a connection that awaits nothing gets that
	// request only after 1.25 s of quiet (under one packet a second to the
	// broker), and the first publish to it makes the connection awaiting
	// again. The connection is dropped only when such a request has gone
	// unanswered for HangTimeout/2, or for 1.25 × HangTimeout if it was
	// idle (a broker slowed by load is likelier than a hang then, and
	// nothing waits: a node that hangs under an idle connection is left
	// within about 1.75 s by default; a publish or request sent meanwhile
	// gets HangTimeout/2 from when it was sent), counted from when the
	// request left the socket
	// (a large message still draining over a slow link delays it), and no
	// received bytes wait unread, so a client process that was itself
	// paused (GC, CPU quota, suspended VM) is not fooled into leaving a
	// healthy node. Negative disables the detector, leaving only
	// heartbeats.
	HangTimeout time.Duration
	// ConnectionName is shown in the management UI; the consumers'
	// connection adds " (consume)".
	ConnectionName string
	// Connections is how many publishing connections the client keeps,
	// each on its own node while there are enough nodes; publishers are
	// spread over them (NewPublisher takes the one with the fewest). 0
	// means 1.
	Connections int
	// RebalanceInterval, if positive, makes each publishing connection check
	// this often whether it should move: when another of the client's
	// connections shares its node while a node of the set is unused and
	// not quarantined (a node that died came back), or when its node left
	// the node set. At most one connection of the client moves per
	// interval. A move opens the new connection first; messages in flight
	// on the old one are confirmed there (it closes 5 s later; any still
	// unconfirmed then are published again). 0, the default, or negative
	// never moves a working connection.
	RebalanceInterval time.Duration
	// SharedConnection puts consumers on the (first) publishers' connection. By
	// default they get a connection of their own: RabbitMQ slows down
	// (flow control) and blocks (resource alarms) publishing connections,
	// and consumers must not wait for that.
	SharedConnection bool

	// FailFast makes Dial give up after one pass over the nodes instead of
	// trying until its context ends.
	FailFast bool
	// ReconnectInitial and ReconnectMax bound the jittered exponential
	// backoff between passes in which every node failed. The first pass
	// after a loss does not wait.
	ReconnectInitial time.Duration
	ReconnectMax     time.Duration
	// QuarantineBase and QuarantineMax bound how long a node that failed is
	// tried only after the others (doubling with each failure in a row).
	QuarantineBase time.Duration
	QuarantineMax  time.Duration

	// OnEvent receives the client's events, in order, on one goroutine of
	// the client's. It may block; the connection does not wait for it, but
	// events beyond EventBuffer waiting are dropped and counted.
	OnEvent func(Event)
	// EventBuffer is how many events may wait for OnEvent.
	EventBuffer int
	// Logger receives the client's logs; nil discards them. Credentials
	// never appear in them.
	Logger *slog.Logger
	// Metrics receives counts of publishes, confirms, deliveries and
	// connection changes, called on the hot paths (it must not block).
	// Nil, the default, costs a nil check. Package
	// github.com/amqpha/amqpha/amqpha/prommetrics adapts it to Prometheus.
	Metrics Metrics

	// PublishHooks run for every message the client's publishers take, in
	// the publishing goroutine, and hear each one's outcome (see
	// PublishHook); ConsumeHooks wrap every consumer's handler, the first
	// outermost (see ConsumeHook). Package
	// github.com/amqpha/amqpha/amqpha/otelamqpha makes OpenTelemetry spans
	// with them. Nil entries are refused.
	PublishHooks []PublishHook
	ConsumeHooks []ConsumeHook
}

// One rule holds for every duration in Config, PublisherConfig and
// ConsumerConfig: 0 means the default, and negative turns the feature off
// where it can be off (HangTimeout, Heartbeat, RebalanceInterval,
// NackRetryFor, ConfirmTimeout); where off makes no sense (DialTimeout, the
// backoff and quarantine bounds) a negative value is refused.

// DefaultConfig returns the defaults Dial fills in.
func DefaultConfig() Config {
	return Config{
		Heartbeat:        10 * time.Second,
		DialTimeout:      2 * time.Second,
		HangTimeout:      400 * time.Millisecond,
		ConnectionName:   "amqpha",
		ReconnectInitial: 100 * time.Millisecond,
		ReconnectMax:     5 * time.Second,
		QuarantineBase:   time.Second,
		QuarantineMax:    30 * time.Second,
		EventBuffer:      256,
	}
}

// Validate reports the first problem with c. Its errors never contain a
// node's password.
func (c Config) Validate() error {
	if c.Resolver == nil {
		if len(c.Nodes) == 0 {
			return fmt.Errorf("amqpha: config: %w: set Nodes or Resolver", ErrNoNodes)
		}
		for i, raw := range c.Nodes {
			a, err := parseNode(raw)
			if err == nil && a.uri.Scheme == "amqps" {
				err = tlsConflict(c.TLS, &a.params)
			}
			if err != nil {
				return fmt.Errorf("amqpha: config: Nodes[%d]: %w", i, err)
			}
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DialTimeout", c.DialTimeout},
		{"ReconnectInitial", c.ReconnectInitial}, {"ReconnectMax", c.ReconnectMax},
		{"QuarantineBase", c.QuarantineBase}, {"QuarantineMax", c.QuarantineMax},
	} {
		if d.v < 0 {
			return fmt.Errorf("amqpha: config: %s = %v, want >= 0 (0: the default; it cannot be turned off)", d.name, d.v)
		}
	}
	if c.Heartbeat > maxHeartbeat {
		return fmt.Errorf("amqpha: config: Heartbeat = %v, want at most %v (AMQP's 16-bit seconds)", c.Heartbeat, maxHeartbeat)
	}
	if c.Balancer == nil && c.BalancerName != "" {
		if _, err := balancer.New(c.BalancerName); err != nil {
			return fmt.Errorf("amqpha: config: BalancerName: %w", err)
		}
	}
	if c.Heartbeat%time.Second != 0 {
		return errors.New("amqpha: config: Heartbeat must be whole seconds (AMQP counts seconds)")
	}
	if c.Connections < 0 || c.Connections > maxConnections {
		return fmt.Errorf("amqpha: config: Connections = %d, want 0 (one) to %d", c.Connections, maxConnections)
	}
	if err := checkHooks(c.PublishHooks, c.ConsumeHooks); err != nil {
		return err
	}
	if c.EventBuffer < 0 || c.EventBuffer > maxEventBuffer {
		return fmt.Errorf("amqpha: config: EventBuffer = %d, want 0 (the default) to %d", c.EventBuffer, maxEventBuffer)
	}
	return nil
}

const (
	maxHeartbeat   = 65535 * time.Second
	maxConnections = 1024
	maxEventBuffer = 1 << 20
)

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	orDefault(&c.Heartbeat, d.Heartbeat)
	orDefault(&c.DialTimeout, d.DialTimeout)
	orDefault(&c.HangTimeout, d.HangTimeout)
	orDefault(&c.ConnectionName, d.ConnectionName)
	orDefault(&c.ReconnectInitial, d.ReconnectInitial)
	orDefault(&c.ReconnectMax, d.ReconnectMax)
	orDefault(&c.QuarantineBase, d.QuarantineBase)
	orDefault(&c.QuarantineMax, d.QuarantineMax)
	orDefault(&c.EventBuffer, d.EventBuffer)
	orDefault(&c.Connections, 1)
	if c.Balancer == nil {
		c.Balancer = balancer.RoundRobin()
		if b, err := balancer.New(c.BalancerName); err == nil {
			c.Balancer = b
		}
	}
	// The caller's slices are not read again.
	c.PublishHooks = slices.Clone(c.PublishHooks)
	c.ConsumeHooks = slices.Clone(c.ConsumeHooks)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Resolver == nil {
		nodes := make([]balancer.Node, len(c.Nodes))
		for i, n := range c.Nodes {
			nodes[i] = balancer.Node{Addr: n}
		}
		c.Resolver = discovery.Static(nodes...)
	}
	return c
}

// orDefault sets *v to d when *v is the zero value.
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}
