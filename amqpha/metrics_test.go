package amqpha

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// metricsLog is a Metrics that records each call.
type metricsLog struct {
	mu    sync.Mutex
	calls []string
	errs  []error
}

var _ Metrics = (*metricsLog)(nil)

func (m *metricsLog) note(s string) {
	m.mu.Lock()
	m.calls = append(m.calls, s)
	m.mu.Unlock()
}

func (m *metricsLog) Published(again bool) {
	if again {
		m.note("published-again")
		return
	}
	m.note("published")
}
func (m *metricsLog) Confirmed(latency time.Duration) {
	if latency < 0 {
		m.note("confirmed-negative")
		return
	}
	m.note("confirmed")
}
func (m *metricsLog) Nacked() { m.note("nacked") }
func (m *metricsLog) PublishFailed(err error) {
	m.mu.Lock()
	m.errs = append(m.errs, err)
	m.mu.Unlock()
	m.note("failed")
}
func (m *metricsLog) Delivered()       { m.note("delivered") }
func (m *metricsLog) Settled(a Action) { m.note("settled-" + a.String()) }
func (m *metricsLog) ConnectionUp(conn, node, previous string) {
	m.note("up " + conn + " " + node + " " + previous)
}
func (m *metricsLog) ConnectionDown(conn, node string, lost bool) {
	m.note("down " + conn + " " + node)
}

func (m *metricsLog) all() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

func TestSettlementsAreCounted(t *testing.T) {
	for _, tc := range []struct {
		name   string
		settle func(d *Delivery) error
		want   string
	}{
		{"ack", (*Delivery).Ack, "settled-ack"},
		{"nack requeue", func(d *Delivery) error { return d.Nack(true) }, "settled-requeue"},
		{"nack", func(d *Delivery) error { return d.Nack(false) }, "settled-nack"},
		{"reject requeue", func(d *Delivery) error { return d.Reject(true) }, "settled-requeue"},
		{"reject", func(d *Delivery) error { return d.Reject(false) }, "settled-reject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &metricsLog{}
			d, s := testDelivery(&recorder{})
			s.k.metrics = m
			if err := tc.settle(d); err != nil {
				t.Fatal(err)
			}
			if err := tc.settle(d); !errors.Is(err, ErrSettled) {
				t.Fatalf("second settlement: %v", err)
			}
			if got := m.all(); !slices.Equal(got, []string{tc.want}) {
				t.Fatalf("counted %q, want [%s]", got, tc.want)
			}
		})
	}
}

func TestStaleSettlementIsNotCounted(t *testing.T) {
	m := &metricsLog{}
	d, s := testDelivery(&recorder{})
	s.k.metrics = m
	s.die()
	if err := d.Ack(); !errors.Is(err, ErrStaleDelivery) {
		t.Fatalf("ack of a stale delivery: %v", err)
	}
	if got := m.all(); len(got) != 0 {
		t.Fatalf("counted %q for a stale delivery", got)
	}
}

// Every outcome a caller sees is counted once, before the caller sees it.
func TestPublishOutcomesAreCounted(t *testing.T) {
	m := &metricsLog{}
	p := &Publisher{metrics: m, sem: make(chan struct{}, 2)}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("PublishAsync with a cancelled context: %v", err)
	}

	nacked := &Confirmation{p: p, done: make(chan struct{})}
	confirmed := &Confirmation{p: p, done: make(chan struct{}), sentAt: time.Now()}
	p.sem <- struct{}{}
	p.sem <- struct{}{}
	if !nacked.resolve(ErrNacked) || nacked.resolve(nil) {
		t.Fatal("resolve did not resolve once")
	}
	if !confirmed.resolve(nil) || confirmed.resolve(ErrClosed) {
		t.Fatal("resolve did not resolve once")
	}
	if got, want := m.all(), []string{"failed", "failed", "confirmed"}; !slices.Equal(got, want) {
		t.Fatalf("counted %q, want %q", got, want)
	}
	if !errors.Is(m.errs[0], context.Canceled) || !errors.Is(m.errs[1], ErrNacked) {
		t.Fatalf("failures counted with %v", m.errs)
	}
}

// A client that never connects reports no connection.
func TestNoConnectionNoConnectionMetrics(t *testing.T) {
	m := &metricsLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := Dial(ctx, Config{Nodes: closedPorts(t, 2), FailFast: true, Metrics: m}); err == nil {
		t.Fatal("Dial to closed ports succeeded")
	}
	if got := m.all(); len(got) != 0 {
		t.Fatalf("counted %q", got)
	}
}
