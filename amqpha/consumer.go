package amqpha

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ConsumerConfig configures a Consumer. The zero value works.
type ConsumerConfig struct {
	// Prefetch is how many unacknowledged messages the broker sends this
	// consumer ahead (basic.qos on its channel, set again after every
	// failover). It also bounds the redeliveries a failover causes. 0
	// means 100.
	Prefetch int
	// Concurrency is how many handlers run at once. 0 means 1, which keeps
	// the queue's order between failovers.
	Concurrency int
	// Tag is the consumer tag; "" generates a unique one. The same tag is
	// used again on every registration.
	Tag string
	// Exclusive asks to be the queue's only consumer. After a failover the
	// broker may refuse the new registration (403) until it noticed that
	// the old connection is gone; it is retried with backoff, and the
	// first refusal is reported as EventConsumerCancelled (then
	// EventConsumerRegistered once it is back).
	Exclusive bool
	// Args are the consumer's arguments, e.g. "x-priority". Single active
	// consumer is a queue argument ("x-single-active-consumer"), and
	// works with several consumers of this kind.
	Args amqp.Table
	// Retry, if MaxAttempts is set, makes a handler's Requeue a retry
	// after a growing delay, and dead-letters the message after
	// MaxAttempts (see RetryPolicy).
	Retry RetryPolicy
}

const defaultPrefetch = 100

// Consumer receives messages from a queue and hands them to a handler,
// following the client's consumers' connection from node to node: it is
// registered again after every reconnect and after the broker cancels it
// (queue deleted, mirrored queue failed over), with backoff. Messages are
// delivered at least once: a message whose acknowledgement did not reach
// the broker before its channel was lost is delivered again (with
// Redelivered set), so handlers should be idempotent or de-duplicate by
// MessageId.
type Consumer struct {
	c       *Client
	sup     *supervisor
	cfg     ConsumerConfig
	queue   string // as the program names it
	handler Handler
	log     *slog.Logger
	metrics Metrics // Config.Metrics; nil costs a nil check

	mu       sync.Mutex
	conn     *amqp.Connection // the current connection, nil while none
	gen      uint64
	cur      *consumerSession // registered and delivering; nil while not
	all      map[*consumerSession]struct{}
	stopping bool
	started  bool // registered once
	// told: EventConsumerCancelled told the program that the consumer is
	// not registered; the next registration clears it. It makes a queue
	// deleted while the connection was being replaced reported once,
	// when the new connection's registration is refused.
	told bool

	first      chan error // the first registration's result
	kick       chan struct{}
	stopTaking chan struct{} // closed when Close begins
	hard       context.Context
	hardCancel context.CancelFunc
	// slots holds a token for each handler running: at most
	// Concurrency across all of the consumer's channels. Close takes every
	// token to wait for the handlers and to start no more.
	slots chan struct{}
	bg    sync.WaitGroup // pumps (which run the handlers), watchers, the keeper, channel closes

	registrations atomic.Uint64
	closeOnce     sync.Once
	closeErr      error
}

var consumerSeq atomic.Uint64

// recordedHook, when set (by tests only), runs in Consume and
// NewPublisher after the consumer or publisher is recorded in the client,
// before its goroutines start and it is attached to its connection.
var recordedHook atomic.Pointer[func(attachment)]

// Consume starts a consumer of queue that calls handler for every message,
// and returns once the broker accepted it. It waits for the consumers'
// connection (starting it if this is the first consumer) within ctx; ctx
// bounds only this wait. A refusal by the broker (no such queue, access
// refused, exclusive consumer elsewhere) is returned and nothing keeps
// running. queue may be a name DeclareQueue returned: the consumer follows
// a server-named queue's new name after each failover.
func (c *Client) Consume(ctx context.Context, queue string, cfg ConsumerConfig, handler Handler) (*Consumer, error) {
	if handler == nil {
		return nil, fmt.Errorf("%w: Consume: nil handler", ErrInvalidArgument)
	}
	if err := checkConsumer(queue, &cfg, c.frameMax()); err != nil {
		return nil, err
	}
	orDefault(&cfg.Prefetch, defaultPrefetch)
	orDefault(&cfg.Concurrency, 1)
	cfg.Retry = cfg.Retry.withDefaults()
	if cfg.Tag == "" {
		var b [6]byte
		rand.Read(b[:])
		cfg.Tag = fmt.Sprintf("amqpha-%s-%d", hex.EncodeToString(b[:]), consumerSeq.Add(1))
	}
	cfg.Args = cloneTable(cfg.Args)
	handler, err := wrapHandler(handler, c.cfg.ConsumeHooks)
	if err != nil {
		return nil, err
	}
	sup, err := c.consumeSupervisor()
	if err != nil {
		return nil, err
	}
	// Handlers' contexts carry ctx's values (a logger, a span), not its
	// end: ctx bounds only this call.
	hard, hardCancel := context.WithCancel(context.WithoutCancel(ctx))
	k := &Consumer{
		c:          c,
		sup:        sup,
		cfg:        cfg,
		queue:      queue,
		handler:    handler,
		log:        c.log.With("component", "consumer", "queue", queue, "tag", cfg.Tag),
		metrics:    c.cfg.Metrics,
		all:        make(map[*consumerSession]struct{}),
		first:      make(chan error, 1),
		kick:       make(chan struct{}, 1),
		stopTaking: make(chan struct{}),
		hard:       hard,
		hardCancel: hardCancel,
		slots:      make(chan struct{}, cfg.Concurrency),
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		hardCancel()
		return nil, ErrClosed
	}
	c.consumers[k] = struct{}{}
	// Counted while Client.Close cannot have found k yet, so that its
	// wait for k, from here on, includes the keeper.
	k.bg.Add(1)
	c.mu.Unlock()
	if h := recordedHook.Load(); h != nil {
		(*h)(k)
	}
	go func() {
		defer k.bg.Done()
		k.keep()
	}()
	sup.addAttachment(k)
	// Giving up must not wait long for a registration stuck on a hung
	// node; what is left is waited for by Client.Close.
	abandon := func() {
		actx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		k.Close(actx)
	}
	select {
	case err := <-k.first:
		if err == nil {
			return k, nil
		}
		abandon()
		return nil, fmt.Errorf("amqpha: consume %q: %w", queue, err)
	case <-k.stopTaking: // Client.Close
		return nil, ErrClosed
	case <-ctx.Done():
		abandon()
		if err := sup.lastError(); err != nil {
			return nil, fmt.Errorf("amqpha: consume %q: %w (last error: %w)", queue, ctx.Err(), err)
		}
		return nil, fmt.Errorf("amqpha: consume %q: %w", queue, ctx.Err())
	}
}

func (k *Consumer) isStopping() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stopping
}

// Tag is the consumer's tag.
func (k *Consumer) Tag() string { return k.cfg.Tag }

// Queue is the current name of the consumer's queue.
func (k *Consumer) Queue() string { return k.c.topo.currentName(k.queue) }

// Registrations counts how often the consumer was registered: 1, plus one
// for every failover or cancellation it recovered from.
func (k *Consumer) Registrations() uint64 { return k.registrations.Load() }

// attach hands a new connection to the keeper, which registers the
// consumer on it at once (supervisor). Registering is not done here: on a
// quorum queue whose leader hangs, basic.consume waits until the cluster
// declares that node down, and the connection must not wait for it.
func (k *Consumer) attach(gen uint64, conn *amqp.Connection, _ *nodeAddr, _ bool) {
	k.mu.Lock()
	if k.stopping {
		k.mu.Unlock()
		return
	}
	k.conn, k.gen, k.cur = conn, gen, nil
	k.mu.Unlock()
	k.kickKeeper()
}

// detach marks the deliveries of connection gen stale (supervisor).
func (k *Consumer) detach(gen uint64) {
	k.mu.Lock()
	if k.gen == gen {
		k.conn, k.cur = nil, nil
	}
	var gone []*consumerSession
	for s := range k.all {
		if s.gen == gen {
			gone = append(gone, s)
		}
	}
	k.mu.Unlock()
	for _, s := range gone {
		s.die()
	}
}

func (k *Consumer) setBlocked(uint64, bool) {}

// refusedFirst hands a broker's refusal of the first registration to
// Consume, and reports whether it did.
func (k *Consumer) refusedFirst(err error) bool {
	k.mu.Lock()
	started := k.started
	k.mu.Unlock()
	if started || !isBrokerRefusal(err) {
		return false
	}
	select {
	case k.first <- err:
	default:
	}
	return true
}

func (k *Consumer) kickKeeper() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// register opens a channel on conn and registers the consumer on it,
// unless it is registered already or conn is no longer current. Only the
// keeper calls it.
func (k *Consumer) register(gen uint64, conn *amqp.Connection) error {
	k.mu.Lock()
	skip := k.stopping || k.gen != gen || k.cur != nil
	k.mu.Unlock()
	if skip {
		return nil
	}
	name := k.c.topo.currentName(k.queue)
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	cancels := ch.NotifyCancel(make(chan string, 1))
	if err := ch.Qos(k.cfg.Prefetch, 0, false); err != nil {
		ch.Close()
		return err
	}
	deliveries, err := ch.Consume(name, k.cfg.Tag, false, k.cfg.Exclusive, false, false, k.cfg.Args)
	if err != nil {
		ch.Close()
		return err
	}
	ctx, cancel := context.WithCancel(k.hard)
	// More handlers than Prefetch never run at once on one channel.
	pumps := min(k.cfg.Concurrency, k.cfg.Prefetch)
	s := &consumerSession{k: k, gen: gen, ch: ch, ctx: ctx, cancel: cancel, pumps: pumps, pumping: pumps}
	k.mu.Lock()
	if k.stopping || k.gen != gen {
		k.mu.Unlock()
		s.die()
		ch.Close()
		return nil
	}
	k.cur = s
	k.all[s] = struct{}{}
	again := k.started
	k.started = true
	k.told = false
	k.mu.Unlock()
	n := k.registrations.Add(1)
	for range s.pumps {
		k.bg.Go(func() { k.pump(s, deliveries) })
	}
	k.bg.Go(func() { k.watch(s, closed, cancels) })
	if again {
		k.log.Info("consumer registered again", "queue_now", name, "registrations", n)
		k.sup.emit(Event{Kind: EventConsumerRegistered, Queue: name, Consumer: k.cfg.Tag, Generation: gen})
	} else {
		select {
		case k.first <- nil:
		default:
		}
	}
	return nil
}

// pump runs the handler for each of the session's deliveries in its own
// goroutine, as a plain amqp091-go consumer would: no hand-over to another
// goroutine per message. A session has one pump per handler that can run
// at once (Concurrency, at most Prefetch); the consumer's slots bound the
// handlers running across all its sessions.
func (k *Consumer) pump(s *consumerSession, deliveries <-chan amqp.Delivery) {
	defer s.pumpDone()
	for m := range deliveries {
		s.mu.Lock()
		s.unsettled++
		s.mu.Unlock()
		d := &Delivery{Delivery: m, Generation: s.gen, s: s}
		if !k.takeSlot() {
			s.settledOne() // not handled: back to the queue with the channel
			// amqp091-go's channel cannot close while a delivery waits to
			// be read: drain until it is closed.
			for range deliveries {
			}
			return
		}
		k.handle(d)
		<-k.slots
	}
}

// takeSlot waits for a handler's slot, and reports false once Close began
// (holding no slot then).
func (k *Consumer) takeSlot() bool {
	select {
	case k.slots <- struct{}{}:
	case <-k.stopTaking:
		return false
	}
	select {
	case <-k.stopTaking: // both were ready and select took the slot
		<-k.slots
		return false
	default:
		return true
	}
}

// waitHandlers takes every slot, so that no handler runs any more and
// none starts, until ctx ends.
func (k *Consumer) waitHandlers(ctx context.Context) error {
	for range cap(k.slots) {
		select {
		case k.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// watch follows the session's channel: a cancellation by the broker or a
// channel the broker closed makes the consumer register again.
func (k *Consumer) watch(s *consumerSession, closed <-chan *amqp.Error, cancels <-chan string) {
	for {
		select {
		case _, ok := <-cancels:
			if !ok {
				cancels = nil
				continue
			}
			k.ended(s, errors.New("amqpha: consumer cancelled by the broker"))
		case e, ok := <-closed:
			s.die()
			k.mu.Lock()
			delete(k.all, s)
			k.mu.Unlock()
			var err error
			if ok && e != nil {
				err = e
			}
			k.ended(s, err)
			return
		}
	}
}

// ended handles the end of session s's registration. A cancellation or a
// channel error while the connection lives is reported and the consumer is
// registered again by the keeper; a lost connection is handled when the
// supervisor attaches the next one.
func (k *Consumer) ended(s *consumerSession, cause error) {
	k.mu.Lock()
	current := k.cur == s
	if current {
		k.cur = nil
	}
	live := k.conn != nil && !k.conn.IsClosed() && !k.stopping && k.gen == s.gen
	if current && live {
		k.told = true
	}
	k.mu.Unlock()
	if !current || !live {
		return
	}
	name := k.c.topo.currentName(k.queue)
	k.log.Warn("consumer cancelled; registering again", "queue_now", name, "err", cause)
	k.sup.emit(Event{Kind: EventConsumerCancelled, Queue: name, Consumer: k.cfg.Tag, Generation: s.gen, Err: cause})
	k.kickKeeper()
}

// refusedAgain reports a broker's refusal to register the consumer again
// on connection gen as EventConsumerCancelled, unless the program was told
// already that the consumer is not registered. A cancellation that came
// while the connection was being replaced (the queue deleted meanwhile)
// died with that connection; this refusal is then the only news of it.
func (k *Consumer) refusedAgain(gen uint64, err error) {
	if !isBrokerRefusal(err) {
		return
	}
	k.mu.Lock()
	tell := k.started && !k.told && !k.stopping && k.gen == gen && k.cur == nil
	if tell {
		k.told = true
	}
	k.mu.Unlock()
	if !tell {
		return
	}
	name := k.c.topo.currentName(k.queue)
	k.sup.emit(Event{Kind: EventConsumerCancelled, Queue: name, Consumer: k.cfg.Tag, Generation: gen, Err: err})
}

// keep registers the consumer: at once on each new connection, and again
// with backoff after a cancellation or a failed registration while the
// connection lives.
func (k *Consumer) keep() {
	bo := k.c.newBackoff()
	var lastGen uint64
	for {
		select {
		case <-k.stopTaking:
			return
		case <-k.kick:
		}
		for {
			k.mu.Lock()
			conn, gen := k.conn, k.gen
			need := k.cur == nil && conn != nil && !k.stopping
			k.mu.Unlock()
			if !need {
				break
			}
			if gen == lastGen {
				// Not the first try on this connection: back off.
				t := time.NewTimer(bo.NextBackOff())
				select {
				case <-k.stopTaking:
					t.Stop()
					return
				case <-t.C:
				}
				// A queue declared through the client comes back with
				// its bindings if it was deleted.
				if err := k.c.topo.redeclareQueue(k.hard, conn, k.queue); err != nil {
					k.log.Warn("declaring the consumer's queue again failed", "err", err)
				}
			} else {
				lastGen = gen
				bo.Reset()
			}
			if err := k.register(gen, conn); err != nil {
				if k.refusedFirst(err) {
					return
				}
				k.log.Warn("consumer registration failed; trying again", "err", err)
				k.refusedAgain(gen, err)
				continue
			}
			bo.Reset()
		}
	}
}

func (k *Consumer) handle(d *Delivery) {
	if d.Stale() {
		d.settled.Store(true)
		d.s.settledOne() // its channel is gone: the broker delivers it again
		return
	}
	if k.metrics != nil {
		k.metrics.Delivered()
	}
	a := k.handler(d.s.ctx, d)
	if err := d.apply(a); err != nil && !errors.Is(err, ErrSettled) {
		if errors.Is(err, ErrStaleDelivery) {
			k.log.Debug("delivery's channel lost before its "+a.String()+"; the broker delivers it again", "err", err)
		} else {
			k.log.Warn("settling a delivery failed", "action", a.String(), "err", err)
		}
	}
}

// Close stops the consumer gracefully: it stops taking deliveries (and
// asks the broker to stop sending), lets running handlers finish until ctx
// ends, cancels the contexts of those still running, and closes its
// channels; deliveries not acknowledged by then go back to the queue. It is
// safe to call twice; the second call returns the first's result.
func (k *Consumer) Close(ctx context.Context) error {
	k.closeOnce.Do(func() {
		k.mu.Lock()
		k.stopping = true
		cur := k.cur
		k.mu.Unlock()
		close(k.stopTaking)
		k.sup.removeAttachment(k)
		// amqp091-go matches replies to requests by arrival, so the
		// channel is closed only after basic.cancel-ok.
		cancelled := make(chan struct{})
		if cur != nil {
			k.bg.Go(func() {
				defer close(cancelled)
				cur.ch.Cancel(k.cfg.Tag, false)
			})
		} else {
			close(cancelled)
		}
		var err error
		if werr := k.waitHandlers(ctx); werr != nil {
			k.hardCancel()
			err = fmt.Errorf("amqpha: consumer closed with handlers still running: %w", werr)
		}
		k.hardCancel()
		select {
		case <-cancelled:
		case <-ctx.Done():
		}
		k.mu.Lock()
		sessions := make([]*consumerSession, 0, len(k.all))
		for s := range k.all {
			sessions = append(sessions, s)
		}
		k.mu.Unlock()
		for _, s := range sessions {
			s.closeChannel()
		}
		werr := waitCtx(ctx, &k.bg)
		if werr != nil && err == nil {
			err = fmt.Errorf("amqpha: consumer channels not closed yet: %w", werr)
		}
		if werr == nil {
			// Otherwise Client.Close waits for the rest.
			k.c.mu.Lock()
			delete(k.c.consumers, k)
			k.c.mu.Unlock()
		}
		k.closeErr = err
	})
	return k.closeErr
}
