//go:build integration

package failover

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
)

// handled records what consumers handled. Its handler acknowledges every
// delivery itself and counts the acknowledgements refused as stale.
type handled struct {
	t      *testing.T
	mu     sync.Mutex
	seen   map[string]int
	n      atomic.Int64
	stale  atomic.Int64
	bodies chan string
}

func newHandled(t *testing.T) *handled {
	return &handled{t: t, seen: map[string]int{}, bodies: make(chan string, 1000)}
}

func (h *handled) handle(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
	err := d.Ack()
	switch {
	case errors.Is(err, amqpha.ErrStaleDelivery):
		h.stale.Add(1) // the broker delivers it again
		return amqpha.Manual
	case err != nil:
		h.t.Errorf("ack of %s: %v", d.MessageId, err)
		return amqpha.Manual
	}
	h.mu.Lock()
	h.seen[d.MessageId]++
	h.mu.Unlock()
	h.n.Add(1)
	select {
	case h.bodies <- string(d.Body):
	default:
	}
	return amqpha.Manual
}

// waitAll waits until every id in want was handled and returns the number
// of duplicates.
func (h *handled) waitAll(want map[string]bool, timeout time.Duration) (dups int, err error) {
	deadline := time.Now().Add(timeout)
	for {
		h.mu.Lock()
		missing := 0
		var example string
		for id := range want {
			if h.seen[id] == 0 {
				missing++
				example = id
			}
		}
		dups = 0
		for _, c := range h.seen {
			dups += c - 1
		}
		h.mu.Unlock()
		if missing == 0 {
			return dups, nil
		}
		if time.Now().After(deadline) {
			return dups, fmt.Errorf("%d of %d confirmed messages never handled (e.g. %s)", missing, len(want), example)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expectBody waits for a handled message with body want.
func (h *handled) expectBody(want string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case b := <-h.bodies:
			if b == want {
				return nil
			}
		case <-t.C:
			return fmt.Errorf("no message %q handled in %v", want, timeout)
		}
	}
}

// waitEvent waits until the client emitted an event of kind k after the
// first skip ones.
func (e *events) waitEvent(k amqpha.EventKind, skip int, timeout time.Duration) (amqpha.Event, error) {
	deadline := time.Now().Add(timeout)
	for {
		n := 0
		for _, ev := range e.snapshot() {
			if ev.Kind == k {
				if n == skip {
					return ev, nil
				}
				n++
			}
		}
		if time.Now().After(deadline) {
			return amqpha.Event{}, fmt.Errorf("no %s event (after %d) in %v", k, skip, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countOn counts the events of kind k on connection conn.
func (e *events) countOn(k amqpha.EventKind, conn string) int {
	n := 0
	for _, ev := range e.snapshot() {
		if ev.Kind == k && ev.Connection == conn {
			n++
		}
	}
	return n
}

// waitEventOn waits until more than skip events of kind k came on
// connection conn.
func (e *events) waitEventOn(k amqpha.EventKind, conn string, skip int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for e.countOn(k, conn) <= skip {
		if time.Now().After(deadline) {
			return fmt.Errorf("no %s event on the %s connection (after %d) in %v", k, conn, skip, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// noStaleTagErrors fails t if any consumer channel was closed by the broker
// with 406 PRECONDITION_FAILED (an acknowledgement of an unknown delivery
// tag).
func noStaleTagErrors(t *testing.T, ev *events) {
	t.Helper()
	for _, e := range ev.snapshot() {
		var ae *amqp.Error
		if errors.As(e.Err, &ae) && ae.Code == amqp.PreconditionFailed {
			t.Errorf("%s event with 406: %v", e.Kind, e.Err)
		}
	}
}

func uniqueName(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
}

// deleteQueueLater deletes queue through node 0 when the test ends.
func deleteQueueLater(t *testing.T, queue string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shared.Node(0).Ctl(ctx, "rabbitmqctl", "delete_queue", queue)
	})
}

// The node the consumers are connected to is killed, hung and cut off in
// turn while a producer publishes to a quorum queue and three consumers
// handle its messages: every confirmed message is handled, no consumer
// channel is closed by a stale acknowledgement, and the consumers go on
// after every fault.
func TestConsumersSurviveFaultsOfTheirNode(t *testing.T) {
	restore(t)
	c, ev := client(t, amqpha.Config{})
	ctx := ctxFor(t, 10*time.Minute)
	queue, err := c.DeclareQueue(ctx, amqpha.QuorumQueue(uniqueName(t)))
	if err != nil {
		t.Fatal(err)
	}
	deleteQueueLater(t, queue)
	pub, err := c.NewPublisher(amqpha.PublisherConfig{Window: 64})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandled(t)
	var consumers []*amqpha.Consumer
	for range 3 {
		k, err := c.Consume(ctx, queue, amqpha.ConsumerConfig{Prefetch: 50, Concurrency: 2}, h.handle)
		if err != nil {
			t.Fatal(err)
		}
		consumers = append(consumers, k)
	}
	l := startLoad(t, pub, queue, 4)
	if _, err := progress(&h.n, 200, time.Minute, "messages handled"); err != nil {
		t.Fatal(err)
	}
	// AMQPHA_FAULTS and AMQPHA_ROUNDS widen or narrow the run by hand.
	kinds, rounds := "kill,hang,cut", 2
	if v := os.Getenv("AMQPHA_FAULTS"); v != "" {
		kinds = v
	}
	if v, err := strconv.Atoi(os.Getenv("AMQPHA_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	faultsDone := 0
	for _, f := range faults {
		if !slices.Contains(strings.Split(kinds, ","), f.name) {
			continue
		}
		for round := range rounds {
			victim := consumerNode(c)
			if victim == nil {
				t.Fatalf("%s round %d: consumers not connected", f.name, round)
			}
			t.Logf("%s of %s; queue leader %s", f.name, victim.Name(), queueLeader(ctx, queue))
			if err := f.inject(ctx, victim); err != nil {
				t.Fatal(err)
			}
			// A hung node that leads the queue stalls it until the
			// cluster's net_ticktime declares it down.
			gap, err := progress(&h.n, 100, 2*time.Minute, "messages handled")
			if err != nil {
				t.Fatalf("%s round %d of %s: %v", f.name, round, victim.Name(), err)
			}
			t.Logf("%s of %s: next message handled after %v", f.name, victim.Name(), gap.Round(time.Millisecond))
			if consumerNode(c) == victim {
				t.Errorf("%s round %d: consumers still on %s", f.name, round, victim.Name())
			}
			if err := f.undo(ctx, victim); err != nil {
				t.Fatal(err)
			}
			if err := shared.WaitClustered(ctx); err != nil {
				t.Fatal(err)
			}
			faultsDone++
		}
	}
	confirmed := l.halt()
	dups, err := h.waitAll(confirmed, 3*time.Minute)
	if err != nil {
		t.Error(err)
	}
	t.Logf("%d confirmed, %d handled, %d duplicates, %d stale acks refused, %d reconnects",
		len(confirmed), h.n.Load(), dups, h.stale.Load(), c.Reconnects())
	noStaleTagErrors(t, ev)
	for i, k := range consumers {
		if r := k.Registrations(); r < uint64(1+faultsDone) {
			t.Errorf("consumer %d registered %d times over %d faults of its node", i, r, faultsDone)
		}
	}
}

// A server-named exclusive queue bound to an exchange is declared again on
// the new node after the consumers' node dies, under a new name, with its
// binding, and the consumer receives what is published to the exchange.
func TestServerNamedQueueFollowsFailover(t *testing.T) {
	restore(t)
	c, ev := client(t, amqpha.Config{})
	ctx := ctxFor(t, 5*time.Minute)
	// Published to src, routed to dst by an exchange-to-exchange binding,
	// and from dst to the queue.
	src, ex := uniqueName(t)+"-src", uniqueName(t)
	for _, name := range []string{src, ex} {
		if err := c.DeclareExchange(ctx, amqpha.Exchange{Name: name, Kind: "fanout"}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c.DeleteExchange(cctx, name)
		})
	}
	if err := c.BindExchange(ctx, amqpha.ExchangeBinding{Destination: ex, Source: src}); err != nil {
		t.Fatal(err)
	}
	q, err := c.DeclareQueue(ctx, amqpha.Queue{Exclusive: true, AutoDelete: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(q, "amq.gen-") {
		t.Fatalf("server-named queue is called %q", q)
	}
	if err := c.BindQueue(ctx, amqpha.QueueBinding{Queue: q, Exchange: ex}); err != nil {
		t.Fatal(err)
	}
	h := newHandled(t)
	k, err := c.Consume(ctx, q, amqpha.ConsumerConfig{}, h.handle)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, src, "", amqp.Publishing{Body: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	if err := h.expectBody("before", 30*time.Second); err != nil {
		t.Fatal(err)
	}

	victim := consumerNode(c)
	if err := victim.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	renamed, err := ev.waitEvent(amqpha.EventQueueRenamed, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.waitEvent(amqpha.EventConsumerRegistered, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	now := c.QueueName(q)
	if now == q || now != renamed.Queue || renamed.Previous != q || k.Queue() != now {
		t.Fatalf("after failover: QueueName %q, event %q→%q, consumer on %q; declared as %q",
			now, renamed.Previous, renamed.Queue, k.Queue(), q)
	}
	if err := pub.Publish(ctx, src, "", amqp.Publishing{Body: []byte("after")}); err != nil {
		t.Fatal(err)
	}
	if err := h.expectBody("after", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if f := ev.count(amqpha.EventTopologyFailed); f != 0 {
		t.Errorf("%d topology failures: %v", f, ev.snapshot())
	}
}

// queueLeader is the node that leads a quorum queue now, for logs.
func queueLeader(ctx context.Context, queue string) string {
	for _, n := range shared.Nodes() {
		if !n.Running() || n.Paused() {
			continue
		}
		out, err := n.Ctl(ctx, "rabbitmq-queues", "quorum_status", queue, "--formatter", "json")
		if err != nil {
			return err.Error()
		}
		var members []map[string]any
		if err := json.Unmarshal(out, &members); err != nil {
			return "?"
		}
		for _, m := range members {
			if m["Raft State"] == "leader" {
				return fmt.Sprint(m["Node Name"])
			}
		}
		return "none"
	}
	return "?"
}

// deleteByManagementAPI deletes queue through node 0's management API, as
// an operator would.
func deleteByManagementAPI(t *testing.T, queue string) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", shared.Node(0).ManagementURL()+"/api/queues/%2F/"+url.PathEscape(queue), nil)
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE queue %s: %s", queue, resp.Status)
	}
}

// A queue an operator deletes cancels its consumers; they come back once
// the queue exists again: declared again by the client when it was declared
// through it, or re-created by the operator. A queue deleted while the
// client is cut off from the cluster is reported when the consumer's
// registration on the new connection is refused.
func TestConsumerComesBackAfterQueueDeleted(t *testing.T) {
	t.Run("declared-through-client", func(t *testing.T) {
		restore(t)
		c, ev := client(t, amqpha.Config{})
		ctx := ctxFor(t, 3*time.Minute)
		q, err := c.DeclareQueue(ctx, amqpha.QuorumQueue(uniqueName(t)))
		if err != nil {
			t.Fatal(err)
		}
		deleteQueueLater(t, q)
		h := newHandled(t)
		k, err := c.Consume(ctx, q, amqpha.ConsumerConfig{}, h.handle)
		if err != nil {
			t.Fatal(err)
		}
		cancelled, registered := ev.count(amqpha.EventConsumerCancelled), ev.count(amqpha.EventConsumerRegistered)
		deleteByManagementAPI(t, q)
		if _, err := ev.waitEvent(amqpha.EventConsumerCancelled, cancelled, time.Minute); err != nil {
			t.Fatal(consumerDiagnosis(ctx, err, c, k, ev, q))
		}
		if _, err := ev.waitEvent(amqpha.EventConsumerRegistered, registered, time.Minute); err != nil {
			t.Fatal(consumerDiagnosis(ctx, err, c, k, ev, q))
		}
		pub, err := c.NewPublisher(amqpha.PublisherConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(ctx, "", q, amqp.Publishing{Body: []byte("back")}); err != nil {
			t.Fatal(err)
		}
		if err := h.expectBody("back", 30*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("re-created-by-operator", func(t *testing.T) {
		// Seen once in CI (RabbitMQ 3.10.8, 2026-12-05): the broker did
		// not cancel the consumer of a quorum queue deleted through
		// another node; a channel still counted the consumer a minute
		// later, and no basic.cancel came, which no client can notice.
		// (The broker drops a consumer from its channel's count as it
		// sends the cancel.) A minute without the event while a channel
		// still counts a consumer, with the client consuming only this
		// queue and registered once, is run once more on a fresh queue
		// and client; twice fails, and so does a missing event where no
		// channel counts a consumer any more.
		for attempt := 1; ; attempt++ {
			qc := consumeOperatorQueue(t)
			if _, err := shared.Node(1).Ctl(qc.ctx, "rabbitmqctl", "delete_queue", qc.q); err != nil {
				t.Fatal(err)
			}
			_, err := qc.ev.waitEvent(amqpha.EventConsumerCancelled, qc.cancelled, time.Minute)
			if err == nil {
				qc.comesBackWhenRecreated(t)
				return
			}
			kept, counts := brokerKeptConsumer(qc.ctx)
			if !kept || qc.k.Registrations() != 1 || attempt == 2 {
				t.Fatal(qc.diagnosis(fmt.Errorf("%w (attempt %d; channels' consumer counts: %s)", err, attempt, counts)))
			}
			t.Logf("the broker did not cancel the consumer of the deleted queue %s; once more on a fresh queue and client. %s", qc.q, qc.diagnosis(err))
			if err := qc.c.Close(qc.ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Run("deleted-while-cut-off", func(t *testing.T) {
		qc := consumeOperatorQueue(t)
		lost := qc.ev.countOn(amqpha.EventReconnecting, "consume")
		// The broker's basic.cancel is held by the cut and dies with the
		// connection the client gives up.
		for _, n := range shared.Nodes() {
			n.Cut()
		}
		if _, err := shared.Node(1).Ctl(qc.ctx, "rabbitmqctl", "delete_queue", qc.q); err != nil {
			t.Fatal(err)
		}
		if err := qc.ev.waitEventOn(amqpha.EventReconnecting, "consume", lost, time.Minute); err != nil {
			t.Fatal(qc.diagnosis(err))
		}
		for _, n := range shared.Nodes() {
			n.Heal()
		}
		e, err := qc.ev.waitEvent(amqpha.EventConsumerCancelled, qc.cancelled, time.Minute)
		if err != nil {
			t.Fatal(qc.diagnosis(err))
		}
		var ae *amqp.Error
		if !errors.As(e.Err, &ae) || ae.Code != amqp.NotFound {
			t.Fatalf("consumer-cancelled with %v, want the broker's 404", e.Err)
		}
		qc.comesBackWhenRecreated(t)
	})
}

// queueConsumer is a client consuming a quorum queue an operator declared
// through node 0, with its consumer events counted before the queue is
// deleted.
type queueConsumer struct {
	c                     *amqpha.Client
	ev                    *events
	ctx                   context.Context
	q                     string
	h                     *handled
	k                     *amqpha.Consumer
	cancelled, registered int
}

func consumeOperatorQueue(t *testing.T) *queueConsumer {
	t.Helper()
	restore(t)
	qc := &queueConsumer{ctx: ctxFor(t, 3*time.Minute), h: newHandled(t)}
	qc.c, qc.ev = client(t, amqpha.Config{})
	qc.q = quorumQueue(t, 0, nil)
	k, err := qc.c.Consume(qc.ctx, qc.q, amqpha.ConsumerConfig{}, qc.h.handle)
	if err != nil {
		t.Fatal(err)
	}
	qc.k = k
	qc.cancelled, qc.registered = qc.ev.count(amqpha.EventConsumerCancelled), qc.ev.count(amqpha.EventConsumerRegistered)
	return qc
}

func (qc *queueConsumer) diagnosis(err error) string {
	return consumerDiagnosis(qc.ctx, err, qc.c, qc.k, qc.ev, qc.q)
}

// comesBackWhenRecreated checks that the consumer, whose queue is
// missing, stays unregistered, and is registered again and receives once an
// operator declared the queue again.
func (qc *queueConsumer) comesBackWhenRecreated(t *testing.T) {
	t.Helper()
	// While the queue is missing the consumer keeps trying, with
	// backoff; it is not back yet.
	regs := qc.k.Registrations()
	time.Sleep(time.Second)
	if n := qc.k.Registrations(); n != regs {
		t.Fatalf("registered %d times more while its queue is missing", n-regs)
	}
	if _, err := rawChannel(t, 2).QueueDeclare(qc.q, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	if _, err := qc.ev.waitEvent(amqpha.EventConsumerRegistered, qc.registered, time.Minute); err != nil {
		t.Fatal(qc.diagnosis(err))
	}
	if err := rawChannel(t, 1).Publish("", qc.q, false, false, amqp.Publishing{Body: []byte("back")}); err != nil {
		t.Fatal(err)
	}
	if err := qc.h.expectBody("back", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// brokerKeptConsumer reports whether a channel in the cluster still
// counts a consumer, and the counts: where the one queue consumed was
// deleted, the broker then never cancelled its consumer.
func brokerKeptConsumer(ctx context.Context) (bool, string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, n := range shared.Nodes() {
		if !n.Running() || n.Paused() {
			continue
		}
		out, err := n.Ctl(ctx, "rabbitmqctl", "list_channels", "-q", "--no-table-headers", "consumer_count")
		if err != nil {
			return false, err.Error()
		}
		counts := strings.Fields(string(out))
		return slices.ContainsFunc(counts, func(f string) bool { return f != "0" }), strings.Join(counts, " ")
	}
	return false, "no node running"
}

// consumerDiagnosis is err with what the next failure needs to say why:
// the client's events, the consumer's registrations and node, and what the
// broker lists for queue q (its consumers, every channel's consumer count,
// the queues).
func consumerDiagnosis(ctx context.Context, err error, c *amqpha.Client, k *amqpha.Consumer, ev *events, q string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v\nconsumer %s registered %d times; consumers' connection on %q\nevents:\n", err, k.Tag(), k.Registrations(), c.ConsumerNode())
	for _, e := range ev.snapshot() {
		fmt.Fprintf(&b, "  %s %-19s %-8s gen %d node %q queue %q consumer %q err %v\n",
			e.Time.Format("15:04:05.000"), e.Kind, e.Connection, e.Generation, e.Node, e.Queue, e.Consumer, e.Err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, n := range shared.Nodes() {
		if !n.Running() || n.Paused() {
			continue
		}
		for _, args := range [][]string{
			{"list_consumers", "-q", "--no-table-headers", "queue_name", "channel_pid", "consumer_tag"},
			{"list_channels", "-q", "--no-table-headers", "pid", "connection", "consumer_count"},
			{"list_queues", "-q", "--no-table-headers", "name", "type", "consumers"},
		} {
			out, err := n.Ctl(ctx, "rabbitmqctl", args...)
			fmt.Fprintf(&b, "%s rabbitmqctl %s (queue %s): %v\n%s", n.Name(), args[0], q, err, out)
		}
		break
	}
	return b.String()
}

// A recorded queue that an operator re-declared with other arguments fails
// to declare on every new connection: each failure is one event, the
// client stays up, and the consumer and publisher go on using the queue.
func TestTopologyReplayFailureIsReportedNotLooped(t *testing.T) {
	restore(t)
	c, ev := client(t, amqpha.Config{})
	ctx := ctxFor(t, 3*time.Minute)
	q, err := c.DeclareQueue(ctx, amqpha.Queue{Name: uniqueName(t), Durable: true, Args: amqp.Table{"x-max-length": int32(1000)}})
	if err != nil {
		t.Fatal(err)
	}
	deleteQueueLater(t, q)
	raw := rawChannel(t, 0)
	if _, err := raw.QueueDelete(q, false, false, false); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.QueueDeclare(q, true, false, false, false, amqp.Table{"x-max-length": int32(5000)}); err != nil {
		t.Fatal(err)
	}
	h := newHandled(t)
	if _, err := c.Consume(ctx, q, amqpha.ConsumerConfig{}, h.handle); err != nil {
		t.Fatal(err)
	}
	readyBefore := ev.count(amqpha.EventReady)
	failedBefore := ev.count(amqpha.EventTopologyFailed)
	const resets = 3
	for i := range resets {
		for _, n := range shared.Nodes() {
			n.ResetConnections()
		}
		// Both connections come back.
		if _, err := ev.waitEvent(amqpha.EventReady, readyBefore+2*(i+1)-1, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	// Every new connection replays once: its failure comes before its
	// ready event; at most the two connections may be between the two.
	readies, failures := -readyBefore, -failedBefore
	for _, e := range ev.snapshot() {
		switch e.Kind {
		case amqpha.EventReady:
			readies++
		case amqpha.EventTopologyFailed:
			failures++
			var ae *amqp.Error
			if !errors.As(e.Err, &ae) || ae.Code != amqp.PreconditionFailed || !strings.Contains(e.Reason, q) {
				t.Fatalf("topology failure event: %s: %v", e.Reason, e.Err)
			}
		}
	}
	t.Logf("%d topology failures over %d new connections", failures, readies)
	if failures < readies || failures > readies+2 {
		t.Fatalf("%d topology failures over %d new connections, want one each", failures, readies)
	}
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Publish(ctx, "", q, amqp.Publishing{Body: []byte("still")}); err != nil {
		t.Fatal(err)
	}
	if err := h.expectBody("still", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}

// A consumer of a classic mirrored queue (RabbitMQ 3.x) with
// x-cancel-on-ha-failover is cancelled by the broker when the queue's
// master dies, and comes back on the promoted mirror.
func TestConsumerOfMirroredQueueComesBackAfterHAFailover(t *testing.T) {
	restore(t)
	c, ev := client(t, amqpha.Config{})
	ctx := ctxFor(t, 3*time.Minute)
	// Start the consumers' connection, then put the master elsewhere.
	if _, err := c.DeclareQueue(ctx, amqpha.Queue{Exclusive: true}); err != nil {
		t.Fatal(err)
	}
	master := shared.Node((consumerNode(c).Index() + 1) % len(shared.Nodes()))
	q := uniqueName(t)
	if _, err := master.Ctl(ctx, "rabbitmqctl", "set_policy", "--apply-to", "queues", q, "^"+q+"$",
		`{"ha-mode":"all","ha-sync-mode":"automatic"}`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shared.Node(0).Ctl(cctx, "rabbitmqctl", "clear_policy", q)
	})
	if _, err := rawChannel(t, master.Index()).QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "classic"}); err != nil {
		t.Fatal(err)
	}
	deleteQueueLater(t, q)
	h := newHandled(t)
	if _, err := c.Consume(ctx, q, amqpha.ConsumerConfig{Args: amqp.Table{"x-cancel-on-ha-failover": true}}, h.handle); err != nil {
		t.Fatal(err)
	}
	if err := master.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	cancelled, err := ev.waitEvent(amqpha.EventConsumerCancelled, 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ev.waitEvent(amqpha.EventConsumerRegistered, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("cancelled: %v", cancelled.Err)
	survivor := shared.Node((master.Index() + 1) % len(shared.Nodes()))
	if err := rawChannel(t, survivor.Index()).Publish("", q, false, false, amqp.Publishing{Body: []byte("promoted")}); err != nil {
		t.Fatal(err)
	}
	if err := h.expectBody("promoted", 30*time.Second); err != nil {
		t.Fatal(err)
	}
}
