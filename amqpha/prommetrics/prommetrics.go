package prommetrics

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amqpha/amqpha/amqpha"
)

// Metrics implements [amqpha.Metrics] with Prometheus counters, a
// histogram and a gauge. Its methods are safe for concurrent use and never
// block: the publishing and consuming ones are an atomic add each (the
// confirm a histogram observation too). It is also a
// [prometheus.Collector] of all its metrics.
type Metrics struct {
	published   prometheus.Counter
	republished prometheus.Counter
	confirmed   prometheus.Counter
	latency     prometheus.Histogram
	nacked      prometheus.Counter
	failedVec   *prometheus.CounterVec
	failed      [numReasons]prometheus.Counter // failedVec's children, by reason
	deliveries  prometheus.Counter
	settledVec  *prometheus.CounterVec
	settled     [numActions]prometheus.Counter // settledVec's children, by amqpha.Action
	reconnects  *prometheus.CounterVec
	switches    *prometheus.CounterVec
	connected   *prometheus.GaugeVec

	all []prometheus.Collector
}

var (
	_ amqpha.Metrics       = (*Metrics)(nil)
	_ prometheus.Collector = (*Metrics)(nil)
)

// Option changes how New builds the metrics.
type Option func(*options)

type options struct {
	buckets []float64
}

// defaultBuckets suit confirm latencies: 0.5 ms on loopback to seconds
// while a quorum queue elects a leader.
var defaultBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Buckets sets the upper bounds, in seconds, of the confirm latency
// histogram's buckets, in increasing order. The default runs from 0.5 ms
// to 10 s: .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5,
// 5, 10.
func Buckets(upper ...float64) Option {
	return func(o *options) { o.buckets = append([]float64(nil), upper...) }
}

// reason is the label value of amqpha_publish_errors_total.
type reason int

const (
	reasonNacked reason = iota
	reasonUnroutable
	reasonBlocked
	reasonClosed
	reasonContext
	reasonOther
	numReasons
)

var reasonNames = [numReasons]string{"nacked", "unroutable", "blocked", "closed", "context", "other"}

// numActions covers amqpha.Ack, Requeue, Nack and Reject, the actions
// Settled is given.
const numActions = int(amqpha.Reject) + 1

// New creates the metrics and registers them on reg, all at once or none
// (an error says why, e.g. they are registered there already). With reg
// nil it registers nothing; the Metrics is a prometheus.Collector to
// register later.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	o := options{buckets: defaultBuckets}
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.buckets) == 0 {
		return nil, errors.New("prommetrics: no latency buckets")
	}
	for i := 1; i < len(o.buckets); i++ {
		if !(o.buckets[i] > o.buckets[i-1]) {
			return nil, fmt.Errorf("prommetrics: latency buckets not increasing at %v, %v", o.buckets[i-1], o.buckets[i])
		}
	}
	m := &Metrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amqpha_published_total",
			Help: "Messages handed to the broker (basic.publish written), sends again included.",
		}),
		republished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amqpha_republished_total",
			Help: "Messages sent again because their connection or channel was lost before the confirm, their channel gave no confirm in time, or the broker nacked them; part of amqpha_published_total.",
		}),
		confirmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amqpha_confirmed_total",
			Help: "Messages the broker confirmed (acked): Publish returned nil.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "amqpha_confirm_latency_seconds",
			Help:    "Seconds from a confirmed message's last basic.publish to the broker's ack.",
			Buckets: o.buckets,
		}),
		nacked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amqpha_nacked_total",
			Help: "Nacks (basic.nack) received from the broker; a nacked message is sent again until NackRetryFor passes.",
		}),
		failedVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amqpha_publish_errors_total",
			Help: "Publishes that returned an error to the caller, by reason: nacked, unroutable, blocked, closed, context (deadline or cancel), other.",
		}, []string{"reason"}),
		deliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "amqpha_deliveries_total",
			Help: "Deliveries handed to consumers' handlers.",
		}),
		settledVec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amqpha_settled_total",
			Help: "Deliveries settled with the broker, by action: ack, requeue, nack, reject.",
		}, []string{"action"}),
		reconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amqpha_reconnects_total",
			Help: "Connections lost (node down, hung, unreachable or closed by the broker) after which the client reconnected, by connection.",
		}, []string{"connection"}),
		switches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "amqpha_node_switches_total",
			Help: "Times a connection came up on another node than the one it was on before, by connection.",
		}, []string{"connection"}),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "amqpha_connected",
			Help: "1 while the connection is open on the node (host:port); absent otherwise.",
		}, []string{"connection", "node"}),
	}
	for r := range numReasons {
		m.failed[r] = m.failedVec.WithLabelValues(reasonNames[r])
	}
	for a := range numActions {
		m.settled[a] = m.settledVec.WithLabelValues(amqpha.Action(a).String())
	}
	m.all = []prometheus.Collector{
		m.published, m.republished, m.confirmed, m.latency, m.nacked, m.failedVec,
		m.deliveries, m.settledVec, m.reconnects, m.switches, m.connected,
	}
	if reg != nil {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("prommetrics: register: %w", err)
		}
	}
	return m, nil
}

// Describe sends the descriptors of every metric (prometheus.Collector).
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.all {
		c.Describe(ch)
	}
}

// Collect sends every metric's current value (prometheus.Collector).
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.all {
		c.Collect(ch)
	}
}

// Published counts a basic.publish, and a send again if again.
func (m *Metrics) Published(again bool) {
	m.published.Inc()
	if again {
		m.republished.Inc()
	}
}

// Confirmed counts a confirmed message and observes its latency.
func (m *Metrics) Confirmed(latency time.Duration) {
	m.confirmed.Inc()
	m.latency.Observe(latency.Seconds())
}

// Nacked counts a basic.nack.
func (m *Metrics) Nacked() { m.nacked.Inc() }

// PublishFailed counts a failed publish under the reason err matches.
func (m *Metrics) PublishFailed(err error) { m.failed[reasonOf(err)].Inc() }

// reasonOf sorts a publish error into a label value. A context error while
// the broker blocks publishing is "blocked": the block is the cause.
func reasonOf(err error) reason {
	switch {
	case errors.Is(err, amqpha.ErrNacked):
		return reasonNacked
	case errors.Is(err, amqpha.ErrUnroutable):
		return reasonUnroutable
	case errors.Is(err, amqpha.ErrBlocked):
		return reasonBlocked
	case errors.Is(err, amqpha.ErrClosed):
		return reasonClosed
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return reasonContext
	}
	return reasonOther
}

// Delivered counts a delivery handed to a handler.
func (m *Metrics) Delivered() { m.deliveries.Inc() }

// Settled counts a settlement; actions other than Ack, Requeue, Nack and
// Reject are ignored.
func (m *Metrics) Settled(a amqpha.Action) {
	if a >= 0 && int(a) < numActions {
		m.settled[a].Inc()
	}
}

// ConnectionUp sets amqpha_connected{conn,node} to 1 and counts a node
// switch when previous is set. It makes the connection's counters
// appear at 0 the first time.
func (m *Metrics) ConnectionUp(conn, node, previous string) {
	m.reconnects.WithLabelValues(conn)
	sw := m.switches.WithLabelValues(conn)
	if previous != "" && previous != node {
		sw.Inc()
	}
	m.connected.WithLabelValues(conn, node).Set(1)
}

// ConnectionDown removes amqpha_connected{conn,node} and counts a
// reconnect when lost.
func (m *Metrics) ConnectionDown(conn, node string, lost bool) {
	m.connected.DeleteLabelValues(conn, node)
	if lost {
		m.reconnects.WithLabelValues(conn).Inc()
	}
}
