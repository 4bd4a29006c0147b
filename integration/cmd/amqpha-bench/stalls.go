package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
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

// Stall mode (-stalls N): two clients publish side by side on one cluster
// into one quorum queue, each one message at a time (the next publish waits
// for the confirm of the one before), persistent 1 KiB messages with a
// message-id each that names the client:
//
//   - amqpha with its default settings and a Publisher of window 1;
//   - "loop", the reconnect loop people write on raw amqp091-go (see
//     stallLoop), in a process of its own (see loopproc.go): one
//     connection, one confirm-mode channel; on any failure it closes the
//     connection, dials the next node at once and sends the same message
//     again until it is acked.
//
// Before each fault both clients' connections are on one node and the
// queue's leader on another; the fault hits either the clients' node
// ("connected") or the leader's node ("leader"), stays for -stall-hold and
// is undone (a hang held past net_ticktime by killing and starting the
// node: see hungDown). Every round starts from a fresh placement: a fresh
// queue declared through the leader-to-be (3.10 places a quorum queue's
// leader on the declaring node), fresh clients dialed onto the other node;
// the placement is checked right before the fault (the leader with
// rabbitmq-queues quorum_status) and a round found misplaced is run again
// from scratch, and counted.
//
// The stall of a client in a round is the longest gap between two of its
// consecutive confirms that overlaps the fault, from its injection until
// the undo begins: the gap around the injection counts, and so does a gap
// still open when the undo begins, until its next confirm. The round's
// window lasts until the fault has been undone for stallSettle and each
// client has had stallAfterUndo confirms since (at most
// stallMaxAfterUndo); a client with no confirm by then is reported as
// stalled at least until then. Gaps after the undo (a node restarting,
// reviving, its traffic flowing again) are reported apart.
//
// A fault of the leader's node makes the queue elect a new leader, which
// takes its own time each round (Raft's randomized timeouts); one queue
// for both clients puts the same election in front of both, and each
// client's stall is also reported minus that election (see election),
// which is what the client adds to the cluster's election.

// stallOptions configures the stall mode.
type stallOptions struct {
	rounds  int // per fault kind and target; 0 skips the mode
	faults  string
	targets string
	hold    time.Duration // how long each fault stays before it is undone
	verbose bool          // both clients' logs on stderr
}

// The faults the stall mode applies, each with its undo.
var stallFaults = []string{"kill", "hang", "stop", "drain", "cut"}

// The nodes a fault can hit.
var stallTargets = []string{"connected", "leader"}

const (
	// The loop's settings: amqp091-go's default heartbeat, a 5 s bound on
	// the dial (TCP and AMQP handshake; amqp091-go's own is 30 s) and on
	// each confirm, and a short pause only once every node refused in a row.
	loopHeartbeat      = 10 * time.Second
	loopDialTimeout    = 5 * time.Second
	loopConfirmTimeout = 5 * time.Second
	loopRefusedPause   = 50 * time.Millisecond
	loopCloseTimeout   = 2 * time.Second

	stallWarmConfirms  = 50               // each client's confirms before the fault
	stallAfterUndo     = 20               // each client's confirms after the undo, at least
	stallSettle        = 3 * time.Second  // the window lasts at least this long after the undo
	stallMaxAfterUndo  = 60 * time.Second // and at most this long
	stallPlaceAttempts = 3                // fresh placements per round before giving up
	stallPublishBound  = 2 * time.Minute  // one amqpha Publish call
)

// errMisplaced marks a round whose placement was wrong before its fault.
var errMisplaced = errors.New("misplaced")

// stallSide is one client's result of one round.
type stallSide struct {
	stall      time.Duration
	at         time.Duration // when the longest gap began, from the fault
	unfinished bool          // no confirm after the fault until the window's end
	afterUndo  time.Duration // the longest gap after the first confirm once the undo began
	// With an election in the round: the gap between the client's
	// confirms across the new leader's election, and whether no confirm
	// ended it by the window's end. The stall, when the election caused
	// the longest gap.
	elGap      time.Duration
	elGapOpen  bool
	confirmed  int
	lost, dups int
	errs       int
	firstErr   error
}

// election is a quorum queue's change of leader in a round, from its
// members' own log lines (cluster.Node.QuorumEvents): the first member on
// a node other than the old leader's and the victim's that entered the
// leader state after the fault, until the window's end. It is timed from
// the fault, except for a fault that lets the old leader lead on for a
// while (stop, drain: the node stops its Raft servers some way into its
// shutdown or drain, a CLI call for drain): then from the first follower's
// "Leader monitor down" before the new leader, the moment the queue lost
// its leader, if one logged it.
type election struct {
	ok   bool
	took time.Duration // to the new leader, from the fault or the old leader's exit
	at   time.Duration // the new leader, from the fault
	gone time.Duration // the old leader's exit, from the fault; 0 when timed from the fault
	node string        // the new leader's
}

// electionFromExit says whether fault's elections are timed from the old
// leader's exit rather than from the fault (see election).
func electionFromExit(fault string) bool { return fault == "stop" || fault == "drain" }

// queueElection finds queue's election in evs, the quorum events of the
// nodes other than the old leader's and the victim's, for a fault at t0
// and a window ending at end (see election).
func queueElection(evs []cluster.QuorumEvent, queue string, t0, end time.Time, fromExit bool) election {
	var el election
	var leader time.Time
	for _, ev := range evs {
		if ev.Kind == cluster.BecameLeader && ev.VHost == "/" && ev.Queue == queue &&
			!ev.Time.Before(t0) && !ev.Time.After(end) && (!el.ok || ev.Time.Before(leader)) {
			el.ok, leader, el.node = true, ev.Time, ev.Node
		}
	}
	if !el.ok {
		return election{}
	}
	from := t0
	if fromExit {
		gone := leader
		for _, ev := range evs {
			if ev.Kind == cluster.LeaderDown && ev.VHost == "/" && ev.Queue == queue &&
				!ev.Time.Before(t0) && ev.Time.Before(gone) {
				gone = ev.Time
			}
		}
		if gone.Before(leader) {
			from, el.gone = gone, gone.Sub(t0)
		}
	}
	el.took, el.at = leader.Sub(from), leader.Sub(t0)
	return el
}

// gapAcross is the gap between the confirms of cs (in time order) on
// either side of at: from the last one before at (or at, if none) to the
// first one after it, or to end, unfinished, if none came by end.
func gapAcross(cs []stallConfirm, at, end time.Time) (gap time.Duration, unfinished bool) {
	i, found := slices.BinarySearchFunc(cs, at, cmpConfirm)
	if found {
		i++
	}
	prev := at
	if i > 0 {
		prev = cs[i-1].at
	}
	if i == len(cs) || cs[i].at.After(end) {
		return end.Sub(prev), true
	}
	return cs[i].at.Sub(prev), false
}

// quorumEvents collects the quorum events logged since t0 on the nodes
// that are neither the old leader's nor the victim's, once every line
// logged by end has reached the log files.
func quorumEvents(ctx context.Context, c *cluster.Cluster, oldLeader, victim *cluster.Node, t0, end time.Time) ([]cluster.QuorumEvent, error) {
	if err := sleep(ctx, time.Until(end.Add(cluster.LogFlushDelay))); err != nil {
		return nil, err
	}
	var evs []cluster.QuorumEvent
	for _, n := range c.Nodes() {
		if n == oldLeader || n == victim {
			continue
		}
		got, err := n.QuorumEvents(ctx, t0)
		if err != nil {
			return nil, err
		}
		evs = append(evs, got...)
	}
	return evs, nil
}

// stallRound is one round's result.
type stallRound struct {
	victim       *cluster.Node
	amqpha, loop stallSide
	election     election // the queue's, if the round had one
	took         time.Duration
	reconnects   []amqpha.Event // amqpha's connection losses from its dial to the window's end
}

// stallRow is one fault kind and target.
type stallRow struct {
	fault, target string
	rounds        []stallRound
	misplaced     int
}

func stalls(ctx context.Context, c *cluster.Cluster, o stallOptions) error {
	faults, err := pick("-stall-faults", o.faults, stallFaults)
	if err != nil {
		return err
	}
	targets, err := pick("-stall-targets", o.targets, stallTargets)
	if err != nil {
		return err
	}
	var rows []*stallRow
	var failure error
	k := 0 // rounds so far: the nodes' roles rotate with it
	began := time.Now()
run:
	for _, fault := range faults {
		for _, target := range targets {
			row := &stallRow{fault: fault, target: target}
			rows = append(rows, row)
			for r := 0; r < o.rounds; r++ {
				res, err := stallRoundPlaced(ctx, c, o, row, k, r)
				k++
				if err != nil {
					failure = fmt.Errorf("stalls: %s of the %s node, round %d: %w", fault, target, r, err)
					break run
				}
				row.rounds = append(row.rounds, res)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "stalls: %d rounds in %v\n", k, time.Since(began).Round(time.Second))
	lost := printStalls(o, rows)
	if failure != nil {
		return failure
	}
	if lost > 0 {
		return fmt.Errorf("stalls: amqpha lost %d confirmed messages", lost)
	}
	return nil
}

// pick parses a comma list of names from all; "" means all.
func pick(flagName, list string, all []string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return all, nil
	}
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(all, s) {
			return nil, fmt.Errorf("%s: %q, want some of %s", flagName, s, strings.Join(all, ","))
		}
		out = append(out, s)
	}
	return out, nil
}

// stallRoundPlaced runs round r of row, placing it afresh when it finds the
// placement wrong before the fault, stallPlaceAttempts times at most.
func stallRoundPlaced(ctx context.Context, c *cluster.Cluster, o stallOptions, row *stallRow, k, r int) (stallRound, error) {
	for attempt := 0; ; attempt++ {
		res, err := stallOnce(ctx, c, o, row.fault, row.target, k+attempt, fmt.Sprintf("%d-%d", r, attempt))
		if !errors.Is(err, errMisplaced) {
			return res, err
		}
		row.misplaced++
		if attempt+1 == stallPlaceAttempts {
			return res, fmt.Errorf("%d placements in a row: %w", stallPlaceAttempts, err)
		}
		fmt.Fprintf(os.Stderr, "%s %s round %d: placement wrong, placing again: %v\n", row.fault, row.target, r, err)
	}
}

// stallOnce runs one round: the clients on node k%n, the queue's leader on
// the next node.
func stallOnce(ctx context.Context, c *cluster.Cluster, o stallOptions, fault, target string, k int, tag string) (res stallRound, err error) {
	began := time.Now()
	nodes := c.Nodes()
	home, leader := nodes[k%len(nodes)], nodes[(k+1)%len(nodes)]
	res.victim = home
	if target == "leader" {
		res.victim = leader
	}
	queue := fmt.Sprintf("stall-%s-%s-%s", fault, target, tag)
	if err := declareOn(leader, queue); err != nil {
		return res, err
	}
	defer func() {
		if derr := deleteQueue(c, queue); derr != nil && err == nil {
			err = derr
		}
	}()

	var logTo slog.Handler = slog.DiscardHandler
	if o.verbose {
		logTo = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	rec := &recorder{}
	cl, err := dialOnto(ctx, c, home, slog.New(logTo).With("client", "amqpha"), rec.event)
	if err != nil {
		return res, err
	}
	placedAt := time.Now()
	closeCl := sync.OnceFunc(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cl.Close(cctx)
	})
	defer closeCl()
	p, err := cl.NewPublisher(amqpha.PublisherConfig{Window: 1})
	if err != nil {
		return res, err
	}
	lp, err := startLoopProc(ctx, c.URIs(), home.Index(), queue, o.verbose)
	if err != nil {
		return res, err
	}
	defer lp.close()

	// The publishers run until the window ends, or the round fails.
	pctx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	drivers := map[string]*stallDriver{
		"amqpha": startStallDriver(pctx, "amqpha", func(ctx context.Context, msg amqp.Publishing) error {
			ctx, cancel := context.WithTimeout(ctx, stallPublishBound)
			defer cancel()
			return p.Publish(ctx, "", queue, msg)
		}),
		"loop": lp.d,
	}
	stopDrivers := sync.OnceFunc(func() {
		stopPub()
		lp.stop()
		for _, d := range drivers {
			d.wait()
		}
	})
	defer stopDrivers()
	for name, d := range drivers {
		if err := waitCount(&d.n, stallWarmConfirms, time.Minute); err != nil {
			return res, fmt.Errorf("%s: %w", name, err)
		}
	}

	// The placement, right before the fault: the leader first (the CLI
	// takes a second or two), then the connections.
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if got, err := leader.QuorumLeader(lctx, queue); err != nil {
		return res, err
	} else if got != leader.Name() {
		return res, fmt.Errorf("%w: the queue led by %s, want %s", errMisplaced, got, leader.Name())
	}
	if n := connected(c, cl); n != home {
		return res, fmt.Errorf("%w: amqpha on %v, want %v (its connection losses since it landed there: %v)",
			errMisplaced, n, home, lossText(rec.find(amqpha.EventReconnecting, placedAt, time.Now())))
	}
	if i := lp.node(); i != home.Index() {
		return res, fmt.Errorf("%w: the loop on node %d, want %v", errMisplaced, i, home)
	}

	// The fault, held for o.hold, then undone; undone on every exit path.
	fctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	undone := false
	undo := func(ctx context.Context) error {
		undone = true
		switch fault {
		case "kill", "stop":
			return res.victim.Start(ctx)
		case "hang":
			if !hungDown(o.hold) {
				return res.victim.Resume()
			}
			if err := res.victim.Kill(ctx); err != nil {
				return err
			}
			return res.victim.Start(ctx)
		case "drain":
			return res.victim.Revive(ctx)
		default:
			res.victim.Heal()
			return nil
		}
	}
	defer func() {
		if undone {
			return
		}
		// On Ctrl-C only what is instant; the cluster goes down anyway.
		if ctx.Err() != nil {
			switch fault {
			case "hang":
				res.victim.Resume()
				return
			case "kill", "stop", "drain":
				return
			}
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		if uerr := undo(uctx); uerr != nil && err == nil {
			err = uerr
		}
	}()
	t0 := time.Now()
	switch fault {
	case "kill":
		err = res.victim.Kill(fctx)
	case "hang":
		err = res.victim.Pause()
	case "stop":
		err = res.victim.Stop(fctx)
	case "drain":
		err = res.victim.Drain(fctx)
	default:
		res.victim.Cut()
	}
	if err != nil {
		return res, err
	}
	if err := sleep(ctx, time.Until(t0.Add(o.hold))); err != nil {
		return res, err
	}
	undoAt := time.Now()
	// Where each client publishes during the fault: a client on the
	// queue's leader's node is confirmed one hop sooner than one on a
	// follower, which weighs on short stalls.
	landed := fmt.Sprintf("amqpha on %v, loop on node %d", connected(c, cl), lp.node())
	if err := undo(fctx); err != nil {
		return res, err
	}
	undoneAt := time.Now()
	base := map[string]int64{}
	for name, d := range drivers {
		base[name] = d.n.Load()
	}
	for {
		done := time.Since(undoneAt) >= stallSettle
		for name, d := range drivers {
			done = done && d.n.Load()-base[name] >= stallAfterUndo
		}
		if done || time.Since(undoneAt) >= stallMaxAfterUndo {
			break
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return res, err
		}
	}
	end := time.Now()
	stopDrivers()
	closeCl()
	lp.close()

	if err := waitClustered(ctx, c); err != nil {
		return res, err
	}
	seen, err := countQueue(c, queue)
	if err != nil {
		return res, fmt.Errorf("counting the queue: %w", err)
	}
	for name, side := range map[string]*stallSide{"amqpha": &res.amqpha, "loop": &res.loop} {
		d := drivers[name]
		from, gap, open := longestGap(d.confirms, t0, undoAt, end)
		side.stall, side.at, side.unfinished = gap, from.Sub(t0), open
		if i, _ := slices.BinarySearchFunc(d.confirms, undoAt, cmpConfirm); i < len(d.confirms) {
			_, side.afterUndo, _ = longestGap(d.confirms, d.confirms[i].at, end, end)
		}
		side.errs, side.firstErr = d.errs, d.firstErr
		side.confirmed, side.lost, side.dups = tally(d.confirms, seen, name)
	}
	evs, err := quorumEvents(ctx, c, leader, res.victim, t0, end)
	if err != nil {
		return res, fmt.Errorf("the queue's election: %w", err)
	}
	res.election = queueElection(evs, queue, t0, end, electionFromExit(fault))
	if res.election.ok {
		for name, side := range map[string]*stallSide{"amqpha": &res.amqpha, "loop": &res.loop} {
			side.elGap, side.elGapOpen = gapAcross(drivers[name].confirms, t0.Add(res.election.at), end)
		}
	}
	res.took = time.Since(began)
	res.reconnects = rec.find(amqpha.EventReconnecting, placedAt, end)
	fmt.Fprintf(os.Stderr, "%s %s of the %s node (%v, clients on node %d): stall amqpha %s, loop %s; election %s; after the undo amqpha %.3f s, loop %.3f s; confirmed/lost/dup amqpha %s, loop %s; undo %+.1f s to %+.1f s, window end %+.1f s; amqpha lost its connection %d times (%s); before the undo %s (queue led from node %d); round took %v\n",
		t0.Format("15:04:05.000"), fault, target, res.victim, home.Index(), stallText(res.amqpha), stallText(res.loop),
		electionText(res),
		res.amqpha.afterUndo.Seconds(), res.loop.afterUndo.Seconds(),
		sideCounts(res.amqpha), sideCounts(res.loop), undoAt.Sub(t0).Seconds(), undoneAt.Sub(t0).Seconds(), end.Sub(t0).Seconds(),
		len(res.reconnects), lossText(res.reconnects), landed, leader.Index(), res.took.Round(time.Second))
	for name, side := range map[string]stallSide{"amqpha": res.amqpha, "loop": res.loop} {
		if side.errs > 0 {
			fmt.Fprintf(os.Stderr, "  %s: %d publish errors, the first: %v\n", name, side.errs, side.firstErr)
		}
	}
	return res, nil
}

// hungDown reports whether a node hung for hold has been declared down by
// the others (net_ticktime, plus the quarter of it that Erlang's ticks may
// take). Resumed then, it finds the cluster partitioned and autoheal
// settles it, often in favour of the hung node, which still holds the
// clients' old connections: the healthy nodes restart and the cluster
// does not always come back. So such a node is killed and started
// instead, as an operator restarts a hung node; the stall is measured
// before the undo begins, so the way back does not change it.
func hungDown(hold time.Duration) bool { return hold >= netTicktime }

// waitClustered waits until the nodes form one cluster again, 5 minutes at
// most, and says how each node sees the cluster if they do not.
func waitClustered(ctx context.Context, c *cluster.Cluster) error {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	err := c.WaitClustered(wctx)
	if err == nil || ctx.Err() != nil {
		return err
	}
	var views []string
	for _, n := range c.Nodes() {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		st, serr := n.Status(sctx)
		cancel()
		if serr != nil {
			views = append(views, fmt.Sprintf("%v: %v", n, serr))
			continue
		}
		views = append(views, fmt.Sprintf("%v: running %v, partitions %v", n, st.RunningNodes, st.Partitions))
	}
	return fmt.Errorf("%w; %s", err, strings.Join(views, "; "))
}

// declareOn creates a fresh quorum queue through node n directly, which
// makes n its first leader.
func declareOn(n *cluster.Node, queue string) error {
	conn, err := amqp.DialConfig(n.DirectURI(), amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
		return err
	}
	_, err = ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	return err
}

// lossText lists amqpha's connection losses: when, where and why.
func lossText(es []amqpha.Event) string {
	var parts []string
	for _, e := range es {
		parts = append(parts, fmt.Sprintf("%s %s: %v", e.Time.Format("15:04:05.000"), e.Node, e.Err))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// dialOnto dials amqpha with its default settings (plus a logger and an
// event callback) over every node until its connection lands on n (its
// round-robin balancer starts at a random node), closing the clients that
// landed elsewhere.
func dialOnto(ctx context.Context, c *cluster.Cluster, n *cluster.Node, log *slog.Logger, onEvent func(amqpha.Event)) (*amqpha.Client, error) {
	for range 30 {
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		cl, err := amqpha.Dial(dctx, amqpha.Config{Nodes: c.URIs(), Logger: log, OnEvent: onEvent})
		cancel()
		if err != nil {
			return nil, err
		}
		if connected(c, cl) == n {
			return cl, nil
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cl.Close(cctx)
		cancel()
	}
	return nil, fmt.Errorf("%w: amqpha never landed on %v in 30 dials", errMisplaced, n)
}

// stallDriver publishes one message at a time through pub until its
// context ends, and records when each was confirmed.
type stallDriver struct {
	n    atomic.Int64 // confirmed so far
	done chan struct{}
	// Written by the driver's goroutine only, read after wait.
	confirms []stallConfirm
	errs     int
	firstErr error
}

type stallConfirm struct {
	id string
	at time.Time
}

// startStallDriver starts publishing messages with ids "<client>-<n>".
func startStallDriver(ctx context.Context, client string, pub func(context.Context, amqp.Publishing) error) *stallDriver {
	d := &stallDriver{done: make(chan struct{})}
	go func() {
		defer close(d.done)
		publishEach(ctx, client, pub, d.confirmed, d.failed)
	}()
	return d
}

// publishEach publishes messages with ids "<client>-<n>" one at a time
// through pub until ctx ends, and tells each confirm and each failure.
func publishEach(ctx context.Context, client string, pub func(context.Context, amqp.Publishing) error, ok func(stallConfirm), failed func(error)) {
	for i := 0; ctx.Err() == nil; i++ {
		id := fmt.Sprintf("%s-%d", client, i)
		err := pub(ctx, amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: id, Body: body})
		switch {
		case err == nil:
			ok(stallConfirm{id: id, at: time.Now()})
		case ctx.Err() == nil:
			failed(err)
			sleep(ctx, 10*time.Millisecond) // no busy loop on a failing publisher
		}
	}
}

// confirmed and failed record a confirm and a failed publish; called by
// the driver's one writer only.
func (d *stallDriver) confirmed(c stallConfirm) {
	d.confirms = append(d.confirms, c)
	d.n.Add(1)
}

func (d *stallDriver) failed(err error) {
	d.errs++
	if d.firstErr == nil {
		d.firstErr = err
	}
}

// wait blocks until the driver's goroutine has returned (its context
// ended).
func (d *stallDriver) wait() { <-d.done }

// longestGap is the longest time between two consecutive confirms of cs
// (in time order) that overlaps [from, to], and when it began: the gap
// around from counts, and so does the gap open at to, until its next
// confirm. A gap with no confirm after it up to end lasts until end and is
// reported unfinished.
func longestGap(cs []stallConfirm, from, to, end time.Time) (began time.Time, gap time.Duration, unfinished bool) {
	i, found := slices.BinarySearchFunc(cs, from, cmpConfirm)
	if found {
		i++ // a confirm at from begins the first gap
	}
	prev := from
	if i > 0 {
		prev = cs[i-1].at
	}
	began = prev
	for _, c := range cs[i:] {
		if c.at.After(end) {
			break
		}
		if d := c.at.Sub(prev); d > gap {
			began, gap = prev, d
		}
		if !c.at.Before(to) {
			return began, gap, false // the last gap overlapping [from, to]
		}
		prev = c.at
	}
	if tail := end.Sub(prev); tail > gap {
		return prev, tail, true
	}
	return began, gap, false
}

func cmpConfirm(c stallConfirm, t time.Time) int { return c.at.Compare(t) }

// hangUndo says how a hang held for hold is undone.
func hangUndo(hold time.Duration) string {
	if hungDown(hold) {
		return "Kill and Start of the hung node, which the others have declared down by then (resumed, it would leave the cluster partitioned)"
	}
	return "Resume"
}

func stallText(s stallSide) string {
	t := fmt.Sprintf("%.3f s", s.stall.Seconds())
	if s.unfinished {
		t = "≥ " + t
	}
	return fmt.Sprintf("%s (from %+.3f s)", t, s.at.Seconds())
}

// electionText says when the queue got its new leader, where, and each
// client's gap across it.
func electionText(r stallRound) string {
	el := r.election
	if !el.ok {
		return "none"
	}
	gap := func(s stallSide) string {
		g := fmt.Sprintf("%.3f s", s.elGap.Seconds())
		if s.elGapOpen {
			g = "≥ " + g
		}
		return g
	}
	from := ""
	if el.gone != 0 {
		from = fmt.Sprintf(", from the old leader's exit at %+.3f s", el.gone.Seconds())
	}
	return fmt.Sprintf("%.3f s (on %s%s; gap across it amqpha %s, loop %s)", el.took.Seconds(), el.node, from, gap(r.amqpha), gap(r.loop))
}

// tally counts a client's confirmed messages, those of them missing from
// the queue's contents seen (message-id to copies), and the message-ids
// of the client (those with its prefix) found more than once.
func tally(confirms []stallConfirm, seen map[string]int, client string) (confirmed, lost, dups int) {
	for _, cf := range confirms {
		if seen[cf.id] == 0 {
			lost++
		}
	}
	for id, k := range seen {
		if k > 1 && strings.HasPrefix(id, client+"-") {
			dups++
		}
	}
	return len(confirms), lost, dups
}

func sideCounts(s stallSide) string {
	return fmt.Sprintf("%d/%d/%d", s.confirmed, s.lost, s.dups)
}

// printStalls prints the table and returns how many confirmed messages
// amqpha lost.
func printStalls(o stallOptions, rows []*stallRow) (amqphaLost int) {
	fmt.Printf("### Stall per fault: amqpha vs a hand-written amqp091-go reconnect loop, side by side\n\n")
	fmt.Println("| fault | target | faults | amqpha median | amqpha worst | loop median | loop worst | amqpha − loop, median of rounds (amqpha longer; open) | amqpha confirmed/lost/dup | loop confirmed/lost/dup " +
		"| elections | election median | election worst | amqpha − election median | amqpha − election worst | loop − election median | loop − election worst |")
	fmt.Println("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	misplaced := 0
	var took []time.Duration
	var after []string // the rows of the table of gaps after the undo
	for _, row := range rows {
		misplaced += row.misplaced
		if len(row.rounds) == 0 {
			continue
		}
		var a, l, au, lu []time.Duration
		var as, ls stallSide
		aOpen, lOpen := false, false
		for _, r := range row.rounds {
			a, l = append(a, r.amqpha.stall), append(l, r.loop.stall)
			au, lu = append(au, r.amqpha.afterUndo), append(lu, r.loop.afterUndo)
			aOpen, lOpen = aOpen || r.amqpha.unfinished, lOpen || r.loop.unfinished
			for _, p := range []struct{ sum, one *stallSide }{{&as, &r.amqpha}, {&ls, &r.loop}} {
				p.sum.confirmed += p.one.confirmed
				p.sum.lost += p.one.lost
				p.sum.dups += p.one.dups
			}
			took = append(took, r.took)
		}
		amqphaLost += as.lost
		worst := func(ds []time.Duration, open bool) string {
			s := ms(slices.Max(durs(ds)))
			if open {
				s = "≥ " + s
			}
			return s
		}
		fmt.Printf("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", row.fault, row.target, len(row.rounds),
			ms(median(durs(a))), worst(a, aOpen), ms(median(durs(l))), worst(l, lOpen), pairedCell(row.rounds), sideCounts(as), sideCounts(ls),
			electionCells(row.rounds))
		after = append(after, fmt.Sprintf("| %s | %s | %s | %s | %s | %s |", row.fault, row.target,
			ms(median(durs(au))), ms(slices.Max(durs(au))), ms(median(durs(lu))), ms(slices.Max(durs(lu)))))
	}
	fmt.Println()
	fmt.Printf("Each client publishes one persistent 1 KiB message at a time (the next after the confirm), both into one quorum queue, with message-ids that name the client. "+
		"amqpha: default settings, Publisher window 1. Loop: raw amqp091-go in a process of its own, one connection (heartbeat %v, dial bound %v), one confirm-mode channel; "+
		"on any failure (error, nack, closed, no confirm within %v) it closes the connection, dials the next node at once and sends the same message again. "+
		"Before each fault both clients are connected to one node and the queue's leader is on another (checked with quorum_status); "+
		"the fault hits the clients' node (connected) or the leader's node (leader), stays %v and is undone (Start; %s; Start; Revive; Heal). "+
		"Stall: the longest gap between two consecutive confirms of the client that overlaps the fault, from its injection until the undo begins "+
		"(the gap around the injection counts, and so does a gap still open when the undo begins, until its next confirm; "+
		"≥: no confirm until the fault had been undone for %v and the other client had %d confirms since, %v after the undo at most). "+
		"Lost: the client's confirmed message-ids missing from the queue (counted over all the rounds' windows); dup: message-ids found more than once. Net_ticktime %v.\n\n",
		loopHeartbeat, loopDialTimeout, loopConfirmTimeout, o.hold, hangUndo(o.hold), stallSettle, stallAfterUndo, stallMaxAfterUndo, netTicktime)
	fmt.Printf("Election: the time from the fault until another node's member of the queue entered the Raft leader state, " +
		"from the members' own log lines (Ra logs the transition as it enters the state, to the µs, on the clock the bench reads too; " +
		"read after the round, so the broker is not asked anything), and for stop and drain from the old leader's exit " +
		"(the first follower's \"Leader monitor down\"), as those nodes stop their Raft servers some way into the fault; " +
		"elections: rounds that had one (a fault of the clients' node, or a cut, leaves the leader be). " +
		"Client − election: the client's gap between confirms across the election (its stall, when the election caused the longest gap) " +
		"minus that election, i.e. what the client added to the cluster's election, " +
		"plus the new leader's first commit and the time from the client's last confirm to the fault or the old leader's exit (a few ms).\n\n")
	if len(after) > 0 {
		fmt.Println("Longest gap after the undo (from each client's first confirm once the undo began until the window's end), which the cluster causes as much as the client:")
		fmt.Println()
		fmt.Println("| fault | target | amqpha median | amqpha worst | loop median | loop worst |")
		fmt.Println("|---|---|---:|---:|---:|---:|")
		fmt.Println(strings.Join(after, "\n"))
		fmt.Println()
	}
	if misplaced > 0 {
		fmt.Printf("%d rounds were found misplaced before their fault and placed again.\n\n", misplaced)
	}
	if len(took) > 0 {
		fmt.Fprintf(os.Stderr, "stalls: a round took %v median, %v at most\n",
			time.Duration(median(durs(took))*float64(time.Second)).Round(time.Second), slices.Max(took).Round(time.Second))
	}
	return amqphaLost
}

// electionCells are a row's cells for its queue's elections: how many of
// its rounds had one, their median and worst election, and per client the
// median and worst of its gap across the election minus that election
// (the stall minus the election, when the election caused the stall; a
// later gap, the cluster's or the client's, is not the election's).
func electionCells(rounds []stallRound) string {
	var els []time.Duration
	minus := map[string][]time.Duration{}
	open := map[string]bool{}
	for _, r := range rounds {
		if !r.election.ok {
			continue
		}
		els = append(els, r.election.took)
		for name, side := range map[string]stallSide{"amqpha": r.amqpha, "loop": r.loop} {
			minus[name] = append(minus[name], side.elGap-r.election.took)
			open[name] = open[name] || side.elGapOpen
		}
	}
	cells := []string{fmt.Sprintf("%d of %d", len(els), len(rounds))}
	if len(els) == 0 {
		return strings.Join(append(cells, "–", "–", "–", "–", "–", "–"), " | ")
	}
	cells = append(cells, ms(median(durs(els))), ms(slices.Max(durs(els))))
	for _, name := range []string{"amqpha", "loop"} {
		ds := minus[name]
		w := ms(slices.Max(durs(ds)))
		if open[name] {
			w = "≥ " + w
		}
		cells = append(cells, ms(median(durs(ds))), w)
	}
	return strings.Join(cells, " | ")
}

// pairedCell is the median over a row's rounds of amqpha's stall minus the
// loop's in the same round (to the ms), in how many rounds amqpha's was the
// longer (a tie is not), and how many rounds had a stall still open at the
// window's end (its difference is a bound only).
func pairedCell(rounds []stallRound) string {
	var d []time.Duration
	longer, open := 0, 0
	for _, r := range rounds {
		d = append(d, r.amqpha.stall-r.loop.stall)
		if r.amqpha.stall > r.loop.stall {
			longer++
		}
		if r.amqpha.unfinished || r.loop.unfinished {
			open++
		}
	}
	cell := fmt.Sprintf("%+.3f s (%d of %d", math.Round(median(durs(d))*1000)/1000+0, longer, len(rounds))
	if open > 0 {
		cell += fmt.Sprintf("; %d open", open)
	}
	return cell + ")"
}

// stallLoop is the reconnect loop people write on raw amqp091-go: one
// connection and one confirm-mode channel, used by one goroutine; on any
// failure it closes the connection, dials the next node of its list at once
// (round robin, a short pause only once every node refused in a row) and
// sends the same message again, until it is acked.
type stallLoop struct {
	uris  []string
	next  int // index of the node to dial next
	queue string
	say   func(string, ...any)

	conn *amqp.Connection // nil while none
	ch   *amqp.Channel
	cur  atomic.Int64   // index of the connection's node, -1 while none; read by others
	bg   sync.WaitGroup // connections being closed
}

func newStallLoop(uris []string, first int, queue string, say func(string, ...any)) *stallLoop {
	l := &stallLoop{uris: uris, next: first, queue: queue, say: say}
	l.cur.Store(-1)
	return l
}

// node is the index of the node the loop is connected to, -1 while none.
func (l *stallLoop) node() int { return int(l.cur.Load()) }

// connect dials the nodes in turn, from l.next, until one answers or ctx
// ends.
func (l *stallLoop) connect(ctx context.Context) error {
	for refused := 1; ctx.Err() == nil; refused++ {
		i := l.next
		l.next = (i + 1) % len(l.uris)
		conn, err := amqp.DialConfig(l.uris[i], amqp.Config{Heartbeat: loopHeartbeat, Dial: amqp.DefaultDial(loopDialTimeout)})
		if err == nil {
			var ch *amqp.Channel
			if ch, err = conn.Channel(); err == nil {
				if err = ch.Confirm(false); err == nil {
					l.conn, l.ch = conn, ch
					l.cur.Store(int64(i))
					l.say("connected to node %d", i)
					return nil
				}
			}
			l.closeConn(conn)
		}
		l.say("node %d: %v", i, err)
		if refused%len(l.uris) == 0 {
			sleep(ctx, loopRefusedPause)
		}
	}
	return ctx.Err()
}

// publish sends msg until it is acked, or ctx ends.
func (l *stallLoop) publish(ctx context.Context, msg amqp.Publishing) error {
	for {
		if l.ch == nil {
			if err := l.connect(ctx); err != nil {
				return err
			}
		}
		err := l.publishOnce(ctx, msg)
		if err == nil || ctx.Err() != nil {
			return err
		}
		l.say("%s on node %d: %v; next node", msg.MessageId, l.node(), err)
		l.drop()
	}
}

func (l *stallLoop) publishOnce(ctx context.Context, msg amqp.Publishing) error {
	wctx, cancel := context.WithTimeout(ctx, loopConfirmTimeout)
	defer cancel()
	dc, err := l.ch.PublishWithDeferredConfirmWithContext(wctx, "", l.queue, false, false, msg)
	if err != nil {
		return err
	}
	ok, err := dc.WaitContext(wctx)
	switch {
	case err != nil && ctx.Err() == nil:
		return fmt.Errorf("no confirm within %v", loopConfirmTimeout)
	case err != nil:
		return err
	case !ok:
		return errors.New("nacked, or the channel closed")
	}
	return nil
}

// drop closes the connection in the background: a hung or cut-off node
// would hold Close until its deadline.
func (l *stallLoop) drop() {
	if l.conn != nil {
		l.closeConn(l.conn)
	}
	l.conn, l.ch = nil, nil
	l.cur.Store(-1)
}

func (l *stallLoop) closeConn(conn *amqp.Connection) {
	l.bg.Go(func() { conn.CloseDeadline(time.Now().Add(loopCloseTimeout)) })
}

// close closes the connection and waits for every close under way. Call
// it once the publishing goroutine has returned; safe twice.
func (l *stallLoop) close() {
	l.drop()
	l.bg.Wait()
}
