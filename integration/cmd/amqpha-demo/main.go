// Command amqpha-demo shows what amqpha is for: it starts a local 3-node
// RabbitMQ cluster, publishes persistent messages with confirms and consumes
// them through amqpha while it kills, hangs and cuts off the nodes the
// client uses, prints progress and each failover as it happens, and ends
// with a report: confirmed vs consumed, lost (must be 0), duplicates, and
// each fault's gap. Ctrl-C stops it cleanly and tears the cluster down.
//
// With -side-by-side a plain amqp091-go client with a hand-written reconnect
// loop (plain.go) runs next to amqpha through the same faults, and the
// report is a table comparing the two (sidebyside.go, which also says how
// both are made to face the same faults).
//
//	go run ./integration/cmd/amqpha-demo [-duration 60s] [-every 10s] [-rate 200] [-faults kill,hang,cut] [-side-by-side]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
)

type options struct {
	duration   time.Duration
	every      time.Duration
	rate       int
	faults     []string
	sideBySide bool
}

func main() {
	var o options
	faults := flag.String("faults", "kill,hang,cut", "faults to inject, in turn: kill, hang, cut")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long to publish")
	flag.DurationVar(&o.every, "every", 10*time.Second, "time between faults (each fault is undone before the next)")
	flag.IntVar(&o.rate, "rate", 200, "messages per second (each client's, with -side-by-side)")
	flag.BoolVar(&o.sideBySide, "side-by-side", false, "also run a plain amqp091-go client with a hand-written reconnect loop through the same faults, and compare")
	flag.Parse()
	for _, f := range strings.Split(*faults, ",") {
		if f = strings.TrimSpace(f); f != "" {
			if !slices.Contains([]string{"kill", "hang", "cut"}, f) {
				fmt.Fprintf(os.Stderr, "amqpha-demo: unknown fault %q (kill, hang, cut)\n", f)
				os.Exit(2)
			}
			o.faults = append(o.faults, f)
		}
	}
	if o.rate <= 0 || o.duration <= 0 || o.every <= 0 {
		fmt.Fprintln(os.Stderr, "amqpha-demo: -rate, -duration and -every must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	lost, err := run(ctx, os.Stdout, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "amqpha-demo:", err)
		os.Exit(1)
	}
	if lost > 0 {
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, o options) (lost int, err error) {
	d := &demo{sides: []*side{newSide(sideAmqpha)}}
	amqphaSide := d.sides[sideAmqpha]
	fmt.Fprintln(out, "Starting a 3-node RabbitMQ cluster on 127.0.0.1 (net_ticktime 10 s) … about 15 s")
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	c, err := cluster.Start(startCtx, cluster.Options{Nodes: 3, NetTicktime: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	cancel()
	if err != nil {
		return 0, err
	}
	defer func() {
		fmt.Fprintln(out, "Stopping the cluster …")
		if cerr := c.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		fmt.Fprintf(out, "Stopped; nothing left behind (%s removed).\n", c.Dir())
	}()
	fmt.Fprintf(out, "Cluster ready (data in %s).\n", c.Dir())

	nodeName := func(addr string) string {
		for _, n := range c.Nodes() {
			if port := n.URI()[strings.LastIndex(n.URI(), ":"):]; addr != "" && strings.HasSuffix(strings.TrimSuffix(addr, "/"), strings.TrimSuffix(port, "/")) {
				return "node " + strconv.Itoa(n.Index())
			}
		}
		return "none"
	}
	dialCtx, cancel := context.WithTimeout(ctx, time.Minute)
	client, err := amqpha.Dial(dialCtx, amqpha.Config{
		Nodes: c.URIs(), ConnectionName: "amqpha-demo",
		OnEvent: func(e amqpha.Event) {
			switch e.Kind {
			case amqpha.EventReconnecting:
				fmt.Fprintf(out, "%s   %s connection lost on %s: %v\n", d.since(), e.Connection, nodeName(e.Node), e.Err)
			case amqpha.EventNodeSwitched:
				fmt.Fprintf(out, "%s   %s connection moved to %s\n", d.since(), e.Connection, nodeName(e.Node))
			case amqpha.EventConsumerRegistered:
				fmt.Fprintf(out, "%s   consumer %s registered again\n", d.since(), e.Consumer)
			}
		},
	})
	cancel()
	if err != nil {
		return 0, err
	}
	defer client.Close(context.Background())
	queue, err := client.DeclareQueue(ctx, amqpha.QuorumQueue("amqpha-demo"))
	if err != nil {
		return 0, err
	}
	pub, err := client.NewPublisher(amqpha.PublisherConfig{Window: 64})
	if err != nil {
		return 0, err
	}
	_, err = client.Consume(ctx, queue, amqpha.ConsumerConfig{Prefetch: 100, Concurrency: 4},
		func(_ context.Context, m *amqpha.Delivery) amqpha.Action {
			amqphaSide.handle(m.MessageId)
			if sent, err := strconv.ParseInt(string(m.Body), 10, 64); err == nil {
				d.noteAfterFaults(amqphaSide, sent, true)
			}
			return amqpha.Ack
		})
	if err != nil {
		return 0, err
	}

	// The plain client, on the nodes amqpha's connections use (sidebyside.go).
	var plain *plainClient
	uris := c.URIs()
	uriIndex := func(addr string) int {
		for i, u := range uris {
			if nodeName(u) == nodeName(addr) {
				return i
			}
		}
		return -1
	}
	if o.sideBySide {
		say := func(format string, args ...any) {
			fmt.Fprintf(out, "%s   "+format+"\n", append([]any{d.since()}, args...)...)
		}
		d.sides = append(d.sides, newSide(sidePlain))
		startCtx, cancel := context.WithTimeout(ctx, time.Minute)
		plain, err = startPlain(startCtx, d, d.sides[sidePlain], uris,
			max(uriIndex(client.Node()), 0), max(uriIndex(client.ConsumerNode()), 0), say, nodeName)
		cancel()
		if err != nil {
			return 0, err
		}
		defer plain.close()
	}
	d.began.Store(time.Now().UnixNano())
	fmt.Fprintf(out, "Publishing %d persistent messages/s to quorum queue %q and consuming them; faults every %v: %s.\n",
		o.rate, queue, o.every, strings.Join(o.faults, ", "))
	if o.sideBySide {
		sideBySideHeader(out)
	}

	// Producers: 8 goroutines per client, paced to the rate.
	prodCtx, stopProd := context.WithTimeout(ctx, o.duration)
	defer stopProd()
	var prod sync.WaitGroup
	const workers = 8
	pace := time.Duration(int64(time.Second) * workers / int64(o.rate))
	produce := func(w int, one func(id string)) {
		t := time.NewTicker(pace)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-prodCtx.Done():
				return
			case <-t.C:
			}
			one(fmt.Sprintf("w%d-%d", w, i))
		}
	}
	for w := range workers {
		prod.Go(func() {
			produce(w, func(id string) {
				sent := time.Now().UnixNano()
				amqphaSide.published.Add(1)
				pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := pub.Publish(pctx, "", queue, amqp.Publishing{MessageId: id, Body: strconv.AppendInt(nil, sent, 10)})
				cancel()
				if err != nil {
					amqphaSide.fail(err)
					return
				}
				amqphaSide.confirm(id)
				d.noteAfterFaults(amqphaSide, sent, false)
			})
		})
		if plain != nil {
			prod.Go(func() {
				produce(w, func(id string) { producePlain(ctx, plain, d, d.sides[sidePlain], id) })
			})
		}
	}

	// Progress, once a second.
	progCtx, stopProg := context.WithCancel(ctx)
	var prog sync.WaitGroup
	prog.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-progCtx.Done():
				return
			case <-t.C:
			}
			if plain == nil {
				fmt.Fprintf(out, "%s  published %6d  confirmed %6d  consumed %6d  | publishing on %s, consuming on %s\n",
					d.since(), amqphaSide.published.Load(), amqphaSide.confirmed.Load(), amqphaSide.consumed.Load(),
					nodeName(client.Node()), nodeName(client.ConsumerNode()))
				continue
			}
			plainNode := func(p *plainConn) string {
				if i := p.node(); i >= 0 {
					return shortNode(nodeName(uris[i]))
				}
				return "-"
			}
			fmt.Fprintln(out, progressSideBySide(d,
				shortNode(nodeName(client.Node()))+"/"+shortNode(nodeName(client.ConsumerNode())),
				plainNode(plain.pub)+"/"+plainNode(plain.cons)))
		}
	})

	// Faults, in turn, on the node of the publishing or the consuming
	// connection; each is undone before the next.
	var place func()
	if plain != nil {
		place = func() { placePlain(ctx, out, d, plain, uriIndex(client.Node()), uriIndex(client.ConsumerNode())) }
	}
	injectFaults(prodCtx, out, c, client, d, o, nodeName, place, plain)
	prod.Wait()
	interrupted := ctx.Err() != nil

	// Every confirmed message must be consumed. The plain client's consumer
	// is given up on once amqpha's is done and it took nothing for 20 s.
	if !interrupted {
		fmt.Fprintf(out, "%s  publishing stopped; waiting for the consumer%s to take every confirmed message …\n",
			d.since(), map[bool]string{true: "s"}[plain != nil])
		deadline := time.Now().Add(2 * time.Minute)
		var plainSeen int64
		plainMoved := time.Now()
		for ctx.Err() == nil && time.Now().Before(deadline) {
			if amqphaSide.missing() > 0 {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			if plain == nil {
				break
			}
			p := d.sides[sidePlain]
			if n := p.consumed.Load(); n != plainSeen {
				plainSeen, plainMoved = n, time.Now()
			}
			if p.missing() == 0 || time.Since(plainMoved) > 20*time.Second {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	stopProg()
	prog.Wait()
	var lostBy [numSides]int
	for _, s := range d.sides {
		lostBy[s.idx] = s.missing()
	}
	if plain == nil {
		report(out, d, lostBy[sideAmqpha], interrupted)
	} else {
		reportSideBySide(out, d, o, lostBy, interrupted)
	}
	if interrupted {
		return 0, nil
	}
	return lostBy[sideAmqpha], nil
}

// injectFaults breaks nodes in turn until ctx ends. place, when not nil,
// runs before each fault (side-by-side mode: it puts the plain client on
// amqpha's nodes); plain, when not nil, is checked for whether the fault
// hit its connection.
func injectFaults(ctx context.Context, out io.Writer, c *cluster.Cluster, client *amqpha.Client, d *demo, o options,
	nodeName func(string) string, place func(), plain *plainClient) {
	if len(o.faults) == 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(o.every)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < o.every/2 {
			<-ctx.Done() // too close to the end to see the recovery
			return
		}
		if place != nil {
			place()
		}
		kind := o.faults[i%len(o.faults)]
		conn, addr := "publishing", client.Node()
		if i%2 == 1 {
			conn, addr = "consuming", client.ConsumerNode()
		}
		var victim *cluster.Node
		for _, n := range c.Nodes() {
			if nodeName(addr) == "node "+strconv.Itoa(n.Index()) {
				victim = n
			}
		}
		if victim == nil {
			continue
		}
		f := &fault{kind: kind, node: nodeName(addr), conn: conn}
		f.hit[sideAmqpha] = true
		if plain == nil {
			fmt.Fprintf(out, "%s FAULT %s of %s (the %s connection's node)\n", d.since(), kind, f.node, conn)
		} else {
			pc := plain.conn(conn)
			on := "none"
			if j := pc.node(); j >= 0 {
				on = nodeName(pc.uris[j])
			}
			f.hit[sidePlain] = on == f.node
			if f.hit[sidePlain] {
				fmt.Fprintf(out, "%s FAULT %s of %s (the node of both clients' %s connections)\n", d.since(), kind, f.node, conn)
			} else {
				fmt.Fprintf(out, "%s FAULT %s of %s (amqpha's %s connection's node; the plain client's is on %s)\n", d.since(), kind, f.node, conn, on)
			}
		}
		// Undo uses its own context: a Ctrl-C must still resume a hung node
		// before the cluster is torn down.
		undoCtx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		var err error
		// The fault's clock starts as it is injected (Kill waits for the
		// process to exit, while the clients already see it).
		f.at = time.Now()
		d.addFault(f)
		switch kind {
		case "kill":
			err = victim.Kill(undoCtx)
		case "hang":
			err = victim.Pause()
		case "cut":
			victim.Cut()
		}
		if err != nil {
			fmt.Fprintf(out, "%s   fault failed: %v\n", d.since(), err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(3 * time.Second):
		}
		switch kind {
		case "kill":
			err = victim.Start(undoCtx)
		case "hang":
			err = victim.Resume()
		case "cut":
			victim.Heal()
		}
		if err == nil && ctx.Err() == nil {
			err = c.WaitClustered(undoCtx)
		}
		cancel()
		if err != nil {
			fmt.Fprintf(out, "%s   undoing the fault failed: %v\n", d.since(), err)
		} else if ctx.Err() == nil {
			fmt.Fprintf(out, "%s   %s is back\n", d.since(), f.node)
		}
	}
}
