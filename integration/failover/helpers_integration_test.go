//go:build integration

package failover

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
	"github.com/amqpha/amqpha/integration/clustertest"
)

var shared *cluster.Cluster

func TestMain(m *testing.M) {
	if os.Getenv(stallChildEnv) != "" {
		os.Exit(stallChild()) // a client process for TestClientPauseIsNotAHang
	}
	// A short net_ticktime bounds how long a hung node that leads a
	// quorum queue stalls it (the cluster's floor, not the client's).
	os.Exit(clustertest.Main(m, cluster.Options{NetTicktime: 10 * time.Second}, &shared))
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// restore puts every node of the shared cluster back when the test ends.
func restore(t *testing.T) { clustertest.Restore(t, shared) }

// rawChannel opens a plain amqp091-go channel on node i, directly.
func rawChannel(t *testing.T, i int) *amqp.Channel {
	t.Helper()
	conn, err := amqp.DialConfig(shared.Node(i).DirectURI(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("raw dial node %d: %v", i, err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// quorumQueue declares a fresh quorum queue through node leader (its first
// leader) and deletes it when the test ends.
func quorumQueue(t *testing.T, leader int, args amqp.Table) string {
	t.Helper()
	return declareQueue(t, leader, "quorum", args)
}

// declareQueue declares a fresh durable queue of type kind through node
// leader and deletes it when the test ends.
func declareQueue(t *testing.T, leader int, kind string, args amqp.Table) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	a := amqp.Table{"x-queue-type": kind}
	for k, v := range args {
		a[k] = v
	}
	if _, err := rawChannel(t, leader).QueueDeclare(name, true, false, false, false, a); err != nil {
		t.Fatalf("declare %s: %v", name, err)
	}
	t.Cleanup(func() {
		for i := range shared.Nodes() {
			if !shared.Node(i).Running() {
				continue
			}
			conn, err := amqp.DialConfig(shared.Node(i).DirectURI(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
			if err != nil {
				continue
			}
			if ch, err := conn.Channel(); err == nil {
				ch.QueueDelete(name, false, false, false)
			}
			conn.Close()
			return
		}
	})
	return name
}

// drainQueue consumes everything in queue and counts each message-id.
func drainQueue(t *testing.T, queue string) map[string]int {
	t.Helper()
	ch := rawChannel(t, 0)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil) // arguments are not checked
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	if err := ch.Qos(1000, 0, false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", queue, err)
	}
	seen := map[string]int{}
	timeout := time.After(5 * time.Minute)
	for got := 0; got < q.Messages; got++ {
		select {
		case d, ok := <-deliveries:
			if !ok {
				t.Fatalf("consumer of %s closed after %d of %d", queue, got, q.Messages)
			}
			seen[d.MessageId]++
			if got%500 == 499 || got == q.Messages-1 {
				d.Ack(true)
			}
		case <-timeout:
			t.Fatalf("drained %d of %d messages of %s", got, q.Messages, queue)
		}
	}
	return seen
}

// waitQuorumLeader waits until a running node reports a leader for the
// quorum queue (rabbitmq-queues quorum_status) and returns it; the test
// fails if none does within timeout.
func waitQuorumLeader(t *testing.T, ctx context.Context, queue string, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		for _, n := range shared.Nodes() {
			if !n.Running() || n.Paused() {
				continue
			}
			leader, err := n.QuorumLeader(ctx, queue)
			if err != nil {
				last = err
				continue
			}
			if leader != "" {
				return leader
			}
			last = fmt.Errorf("%s sees no leader", n.Name())
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no leader for quorum queue %s within %v: %v", queue, timeout, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitCounts polls node 0 until queue's ready and unacknowledged counts
// are want, within timeout. The test fails at once if more messages are
// unacknowledged than want says: that is the bound being passed, not a
// count that lags.
func waitCounts(t *testing.T, ctx context.Context, queue string, want cluster.QueueCounts, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		got, err := shared.Node(0).QueueCounts(ctx, queue)
		if err == nil && got.Unacked > want.Unacked {
			t.Fatalf("the broker has %d messages of %s unacknowledged, want at most %d (%d ready)", got.Unacked, queue, want.Unacked, got.Ready)
		}
		if err == nil && got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("counts of %s: %+v, %v; want %+v within %v", queue, got, err, want, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// mgmt returns the body of a GET on node 0's management API, for logs.
func mgmt(t *testing.T, path string) string {
	req, _ := http.NewRequest("GET", shared.Node(0).ManagementURL()+path, nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// client dials amqpha on every node's proxied URI and records its events.
func client(t *testing.T, cfg amqpha.Config) (*amqpha.Client, *events) {
	t.Helper()
	ev := &events{}
	cfg.Nodes = shared.URIs()
	cfg.OnEvent = ev.add
	return clustertest.Dial(t, cfg), ev
}

type events struct {
	mu  sync.Mutex
	all []amqpha.Event
}

func (e *events) add(ev amqpha.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) snapshot() []amqpha.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]amqpha.Event(nil), e.all...)
}

func (e *events) count(k amqpha.EventKind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// connectedNode is the node the client's publishing connection is on, or
// nil.
func connectedNode(c *amqpha.Client) *cluster.Node { return nodeAt(c.Node()) }

// consumerNode is the node the client's consumers' connection is on, or nil.
func consumerNode(c *amqpha.Client) *cluster.Node { return nodeAt(c.ConsumerNode()) }

// nodeAt is the node whose proxied URI is addr, or nil.
func nodeAt(addr string) *cluster.Node {
	u, err := url.Parse(addr)
	if err != nil || u.Port() == "" {
		return nil
	}
	for _, n := range shared.Nodes() {
		nu, _ := url.Parse(n.URI())
		if nu.Port() == u.Port() {
			return n
		}
	}
	return nil
}

// load publishes from several goroutines until stopped and records every
// message whose Publish returned nil.
type load struct {
	t         *testing.T
	pub       *amqpha.Publisher
	queue     string
	stop      chan struct{}
	wg        sync.WaitGroup
	mu        sync.Mutex
	confirmed map[string]bool
	errs      []error
	n         atomic.Int64
}

func startLoad(t *testing.T, pub *amqpha.Publisher, queue string, goroutines int) *load {
	l := &load{t: t, pub: pub, queue: queue, stop: make(chan struct{}), confirmed: map[string]bool{}}
	body := make([]byte, 1024)
	for g := range goroutines {
		l.wg.Go(func() {
			for i := range 10_000_000 {
				select {
				case <-l.stop:
					return
				default:
				}
				id := fmt.Sprintf("g%d-%d", g, i)
				ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
				err := pub.Publish(ctx, "", queue, amqp.Publishing{MessageId: id, Body: body})
				cancel()
				l.mu.Lock()
				if err == nil {
					l.confirmed[id] = true
				} else {
					l.errs = append(l.errs, err)
				}
				l.mu.Unlock()
				if err == nil {
					l.n.Add(1)
				}
				// Paced, so that the queue stays small enough to count.
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	return l
}

// progress waits until n more messages are confirmed and returns how long
// the first of them took.
func (l *load) progress(n int64, timeout time.Duration) (first time.Duration, err error) {
	return progress(&l.n, n, timeout, "publishes confirmed")
}

// progress waits until counter grew by n and returns how long its first
// step took.
func progress(counter *atomic.Int64, n int64, timeout time.Duration, what string) (first time.Duration, err error) {
	start := counter.Load()
	began := time.Now()
	deadline := began.Add(timeout)
	for {
		got := counter.Load() - start
		if got >= 1 && first == 0 {
			first = time.Since(began)
		}
		if got >= n {
			return first, nil
		}
		if time.Now().After(deadline) {
			return first, fmt.Errorf("only %d of %d %s in %v", got, n, what, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// halt stops the load, reports failed publishes, and returns the ids of
// the confirmed messages.
func (l *load) halt() map[string]bool {
	l.t.Helper()
	close(l.stop)
	l.wg.Wait()
	for _, err := range l.errs {
		l.t.Errorf("publish failed: %v", err)
	}
	return l.confirmed
}

// finish stops the load and checks that every confirmed message is in the
// queue exactly once or more; it returns the number of duplicates.
func (l *load) finish() (confirmed, duplicates int) {
	l.t.Helper()
	l.halt()
	seen := drainQueue(l.t, l.queue)
	lost := 0
	for id := range l.confirmed {
		if seen[id] == 0 {
			lost++
			if lost <= 5 {
				l.t.Errorf("confirmed message %s is not in the queue", id)
			}
		}
	}
	if lost > 0 {
		l.t.Errorf("%d of %d confirmed messages lost", lost, len(l.confirmed))
	}
	for _, c := range seen {
		duplicates += c - 1
	}
	return len(l.confirmed), duplicates
}
