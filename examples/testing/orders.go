// Package orders is a small service built on amqpha, here to show how to
// unit-test such code without RabbitMQ: orders_test.go runs it against
// amqphatest's in-process server, with node failures and broker refusals.
//
// Place publishes an order to the "orders" topic exchange; a Biller
// consumes the "orders.billing" queue and charges each order once.
package orders

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
)

// Names of the service's exchange, queue and routing key.
const (
	Exchange     = "orders"
	BillingQueue = "orders.billing"
	PlacedKey    = "order.placed"
	DeadLetters  = "orders.dead"
)

// Order is what the service publishes, as JSON.
type Order struct {
	ID     string `json:"id"`
	Amount int    `json:"amount"`
}

// ErrInvalidOrder is returned by Place for an order that cannot be placed.
var ErrInvalidOrder = errors.New("orders: invalid order")

// Declare declares the service's exchanges and queues through client, so
// that every new connection declares them again.
func Declare(ctx context.Context, client *amqpha.Client) error {
	if err := client.DeclareExchange(ctx, amqpha.Exchange{Name: Exchange, Kind: "topic", Durable: true}); err != nil {
		return err
	}
	if err := client.DeclareExchange(ctx, amqpha.Exchange{Name: DeadLetters, Kind: "fanout", Durable: true}); err != nil {
		return err
	}
	dead, err := client.DeclareQueue(ctx, amqpha.QuorumQueue(DeadLetters))
	if err != nil {
		return err
	}
	if err := client.BindQueue(ctx, amqpha.QueueBinding{Queue: dead, Exchange: DeadLetters}); err != nil {
		return err
	}
	billing := amqpha.QuorumQueue(BillingQueue)
	billing.Args["x-dead-letter-exchange"] = DeadLetters
	q, err := client.DeclareQueue(ctx, billing)
	if err != nil {
		return err
	}
	return client.BindQueue(ctx, amqpha.QueueBinding{Queue: q, Exchange: Exchange, Key: "order.*"})
}

// Placer publishes orders.
type Placer struct {
	pub *amqpha.Publisher
}

// NewPlacer returns a Placer publishing through client with cfg.
func NewPlacer(client *amqpha.Client, cfg amqpha.PublisherConfig) (*Placer, error) {
	pub, err := client.NewPublisher(cfg)
	if err != nil {
		return nil, err
	}
	return &Placer{pub: pub}, nil
}

// Place publishes o and returns nil once the broker has it. The order's ID
// is the message-id, so a Biller charges it once even if it arrives twice.
func (p *Placer) Place(ctx context.Context, o Order) error {
	if o.ID == "" || o.Amount <= 0 {
		return fmt.Errorf("%w: id %q, amount %d", ErrInvalidOrder, o.ID, o.Amount)
	}
	body, err := json.Marshal(o)
	if err != nil {
		return err
	}
	msg := amqp.Publishing{ContentType: "application/json", MessageId: "order-" + o.ID, Body: body}
	if err := p.pub.Publish(ctx, Exchange, PlacedKey, msg); err != nil {
		return fmt.Errorf("orders: placing %s: %w", o.ID, err)
	}
	return nil
}

// Biller charges each order it consumes once.
type Biller struct {
	charge func(context.Context, Order) error

	mu      sync.Mutex
	charged map[string]bool // message-ids already charged
}

// NewBiller returns a Biller that calls charge for every new order.
func NewBiller(charge func(context.Context, Order) error) *Biller {
	return &Biller{charge: charge, charged: make(map[string]bool)}
}

// Start consumes the billing queue until the returned consumer is closed.
func (b *Biller) Start(ctx context.Context, client *amqpha.Client) (*amqpha.Consumer, error) {
	return client.Consume(ctx, BillingQueue, amqpha.ConsumerConfig{Prefetch: 10}, b.handle)
}

// handle charges an order once: a malformed message is rejected (to the
// dead letters), a failed charge is requeued, a duplicate is acked.
func (b *Biller) handle(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
	var o Order
	if err := json.Unmarshal(d.Body, &o); err != nil || o.ID == "" {
		return amqpha.Reject
	}
	b.mu.Lock()
	done := b.charged[d.MessageId]
	b.mu.Unlock()
	if done {
		return amqpha.Ack
	}
	if err := b.charge(ctx, o); err != nil {
		return amqpha.Requeue
	}
	b.mu.Lock()
	b.charged[d.MessageId] = true
	b.mu.Unlock()
	return amqpha.Ack
}
