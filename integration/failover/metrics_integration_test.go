//go:build integration

package failover

import (
	"context"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/amqpha/prommetrics"
)

// The Prometheus adapter counts what the callers saw while the publisher's
// node is killed under load: one confirm per Publish that returned nil,
// one latency sample per confirm, the reconnect and node switch of the
// publishing connection (as many as its events), and every delivery.
func TestMetricsCountWhatHappened(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	reg := prometheus.NewRegistry()
	m, err := prommetrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	c, ev := client(t, amqpha.Config{Metrics: m})
	ctx := ctxFor(t, 5*time.Minute)

	var mu sync.Mutex
	seen := map[string]bool{}
	var handled atomic.Int64
	k, err := c.Consume(ctx, q, amqpha.ConsumerConfig{Prefetch: 50}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		handled.Add(1)
		mu.Lock()
		seen[d.MessageId] = true
		mu.Unlock()
		return amqpha.Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := c.NewPublisher(amqpha.PublisherConfig{Window: 64})
	if err != nil {
		t.Fatal(err)
	}

	l := startLoad(t, pub, q, 4)
	if _, err := l.progress(200, time.Minute); err != nil {
		t.Fatal(err)
	}
	victim := connectedNode(c)
	if victim == nil {
		t.Fatal("the publishing connection is on no node")
	}
	if err := victim.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.progress(200, 2*time.Minute); err != nil {
		t.Fatalf("after killing %s: %v", victim.Name(), err)
	}
	confirmedIDs := l.halt() // reports every Publish that failed
	failedPublishes := len(l.errs)
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if now := connectedNode(c); now == nil || now == victim {
		t.Fatalf("publishing connection on %v after killing %s", now, victim.Name())
	}

	// Every confirmed message reaches the consumer; then it stops, so
	// that no handler runs while the registry is read.
	deadline := time.Now().Add(2 * time.Minute)
	for missing := -1; missing != 0; {
		missing = 0
		mu.Lock()
		for id := range confirmedIDs {
			if !seen[id] {
				missing++
			}
		}
		mu.Unlock()
		if missing > 0 && time.Now().After(deadline) {
			t.Fatalf("%d of %d confirmed messages never delivered", missing, len(confirmedIDs))
		}
		if missing > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := k.Close(ctx); err != nil {
		t.Fatal(err)
	}

	g := gather(t, reg)
	confirmed := g.value("amqpha_confirmed_total", nil)
	t.Logf("killed %s: %d Publish calls returned nil, %d failed; published %v (%v again), confirmed %v, nacked %v, deliveries %v, reconnects %v",
		victim.Name(), len(confirmedIDs), failedPublishes, g.value("amqpha_published_total", nil), g.value("amqpha_republished_total", nil),
		confirmed, g.value("amqpha_nacked_total", nil), g.value("amqpha_deliveries_total", nil), g.value("amqpha_reconnects_total", nil))
	if confirmed != float64(len(confirmedIDs)) {
		t.Errorf("amqpha_confirmed_total = %v, want %d (Publish calls that returned nil)", confirmed, len(confirmedIDs))
	}
	if n := g.value("amqpha_confirm_latency_seconds", nil); n != confirmed {
		t.Errorf("confirm latency samples = %v, want %v (one per confirm)", n, confirmed)
	}
	if n := g.value("amqpha_publish_errors_total", nil); n != float64(failedPublishes) {
		t.Errorf("amqpha_publish_errors_total = %v, want %d", n, failedPublishes)
	}
	// Each message is sent a first time once: with no failure, the first
	// sends are the confirmed messages.
	if first := g.value("amqpha_published_total", nil) - g.value("amqpha_republished_total", nil); failedPublishes == 0 && first != confirmed {
		t.Errorf("first sends (published - republished) = %v, want %v (confirmed)", first, confirmed)
	}
	if n := g.value("amqpha_reconnects_total", map[string]string{"connection": "publish"}); n < 1 {
		t.Errorf("amqpha_reconnects_total{connection=publish} = %v after its node was killed, want >= 1", n)
	}
	if n := g.value("amqpha_node_switches_total", map[string]string{"connection": "publish"}); n < 1 {
		t.Errorf("amqpha_node_switches_total{connection=publish} = %v after its node was killed, want >= 1", n)
	}
	delivered := g.value("amqpha_deliveries_total", nil)
	if delivered != float64(handled.Load()) || delivered < float64(len(confirmedIDs)) {
		t.Errorf("amqpha_deliveries_total = %v; handler called %d times for %d confirmed messages", delivered, handled.Load(), len(confirmedIDs))
	}
	if acks := g.value("amqpha_settled_total", map[string]string{"action": "ack"}); acks < float64(len(confirmedIDs)) || acks > delivered {
		t.Errorf("amqpha_settled_total{action=ack} = %v, want between %d and %v", acks, len(confirmedIDs), delivered)
	}
	// The gauge names the node each connection is on now, by host:port.
	pubNode := g.series("amqpha_connected", map[string]string{"connection": "publish"})
	if len(pubNode) != 1 || pubNode[0]["node"] != hostPort(t, c.Node()) || pubNode[0]["node"] == hostPort(t, victim.URI()) {
		t.Errorf("amqpha_connected{connection=publish}: %v, want one series for %s, not the killed %s", pubNode, hostPort(t, c.Node()), hostPort(t, victim.URI()))
	}
	if cons := g.series("amqpha_connected", map[string]string{"connection": "consume"}); len(cons) != 1 {
		t.Errorf("amqpha_connected{connection=consume}: %v, want one series", cons)
	}

	// After Close, the counters agree with the events, and no connection
	// is left in the gauge.
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	g = gather(t, reg)
	for _, conn := range []string{"publish", "consume"} {
		var reconnecting, switched int
		for _, e := range ev.snapshot() {
			if e.Connection != conn {
				continue
			}
			switch e.Kind {
			case amqpha.EventReconnecting:
				reconnecting++
			case amqpha.EventNodeSwitched:
				switched++
			}
		}
		if n := g.value("amqpha_reconnects_total", map[string]string{"connection": conn}); n != float64(reconnecting) {
			t.Errorf("amqpha_reconnects_total{connection=%s} = %v, %d reconnecting events", conn, n, reconnecting)
		}
		if n := g.value("amqpha_node_switches_total", map[string]string{"connection": conn}); n != float64(switched) {
			t.Errorf("amqpha_node_switches_total{connection=%s} = %v, %d node-switched events", conn, n, switched)
		}
	}
	if n := g.value("amqpha_reconnects_total", nil); n != float64(c.Reconnects()) {
		t.Errorf("amqpha_reconnects_total = %v, Client.Reconnects = %d", n, c.Reconnects())
	}
	if left := g.series("amqpha_connected", nil); len(left) != 0 {
		t.Errorf("amqpha_connected after Close: %v, want none", left)
	}
}

// gathered is a registry's content: each metric's series as labels and a
// value (a histogram's value is its sample count).
type gathered map[string][]sample

type sample struct {
	labels map[string]string
	value  float64
}

func gather(t *testing.T, reg *prometheus.Registry) gathered {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	g := gathered{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				s.value = m.GetCounter().GetValue()
			case m.Gauge != nil:
				s.value = m.GetGauge().GetValue()
			case m.Histogram != nil:
				s.value = float64(m.GetHistogram().GetSampleCount())
			}
			g[f.GetName()] = append(g[f.GetName()], s)
		}
	}
	return g
}

// matches reports whether s has every label of want.
func (s sample) matches(want map[string]string) bool {
	for k, v := range want {
		if s.labels[k] != v {
			return false
		}
	}
	return true
}

// value sums the series of name that have the labels of want.
func (g gathered) value(name string, want map[string]string) float64 {
	var sum float64
	for _, s := range g[name] {
		if s.matches(want) {
			sum += s.value
		}
	}
	return sum
}

// series lists the labels of the series of name that have the labels of
// want.
func (g gathered) series(name string, want map[string]string) []map[string]string {
	var out []map[string]string
	for _, s := range g[name] {
		if s.matches(want) {
			out = append(out, s.labels)
		}
	}
	return out
}

// hostPort is the host:port of an AMQP URI, as metrics name nodes.
func hostPort(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("parse %q: %v", uri, err)
	}
	return net.JoinHostPort(u.Hostname(), u.Port())
}
