package amqpha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Client keeps connections to live nodes of a RabbitMQ cluster and moves
// each to another node when its node dies, hangs, becomes unreachable or
// shuts down: one connection for publishers and, once a consumer starts,
// one for consumers (unless Config.SharedConnection). Publishers and
// consumers created from it follow their connection; the topology declared
// through it is declared again on every new connection. A Client is safe
// for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	events *eventQueue
	ctx    context.Context // the client's lifetime
	cancel context.CancelFunc
	topo   *topology
	user   *userCalls    // Metrics and logs of the confirm path
	sup    *supervisor   // the first publishing connection
	pubs   []*supervisor // every publishing connection (Config.Connections)

	pickMu   sync.Mutex // makes picking and claiming a node one step
	lastMove time.Time  // the last rebalancing move (under pickMu)

	closeBy atomic.Int64 // unix ns: Close's ctx deadline, bounding graceful closes
	frames  atomic.Int64 // the frame size the last connection negotiated; 0 before one

	calls sync.WaitGroup // WithChannel's fn and UpdateSecret's pushes still running
	creds credentials    // the secret set by UpdateSecret

	mu         sync.Mutex
	consSup    *supervisor // the consumers' connection; nil until needed
	publishers map[*Publisher]struct{}
	consumers  map[*Consumer]struct{}
	closed     bool
	closeOnce  sync.Once
	closeErr   error
}

// Dial starts a client and waits until it has a connection ready, or ctx
// ends. With Config.FailFast it returns after one failed pass over the
// nodes instead. Errors never contain a node's password.
//
// The client keeps reconnecting for its whole life; ctx bounds only Dial.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	life, cancel := context.WithCancel(context.Background())
	c := &Client{
		cfg:        cfg,
		log:        cfg.Logger,
		events:     newEventQueue(cfg.OnEvent, cfg.EventBuffer),
		ctx:        life,
		cancel:     cancel,
		topo:       newTopology(),
		user:       newUserCalls(),
		publishers: make(map[*Publisher]struct{}),
		consumers:  make(map[*Consumer]struct{}),
	}
	r := rolePublish
	if cfg.SharedConnection {
		r |= roleConsume
	}
	for i := range cfg.Connections {
		if i > 0 {
			r = rolePublish // consumers share only the first
		}
		label := r.String()
		if cfg.Connections > 1 {
			label = fmt.Sprintf("%s-%d", r, i)
		}
		c.pubs = append(c.pubs, newSupervisor(c, r, label))
	}
	c.sup = c.pubs[0]
	for _, s := range c.pubs { // once c.pubs is complete: they read it
		go s.run()
	}
	select {
	case <-c.sup.ready:
		return c, nil
	case err := <-c.sup.gaveUp:
		c.Close(context.Background())
		return nil, err
	case <-ctx.Done():
		err := c.sup.lastError()
		c.Close(context.Background())
		if err != nil {
			return nil, fmt.Errorf("amqpha: dial: %w (last error: %w)", ctx.Err(), err)
		}
		return nil, fmt.Errorf("amqpha: dial: %w", ctx.Err())
	}
}

// consumeSupervisor returns the supervisor of the consumers' connection,
// starting it if needed.
func (c *Client) consumeSupervisor() (*supervisor, error) {
	if c.cfg.SharedConnection {
		return c.sup, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.consSup == nil {
		c.consSup = newSupervisor(c, roleConsume, roleConsume.String())
		go c.consSup.run()
	}
	return c.consSup, nil
}

func (c *Client) supervisors() []*supervisor {
	c.mu.Lock()
	defer c.mu.Unlock()
	all := append([]*supervisor(nil), c.pubs...)
	if c.consSup != nil {
		all = append(all, c.consSup)
	}
	return all
}

// busyElsewhere returns a function that reports the nodes the client's
// other connections are on, or nil when there are none.
func (c *Client) busyElsewhere(s *supervisor) func(addr string) bool {
	busy := map[string]bool{}
	for _, o := range c.supervisors() {
		if o == s {
			continue
		}
		o.mu.Lock()
		for _, a := range []*nodeAddr{o.node, o.dialing} {
			if a != nil {
				busy[a.raw] = true
			}
		}
		o.mu.Unlock()
	}
	if len(busy) == 0 {
		return nil
	}
	return func(addr string) bool { return busy[addr] }
}

// Reconnects counts the connections lost since the client started, of
// both the publishing and the consumers' connection.
func (c *Client) Reconnects() uint64 {
	var n uint64
	for _, s := range c.supervisors() {
		n += s.reconnects.Load()
	}
	return n
}

// DroppedEvents counts the events dropped because OnEvent fell behind.
func (c *Client) DroppedEvents() uint64 { return c.events.dropped.Load() }

// Node is the redacted address of the node the (first) publishing
// connection is on, "" while it has none.
func (c *Client) Node() string { return c.sup.currentNode() }

// ConnectionState is one of the client's connections.
type ConnectionState struct {
	Name string // "publish", "publish-N" with Config.Connections > 1, "consume"
	Node string // redacted address of its node; "" while it has none
}

// Connections lists the client's connections and their nodes.
func (c *Client) Connections() []ConnectionState {
	var out []ConnectionState
	for _, s := range c.supervisors() {
		out = append(out, ConnectionState{Name: s.label, Node: s.currentNode()})
	}
	return out
}

// leastUsed returns the publishing connection with the fewest publishers.
func (c *Client) leastUsedLocked() *supervisor {
	count := map[*supervisor]int{}
	for p := range c.publishers {
		count[p.sup]++
	}
	best := c.pubs[0]
	for _, s := range c.pubs[1:] {
		if count[s] < count[best] {
			best = s
		}
	}
	return best
}

// consumedQueues is the set of queue names the client's live consumers
// read, as the program names them.
func (c *Client) consumedQueues() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	used := make(map[string]bool, len(c.consumers))
	for k := range c.consumers {
		if !k.isStopping() {
			used[k.queue] = true
		}
	}
	return used
}

// ConsumerNode is the redacted address of the node the consumers'
// connection is on, "" while it has none or no consumer started it.
func (c *Client) ConsumerNode() string {
	if c.cfg.SharedConnection {
		return c.Node()
	}
	c.mu.Lock()
	s := c.consSup
	c.mu.Unlock()
	if s == nil {
		return ""
	}
	return s.currentNode()
}

// Close closes every publisher (each waits for its outstanding confirms
// until ctx ends) and every consumer (each lets its running handlers finish
// until ctx ends), then the connections, and waits for every goroutine of
// the client, including the last OnEvent call, until ctx ends. It is safe
// to call twice; the second call returns the first's result.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		pubs := make([]*Publisher, 0, len(c.publishers))
		for p := range c.publishers {
			pubs = append(pubs, p)
		}
		cons := make([]*Consumer, 0, len(c.consumers))
		for k := range c.consumers {
			cons = append(cons, k)
		}
		c.mu.Unlock()
		var errs []error
		for _, p := range pubs {
			errs = append(errs, p.Close(ctx))
		}
		for _, k := range cons {
			errs = append(errs, k.Close(ctx))
		}
		if dl, ok := ctx.Deadline(); ok {
			c.closeBy.Store(dl.UnixNano())
		}
		c.cancel()
		for _, s := range c.supervisors() {
			<-s.done
			s.wg.Wait()
		}
		c.topo.close() // requests abandoned by their contexts end with their connections
		if err := waitCtx(ctx, &c.calls); err != nil {
			errs = append(errs, fmt.Errorf("amqpha: close: a WithChannel fn or an UpdateSecret push still runs: %w", err))
		}
		for _, p := range pubs {
			p.wg.Wait() // their channels died with the connection
		}
		for _, k := range cons {
			// Handlers run in the pumps: one that ignores its cancelled
			// ctx (or called Close itself) must not hold Close past ctx.
			if err := waitCtx(ctx, &k.bg); err != nil {
				errs = append(errs, fmt.Errorf("amqpha: close: a consumer's handler still runs: %w", err))
				break
			}
		}
		if c.user.flush(ctx) == nil {
			c.user.wg.Wait()
		}
		c.events.post(Event{Kind: EventClosed})
		c.closeEvents(ctx)
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// frameMax is the frame size connections negotiate, for the checks of
// requests: the last one's, or RabbitMQ's default before any.
func (c *Client) frameMax() int {
	if n := c.frames.Load(); n > 0 {
		return int(n)
	}
	return defaultFrameMax
}

// closeDeadline bounds a graceful connection.close: a second, or less if
// Close's context ends sooner.
func (c *Client) closeDeadline() time.Time {
	dl := time.Now().Add(time.Second)
	if by := c.closeBy.Load(); by != 0 && by < dl.UnixNano() {
		return time.Unix(0, by)
	}
	return dl
}

func (c *Client) closeEvents(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		c.events.close()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		c.log.Warn("Close: OnEvent still running when ctx ended")
	}
}
