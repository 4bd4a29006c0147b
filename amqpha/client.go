package amqpha

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Client keeps a connection to a live node of a RabbitMQ cluster and moves
// it to another node when the node dies, hangs, becomes unreachable or shuts
// down. Publishers created from it follow the connection. A Client is safe
// for concurrent use.
type Client struct {
	cfg    Config
	log    *slog.Logger
	events *eventQueue
	ctx    context.Context // the client's lifetime
	cancel context.CancelFunc
	sup    *supervisor

	mu         sync.Mutex
	publishers map[*Publisher]struct{}
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
		publishers: make(map[*Publisher]struct{}),
	}
	c.sup = newSupervisor(c)
	go c.sup.run()
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

// Reconnects counts the connections lost since the client started.
func (c *Client) Reconnects() uint64 { return c.sup.reconnects.Load() }

// DroppedEvents counts the events dropped because OnEvent fell behind.
func (c *Client) DroppedEvents() uint64 { return c.events.dropped.Load() }

// Node is the redacted address of the node the client is connected to, ""
// while it has no connection.
func (c *Client) Node() string {
	c.sup.mu.Lock()
	defer c.sup.mu.Unlock()
	if c.sup.node == nil {
		return ""
	}
	return c.sup.node.String()
}

// Close closes every publisher (each waits for its outstanding confirms
// until ctx ends), then the connection, and waits for every goroutine of the
// client, including the last OnEvent call, until ctx ends. It is safe to
// call twice; the second call returns the first's result.
func (c *Client) Close(ctx context.Context) error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		pubs := make([]*Publisher, 0, len(c.publishers))
		for p := range c.publishers {
			pubs = append(pubs, p)
		}
		c.mu.Unlock()
		var errs []error
		for _, p := range pubs {
			errs = append(errs, p.Close(ctx))
		}
		c.cancel()
		<-c.sup.done
		c.sup.wg.Wait()
		for _, p := range pubs {
			p.wg.Wait() // their channels died with the connection
		}
		c.events.post(Event{Kind: EventClosed})
		c.closeEvents(ctx)
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
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
