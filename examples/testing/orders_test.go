package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/goleak"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/amqpha/amqphatest"
	orders "github.com/amqpha/amqpha/examples/testing"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup starts a 3-node test server and a client on it with the service's
// topology declared. The client is closed before the server.
func setup(t *testing.T) (*amqphatest.Server, *amqpha.Client, context.Context) {
	t.Helper()
	srv := amqphatest.NewServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	client, err := amqpha.Dial(ctx, srv.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := client.Close(context.Background()); err != nil {
			t.Error(err)
		}
	})
	if err := orders.Declare(ctx, client); err != nil {
		t.Fatal(err)
	}
	return srv, client, ctx
}

func placer(t *testing.T, client *amqpha.Client, cfg amqpha.PublisherConfig) *orders.Placer {
	t.Helper()
	p, err := orders.NewPlacer(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPlacePublishesPersistentJSON(t *testing.T) {
	srv, client, ctx := setup(t)
	p := placer(t, client, amqpha.PublisherConfig{})
	if err := p.Place(ctx, orders.Order{ID: "42", Amount: 1999}); err != nil {
		t.Fatal(err)
	}
	got := srv.PublishedTo(orders.BillingQueue)
	if len(got) != 1 {
		t.Fatalf("%d messages reached the billing queue, want 1", len(got))
	}
	m := got[0]
	var o orders.Order
	if err := json.Unmarshal(m.Body, &o); err != nil || o != (orders.Order{ID: "42", Amount: 1999}) {
		t.Fatalf("body %s (%v)", m.Body, err)
	}
	if m.DeliveryMode != amqp.Persistent || m.MessageId != "order-42" || m.RoutingKey != orders.PlacedKey {
		t.Fatalf("persistent %v, message-id %q, key %q", m.DeliveryMode == amqp.Persistent, m.MessageId, m.RoutingKey)
	}
	if err := p.Place(ctx, orders.Order{ID: "", Amount: 1}); !errors.Is(err, orders.ErrInvalidOrder) {
		t.Fatalf("Place of an order without id = %v, want ErrInvalidOrder", err)
	}
}

// The node the service publishes to dies between two orders: both are
// placed, on different nodes.
func TestPlaceSurvivesANodeKill(t *testing.T) {
	srv, client, ctx := setup(t)
	p := placer(t, client, amqpha.PublisherConfig{})
	if err := p.Place(ctx, orders.Order{ID: "1", Amount: 10}); err != nil {
		t.Fatal(err)
	}
	first := srv.PublishedTo(orders.BillingQueue)[0].Node
	srv.Kill(first)
	if err := p.Place(ctx, orders.Order{ID: "2", Amount: 20}); err != nil {
		t.Fatalf("Place after the kill: %v", err)
	}
	got := srv.PublishedTo(orders.BillingQueue)
	if len(got) != 2 || got[1].Node == first {
		t.Fatalf("%d orders stored, the second on node %d (killed: %d)", len(got), got[1].Node, first)
	}
}

// The broker refuses the order: Place says so, and the caller can tell
// why.
func TestPlaceReportsARefusal(t *testing.T) {
	srv, client, ctx := setup(t)
	p := placer(t, client, amqpha.PublisherConfig{NackRetryFor: 50 * time.Millisecond})
	srv.NackAll(true)
	if err := p.Place(ctx, orders.Order{ID: "1", Amount: 10}); !errors.Is(err, amqpha.ErrNacked) {
		t.Fatalf("Place = %v, want ErrNacked", err)
	}
	srv.NackAll(false)
	srv.ReturnNext(1) // as if the billing queue were not bound
	if err := p.Place(ctx, orders.Order{ID: "2", Amount: 10}); !errors.Is(err, amqpha.ErrUnroutable) {
		t.Fatalf("Place = %v, want ErrUnroutable", err)
	}
	if n := len(srv.Ready(orders.BillingQueue)); n != 0 {
		t.Fatalf("%d refused orders stored", n)
	}
}

// charges records the orders a Biller charged; the first call may be held.
type charges struct {
	mu   sync.Mutex
	ids  []string
	hold chan struct{} // if not nil, the first charge waits for its ctx
}

func (c *charges) charge(ctx context.Context, o orders.Order) error {
	c.mu.Lock()
	hold := c.hold
	c.hold = nil
	c.mu.Unlock()
	if hold != nil {
		close(hold)
		<-ctx.Done() // the delivery's connection is gone
		return ctx.Err()
	}
	c.mu.Lock()
	c.ids = append(c.ids, o.ID)
	c.mu.Unlock()
	return nil
}

func (c *charges) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...)
}

func startBiller(t *testing.T, client *amqpha.Client, ctx context.Context, c *charges) {
	t.Helper()
	k, err := orders.NewBiller(c.charge).Start(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close(context.Background()) })
}

func order(t *testing.T, id string) amqp.Publishing {
	t.Helper()
	body, err := json.Marshal(orders.Order{ID: id, Amount: 5})
	if err != nil {
		t.Fatal(err)
	}
	return amqp.Publishing{MessageId: "order-" + id, Body: body}
}

// The same order delivered twice (at-least-once) is charged once; a
// malformed message goes to the dead letters.
func TestBillerChargesOnceAndRejectsGarbage(t *testing.T) {
	srv, client, ctx := setup(t)
	c := &charges{}
	startBiller(t, client, ctx, c)
	for _, m := range []amqp.Publishing{order(t, "7"), order(t, "7"), {Body: []byte("not json")}} {
		if _, err := srv.Publish(orders.Exchange, orders.PlacedKey, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := srv.Wait(ctx, func() bool {
		return len(srv.Acked(orders.BillingQueue)) == 2 && len(srv.Ready(orders.DeadLetters)) == 1
	}); err != nil {
		t.Fatalf("acked %d, dead %d: %v", len(srv.Acked(orders.BillingQueue)), len(srv.Ready(orders.DeadLetters)), err)
	}
	if got := c.list(); len(got) != 1 || got[0] != "7" {
		t.Fatalf("charged %v, want [7]", got)
	}
}

// The biller's node dies while it charges: the order comes back
// (redelivered) on another node and is charged there, once.
func TestBillerAfterANodeKill(t *testing.T) {
	srv, client, ctx := setup(t)
	held := make(chan struct{})
	c := &charges{hold: held}
	startBiller(t, client, ctx, c)
	if _, err := srv.Publish(orders.Exchange, orders.PlacedKey, order(t, "9")); err != nil {
		t.Fatal(err)
	}
	<-held
	srv.Kill(srv.NodeIndex(client.ConsumerNode()))
	if err := srv.Wait(ctx, func() bool { return len(srv.Acked(orders.BillingQueue)) == 1 }); err != nil {
		t.Fatal(err)
	}
	acked := srv.Acked(orders.BillingQueue)[0]
	if !acked.Redelivered || acked.Deliveries != 2 {
		t.Fatalf("acked after %d deliveries, redelivered %v; want 2, true", acked.Deliveries, acked.Redelivered)
	}
	if got := c.list(); len(got) != 1 || got[0] != "9" {
		t.Fatalf("charged %v, want [9]", got)
	}
}
