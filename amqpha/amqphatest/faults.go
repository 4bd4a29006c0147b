package amqphatest

import (
	"fmt"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// Kill stops node i as a crashed broker process: every connection to it is
// cut without a word, messages delivered over them and not acknowledged go
// back to their queues (to be delivered again, redelivered), and the node
// resets every new connection until Revive. The queues and their messages
// live on: they belong to the whole cluster (but an exclusive queue goes
// with the connection that declared it, as on RabbitMQ). It panics if i is
// not a node.
func (s *Server) Kill(i int) { s.fb.Kill(i) }

// Shutdown stops node i as a broker shutting down: its clients are sent
// connection.close 320 CONNECTION_FORCED (amqpha avoids such a node for a
// while), and the node resets new connections until Revive. It panics if i
// is not a node.
func (s *Server) Shutdown(i int) { s.fb.Shutdown(i) }

// Hang makes node i stop reading and writing, heartbeats included, as a
// stopped (SIGSTOP) broker: TCP connections are still accepted but their
// handshake never starts, publishes get no confirm, and the node's
// consumers get no new messages. Messages they had been delivered and had
// not acknowledged stay with them until Revive or Kill: RabbitMQ holds them
// too, until the cluster declares the node down. It panics if i is not a
// node.
func (s *Server) Hang(i int) { s.fb.Hang(i) }

// Revive undoes Kill, Shutdown and Hang of node i: it accepts connections
// again, and a hung node's connections go on where they stopped (if their
// client has not given up on them meanwhile). It panics if i is not a node.
func (s *Server) Revive(i int) { s.fb.Revive(i) }

// Block raises a resource alarm, which blocks publishing connections as
// RabbitMQ's do: every connection that has published is sent
// connection.blocked with reason (at most 255 bytes) and read no further
// until Unblock, so its publishes wait unconfirmed (amqpha's Publish then
// waits within its context or, with FailWhenBlocked, fails with
// ErrBlocked); a connection that publishes for the first time meanwhile is
// blocked at that publish. Connections that only consume go on receiving
// and acknowledging. It panics if reason is longer than 255 bytes.
func (s *Server) Block(reason string) {
	if len(reason) > 255 {
		panic(fmt.Sprintf("amqphatest: Block: reason is %d bytes, AMQP allows at most 255", len(reason)))
	}
	s.fb.Block(reason)
}

// Unblock ends Block: connection.unblocked is sent and reading resumes.
func (s *Server) Unblock() { s.fb.Unblock() }

// NackNext makes the server answer the next n publishes (on any node) with
// basic.nack instead of storing them; n replaces any count left; 0 stops.
// amqpha publishes a nacked message again on a fresh channel for
// PublisherConfig.NackRetryFor, so a few nacks are invisible to its caller.
// It panics if n is negative.
func (s *Server) NackNext(n int) { s.setCount("NackNext", &s.nackNext, n) }

// NackAll makes the server nack every publish while on is true, as a full
// queue with x-overflow reject-publish does; amqpha's Publish then fails
// with ErrNacked once NackRetryFor has passed.
func (s *Server) NackAll(on bool) {
	s.mu.Lock()
	s.nackAll = on
	s.mu.Unlock()
}

// ReturnNext makes the next n publishes unroutable, as if no queue were
// bound for them: they are not stored, and those published mandatory (as
// amqpha does unless AllowUnroutable) are sent back with basic.return
// before their confirm, so amqpha's Publish fails with ErrUnroutable. n
// replaces any count left; 0 stops. It panics if n is negative.
func (s *Server) ReturnNext(n int) { s.setCount("ReturnNext", &s.returnNext, n) }

// setCount sets a counter of the next publishes a fault applies to.
func (s *Server) setCount(name string, count *int, n int) {
	if n < 0 {
		panic(fmt.Sprintf("amqphatest: %s(%d): n must be 0 or more", name, n))
	}
	s.mu.Lock()
	*count = n
	s.mu.Unlock()
}

// onPublish decides the answer to each publish and records it. It runs on
// the connection's reader goroutine.
func (s *Server) onPublish(p *fakebroker.Publish) fakebroker.Reply {
	m := Message{
		Publishing: toPublishing(p.Props, p.Body),
		Exchange:   p.Exchange, RoutingKey: p.RoutingKey,
		Queues: p.Queues, Mandatory: p.Mandatory,
		Node: s.fb.NodeOf(p.Conn),
	}
	exists := s.fb.HasExchange(p.Exchange)
	var r fakebroker.Reply
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(p.Refused) > 0: // a full queue with x-overflow reject-publish
		m.Nacked = true
	case s.nackAll || s.nackNext > 0:
		if !s.nackAll {
			s.nackNext--
		}
		r.Nack = true
		m.Nacked = true
	case s.returnNext > 0:
		s.returnNext--
		r.Unroutable = true
	}
	if !exists || r.Nack || r.Unroutable {
		m.Queues = nil // not stored anywhere
	}
	m.Returned = exists && p.Mandatory && (r.Unroutable || len(p.Queues)+len(p.Refused) == 0)
	s.published = append(s.published, m)
	return r
}

// CancelConsumers cancels every consumer of queue with a basic.cancel from
// the server, as RabbitMQ does when a mirrored queue fails over, and
// returns how many it cancelled. Messages they hold unacknowledged stay
// theirs until they settle them or their channel closes. amqpha registers
// its consumers again.
func (s *Server) CancelConsumers(queue string) int { return s.fb.CancelConsumers(queue) }

// DeleteQueue deletes queue with its messages and bindings, as an operator
// would, and cancels its consumers with a basic.cancel. amqpha declares a
// queue it declared again and registers its consumers again.
func (s *Server) DeleteQueue(queue string) { s.fb.DeleteQueue(queue) }
