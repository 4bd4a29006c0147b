package amqpha

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// DeclareExchange declares e and records it: it is declared again on every
// new connection, before publishers and consumers resume. It waits for a
// connection within ctx. An error the broker returns (e.g. an exchange of
// that name exists with another type) wraps an *amqp091.Error, and nothing
// is recorded.
func (c *Client) DeclareExchange(ctx context.Context, e Exchange) error {
	if err := checkDeclaration(c.frameMax(), "Exchange", e.Args, "Name", e.Name, "Kind", e.Kind); err != nil {
		return err
	}
	return c.topologyOp(ctx, false, false, "declare exchange "+e.Name, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclare(e.Name, exchangeKind(e.Kind), e.Durable, e.AutoDelete, e.Internal, false, e.Args)
	}, func() { c.topo.recordExchangeLocked(e) })
}

// DeleteExchange deletes the exchange and forgets it and every recorded
// binding from or to it.
func (c *Client) DeleteExchange(ctx context.Context, name string) error {
	if err := checkDeclaration(c.frameMax(), "DeleteExchange", nil, "name", name); err != nil {
		return err
	}
	return c.topologyOp(ctx, false, true, "delete exchange "+name, func(ch *amqp.Channel) error {
		return ch.ExchangeDelete(name, false, false)
	}, func() { c.topo.forgetExchangeLocked(name) })
}

// DeclareQueue declares q, records it, and returns its name: q.Name, or
// the name the broker chose when q.Name is empty. Keep using that returned
// name with the client (bindings, Consume, DeleteQueue) even after a
// failover renames the queue: the client maps it to the current name, which
// [Client.QueueName] tells.
//
// Exclusive and server-named queues are declared on the consumers'
// connection, which this starts if no consumer did yet.
func (c *Client) DeclareQueue(ctx context.Context, q Queue) (string, error) {
	if err := checkDeclaration(c.frameMax(), "Queue", q.Args, "Name", q.Name); err != nil {
		return "", err
	}
	var got amqp.Queue
	rec := q.Name == "" || q.Exclusive
	err := c.topologyOp(ctx, rec, false, "declare queue "+q.Name, func(ch *amqp.Channel) (err error) {
		got, err = ch.QueueDeclare(q.Name, q.Durable, q.AutoDelete, q.Exclusive, false, q.Args)
		return err
	}, func() { c.topo.recordQueueLocked(q, got.Name) })
	if err != nil {
		return "", err
	}
	return got.Name, nil
}

// DeleteQueue deletes the queue and forgets it and its recorded bindings.
// Consumers on it are cancelled by the broker and try to register again
// (with backoff) until they are closed.
func (c *Client) DeleteQueue(ctx context.Context, name string) error {
	if err := checkDeclaration(c.frameMax(), "DeleteQueue", nil, "name", name); err != nil {
		return err
	}
	consume := c.queueHome(name) == roleConsume
	return c.topologyOp(ctx, consume, true, "delete queue "+name, func(ch *amqp.Channel) error {
		_, err := ch.QueueDelete(c.topo.currentName(name), false, false, false)
		return err
	}, func() { c.topo.forgetQueueLocked(name) })
}

// BindQueue binds a queue to an exchange and records the binding.
func (c *Client) BindQueue(ctx context.Context, b QueueBinding) error {
	if err := checkDeclaration(c.frameMax(), "QueueBinding", b.Args, "Queue", b.Queue, "Exchange", b.Exchange, "Key", b.Key); err != nil {
		return err
	}
	consume := c.queueHome(b.Queue) == roleConsume
	return c.topologyOp(ctx, consume, false, fmt.Sprintf("bind queue %s to %s", b.Queue, b.Exchange), func(ch *amqp.Channel) error {
		return ch.QueueBind(c.topo.currentName(b.Queue), b.Key, b.Exchange, false, b.Args)
	}, func() { c.topo.recordQueueBindingLocked(b) })
}

// UnbindQueue removes a binding and forgets it.
func (c *Client) UnbindQueue(ctx context.Context, b QueueBinding) error {
	if err := checkDeclaration(c.frameMax(), "QueueBinding", b.Args, "Queue", b.Queue, "Exchange", b.Exchange, "Key", b.Key); err != nil {
		return err
	}
	consume := c.queueHome(b.Queue) == roleConsume
	return c.topologyOp(ctx, consume, true, fmt.Sprintf("unbind queue %s from %s", b.Queue, b.Exchange), func(ch *amqp.Channel) error {
		return ch.QueueUnbind(c.topo.currentName(b.Queue), b.Key, b.Exchange, b.Args)
	}, func() { c.topo.forgetQueueBindingLocked(b) })
}

// BindExchange binds exchange Destination to Source and records it.
func (c *Client) BindExchange(ctx context.Context, b ExchangeBinding) error {
	if err := checkDeclaration(c.frameMax(), "ExchangeBinding", b.Args, "Destination", b.Destination, "Source", b.Source, "Key", b.Key); err != nil {
		return err
	}
	return c.topologyOp(ctx, false, false, fmt.Sprintf("bind exchange %s to %s", b.Destination, b.Source), func(ch *amqp.Channel) error {
		return ch.ExchangeBind(b.Destination, b.Key, b.Source, false, b.Args)
	}, func() { c.topo.recordExchangeBindingLocked(b) })
}

// UnbindExchange removes an exchange-to-exchange binding and forgets it.
func (c *Client) UnbindExchange(ctx context.Context, b ExchangeBinding) error {
	if err := checkDeclaration(c.frameMax(), "ExchangeBinding", b.Args, "Destination", b.Destination, "Source", b.Source, "Key", b.Key); err != nil {
		return err
	}
	return c.topologyOp(ctx, false, true, fmt.Sprintf("unbind exchange %s from %s", b.Destination, b.Source), func(ch *amqp.Channel) error {
		return ch.ExchangeUnbind(b.Destination, b.Key, b.Source, false, b.Args)
	}, func() { c.topo.forgetExchangeBindingLocked(b) })
}

// QueueName returns the current name of a queue declared through the
// client under name (the name DeclareQueue returned). A server-named queue
// gets a new name on every new connection; other queues keep theirs. A name
// the client does not know is returned as is.
func (c *Client) QueueName(name string) string { return c.topo.currentName(name) }

func (c *Client) queueHome(name string) role {
	c.topo.mu.Lock()
	defer c.topo.mu.Unlock()
	if q := c.topo.queues[name]; q != nil {
		return q.home()
	}
	return rolePublish | roleConsume
}

// topologyOp runs op on a channel of the publishing connection (or of the
// consumers' connection), waiting for one within ctx and trying again on the
// next connection if the connection fails under it; record runs if op
// succeeds, under the topology's lock. It returns by ctx's end, also when
// the broker does not answer.
func (c *Client) topologyOp(ctx context.Context, consume, forget bool, what string, op func(*amqp.Channel) error, record func()) error {
	sup := c.sup
	if consume {
		var err error
		if sup, err = c.consumeSupervisor(); err != nil {
			return fmt.Errorf("amqpha: %s: %w", what, err)
		}
	}
	for {
		conn, _, err := sup.waitConn(ctx)
		if err != nil {
			return fmt.Errorf("amqpha: %s: %w", what, err)
		}
		err = c.topo.apply(ctx, conn, op, record, forget)
		if err == nil {
			return nil
		}
		var ae *amqp.Error
		refused := errors.As(err, &ae) && ae.Server && ae.Code != amqp.ConnectionForced
		if refused || ctx.Err() != nil || !conn.IsClosed() {
			// A refusal (of the request, or one that closed the whole
			// connection, such as an unknown exchange type) is the
			// broker's answer: asking the next connection again would
			// close it too.
			return fmt.Errorf("amqpha: %s: %w", what, err)
		}
		// The connection was lost under the request: the next one.
	}
}
