package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/amqpha/amqpha/balancer"
)

// refreshTimeout bounds a lookup when a good node set is already known.
const refreshTimeout = 300 * time.Millisecond

// cache holds a resolver's last good node set and decides when to look up
// again: a plain resolve once the answer's TTL (at least minInterval) has
// passed, a fresh one once minInterval has passed, and after failures
// neither before a backoff (minInterval doubling up to maxBackoff) has
// passed.
type cache struct {
	what        string
	minInterval time.Duration
	maxBackoff  time.Duration
	log         *slog.Logger
	now         func() time.Time

	mu       sync.Mutex // held during a lookup: concurrent Resolves collapse
	last     []balancer.Node
	lastAt   time.Time
	validTo  time.Time // the last answer's TTL ends
	notUntil time.Time
	fails    int
	lastErr  error
}

// newCache makes a cache; zero durations mean 1 s and 30 s, a nil log
// discards.
func newCache(what string, minInterval, maxBackoff time.Duration, log *slog.Logger) cache {
	if minInterval == 0 {
		minInterval = time.Second
	}
	if maxBackoff == 0 {
		maxBackoff = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return cache{what: what, minInterval: minInterval, maxBackoff: maxBackoff, log: log, now: time.Now}
}

// resolve returns the cached set or looks up a new one. A failed lookup
// returns the last good set, if any, without an error.
// lookupFunc asks the source; ttl is how long its answer may be used (0:
// minInterval).
type lookupFunc func(ctx context.Context) (nodes []balancer.Node, ttl time.Duration, err error)

func (c *cache) resolve(ctx context.Context, fresh bool, lookup lookupFunc) ([]balancer.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.Before(c.notUntil) || c.last != nil && now.Sub(c.lastAt) < c.minInterval ||
		!fresh && c.last != nil && now.Before(c.validTo) {
		return c.cachedLocked()
	}
	if c.last != nil {
		// A reconnection waits for this: with a good set at hand, a slow
		// or dead server must not hold it for long.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, refreshTimeout)
		defer cancel()
	}
	nodes, ttl, err := lookup(ctx)
	if err != nil {
		c.fails++
		wait := min(c.minInterval<<min(c.fails-1, 16), c.maxBackoff)
		c.notUntil = now.Add(wait)
		c.lastErr = fmt.Errorf("discovery: %s: %w", c.what, err)
		c.log.Warn("discovery failed; keeping the last node set", "source", c.what, "err", err, "retry_in", wait, "nodes", len(c.last))
		return c.cachedLocked()
	}
	c.fails, c.lastErr = 0, nil
	c.last, c.lastAt, c.notUntil = nodes, now, now.Add(c.minInterval)
	c.validTo = now.Add(max(ttl, c.minInterval))
	return slices.Clone(nodes), nil
}

func (c *cache) cachedLocked() ([]balancer.Node, error) {
	if c.last == nil {
		if c.lastErr == nil {
			return nil, ErrNoNodes
		}
		return nil, errors.Join(ErrNoNodes, c.lastErr)
	}
	return slices.Clone(c.last), nil
}

// parseTemplate parses a resolver's AMQP URI template; "" means
// "amqp://guest:guest@x/". Its error never repeats the URI.
func parseTemplate(who, s string) (*url.URL, error) {
	if s == "" {
		s = "amqp://guest:guest@x/"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") {
		return nil, fmt.Errorf("discovery: %s: Template is not an amqp:// or amqps:// URI", who)
	}
	return u, nil
}
