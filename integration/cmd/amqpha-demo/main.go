// Command amqpha-demo shows what amqpha is for: it starts a local 3-node
// RabbitMQ cluster, publishes persistent messages with confirms and consumes
// them through amqpha while it kills, hangs and cuts off the nodes the
// client uses, prints progress and each failover as it happens, and ends
// with a report: confirmed vs consumed, lost (must be 0), duplicates, and
// each fault's gap. Ctrl-C stops it cleanly and tears the cluster down.
//
//	go run ./integration/cmd/amqpha-demo [-duration 60s] [-every 10s] [-rate 200] [-faults kill,hang,cut]
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
	"sync/atomic"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
)

type options struct {
	duration time.Duration
	every    time.Duration
	rate     int
	faults   []string
}

func main() {
	var o options
	faults := flag.String("faults", "kill,hang,cut", "faults to inject, in turn: kill, hang, cut")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "how long to publish")
	flag.DurationVar(&o.every, "every", 10*time.Second, "time between faults (each fault is undone before the next)")
	flag.IntVar(&o.rate, "rate", 200, "messages per second")
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

// fault is one injected fault and what the clients saw after it.
type fault struct {
	kind, node, conn string
	at               time.Time
	confirmGap       atomic.Int64 // ns from the fault to the first confirm of a message sent after it
	consumeGap       atomic.Int64 // ns to the first message sent after it being consumed
}

// demo holds the counters the producer, the consumer and the printer share.
type demo struct {
	began     time.Time
	published atomic.Int64
	confirmed atomic.Int64
	consumed  atomic.Int64
	failed    atomic.Int64

	mu       sync.Mutex
	ids      map[string]bool // confirmed
	handled  map[string]int
	faults   []*fault
	firstErr error
}

func (d *demo) since() string { return fmt.Sprintf("t=%5.1fs", time.Since(d.began).Seconds()) }

// noteSent records a message sent at sent (unix ns) as confirmed or consumed
// for every fault it is the first of its kind after.
func (d *demo) noteAfterFaults(sent int64, consumed bool) {
	now := time.Now().UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.faults {
		if sent <= f.at.UnixNano() {
			continue
		}
		gap := &f.confirmGap
		if consumed {
			gap = &f.consumeGap
		}
		gap.CompareAndSwap(0, now-f.at.UnixNano())
	}
}

func run(ctx context.Context, out io.Writer, o options) (lost int, err error) {
	d := &demo{ids: map[string]bool{}, handled: map[string]int{}}
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
			d.mu.Lock()
			d.handled[m.MessageId]++
			first := d.handled[m.MessageId] == 1
			d.mu.Unlock()
			if first {
				d.consumed.Add(1)
			}
			if sent, err := strconv.ParseInt(string(m.Body), 10, 64); err == nil {
				d.noteAfterFaults(sent, true)
			}
			return amqpha.Ack
		})
	if err != nil {
		return 0, err
	}
	d.began = time.Now()
	fmt.Fprintf(out, "Publishing %d persistent messages/s to quorum queue %q and consuming them; faults every %v: %s.\n",
		o.rate, queue, o.every, strings.Join(o.faults, ", "))

	// Producer: 8 goroutines, paced to the rate.
	prodCtx, stopProd := context.WithTimeout(ctx, o.duration)
	defer stopProd()
	var prod sync.WaitGroup
	const workers = 8
	pace := time.Duration(int64(time.Second) * workers / int64(o.rate))
	for w := range workers {
		prod.Go(func() {
			t := time.NewTicker(pace)
			defer t.Stop()
			for i := 0; ; i++ {
				select {
				case <-prodCtx.Done():
					return
				case <-t.C:
				}
				id := fmt.Sprintf("w%d-%d", w, i)
				sent := time.Now().UnixNano()
				d.published.Add(1)
				pctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				err := pub.Publish(pctx, "", queue, amqp.Publishing{MessageId: id, Body: strconv.AppendInt(nil, sent, 10)})
				cancel()
				if err != nil {
					d.failed.Add(1)
					d.mu.Lock()
					if d.firstErr == nil {
						d.firstErr = err
					}
					d.mu.Unlock()
					continue
				}
				d.confirmed.Add(1)
				d.mu.Lock()
				d.ids[id] = true
				d.mu.Unlock()
				d.noteAfterFaults(sent, false)
			}
		})
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
				fmt.Fprintf(out, "%s  published %6d  confirmed %6d  consumed %6d  | publishing on %s, consuming on %s\n",
					d.since(), d.published.Load(), d.confirmed.Load(), d.consumed.Load(),
					nodeName(client.Node()), nodeName(client.ConsumerNode()))
			}
		}
	})

	// Faults, in turn, on the node of the publishing or the consuming
	// connection; each is undone before the next.
	injectFaults(prodCtx, out, c, client, d, o, nodeName)
	prod.Wait()
	interrupted := ctx.Err() != nil

	// Every confirmed message must be consumed.
	if !interrupted {
		fmt.Fprintf(out, "%s  publishing stopped; waiting for the consumer to take every confirmed message …\n", d.since())
		deadline := time.Now().Add(2 * time.Minute)
		for ctx.Err() == nil && time.Now().Before(deadline) && missing(d) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	stopProg()
	prog.Wait()
	lost = missing(d)
	report(out, d, lost, interrupted)
	return lost, nil
}

// missing counts the confirmed messages not consumed yet.
func missing(d *demo) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for id := range d.ids {
		if d.handled[id] == 0 {
			n++
		}
	}
	return n
}

func injectFaults(ctx context.Context, out io.Writer, c *cluster.Cluster, client *amqpha.Client, d *demo, o options, nodeName func(string) string) {
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
		fmt.Fprintf(out, "%s FAULT %s of %s (the %s connection's node)\n", d.since(), kind, f.node, conn)
		// Undo uses its own context: a Ctrl-C must still resume a hung node
		// before the cluster is torn down.
		undoCtx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		var err error
		switch kind {
		case "kill":
			err = victim.Kill(undoCtx)
		case "hang":
			err = victim.Pause()
		case "cut":
			victim.Cut()
		}
		f.at = time.Now()
		d.mu.Lock()
		d.faults = append(d.faults, f)
		d.mu.Unlock()
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

func gap(ns int64) string {
	if ns == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f s", time.Duration(ns).Seconds())
}

func report(out io.Writer, d *demo, lost int, interrupted bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dups := 0
	for _, n := range d.handled {
		dups += n - 1
	}
	fmt.Fprintln(out)
	if interrupted {
		fmt.Fprintln(out, "Report (interrupted: messages still in flight are not counted as lost)")
		lost = 0
	} else {
		fmt.Fprintln(out, "Report")
	}
	fmt.Fprintf(out, "  published           %d\n", d.published.Load())
	fmt.Fprintf(out, "  confirmed           %d\n", len(d.ids))
	fmt.Fprintf(out, "  consumed (distinct) %d\n", len(d.handled))
	fmt.Fprintf(out, "  lost: %d (confirmed, never consumed)\n", lost)
	fmt.Fprintf(out, "  duplicates          %d (redelivered after a failover; de-duplicate by message-id)\n", dups)
	fmt.Fprintf(out, "  publish errors      %d", d.failed.Load())
	if d.firstErr != nil {
		fmt.Fprintf(out, " (first: %v)", d.firstErr)
	}
	fmt.Fprintln(out)
	if len(d.faults) > 0 {
		fmt.Fprintln(out, "  faults (gap = from the fault to the first message sent after it being confirmed / consumed):")
		for i, f := range d.faults {
			fmt.Fprintf(out, "    %d. %-4s %s (%s connection)  confirm gap %s  consume gap %s\n", i+1, f.kind, f.node, f.conn,
				gap(f.confirmGap.Load()), gap(f.consumeGap.Load()))
		}
		fmt.Fprintln(out, "  A hang of the node that leads the quorum queue stalls it until net_ticktime (10 s here) declares the node down: the cluster's floor.")
	}
}
