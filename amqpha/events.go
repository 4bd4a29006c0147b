package amqpha

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventKind says what happened.
type EventKind int

const (
	// EventConnecting: a dial to Node starts.
	EventConnecting EventKind = iota + 1
	// EventConnectFailed: a dial to Node failed (Err says why).
	EventConnectFailed
	// EventReady: the connection to Node is open and the recorded topology
	// is declared on it; publishers open their channels on it now (messages
	// published meanwhile wait for them) and consumers register.
	EventReady
	// EventReconnecting: the connection to Node was lost (Err says why)
	// and the client is looking for another node.
	EventReconnecting
	// EventNodeSwitched: the client is now connected to Node instead of
	// Previous.
	EventNodeSwitched
	// EventBlocked: the broker blocked publishing (Reason says why).
	EventBlocked
	// EventUnblocked: the broker lifted the block.
	EventUnblocked
	// EventClosed: the client closed.
	EventClosed
	// EventTopologyFailed: declaring a recorded entity again on a new
	// connection failed (Reason names it, Err says why). It is not retried
	// on that connection; the next connection tries again.
	EventTopologyFailed
	// EventQueueRenamed: a server-named queue was declared again on a new
	// connection and got the name Queue instead of Previous. Bindings and
	// consumers recorded under the old name follow it.
	EventQueueRenamed
	// EventConsumerCancelled: consumer Consumer on Queue stopped receiving
	// while its connection lives: the broker cancelled it (queue deleted,
	// mirrored queue failed over) or closed its channel (Err). It is
	// registered again, with backoff. A consumer whose connection was
	// replaced gets this event once when the broker refuses to register it
	// on the new connection (Err, e.g. 404 NOT_FOUND: the queue was deleted
	// meanwhile, and the cancellation was lost with the old connection; 403
	// or 405: an exclusive consumer or queue the broker still holds for
	// the old connection); a consumer registered again at once after a
	// failover gets none.
	EventConsumerCancelled
	// EventConsumerRegistered: consumer Consumer on Queue was registered
	// again, after a reconnect or a cancellation.
	EventConsumerRegistered
)

func (k EventKind) String() string {
	switch k {
	case EventConnecting:
		return "connecting"
	case EventConnectFailed:
		return "connect-failed"
	case EventReady:
		return "ready"
	case EventReconnecting:
		return "reconnecting"
	case EventNodeSwitched:
		return "node-switched"
	case EventBlocked:
		return "blocked"
	case EventUnblocked:
		return "unblocked"
	case EventClosed:
		return "closed"
	case EventTopologyFailed:
		return "topology-failed"
	case EventQueueRenamed:
		return "queue-renamed"
	case EventConsumerCancelled:
		return "consumer-cancelled"
	case EventConsumerRegistered:
		return "consumer-registered"
	}
	return "unknown"
}

// Event is something that happened to one of the client's connections.
// Node and Previous are redacted node addresses (Previous is a queue name
// for EventQueueRenamed).
type Event struct {
	Kind EventKind
	Time time.Time
	// Connection is "publish" or "consume" (the consumers' own
	// connection), or "publish+consume" with Config.SharedConnection; with
	// Config.Connections > 1 the publishing ones are "publish-0",
	// "publish-1", ….
	Connection string
	Node       string
	Previous   string
	Generation uint64 // counts the connections of this kind the client opened
	Err        error
	Reason     string
	Queue      string // the queue of a consumer or topology event
	Consumer   string // the consumer tag of a consumer event
}

// eventQueue hands events to a callback on its own goroutine, in order.
// post never blocks: when buffer events already wait, the new one is dropped
// and counted.
type eventQueue struct {
	fn      func(Event)
	mu      sync.Mutex
	q       []Event
	max     int
	closed  bool
	wake    chan struct{}
	done    chan struct{}
	dropped atomic.Uint64
}

func newEventQueue(fn func(Event), max int) *eventQueue {
	e := &eventQueue{fn: fn, max: max, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if fn == nil {
		close(e.done)
		return e
	}
	go e.run()
	return e
}

func (e *eventQueue) post(ev Event) {
	if e.fn == nil {
		return
	}
	e.mu.Lock()
	if e.closed || len(e.q) >= e.max {
		e.mu.Unlock()
		e.dropped.Add(1)
		return
	}
	e.q = append(e.q, ev)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// close stops taking events, lets the ones queued be delivered, and waits
// for the callback's goroutine to end.
func (e *eventQueue) close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
	<-e.done
}

func (e *eventQueue) run() {
	defer close(e.done)
	for range e.wake {
		for {
			e.mu.Lock()
			if len(e.q) == 0 {
				closed := e.closed
				e.mu.Unlock()
				if closed {
					return
				}
				break
			}
			ev := e.q[0]
			e.q[0] = Event{}
			e.q = e.q[1:]
			e.mu.Unlock()
			e.fn(ev)
		}
	}
}
