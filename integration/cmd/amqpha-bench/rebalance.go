package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
)

// rebalanceOptions configures the rebalancing mode (-rebalance N).
type rebalanceOptions struct {
	rounds   int
	interval time.Duration // Config.RebalanceInterval
	rate     float64       // publishes per second per connection; 0: full speed
	fault    string        // "kill" (SIGKILL) or "stop" (graceful shutdown)
	steady   time.Duration // steady-state publishing measured before each fault
	hang     time.Duration // Config.HangTimeout; 0: amqpha's default
	verbose  bool          // the client's log on stderr
}

// retireAfter is how long amqpha keeps a connection left by a rebalancing
// move open so that its messages in flight are confirmed there (see
// amqpha.Config.RebalanceInterval). The move window lasts until then and a
// second more, so that republishing whatever was still unconfirmed counts.
const retireAfter = 5 * time.Second

// notMoving starts the message amqpha logs when a rebalancing move gave up
// because the less used node did not answer its dial.
const notMoving = "not moving"

// rebalance measures rebalancing: with Config.Connections 3 over the 3
// nodes and one publisher per connection publishing all along, each round
// takes a node away (SIGKILL or graceful stop), waits until its connection
// has moved onto another node, starts it again and measures how long until
// a connection is back on it, and how publishing fared while that
// connection moved: errors, confirm latencies, lost and duplicated
// messages. Each round publishes into a fresh quorum queue.
func rebalance(ctx context.Context, c *cluster.Cluster, o rebalanceOptions) error {
	if o.fault != "kill" && o.fault != "stop" {
		return fmt.Errorf("-rebalance-fault %q: want kill or stop", o.fault)
	}
	rec := &recorder{}
	var logTo slog.Handler = slog.DiscardHandler
	if o.verbose {
		logTo = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cl, err := amqpha.Dial(dctx, amqpha.Config{
		Nodes:             c.URIs(),
		Connections:       len(c.Nodes()),
		RebalanceInterval: o.interval,
		HangTimeout:       o.hang,
		OnEvent:           rec.event,
		Logger:            slog.New(&countingHandler{rec: rec, next: logTo}),
	})
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cl.Close(ctx)
	}()
	// One publisher per connection: NewPublisher takes the connection
	// with the fewest publishers.
	var pubs []*amqpha.Publisher
	for range len(c.Nodes()) {
		p, err := cl.NewPublisher(amqpha.PublisherConfig{})
		if err != nil {
			return err
		}
		pubs = append(pubs, p)
	}
	var results []roundResult
	var failure error
	for r := range o.rounds {
		res, err := rebalanceRound(ctx, c, cl, pubs, rec, o, r)
		if err != nil {
			failure = fmt.Errorf("rebalance round %d: %w", r, err)
			break
		}
		results = append(results, res)
	}
	if len(results) > 0 {
		printRebalance(o, results)
	}
	if failure != nil {
		return failure
	}
	var errs, lost int
	for _, res := range results {
		errs += res.moveErrs
		lost += res.lost
	}
	if errs > 0 || lost > 0 {
		return fmt.Errorf("rebalancing: %d publish errors while connections moved, %d confirmed messages lost", errs, lost)
	}
	return nil
}

// roundResult is what one round measured.
type roundResult struct {
	victim      int           // the node's index
	away        time.Duration // fault → no connection left on the node
	back        time.Duration // node back (accepting AMQP or Start returned) → a connection on it
	amqpUp      time.Duration // Start returned → node accepts AMQP (negative: before)
	failedMoves int           // moves given up because the node did not answer, fault → back on it
	moveErrs    int           // publish errors of publishes overlapping the move window
	errs        int           // publish errors in the whole round
	firstErr    error
	moveMax     time.Duration // longest Publish overlapping the move window
	moveN       int           // publishes overlapping the move window
	movedMax    time.Duration // longest Publish of the connection that went back, around its move
	movedConn   string        // that connection, "" if none was seen arriving
	// movedSlowest is when the slowest of those publishes started,
	// relative to the connection's arrival.
	movedSlowest time.Duration
	awayMax      time.Duration // longest Publish between fault and node back
	steady       []time.Duration
	losses       int // connections lost (EventReconnecting) during the move window
	confirmed    int
	lost, dups   int
	moveDups     int // duplicates of messages published in the move window
}

func rebalanceRound(ctx context.Context, c *cluster.Cluster, cl *amqpha.Client, pubs []*amqpha.Publisher, rec *recorder, o rebalanceOptions, r int) (res roundResult, err error) {
	queue := fmt.Sprintf("bench-rebalance-%d", r)
	if err := declare(c, queue); err != nil {
		return res, err
	}
	nodes := c.Nodes()
	if err := waitConnections(ctx, 2*time.Minute, "connections on every node", cl, func(cs []*cluster.Node) bool {
		return spread(cs) == len(nodes)
	}, c); err != nil {
		return res, err
	}
	l := startPublishing(ctx, pubs, queue, o.rate)
	defer l.stop() // on an early return; stop is idempotent
	if err := l.waitConfirms(int64(20*len(pubs)), time.Minute); err != nil {
		return res, err
	}
	steadyFrom := time.Now()
	if err := sleep(ctx, o.steady); err != nil {
		return res, err
	}

	victim := nodes[r%len(nodes)]
	res.victim = victim.Index()
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	// Watched from before the fault: a graceful stop closes the client's
	// connection long before the node has exited and Stop returns.
	actx, stopAway := context.WithTimeout(ctx, 3*time.Minute)
	defer stopAway()
	awayAt := firstTime(actx, 2*time.Millisecond, func() bool {
		cs := connectionNodes(c, cl)
		return !slices.Contains(cs, victim) && !slices.Contains(cs, nil)
	})
	faultAt := time.Now()
	if o.fault == "kill" {
		err = victim.Kill(fctx) // returns once the process is gone
	} else {
		err = victim.Stop(fctx) // returns once the node has exited
	}
	if err != nil {
		return res, err
	}
	away, ok := <-awayAt
	if !ok {
		return res, fmt.Errorf("the node's connection did not move elsewhere in 3 min: %s", describe(c, cl))
	}
	res.away = away.Sub(faultAt)

	// The node is back when it accepts AMQP or Start returns, whichever
	// comes first: Start waits for rabbitmqctl, which may see the node
	// running after its listener opened. Both watchers start before the
	// node does.
	wctx, stopWatch := context.WithTimeout(ctx, 5*time.Minute)
	defer stopWatch()
	onAt := firstTime(wctx, 2*time.Millisecond, func() bool { return slices.Contains(connectionNodes(c, cl), victim) })
	upAt := firstTime(wctx, 10*time.Millisecond, func() bool { return acceptsAMQP(victim) })
	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := victim.Start(sctx); err != nil {
		return res, err
	}
	started := time.Now()
	up, ok := <-upAt
	if !ok {
		return res, fmt.Errorf("%s does not accept AMQP connections though it started", victim.Name())
	}
	backAt := started
	if up.Before(started) {
		backAt = up
	}
	res.amqpUp = up.Sub(started)
	on, ok := <-onAt
	if !ok {
		return res, fmt.Errorf("no connection on %s within 5 min of its start: %s", victim.Name(), describe(c, cl))
	}
	res.back = on.Sub(backAt)
	windowEnd := on.Add(retireAfter + time.Second)
	if err := sleep(ctx, time.Until(windowEnd)); err != nil {
		return res, err
	}
	l.stop()
	fmt.Fprintf(os.Stderr, "round %d: %s %s; its connection moved away after %v; node back → connection on it %v (it accepted AMQP %v after Start returned)\n",
		r, o.fault, victim, res.away.Round(time.Millisecond), res.back.Round(time.Millisecond), res.amqpUp.Round(time.Millisecond))
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := c.WaitClustered(cctx); err != nil {
		return res, err
	}

	// Every Publish call, placed on the round's timeline.
	for g, ss := range l.samples {
		for _, s := range ss {
			lat := time.Duration(s.end - s.start)
			switch {
			case s.start >= steadyFrom.UnixNano() && s.end <= faultAt.UnixNano():
				res.steady = append(res.steady, lat)
			case s.end >= backAt.UnixNano() && s.start <= windowEnd.UnixNano():
				res.moveN++
				res.moveMax = max(res.moveMax, lat)
				if s.err != nil {
					res.moveErrs++
				}
			case s.end > faultAt.UnixNano() && s.start < backAt.UnixNano():
				res.awayMax = max(res.awayMax, lat)
			}
			if s.err != nil {
				res.errs++
				if res.firstErr == nil {
					res.firstErr = fmt.Errorf("publisher %d: %w", g, s.err)
				}
			}
		}
	}
	// The publisher of the connection that went back to the node, around
	// its arrival there: publisher g publishes on connection "publish-g"
	// (each NewPublisher took the first connection with the fewest).
	for _, e := range rec.find(amqpha.EventReady, backAt.Add(-time.Second), windowEnd) {
		var g int
		if nodeAt(c, e.Node) != victim {
			continue
		}
		if _, err := fmt.Sscanf(e.Connection, "publish-%d", &g); err != nil || g < 0 || g >= len(l.samples) {
			continue
		}
		res.movedConn = e.Connection
		from, to := e.Time.Add(-time.Second).UnixNano(), e.Time.Add(retireAfter+time.Second).UnixNano()
		for _, s := range l.samples[g] {
			if d := time.Duration(s.end - s.start); s.end >= from && s.start <= to && d > res.movedMax {
				res.movedMax = d
				res.movedSlowest = time.Duration(s.start - e.Time.UnixNano())
			}
		}
		break
	}
	lossEvents := rec.find(amqpha.EventReconnecting, backAt, windowEnd)
	res.losses = len(lossEvents)
	for _, e := range lossEvents {
		fmt.Fprintf(os.Stderr, "round %d: %v after the node was back: %s on %s lost: %v\n",
			r, e.Time.Sub(backAt).Round(time.Millisecond), e.Connection, nameOf(c, e.Node), e.Err)
	}
	res.failedMoves = rec.countLogs(faultAt, on)
	fmt.Fprintf(os.Stderr, "round %d: longest Publish: %v while the node was away, %v in the move window, %v on %s around its move (started %v after it was ready on the node; steady p99 %v); %d failed move dials\n",
		r, res.awayMax.Round(time.Millisecond), res.moveMax.Round(time.Millisecond), res.movedMax.Round(time.Millisecond), res.movedConn,
		res.movedSlowest.Round(time.Millisecond),
		percentile(res.steady, 0.99).Round(time.Millisecond), res.failedMoves)
	if res.firstErr != nil {
		fmt.Fprintf(os.Stderr, "round %d: %d publish errors, the first: %v\n", r, res.errs, res.firstErr)
	}

	seen, err := countQueue(c, queue)
	if err != nil {
		return res, err
	}
	for g, ss := range l.samples {
		for i, s := range ss {
			k := seen[l.id(g, i)]
			if s.err == nil {
				res.confirmed++
				if k == 0 {
					res.lost++
				}
			}
			if k > 1 {
				res.dups += k - 1
				if s.end >= backAt.UnixNano() && s.start <= windowEnd.UnixNano() {
					res.moveDups += k - 1
				}
			}
		}
	}
	return res, deleteQueue(c, queue)
}

// firstTime checks cond every interval and sends the time it first held;
// the channel closes without a value if ctx ends first.
func firstTime(ctx context.Context, every time.Duration, cond func() bool) <-chan time.Time {
	at := make(chan time.Time, 1)
	go func() {
		defer close(at)
		for ctx.Err() == nil {
			if cond() {
				at <- time.Now()
				return
			}
			sleep(ctx, every)
		}
	}()
	return at
}

// acceptsAMQP reports whether a plain AMQP connection to n opens (directly,
// not through the harness's proxy).
func acceptsAMQP(n *cluster.Node) bool {
	conn, err := amqp.DialConfig(n.DirectURI(), amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err == nil {
		conn.Close()
	}
	return err == nil
}

// publishing runs one goroutine per publisher, each publishing its next
// message once the previous one returned (at most rate per second when
// rate > 0), until stopped. It records every Publish call.
type publishing struct {
	queue    string
	done     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	n        atomic.Int64 // confirmed so far
	// samples[g] is written by goroutine g only, and read after stop.
	samples [][]sample
}

// sample is one Publish call: when it started and returned, and its
// error.
type sample struct {
	start, end int64 // Unix nanoseconds
	err        error
}

func startPublishing(ctx context.Context, pubs []*amqpha.Publisher, queue string, rate float64) *publishing {
	l := &publishing{queue: queue, done: make(chan struct{}), samples: make([][]sample, len(pubs))}
	for g, p := range pubs {
		l.wg.Go(func() {
			began := time.Now()
			for i := 0; i < 100_000_000; i++ {
				if rate > 0 {
					if err := sleepOr(l.done, time.Until(began.Add(time.Duration(float64(i)/rate*float64(time.Second))))); err != nil {
						return
					}
				}
				select {
				case <-l.done:
					return
				default:
				}
				start := time.Now().UnixNano()
				pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				err := p.Publish(pctx, "", queue, amqp.Publishing{MessageId: l.id(g, i), Body: body})
				cancel()
				l.samples[g] = append(l.samples[g], sample{start: start, end: time.Now().UnixNano(), err: err})
				if err == nil {
					l.n.Add(1)
				} else if sleepOr(l.done, 10*time.Millisecond) != nil { // no busy loop on a failing publisher
					return
				}
			}
		})
	}
	return l
}

// id is the message-id of publisher g's i-th message.
func (l *publishing) id(g, i int) string { return fmt.Sprintf("%s-%d-%d", l.queue, g, i) }

func (l *publishing) waitConfirms(n int64, timeout time.Duration) error {
	return waitCount(&l.n, n, timeout)
}

// stop ends the goroutines and waits for them; safe to call twice.
func (l *publishing) stop() {
	l.stopOnce.Do(func() { close(l.done) })
	l.wg.Wait()
}

// sleepOr waits for d, or returns an error at once when done closes.
func sleepOr(done <-chan struct{}, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-done:
		return errors.New("stopped")
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if err := sleepOr(ctx.Done(), d); err != nil {
		return ctx.Err()
	}
	return nil
}

// connectionNodes is the node of each of the client's connections, nil
// for one that has none.
func connectionNodes(c *cluster.Cluster, cl *amqpha.Client) []*cluster.Node {
	var out []*cluster.Node
	for _, cs := range cl.Connections() {
		var n *cluster.Node
		if cs.Node != "" {
			n = nodeAt(c, cs.Node)
		}
		out = append(out, n)
	}
	return out
}

// spread counts the distinct nodes of cs.
func spread(cs []*cluster.Node) int {
	k := 0
	for i, n := range cs {
		if n != nil && !slices.Contains(cs[:i], n) {
			k++
		}
	}
	return k
}

// nameOf names the node at addr (redacted), as "node N".
func nameOf(c *cluster.Cluster, addr string) string {
	if n := nodeAt(c, addr); n != nil {
		return fmt.Sprintf("node %d", n.Index())
	}
	return addr
}

func describe(c *cluster.Cluster, cl *amqpha.Client) string {
	var parts []string
	for i, n := range connectionNodes(c, cl) {
		name := "none"
		if n != nil {
			name = n.Name()
		}
		parts = append(parts, fmt.Sprintf("connection %d on %s", i, name))
	}
	return strings.Join(parts, ", ")
}

// waitConnections polls the client's connections every 2 ms until cond
// holds for their nodes, for timeout at most.
func waitConnections(ctx context.Context, timeout time.Duration, what string, cl *amqpha.Client, cond func([]*cluster.Node) bool, c *cluster.Cluster) error {
	deadline := time.Now().Add(timeout)
	for !cond(connectionNodes(c, cl)) {
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting %v for %s: %s", timeout, what, describe(c, cl))
		}
		if err := sleep(ctx, 2*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// recorder keeps the client's events and the times of its failed moves.
type recorder struct {
	mu     sync.Mutex
	events []amqpha.Event
	moves  []time.Time // notMoving log records
}

func (r *recorder) event(e amqpha.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// find returns the events of kind k from from to to.
func (r *recorder) find(k amqpha.EventKind, from, to time.Time) []amqpha.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []amqpha.Event
	for _, e := range r.events {
		if e.Kind == k && !e.Time.Before(from) && !e.Time.After(to) {
			out = append(out, e)
		}
	}
	return out
}

// countLogs is the number of failed moves from from to to.
func (r *recorder) countLogs(from, to time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.moves {
		if !t.Before(from) && !t.After(to) {
			n++
		}
	}
	return n
}

// countingHandler notes the client's failed moves, which it reports only
// in its log, and passes every record on to next.
type countingHandler struct {
	rec  *recorder
	next slog.Handler
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, notMoving) {
		h.rec.mu.Lock()
		h.rec.moves = append(h.rec.moves, r.Time)
		h.rec.mu.Unlock()
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *countingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &countingHandler{rec: h.rec, next: h.next.WithAttrs(as)}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{rec: h.rec, next: h.next.WithGroup(name)}
}

// percentile is the p-th percentile (0 < p ≤ 1) of ds, 0 for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func lat(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func printRebalance(o rebalanceOptions, results []roundResult) {
	what := map[string]string{"kill": "SIGKILL", "stop": "graceful stop"}[o.fault]
	hang := "default"
	switch {
	case o.hang < 0:
		hang = "off"
	case o.hang > 0:
		hang = o.hang.String()
	}
	rate := "full speed"
	if o.rate > 0 {
		rate = fmt.Sprintf("%g msg/s each", o.rate)
	}
	fmt.Printf("### Rebalancing: %s of a node, its connection moves away; the node restarts → a connection moves back to it\n\n", what)
	fmt.Printf("Connections: 3 over 3 nodes, RebalanceInterval %v, HangTimeout %s, one publisher per connection (one Publish at a time, %s) into a quorum queue. The move window runs from the node's restart (it accepts AMQP, or harness Start returned if sooner) to %v after a connection is back on it (the old connection closes %v after the move).\n\n",
		o.interval, hang, rate, retireAfter+time.Second, retireAfter)
	fmt.Println("| round | node | restart → connection on it | failed move dials | publishes in move window | errors in move window | max confirm latency in move window (on the moved connection) | steady p50 | steady p99 | connections lost in window | confirmed | lost | duplicates (in window) |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var backs []time.Duration
	var steady []time.Duration
	var moveMax, movedMax time.Duration
	var moveErrs, errs, losses, confirmed, lost, dups, moveDups int
	for i, res := range results {
		fmt.Printf("| %d | %d | %v | %d | %d | %d | %s (%s) | %s | %s | %d | %d | %d | %d (%d) |\n", i, res.victim,
			ms(res.back.Seconds()), res.failedMoves, res.moveN, res.moveErrs, lat(res.moveMax), lat(res.movedMax),
			lat(percentile(res.steady, 0.5)), lat(percentile(res.steady, 0.99)), res.losses, res.confirmed, res.lost, res.dups, res.moveDups)
		backs = append(backs, res.back)
		steady = append(steady, res.steady...)
		moveMax = max(moveMax, res.moveMax)
		movedMax = max(movedMax, res.movedMax)
		moveErrs += res.moveErrs
		errs += res.errs
		losses += res.losses
		confirmed += res.confirmed
		lost += res.lost
		dups += res.dups
		moveDups += res.moveDups
	}
	fmt.Println()
	fmt.Println("| rounds | median restart → connection | worst | max confirm latency in move windows (on the moved connections) | steady p50 | steady p99 | publish errors in move windows (whole run) | connections lost in move windows | confirmed | lost | duplicates (in move windows) |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Printf("| %d | %v | %v | %s (%s) | %s | %s | %d (%d) | %d | %d | %d | %d (%d) |\n\n", len(results),
		ms(median(durs(backs))), ms(slices.Max(durs(backs))), lat(moveMax), lat(movedMax),
		lat(percentile(steady, 0.5)), lat(percentile(steady, 0.99)), moveErrs, errs, losses, confirmed, lost, dups, moveDups)
	fmt.Printf("Steady state: the %v before each fault, all connections on their own nodes. The moved connection's latency covers its publisher's calls from 1 s before it was ready on the node to %v after. Connections lost: EventReconnecting (a move is not one). \"Failed move dials\": moves the client gave up, from the fault until a connection was back, because the node did not answer (each quarantines the node for that connection, 1 s doubling). Duplicates: extra copies in the queue of one message-id, most from messages in flight on the connection the fault broke, published again; those \"in window\" were published during the move window.\n\n", o.steady, retireAfter+time.Second)
}
