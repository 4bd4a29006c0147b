package amqphatest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/internal/fakebroker"
)

// DefaultNodes is how many nodes NewServer starts unless told otherwise:
// enough for a client to fail over twice.
const DefaultNodes = 3

// MaxNodes is the most nodes a Server may have.
const MaxNodes = 64

// Option changes how NewServer builds a Server.
type Option func(*options)

type options struct {
	nodes int
}

// WithNodes sets how many nodes the server has, 1 to MaxNodes (default
// DefaultNodes). NewServer fails the test for any other value.
func WithNodes(n int) Option { return func(o *options) { o.nodes = n } }

// Server is an in-process broker with several nodes on 127.0.0.1, all
// sharing one set of exchanges, queues and messages, like the nodes of one
// RabbitMQ cluster. Its methods are safe for concurrent use, from the test
// and from any goroutine of the code under test; none of them blocks on a
// client (Wait polls).
type Server struct {
	fb *fakebroker.Server

	mu         sync.Mutex
	nackNext   int
	nackAll    bool
	returnNext int
	published  []Message
}

// NewServer starts a Server and registers its Close with t.Cleanup. It
// fails t at once if an option is invalid or it cannot listen. Start the
// server before the client under test and close the client first (a
// t.Cleanup or defer registered after NewServer runs before the server's
// cleanup): Close ends every connection and waits for every goroutine of
// the server, so go.uber.org/goleak finds none of them left.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("%v", err)
		return nil
	}
	t.Cleanup(s.Close)
	return s
}

// Start is NewServer without a testing.TB, for a server shared by a
// package's tests (started in TestMain) or used in an example: the caller
// must call Close. Tests that share a server share its queues, messages
// and records (Published grows for its whole life); give each test its own
// queue names, or its own server. It returns an error if an option is
// invalid or it cannot listen.
func Start(opts ...Option) (*Server, error) {
	s, err := start(opts...)
	if err != nil {
		return nil, fmt.Errorf("amqphatest: %w", err)
	}
	return s, nil
}

func start(opts ...Option) (*Server, error) {
	o := options{nodes: DefaultNodes}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	if o.nodes < 1 || o.nodes > MaxNodes {
		return nil, fmt.Errorf("WithNodes(%d): want 1 to %d nodes", o.nodes, MaxNodes)
	}
	fb, err := fakebroker.Listen(fakebroker.WithStore(), fakebroker.WithNodes(o.nodes), fakebroker.WithHeartbeat(0))
	if err != nil {
		return nil, err
	}
	s := &Server{fb: fb}
	fb.OnPublish(s.onPublish)
	return s, nil
}

// Close ends every connection and waits for all the server's goroutines.
// NewServer registers it with t.Cleanup; calling it earlier is allowed, and
// again is a no-op.
func (s *Server) Close() { s.fb.Close() }

// Nodes returns how many nodes the server has.
func (s *Server) Nodes() int { return s.fb.Nodes() }

// URL returns node i's AMQP URI, "amqp://guest:guest@127.0.0.1:PORT/". Any
// user, password and vhost are accepted. It panics if i is not 0 to
// Nodes()-1, like an index out of range.
func (s *Server) URL(i int) string { return s.fb.NodeURL(i) }

// NodeIndex returns the index of the node addr names, or -1 if it names
// none. addr is a node's URI as URL returns it or as amqpha reports it
// (Client.Node, Client.ConsumerNode, Event.Node: the password replaced), or
// its "127.0.0.1:PORT", so a test can hit the node the client is on:
//
//	srv.Kill(srv.NodeIndex(client.Node()))
func (s *Server) NodeIndex(addr string) int {
	host := addr
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		host = u.Host
	}
	for i := range s.Nodes() {
		if s.fb.NodeAddr(i) == host {
			return i
		}
	}
	return -1
}

// URLs returns every node's AMQP URI, in node order.
func (s *Server) URLs() []string {
	out := make([]string, s.Nodes())
	for i := range out {
		out[i] = s.URL(i)
	}
	return out
}

// Config returns an amqpha.Config for the server's nodes, with shorter
// dial and backoff bounds than amqpha's defaults so failovers in tests take
// milliseconds (DialTimeout 1 s, ReconnectInitial 10 ms, ReconnectMax
// 200 ms, QuarantineBase 50 ms, QuarantineMax 500 ms); every other field
// is zero, so Dial fills amqpha's defaults. Set OnEvent, Logger, Metrics or
// anything else on the copy it returns.
func (s *Server) Config() amqpha.Config {
	return amqpha.Config{
		Nodes:            s.URLs(),
		DialTimeout:      time.Second,
		ReconnectInitial: 10 * time.Millisecond,
		ReconnectMax:     200 * time.Millisecond,
		QuarantineBase:   50 * time.Millisecond,
		QuarantineMax:    500 * time.Millisecond,
	}
}

// Wait calls cond every millisecond until it returns true (Wait returns
// nil) or ctx ends (Wait returns ctx's error). cond runs on the caller's
// goroutine and may call any method of the Server. A nil cond is an error.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	if cond == nil {
		return errors.New("amqphatest: Wait: nil condition")
	}
	return s.fb.WaitFor(ctx, cond)
}

// Connections returns how many AMQP connections to node i are open (past
// the handshake). It panics if i is not a node.
func (s *Server) Connections(i int) int { return s.fb.OpenConnectionsOn(i) }

// Queues returns the names of the declared queues, sorted.
func (s *Server) Queues() []string { return s.fb.Queues() }

// Consumers returns how many consumers queue has, on all nodes.
func (s *Server) Consumers(queue string) int { return s.fb.Consumers(queue) }

// Publish puts a message on the server as if another program had published
// it to exchange with routing key key: it is stored in every queue it
// routes to and delivered to their consumers. It returns those queues,
// none if the message was unroutable (it is then dropped), or an error if
// the exchange does not exist. It is not in Published, which lists what
// clients sent.
func (s *Server) Publish(exchange, key string, msg amqp.Publishing) ([]string, error) {
	queues, err := s.fb.Send(exchange, key, toProps(msg), msg.Body)
	if err != nil {
		return nil, fmt.Errorf("amqphatest: %w", err)
	}
	return queues, nil
}

// Published returns every message clients published, in the order the
// server received them (across nodes), with what became of each (see
// Message). A message amqpha published again after a failover or a nack
// appears once per time it arrived.
func (s *Server) Published() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyMessages(s.published, func(Message) bool { return true })
}

// PublishedTo returns the messages clients published that the server
// stored in queue (not nacked, not unroutable), in arrival order, whether
// or not they were consumed since.
func (s *Server) PublishedTo(queue string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return copyMessages(s.published, func(m Message) bool { return slices.Contains(m.Queues, queue) })
}

// copyMessages returns copies of the messages keep selects that the caller
// may change (body, queues and header tables copied).
func copyMessages(ms []Message, keep func(Message) bool) []Message {
	var out []Message
	for _, m := range ms {
		if keep(m) {
			m.Body = slices.Clone(m.Body)
			m.Queues = slices.Clone(m.Queues)
			if m.Headers != nil {
				m.Headers, _ = toClient(m.Headers).(amqp.Table)
			}
			out = append(out, m)
		}
	}
	return out
}

// Ready returns the messages waiting in queue to be delivered, in the order
// they will be: not delivered yet, or requeued.
func (s *Server) Ready(queue string) []Message { return fromStored(s.fb.Ready(queue), queue) }

// Unacked returns how many messages of queue are delivered to consumers (or
// basic.get) and not yet acknowledged, rejected or requeued.
func (s *Server) Unacked(queue string) int { return s.fb.Unacked(queue) }

// Acked returns the messages of queue that consumers acknowledged, in the
// order the acknowledgements arrived. Deliveries to no-ack consumers are
// not counted.
func (s *Server) Acked(queue string) []Message { return fromStored(s.fb.Acked(queue), queue) }

// Rejected returns the messages of queue that consumers nacked or rejected
// without requeueing, in order; they went to the queue's dead-letter
// exchange if it has one.
func (s *Server) Rejected(queue string) []Message { return fromStored(s.fb.Rejected(queue), queue) }
