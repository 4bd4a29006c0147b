// Command amqpha-bench measures amqpha against raw amqp091-go on a local
// 3-node cluster started by the harness, in one run, and prints Markdown
// tables for BENCHMARKS.md:
//
//   - confirmed persistent 1 KiB publishes per second into a quorum queue,
//     amqpha vs raw amqp091-go with the same in-flight window, interleaved;
//   - allocations per confirmed publish;
//   - failover gap: SIGKILL of the connected node → next confirmed publish;
//   - hang detection: SIGSTOP of the connected node → the client leaves it;
//   - consumed messages per second, amqpha vs raw amqp091-go;
//   - consumer failover: SIGKILL of the consumers' node → next message
//     handled on the new connection;
//   - idle cost (-idle SECONDS, -idle-hangs N): packets a second the broker
//     receives on idle connections, amqpha vs amqp091-go, and how fast an
//     idle client leaves a hung node (see idle.go);
//   - rebalancing (-rebalance N): with 3 connections on 3 nodes, a node is
//     killed (or stopped, -rebalance-fault stop) and started again; how
//     long until a connection is back on it, and how publishing fares
//     meanwhile (see rebalance.go);
//   - stalls (-stalls N): amqpha and a hand-written amqp091-go reconnect
//     loop (in a child process: the bench starts itself again) publish
//     side by side, one message at a time, into one quorum queue, both
//     connected to one node while the queue's leader is on another; each
//     fault (kill, hang, graceful stop, drain, cut) hits the clients' node
//     or the leader's node, N times each; the longest gap between two
//     confirms of each client around it, the queue's leader election and
//     each stall minus it, and lost and duplicated messages (see
//     stalls.go).
//
// Every message whose Publish returned nil is counted in the queue at the
// end of the failover runs; the program fails if one is missing.
//
//	go run ./integration/cmd/amqpha-bench [-seconds 3] [-rounds 3] [-kills 10] [-hangs 10] [-consume 20000] [-consumer-kills 10]
//	go run ./integration/cmd/amqpha-bench -idle 60 -idle-hangs 10
//	go run ./integration/cmd/amqpha-bench -rebalance 5 [-rebalance-interval 1s] [-rebalance-rate 0] [-rebalance-fault kill|stop] [-rebalance-hang-timeout 0]
//	go run ./integration/cmd/amqpha-bench -stalls 10 [-stall-faults kill,hang,stop,drain,cut] [-stall-targets connected,leader] [-stall-hold 15s] [-stall-log]
//
// The rebalancing, idle and stall modes are off by default; given
// -rebalance N, -idle/-idle-hangs or -stalls N, the other modes run only if
// their own flags are given too. The stall mode fails only if amqpha lost a
// confirmed message; the loop's losses are reported.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/amqpha/prommetrics"
	"github.com/amqpha/amqpha/integration/cluster"
)

var body = make([]byte, 1024)

// netTicktime is the cluster's Erlang net_ticktime: the other nodes declare
// a hung node down after 10 to 12.5 s.
const netTicktime = 10 * time.Second

func main() {
	seconds := flag.Float64("seconds", 3, "length of each throughput run")
	rounds := flag.Int("rounds", 3, "throughput runs per client and window")
	kills := flag.Int("kills", 10, "node kills for the failover gap")
	hangs := flag.Int("hangs", 10, "node hangs for hang detection")
	windows := flag.String("windows", "1,64,1024", "in-flight windows (empty: skip throughput and allocations)")
	consume := flag.Int("consume", 20000, "messages per consumer throughput run (0: skip)")
	consumerKills := flag.Int("consumer-kills", 10, "kills of the consumers' node")
	flag.StringVar(&cpuProfile, "cpuprofile", "", "write CPU profiles of the amqpha throughput runs (not raw amqp091-go's) to files named <this>-w<window>-r<round>")
	withMetrics := flag.Bool("metrics", false, "throughput runs also measure amqpha with the Prometheus adapter (amqpha/prommetrics)")
	var rb rebalanceOptions
	flag.IntVar(&rb.rounds, "rebalance", 0, "rebalancing rounds (0: skip); alone, it runs only this mode")
	flag.DurationVar(&rb.interval, "rebalance-interval", time.Second, "Config.RebalanceInterval for -rebalance")
	flag.Float64Var(&rb.rate, "rebalance-rate", 0, "publishes per second per connection for -rebalance (0: full speed)")
	flag.StringVar(&rb.fault, "rebalance-fault", "kill", "how -rebalance takes a node away: kill or stop")
	flag.DurationVar(&rb.steady, "rebalance-steady", 5*time.Second, "steady-state publishing measured before each -rebalance fault")
	flag.DurationVar(&rb.hang, "rebalance-hang-timeout", 0, "Config.HangTimeout for -rebalance (0: amqpha's default; negative: off)")
	flag.BoolVar(&rb.verbose, "rebalance-log", false, "write the -rebalance client's log to stderr")
	var idle idleOptions
	flag.IntVar(&idle.seconds, "idle", 0, "seconds over which idle connections' packets are counted (0: skip); alone, it runs only the idle mode")
	flag.IntVar(&idle.hangs, "idle-hangs", 0, "hangs of an idle client's node (0: skip); alone, it runs only the idle mode")
	var st stallOptions
	flag.IntVar(&st.rounds, "stalls", 0, "stall rounds per fault kind and target, amqpha vs a hand-written amqp091-go loop side by side (0: skip); alone, it runs only this mode")
	flag.StringVar(&st.faults, "stall-faults", strings.Join(stallFaults, ","), "faults for -stalls, a comma list")
	flag.StringVar(&st.targets, "stall-targets", strings.Join(stallTargets, ","), "nodes -stalls faults hit, a comma list: connected (the clients' node), leader (the queue's leader's node)")
	flag.DurationVar(&st.hold, "stall-hold", 15*time.Second, "how long each -stalls fault lasts before it is undone (above net_ticktime, 10 s, the cluster declares a hung node down, and the hung node is then killed and started instead of resumed)")
	flag.BoolVar(&st.verbose, "stall-log", false, "write both -stalls clients' logs to stderr (amqpha's at debug level)")
	if os.Getenv(envLoopChild) == "1" {
		os.Exit(loopChild()) // -stalls' hand-written loop (see loopproc.go)
	}
	flag.Parse()
	if rb.rounds > 0 || st.rounds > 0 || idle.seconds > 0 || idle.hangs > 0 {
		// -rebalance, -stalls or -idle alone runs only those modes.
		given := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { given[f.Name] = true })
		for name, off := range map[string]func(){
			"windows":        func() { *windows = "" },
			"consume":        func() { *consume = 0 },
			"consumer-kills": func() { *consumerKills = 0 },
			"kills":          func() { *kills = 0 },
			"hangs":          func() { *hangs = 0 },
		} {
			if !given[name] {
				off()
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, time.Duration(*seconds*float64(time.Second)), *rounds, *kills, *hangs, *windows, *consume, *consumerKills, *withMetrics, rb, st, idle); err != nil {
		fmt.Fprintln(os.Stderr, "amqpha-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, d time.Duration, rounds, kills, hangs int, windowList string, consume, consumerKills int, withMetrics bool, rb rebalanceOptions, st stallOptions, idle idleOptions) error {
	fmt.Fprintf(os.Stderr, "starting a 3-node cluster (net_ticktime %v) …\n", netTicktime)
	opts := cluster.Options{NetTicktime: netTicktime}
	if st.verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "cluster")
	}
	c, err := cluster.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("RabbitMQ 3-node cluster on loopback, quorum queue, persistent 1 KiB messages, %s, GOMAXPROCS %d.\n\n", time.Now().UTC().Format("2006-01-02"), runtime.GOMAXPROCS(0))

	var windows []int
	for _, w := range strings.Split(windowList, ",") {
		var n int
		if _, err := fmt.Sscan(w, &n); err == nil && n > 0 {
			windows = append(windows, n)
		}
	}
	if len(windows) > 0 {
		if err := throughput(ctx, c, d, rounds, windows, withMetrics); err != nil {
			return err
		}
		if err := allocs(ctx, c); err != nil {
			return err
		}
	}
	if consume > 0 {
		if err := consumerThroughput(ctx, c, rounds, consume); err != nil {
			return err
		}
	}
	if consumerKills > 0 {
		if err := consumerFailover(ctx, c, consumerKills); err != nil {
			return err
		}
	}
	if kills > 0 {
		if err := failover(ctx, c, "kill", kills); err != nil {
			return err
		}
	}
	if hangs > 0 {
		if err := failover(ctx, c, "hang", hangs); err != nil {
			return err
		}
	}
	if rb.rounds > 0 {
		if err := rebalance(ctx, c, rb); err != nil {
			return err
		}
	}
	if idle.seconds > 0 || idle.hangs > 0 {
		if err := idleCost(ctx, c, idle); err != nil {
			return err
		}
	}
	if st.rounds > 0 {
		if err := stalls(ctx, c, st); err != nil {
			return err
		}
	}
	return nil
}

// declare creates a fresh quorum queue through node 0.
func declare(c *cluster.Cluster, name string) error {
	conn, ch, err := node0Channel(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch.QueueDelete(name, false, false, false)
	_, err = ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	return err
}

// publishFunc publishes one message and waits for its confirm.
type publishFunc func(ctx context.Context, id string) error

// rawPublisher is the plain amqp091-go way: one confirm-mode channel shared
// by the goroutines, each waiting for its deferred confirmation.
func rawPublisher(uri, queue string) (publishFunc, func(), error) {
	conn, err := amqp.Dial(uri)
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	pub := func(ctx context.Context, id string) error {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: id, Body: body})
		if err != nil {
			return err
		}
		ok, err := dc.WaitContext(ctx)
		if err == nil && !ok {
			err = errors.New("nacked")
		}
		return err
	}
	return pub, func() { conn.Close() }, nil
}

// amqphaPublisher dials amqpha on uris (with metrics m, nil for none) and
// returns a function publishing one message to queue through a Publisher
// of window messages in flight.
func amqphaPublisher(uris []string, queue string, window int, m amqpha.Metrics) (publishFunc, *amqpha.Client, func(), error) {
	cl, err := amqpha.Dial(context.Background(), amqpha.Config{Nodes: uris, Metrics: m})
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := cl.NewPublisher(amqpha.PublisherConfig{Window: window})
	if err != nil {
		cl.Close(context.Background())
		return nil, nil, nil, err
	}
	pub := func(ctx context.Context, id string) error {
		return p.Publish(ctx, "", queue, amqp.Publishing{MessageId: id, Body: body})
	}
	return pub, cl, func() { cl.Close(context.Background()) }, nil
}

// drive runs window goroutines publishing for d and returns confirms/s and
// the client's cost per confirmed message over the run.
func drive(ctx context.Context, pub publishFunc, window int, d time.Duration) (float64, perMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	began, before := time.Now(), costNow()
	for g := range window {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && i < 100_000_000; i++ {
				err := pub(ctx, fmt.Sprintf("%d-%d", g, i))
				if err == nil {
					n.Add(1)
				} else if ctx.Err() == nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	per := costNow().since(before, n.Load())
	return float64(n.Load()) / time.Since(began).Seconds(), per, firstErr
}

func throughput(ctx context.Context, c *cluster.Cluster, d time.Duration, rounds int, windows []int, withMetrics bool) error {
	kinds := []string{"raw", "amqpha"}
	fmt.Println("### Client cost per confirmed publish, amqpha vs raw amqp091-go")
	fmt.Println()
	fmt.Println("CPU time of the client process (user + system) and heap allocations per")
	fmt.Println("confirmed message; msg/s beside them (it swings ±20 % on 2 shared cores).")
	fmt.Println()
	if withMetrics {
		kinds = append(kinds, "amqpha+metrics")
		fmt.Println("| window | raw CPU µs/msg | amqpha CPU µs/msg | CPU ratio | raw allocs/msg | amqpha allocs/msg | raw msg/s | amqpha msg/s | msg/s ratio | amqpha+prommetrics CPU µs/msg | CPU ratio | allocs/msg | msg/s |")
		fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	} else {
		fmt.Println("| window | raw CPU µs/msg | amqpha CPU µs/msg | CPU ratio | raw allocs/msg | amqpha allocs/msg | raw msg/s | amqpha msg/s | msg/s ratio |")
		fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	}
	const queue = "bench-throughput"
	for _, w := range windows {
		rates, cpus, mallocs := map[string][]float64{}, map[string][]float64{}, map[string][]float64{}
		for r := range rounds {
			for _, kind := range kinds {
				if err := declare(c, queue); err != nil {
					return err
				}
				var pub publishFunc
				var closeFn func()
				var err error
				switch kind {
				case "raw":
					pub, closeFn, err = rawPublisher(c.Node(0).DirectURI(), queue)
				case "amqpha":
					pub, _, closeFn, err = amqphaPublisher([]string{c.Node(0).DirectURI()}, queue, w, nil)
				default:
					var m *prommetrics.Metrics
					if m, err = prommetrics.New(prometheus.NewRegistry()); err == nil {
						pub, _, closeFn, err = amqphaPublisher([]string{c.Node(0).DirectURI()}, queue, w, m)
					}
				}
				if err != nil {
					return err
				}
				stopProfile := profileCPU(kind, w, r)
				rate, per, err := drive(ctx, pub, w, d)
				stopProfile()
				closeFn()
				if err != nil {
					return fmt.Errorf("%s window %d round %d: %w", kind, w, r, err)
				}
				rates[kind] = append(rates[kind], rate)
				cpus[kind] = append(cpus[kind], per.cpuMicros)
				mallocs[kind] = append(mallocs[kind], per.allocs)
				fmt.Fprintf(os.Stderr, "window %d round %d %s: %.0f msg/s, %.1f µs CPU/msg, %.1f allocs/msg\n", w, r, kind, rate, per.cpuMicros, per.allocs)
			}
		}
		rawCPU, rawRate := median(cpus["raw"]), median(rates["raw"])
		cpu, rate := median(cpus["amqpha"]), median(rates["amqpha"])
		fmt.Printf("| %d | %.1f | %.1f | %.2f | %.1f | %.1f | %.0f | %.0f | %.2f", w, rawCPU, cpu, cpu/rawCPU,
			median(mallocs["raw"]), median(mallocs["amqpha"]), rawRate, rate, rate/rawRate)
		if withMetrics {
			cpu, rate := median(cpus["amqpha+metrics"]), median(rates["amqpha+metrics"])
			fmt.Printf(" | %.1f | %.2f | %.1f | %.0f", cpu, cpu/rawCPU, median(mallocs["amqpha+metrics"]), rate)
		}
		fmt.Println(" |")
	}
	fmt.Printf("\nMedians of %d interleaved runs of %v each, every client on node 0 directly.\n\n", rounds, d)
	return nil
}

// cost is what the process has spent so far: CPU time and heap
// allocations.
type cost struct {
	cpu     time.Duration
	mallocs uint64
}

// perMessage is a run's cost divided by its messages.
type perMessage struct{ cpuMicros, allocs float64 }

func costNow() cost {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return cost{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), mallocs: ms.Mallocs}
}

// since is the cost from before to now per message of n.
func (now cost) since(before cost, n int64) perMessage {
	if n <= 0 {
		return perMessage{}
	}
	return perMessage{
		cpuMicros: float64((now.cpu - before.cpu).Microseconds()) / float64(n),
		allocs:    float64(now.mallocs-before.mallocs) / float64(n),
	}
}

func allocs(ctx context.Context, c *cluster.Cluster) error {
	const queue, n = "bench-allocs", 2000
	if err := declare(c, queue); err != nil {
		return err
	}
	count := func(pub publishFunc) (float64, error) {
		for i := range 100 { // warm up
			if err := pub(ctx, fmt.Sprint("w", i)); err != nil {
				return 0, err
			}
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range n {
			if err := pub(ctx, fmt.Sprint(i)); err != nil {
				return 0, err
			}
		}
		runtime.ReadMemStats(&after)
		return float64(after.Mallocs-before.Mallocs) / n, nil
	}
	raw, closeRaw, err := rawPublisher(c.Node(0).DirectURI(), queue)
	if err != nil {
		return err
	}
	rawAllocs, err := count(raw)
	closeRaw()
	if err != nil {
		return err
	}
	ours, _, closeOurs, err := amqphaPublisher([]string{c.Node(0).DirectURI()}, queue, 1, nil)
	if err != nil {
		return err
	}
	ourAllocs, err := count(ours)
	closeOurs()
	if err != nil {
		return err
	}
	fmt.Println("### Allocations per confirmed publish (whole process, one publisher, window 1)")
	fmt.Println()
	fmt.Println("| raw amqp091-go | amqpha |")
	fmt.Println("|---:|---:|")
	fmt.Printf("| %.1f | %.1f |\n\n", rawAllocs, ourAllocs)
	return nil
}

// failover injects a fault on the connected node n times while 8
// goroutines publish, and reports the gaps. Each round publishes into a
// fresh quorum queue, checked and deleted after the round, so that no round
// pays for a queue grown by the ones before.
func failover(ctx context.Context, c *cluster.Cluster, fault string, n int) error {
	var mu sync.Mutex
	left := map[int]time.Time{} // round → when the client left the node
	round := -1
	cl, err := amqpha.Dial(ctx, amqpha.Config{Nodes: c.URIs(), OnEvent: func(e amqpha.Event) {
		if e.Kind == amqpha.EventReconnecting {
			mu.Lock()
			if _, ok := left[round]; !ok && round >= 0 {
				left[round] = e.Time
			}
			mu.Unlock()
		}
	}})
	if err != nil {
		return err
	}
	defer cl.Close(context.Background())
	p, err := cl.NewPublisher(amqpha.PublisherConfig{Window: 64})
	if err != nil {
		return err
	}
	var gaps, leaves []time.Duration
	total, lost := 0, 0
	for r := range n {
		queue := fmt.Sprintf("bench-%s-%d", fault, r)
		if err := declare(c, queue); err != nil {
			return err
		}
		l := startLoad(ctx, p, queue)
		if err := l.waitConfirms(200, time.Minute); err != nil {
			l.stop()
			return err
		}
		victim := connected(c, cl)
		if victim == nil {
			l.stop()
			return errors.New("client not connected")
		}
		mu.Lock()
		round = r
		mu.Unlock()
		l.faultAt.Store(1 << 62) // no publish counts while the fault is injected
		t0 := time.Now()
		if fault == "kill" {
			err = victim.Kill(ctx) // returns once the process is gone
		} else {
			err = victim.Pause() // returns once the kernel reports it stopped
		}
		if err != nil {
			l.stop()
			return err
		}
		l.faultAt.Store(time.Now().UnixNano())
		deadline := time.Now().Add(2 * time.Minute)
		for l.lastConfirm.Load() <= t0.UnixNano() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		gap := time.Duration(l.lastConfirm.Load() - t0.UnixNano())
		gaps = append(gaps, gap)
		for time.Now().Before(deadline) {
			mu.Lock()
			at, ok := left[r]
			mu.Unlock()
			if ok {
				leaves = append(leaves, at.Sub(t0))
				break
			}
			time.Sleep(time.Millisecond)
		}
		fmt.Fprintf(os.Stderr, "%s %d of %s: next confirm after %v\n", fault, r, victim.Name(), gap.Round(time.Millisecond))
		if fault == "kill" {
			err = victim.Start(ctx)
		} else {
			err = victim.Resume()
		}
		if err == nil {
			err = c.WaitClustered(ctx)
		}
		l.stop()
		if err != nil {
			return err
		}
		seen, err := countQueue(c, queue)
		if err != nil {
			return err
		}
		l.confirmed.Range(func(k, _ any) bool {
			total++
			if seen[k.(string)] == 0 {
				lost++
			}
			return true
		})
		if err := deleteQueue(c, queue); err != nil {
			return err
		}
	}
	title := map[string]string{
		"kill": "Failover gap: SIGKILL of the connected node → next confirmed publish (of a message sent after the kill)",
		"hang": "Hung node: SIGSTOP of the connected node → next confirmed publish, and → client leaves the node",
	}[fault]
	fmt.Printf("### %s\n\n", title)
	fmt.Println("| faults | median gap | worst gap | median time to leave | worst time to leave | confirmed | lost |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Printf("| %d | %v | %v | %v | %v | %d | %d |\n\n", n, ms(median(durs(gaps))), ms(slices.Max(durs(gaps))),
		ms(median(durs(leaves))), ms(maxOr0(durs(leaves))), total, lost)
	if lost > 0 {
		return fmt.Errorf("%d confirmed messages lost", lost)
	}
	return nil
}

// load publishes from 8 goroutines into one queue until stopped.
type load struct {
	wg        sync.WaitGroup
	done      chan struct{}
	confirmed sync.Map
	n         atomic.Int64
	// lastConfirm is when the latest publish confirmed, among those that
	// started after faultAt: the gap counts only messages sent once the
	// fault was in effect, not confirms already on their way.
	lastConfirm, faultAt atomic.Int64
}

func startLoad(ctx context.Context, p *amqpha.Publisher, queue string) *load {
	l := &load{done: make(chan struct{})}
	for g := range 8 {
		l.wg.Go(func() {
			for i := 0; i < 100_000_000; i++ {
				select {
				case <-l.done:
					return
				default:
				}
				id := fmt.Sprintf("%s-%d-%d", queue, g, i)
				started := time.Now().UnixNano()
				pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
				err := p.Publish(pctx, "", queue, amqp.Publishing{MessageId: id, Body: body})
				cancel()
				if err == nil {
					l.confirmed.Store(id, true)
					l.n.Add(1)
					if started >= l.faultAt.Load() {
						l.lastConfirm.Store(time.Now().UnixNano())
					}
				}
			}
		})
	}
	return l
}

func (l *load) waitConfirms(n int64, timeout time.Duration) error { return waitCount(&l.n, n, timeout) }

// waitCount waits until confirmed counts n, polling it (the publishers
// count without signalling), for timeout at most.
func waitCount(confirmed *atomic.Int64, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for confirmed.Load() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d confirms in %v", confirmed.Load(), n, timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func (l *load) stop() {
	close(l.done)
	l.wg.Wait()
}

func deleteQueue(c *cluster.Cluster, queue string) error {
	conn, ch, err := node0Channel(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = ch.QueueDelete(queue, false, false, false)
	return err
}

// node0Channel opens a plain amqp091-go channel on node 0, directly; the
// caller closes the connection.
func node0Channel(c *cluster.Cluster) (*amqp.Connection, *amqp.Channel, error) {
	conn, err := amqp.Dial(c.Node(0).DirectURI())
	if err != nil {
		return nil, nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, ch, nil
}

func connected(c *cluster.Cluster, cl *amqpha.Client) *cluster.Node { return nodeAt(c, cl.Node()) }

// nodeAt is the node whose proxied URI is addr (redacted), or nil.
func nodeAt(c *cluster.Cluster, now string) *cluster.Node {
	for _, n := range c.Nodes() {
		if port := n.URI()[strings.LastIndex(n.URI(), ":"):]; strings.HasSuffix(now, port) {
			return n
		}
	}
	return nil
}

// countQueue consumes every message of queue and returns how many times
// each message-id came.
func countQueue(c *cluster.Cluster, queue string) (map[string]int, error) {
	conn, ch, err := node0Channel(c)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return nil, err
	}
	if err := ch.Qos(2000, 0, false); err != nil {
		return nil, err
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return nil, err
	}
	seen := map[string]int{}
	timeout := time.After(10 * time.Minute)
	for got := 0; got < q.Messages; got++ {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return nil, fmt.Errorf("consumer closed after %d of %d", got, q.Messages)
			}
			seen[d.MessageId]++
			if got%1000 == 999 || got == q.Messages-1 {
				d.Ack(true)
			}
		case <-timeout:
			return nil, fmt.Errorf("counted %d of %d messages", got, q.Messages)
		}
	}
	return seen, nil
}

func durs(ds []time.Duration) []float64 {
	f := make([]float64, len(ds))
	for i, d := range ds {
		f[i] = d.Seconds()
	}
	return f
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxOr0(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}

func ms(sec float64) string { return fmt.Sprintf("%.3f s", sec) }

// cpuProfile is -cpuprofile: the amqpha throughput runs' CPU profiles go
// to files named after it, one per window and round.
var cpuProfile string

// profileCPU profiles one amqpha throughput run (window w, round r) when
// -cpuprofile is given, into <cpuprofile>-w<w>-r<r>, and returns the
// function that ends it. Raw amqp091-go's runs are not profiled.
func profileCPU(kind string, w, r int) func() {
	if cpuProfile == "" || kind != "amqpha" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s-w%d-r%d", cpuProfile, w, r))
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "amqpha-bench: -cpuprofile:", err)
		if f != nil {
			f.Close()
		}
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
