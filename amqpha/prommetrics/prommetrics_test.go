package prommetrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/amqpha/amqpha/amqpha"
)

func newMetrics(t *testing.T, opts ...Option) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := New(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestPublishingCounts(t *testing.T) {
	m, reg := newMetrics(t)
	m.Published(false)
	m.Published(false)
	m.Published(true)
	m.Confirmed(3 * time.Millisecond)
	m.Confirmed(2 * time.Second)
	m.Nacked()
	want := `
# HELP amqpha_confirm_latency_seconds Seconds from a confirmed message's last basic.publish to the broker's ack.
# TYPE amqpha_confirm_latency_seconds histogram
amqpha_confirm_latency_seconds_bucket{le="0.0005"} 0
amqpha_confirm_latency_seconds_bucket{le="0.001"} 0
amqpha_confirm_latency_seconds_bucket{le="0.0025"} 0
amqpha_confirm_latency_seconds_bucket{le="0.005"} 1
amqpha_confirm_latency_seconds_bucket{le="0.01"} 1
amqpha_confirm_latency_seconds_bucket{le="0.025"} 1
amqpha_confirm_latency_seconds_bucket{le="0.05"} 1
amqpha_confirm_latency_seconds_bucket{le="0.1"} 1
amqpha_confirm_latency_seconds_bucket{le="0.25"} 1
amqpha_confirm_latency_seconds_bucket{le="0.5"} 1
amqpha_confirm_latency_seconds_bucket{le="1"} 1
amqpha_confirm_latency_seconds_bucket{le="2.5"} 2
amqpha_confirm_latency_seconds_bucket{le="5"} 2
amqpha_confirm_latency_seconds_bucket{le="10"} 2
amqpha_confirm_latency_seconds_bucket{le="+Inf"} 2
amqpha_confirm_latency_seconds_sum 2.003
amqpha_confirm_latency_seconds_count 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "amqpha_confirm_latency_seconds"); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		name string
		got  prometheus.Collector
		want float64
	}{
		{"published", m.published, 3},
		{"republished", m.republished, 1},
		{"confirmed", m.confirmed, 2},
		{"nacked", m.nacked, 1},
	} {
		if got := testutil.ToFloat64(c.got); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestPublishErrorsByReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w (3 times in 1s)", amqpha.ErrNacked), "nacked"},
		{fmt.Errorf("%w: exchange \"\", routing key \"q\"", amqpha.ErrUnroutable), "unroutable"},
		{amqpha.ErrBlocked, "blocked"},
		{fmt.Errorf("amqpha: not confirmed: %w while %w", context.DeadlineExceeded, amqpha.ErrBlocked), "blocked"},
		{amqpha.ErrClosed, "closed"},
		{fmt.Errorf("amqpha: not confirmed: %w", context.DeadlineExceeded), "context"},
		{context.Canceled, "context"},
		{errors.New("amqpha: publish to exchange \"x\": NOT_FOUND"), "other"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			m, _ := newMetrics(t)
			m.PublishFailed(tc.err)
			if got := testutil.ToFloat64(m.failedVec.WithLabelValues(tc.want)); got != 1 {
				t.Errorf("PublishFailed(%v): reason %q counts %v, want 1", tc.err, tc.want, got)
			}
			if n := testutil.CollectAndCount(m.failedVec); n != len(reasonNames) {
				t.Errorf("%d reason series, want all %d from the start", n, len(reasonNames))
			}
		})
	}
}

func TestConsumingCounts(t *testing.T) {
	m, reg := newMetrics(t)
	m.Delivered()
	m.Delivered()
	m.Settled(amqpha.Ack)
	m.Settled(amqpha.Requeue)
	m.Settled(amqpha.Reject)
	m.Settled(amqpha.Manual) // never passed; ignored
	m.Settled(amqpha.Action(-1))
	want := `
# HELP amqpha_deliveries_total Deliveries handed to consumers' handlers.
# TYPE amqpha_deliveries_total counter
amqpha_deliveries_total 2
# HELP amqpha_settled_total Deliveries settled with the broker, by action: ack, requeue, nack, reject.
# TYPE amqpha_settled_total counter
amqpha_settled_total{action="ack"} 1
amqpha_settled_total{action="nack"} 0
amqpha_settled_total{action="reject"} 1
amqpha_settled_total{action="requeue"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "amqpha_deliveries_total", "amqpha_settled_total"); err != nil {
		t.Error(err)
	}
}

func TestConnectionChanges(t *testing.T) {
	m, reg := newMetrics(t)
	const a, b = "127.0.0.1:5672", "127.0.0.1:5673"
	m.ConnectionUp("publish", a, "")
	m.ConnectionUp("consume", b, "")
	m.ConnectionDown("publish", a, true)
	m.ConnectionUp("publish", b, a)
	m.ConnectionDown("consume", b, false) // Close: no reconnect
	want := `
# HELP amqpha_connected 1 while the connection is open on the node (host:port); absent otherwise.
# TYPE amqpha_connected gauge
amqpha_connected{connection="publish",node="127.0.0.1:5673"} 1
# HELP amqpha_node_switches_total Times a connection came up on another node than the one it was on before, by connection.
# TYPE amqpha_node_switches_total counter
amqpha_node_switches_total{connection="consume"} 0
amqpha_node_switches_total{connection="publish"} 1
# HELP amqpha_reconnects_total Connections lost (node down, hung, unreachable or closed by the broker) after which the client reconnected, by connection.
# TYPE amqpha_reconnects_total counter
amqpha_reconnects_total{connection="consume"} 0
amqpha_reconnects_total{connection="publish"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "amqpha_connected", "amqpha_node_switches_total", "amqpha_reconnects_total"); err != nil {
		t.Error(err)
	}
	// The same node again is no switch.
	m.ConnectionDown("publish", b, true)
	m.ConnectionUp("publish", b, "")
	if got := testutil.ToFloat64(m.switches.WithLabelValues("publish")); got != 1 {
		t.Errorf("node switches = %v after reconnecting to the same node, want 1", got)
	}
}

func TestMetricsLint(t *testing.T) {
	m, _ := newMetrics(t)
	m.ConnectionUp("publish", "127.0.0.1:5672", "")
	problems, err := testutil.CollectAndLint(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestNewRegistersAllOrNothing(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	var are prometheus.AlreadyRegisteredError
	if _, err := New(reg); !errors.As(err, &are) {
		t.Fatalf("second New on one registry = %v, want an AlreadyRegisteredError", err)
	}
	// Told apart by a label, two clients' metrics live side by side.
	wrapped := prometheus.NewRegistry()
	for _, name := range []string{"a", "b"} {
		if _, err := New(prometheus.WrapRegistererWith(prometheus.Labels{"client": name}, wrapped)); err != nil {
			t.Fatalf("New on a registerer wrapped with client=%s: %v", name, err)
		}
	}
	m, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := prometheus.NewRegistry().Register(m); err != nil {
		t.Fatalf("registering a Metrics made without a registerer: %v", err)
	}
}

func TestBuckets(t *testing.T) {
	for _, tc := range []struct {
		name    string
		buckets []float64
		ok      bool
	}{
		{"increasing", []float64{.001, .01, .1}, true},
		{"one", []float64{1}, true},
		{"empty", nil, false},
		{"equal", []float64{.1, .1}, false},
		{"decreasing", []float64{1, .5}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(prometheus.NewRegistry(), Buckets(tc.buckets...))
			if (err == nil) != tc.ok {
				t.Fatalf("New(Buckets(%v)) = %v, want ok %v", tc.buckets, err, tc.ok)
			}
		})
	}
}

// The methods are called from many goroutines at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	m, _ := newMetrics(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			conn := fmt.Sprintf("publish-%d", g%2)
			for i := range 1000 {
				m.Published(i%10 == 0)
				m.Confirmed(time.Millisecond)
				m.Delivered()
				m.Settled(amqpha.Ack)
				if i%100 == 0 {
					m.ConnectionUp(conn, "127.0.0.1:5672", "")
					m.ConnectionDown(conn, "127.0.0.1:5672", true)
				}
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.confirmed); got != 8000 {
		t.Errorf("confirmed = %v, want 8000", got)
	}
	if got := testutil.ToFloat64(m.reconnects.WithLabelValues("publish-0")); got != 40 {
		t.Errorf("reconnects of publish-0 = %v, want 40", got)
	}
}

func BenchmarkConfirmed(b *testing.B) {
	m, err := New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Published(false)
			m.Confirmed(time.Millisecond)
		}
	})
}

// The hot-path methods allocate nothing.
func TestHotPathDoesNotAllocate(t *testing.T) {
	m, _ := newMetrics(t)
	errNacked := fmt.Errorf("%w (3 times in 1s)", amqpha.ErrNacked)
	if n := testing.AllocsPerRun(1000, func() {
		m.Published(false)
		m.Published(true)
		m.Confirmed(time.Millisecond)
		m.Nacked()
		m.PublishFailed(errNacked)
		m.Delivered()
		m.Settled(amqpha.Ack)
	}); n != 0 {
		t.Errorf("%v allocations per round, want 0", n)
	}
}
