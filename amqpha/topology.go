package amqpha

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Exchange is an exchange to declare.
type Exchange struct {
	Name string
	// Kind is "direct", "fanout", "topic", "headers" or a plugin's type;
	// "" means direct.
	Kind       string
	Durable    bool
	AutoDelete bool
	Internal   bool
	Args       amqp.Table
}

// Queue is a queue to declare. An empty Name asks the broker to name the
// queue; the name changes with every new connection (see
// [Client.QueueName]).
//
// Exclusive and server-named queues belong to one connection, so they are
// declared on the consumers' connection (the broker deletes them when it
// closes) and declared again on each new one while a consumer of the
// client reads them; one that no consumer reads when its connection
// closes is forgotten with its bindings, as the broker forgot it.
type Queue struct {
	Name       string
	Durable    bool
	AutoDelete bool
	Exclusive  bool
	// Args holds the queue's arguments: "x-queue-type" ("quorum",
	// "classic", "stream"), "x-max-length", "x-single-active-consumer", …
	Args amqp.Table
}

// QuorumQueue returns a durable quorum queue: replicated on several nodes
// with Raft, the queue type to use when messages must survive a node.
func QuorumQueue(name string) Queue {
	return Queue{Name: name, Durable: true, Args: amqp.Table{"x-queue-type": "quorum"}}
}

// QueueBinding binds Queue to Exchange with routing key Key.
type QueueBinding struct {
	Queue    string
	Exchange string
	Key      string
	Args     amqp.Table
}

// ExchangeBinding routes messages from exchange Source to exchange
// Destination with routing key Key.
type ExchangeBinding struct {
	Destination string
	Source      string
	Key         string
	Args        amqp.Table
}

// topology records what was declared through the client, in order, and
// declares it again on every new connection.
//
// Declarations and replays take turns through gate, so that a declaration
// is either recorded before a new connection replays the record, or made on
// that connection. gate is a channel so that waiting for it ends with the
// waiter's context; it is held across network I/O, but nothing that reads
// the topology waits for it, and a request its caller abandoned leaves it.
// mu guards the records and names, never I/O; a replay declares from a
// copy of the records taken under mu.
type topology struct {
	gate chan struct{}
	wg   sync.WaitGroup // requests under way, also those their callers abandoned

	mu      sync.Mutex
	closed  bool // the client closed: no more requests
	records []*record
	queues  map[string]*queueRecord // by the name given first and by the current name
}

// record is one declared entity; exactly one field is set.
type record struct {
	ex *Exchange
	q  *queueRecord
	qb *QueueBinding // Queue holds the queue's first name
	eb *ExchangeBinding
}

type queueRecord struct {
	decl  Queue
	first string // the name the queue got first: how the program names it
	name  string // its current name
}

// home says which connections carry a queue: an exclusive or server-named
// queue lives on the consumers' connection only.
func (q *queueRecord) home() role {
	if q.decl.Exclusive || q.decl.Name == "" {
		return roleConsume
	}
	return rolePublish | roleConsume
}

func newTopology() *topology {
	return &topology{gate: make(chan struct{}, 1), queues: make(map[string]*queueRecord)}
}

// enter waits for the gate until ctx ends.
func (t *topology) enter(ctx context.Context) error {
	select {
	case t.gate <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *topology) leave() { <-t.gate }

func (t *topology) homeLocked(r *record) role {
	switch {
	case r.q != nil:
		return r.q.home()
	case r.qb != nil:
		if q := t.queues[r.qb.Queue]; q != nil {
			return q.home()
		}
	}
	return rolePublish | roleConsume
}

func (r *record) String() string {
	switch {
	case r.ex != nil:
		return fmt.Sprintf("exchange %q", r.ex.Name)
	case r.q != nil:
		return fmt.Sprintf("queue %q", r.q.first)
	case r.qb != nil:
		return fmt.Sprintf("binding of queue %q to exchange %q (key %q)", r.qb.Queue, r.qb.Exchange, r.qb.Key)
	default:
		return fmt.Sprintf("binding of exchange %q to exchange %q (key %q)", r.eb.Destination, r.eb.Source, r.eb.Key)
	}
}

// currentName is the current name of the queue the program calls name.
func (t *topology) currentName(name string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.currentNameLocked(name)
}

func (t *topology) currentNameLocked(name string) string {
	if q := t.queues[name]; q != nil {
		return q.name
	}
	return name
}

// firstNameLocked is the name the program first knew the queue by.
func (t *topology) firstNameLocked(name string) string {
	if q := t.queues[name]; q != nil {
		return q.first
	}
	return name
}

// declare declares the entity of r on ch, with the gate held. A
// server-named queue gets a new name, which is recorded and returned as
// renamed.
func (t *topology) declare(ch *amqp.Channel, r *record) (renamed string, err error) {
	switch {
	case r.ex != nil:
		e := r.ex
		return "", ch.ExchangeDeclare(e.Name, exchangeKind(e.Kind), e.Durable, e.AutoDelete, e.Internal, false, e.Args)
	case r.q != nil:
		q := r.q
		t.mu.Lock()
		decl, name := q.decl, q.name
		t.mu.Unlock()
		got, err := ch.QueueDeclare(decl.Name, decl.Durable, decl.AutoDelete, decl.Exclusive, false, decl.Args)
		if err != nil {
			return "", err
		}
		if got.Name != name {
			t.mu.Lock()
			if q.name != q.first {
				delete(t.queues, q.name)
			}
			q.name = got.Name
			t.queues[got.Name] = q
			t.mu.Unlock()
			return got.Name, nil
		}
		return "", nil
	case r.qb != nil:
		b := r.qb
		return "", ch.QueueBind(t.currentName(b.Queue), b.Key, b.Exchange, false, b.Args)
	default:
		b := r.eb
		return "", ch.ExchangeBind(b.Destination, b.Key, b.Source, false, b.Args)
	}
}

func exchangeKind(k string) string {
	if k == "" {
		return amqp.ExchangeDirect
	}
	return k
}

// replay declares every recorded entity that belongs on a connection of
// role r, in order. A declaration the broker refuses is reported and
// skipped; a lost connection ends the replay with an error. progress is
// called after each declaration.
func (t *topology) replay(ctx context.Context, conn *amqp.Connection, r role, sup *supervisor, gen uint64, progress func()) error {
	if err := t.enter(ctx); err != nil {
		return err
	}
	defer t.leave()
	if r&roleConsume != 0 {
		t.forgetUnused(sup)
	}
	t.mu.Lock()
	records := slices.Clone(t.records)
	t.mu.Unlock()
	var ch *amqp.Channel
	defer func() {
		if ch != nil {
			ch.Close()
		}
	}()
	for _, rec := range records {
		t.mu.Lock()
		home := t.homeLocked(rec)
		t.mu.Unlock()
		if home&r == 0 {
			continue
		}
		if ch == nil {
			var err error
			if ch, err = conn.Channel(); err != nil {
				return fmt.Errorf("amqpha: declaring topology: %w", err)
			}
		}
		prev := ""
		if rec.q != nil {
			prev = rec.q.name
		}
		renamed, err := t.declare(ch, rec)
		progress()
		if renamed != "" {
			sup.log.Info("server-named queue declared again under a new name", "queue", renamed, "previous", prev)
			sup.emit(Event{Kind: EventQueueRenamed, Queue: renamed, Previous: prev, Generation: gen})
		}
		if err == nil {
			continue
		}
		if !isBrokerRefusal(err) {
			return fmt.Errorf("amqpha: declaring %s: %w", rec, err)
		}
		sup.log.Warn("declaring recorded topology failed; going on without it", "entity", rec.String(), "err", err)
		sup.emit(Event{Kind: EventTopologyFailed, Reason: rec.String(), Err: err, Generation: gen})
		ch = nil // the broker closed it
	}
	return nil
}

// forgetUnused forgets the exclusive and server-named queues that no
// consumer of the client reads: they died with the connection that
// declared them, as the broker forgot them, and are not declared again.
// A program that declares a reply queue per request does not grow the
// record (and the replay) with each one. Called with the gate held.
func (t *topology) forgetUnused(sup *supervisor) {
	used := sup.c.consumedQueues()
	t.mu.Lock()
	defer t.mu.Unlock()
	var gone []string
	for _, rec := range t.records {
		if q := rec.q; q != nil && q.home() == roleConsume && !used[q.first] && !used[q.name] {
			gone = append(gone, q.first)
		}
	}
	for _, name := range gone {
		t.forgetQueueLocked(name)
	}
	if len(gone) > 0 {
		sup.log.Info("forgot exclusive or server-named queues that no consumer reads", "queues", gone)
	}
}

// redeclareQueue declares the recorded queue the program calls name, and
// its bindings, on a channel of its own. It does nothing for a queue that
// was not declared through the client.
func (t *topology) redeclareQueue(ctx context.Context, conn *amqp.Connection, name string) error {
	if err := t.enter(ctx); err != nil {
		return err
	}
	defer t.leave()
	t.mu.Lock()
	q := t.queues[name]
	t.mu.Unlock()
	if q == nil {
		return nil
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	t.mu.Lock()
	records := slices.Clone(t.records)
	t.mu.Unlock()
	for _, rec := range records {
		if rec.q == q || rec.qb != nil && rec.qb.Queue == q.first {
			if _, err := t.declare(ch, rec); err != nil {
				return fmt.Errorf("amqpha: declaring %s: %w", rec, err)
			}
		}
	}
	return nil
}

// isBrokerRefusal reports an error with which the broker refused one
// request and closed the channel, leaving the connection open.
func isBrokerRefusal(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Server && isChannelError(ae.Code)
}

// apply runs op on a fresh channel of conn and, if it succeeds, record
// (with mu held), and returns by ctx's end: a request the broker does not
// answer (it reads nothing while it blocks the connection) is abandoned to
// a goroutine that ends with the connection, and the gate is left to the
// others. What an abandoned request did is recorded only if it removed
// something (forget): a declaration its caller was told failed is not
// declared again, a deletion that happened is not undone.
func (t *topology) apply(ctx context.Context, conn *amqp.Connection, op func(*amqp.Channel) error, record func(), forget bool) error {
	if err := t.enter(ctx); err != nil {
		return err
	}
	var once sync.Once
	leave := func() { once.Do(t.leave) }
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		leave()
		return ErrClosed
	}
	t.wg.Add(1)
	t.mu.Unlock()
	var (
		mu        sync.Mutex
		abandoned bool
	)
	done := make(chan error, 1)
	go func() {
		defer t.wg.Done()
		defer leave()
		ch, err := conn.Channel()
		if err == nil {
			err = op(ch)
			ch.Close()
		}
		if err == nil {
			mu.Lock()
			if !abandoned || forget {
				t.mu.Lock()
				record()
				t.mu.Unlock()
			}
			mu.Unlock()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		select {
		case err := <-done: // it finished first
			return err
		default:
		}
		abandoned = true
		leave()
		return ctx.Err()
	}
}

// close refuses further requests and waits for the abandoned ones, which
// end with their connections.
func (t *topology) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}

// upsertLocked replaces the record that same reports, or appends r.
func (t *topology) upsertLocked(r *record, same func(*record) bool) {
	for i, old := range t.records {
		if same(old) {
			t.records[i] = r
			return
		}
	}
	t.records = append(t.records, r)
}

// removeLocked forgets every record drop reports.
func (t *topology) removeLocked(drop func(*record) bool) {
	t.records = deleteFunc(t.records, drop)
}

func deleteFunc(rs []*record, drop func(*record) bool) []*record {
	out := rs[:0]
	for _, r := range rs {
		if !drop(r) {
			out = append(out, r)
		}
	}
	clear(rs[len(out):])
	return out
}

func (t *topology) recordExchangeLocked(e Exchange) {
	e.Args = cloneTable(e.Args)
	t.upsertLocked(&record{ex: &e}, func(r *record) bool { return r.ex != nil && r.ex.Name == e.Name })
}

func (t *topology) forgetExchangeLocked(name string) {
	t.removeLocked(func(r *record) bool {
		return r.ex != nil && r.ex.Name == name ||
			r.qb != nil && r.qb.Exchange == name ||
			r.eb != nil && (r.eb.Source == name || r.eb.Destination == name)
	})
}

// recordQueueLocked records a queue the broker named got.
func (t *topology) recordQueueLocked(q Queue, got string) {
	q.Args = cloneTable(q.Args)
	if old := t.queues[got]; old != nil && q.Name != "" {
		old.decl = q
		return
	}
	rec := &queueRecord{decl: q, first: got, name: got}
	t.queues[got] = rec
	t.records = append(t.records, &record{q: rec})
}

func (t *topology) forgetQueueLocked(name string) {
	q := t.queues[name]
	if q == nil {
		// Not declared through the client: forget its bindings.
		t.removeLocked(func(r *record) bool { return r.qb != nil && r.qb.Queue == name })
		return
	}
	delete(t.queues, q.first)
	delete(t.queues, q.name)
	t.removeLocked(func(r *record) bool {
		return r.q == q || r.qb != nil && r.qb.Queue == q.first
	})
}

func (t *topology) recordQueueBindingLocked(b QueueBinding) {
	b.Queue = t.firstNameLocked(b.Queue)
	b.Args = cloneTable(b.Args)
	t.upsertLocked(&record{qb: &b}, func(r *record) bool { return r.qb != nil && reflect.DeepEqual(*r.qb, b) })
}

func (t *topology) forgetQueueBindingLocked(b QueueBinding) {
	b.Queue = t.firstNameLocked(b.Queue)
	t.removeLocked(func(r *record) bool {
		return r.qb != nil && r.qb.Queue == b.Queue && r.qb.Exchange == b.Exchange && r.qb.Key == b.Key &&
			tablesEqual(r.qb.Args, b.Args)
	})
}

func (t *topology) recordExchangeBindingLocked(b ExchangeBinding) {
	b.Args = cloneTable(b.Args)
	t.upsertLocked(&record{eb: &b}, func(r *record) bool { return r.eb != nil && reflect.DeepEqual(*r.eb, b) })
}

func (t *topology) forgetExchangeBindingLocked(b ExchangeBinding) {
	t.removeLocked(func(r *record) bool {
		return r.eb != nil && r.eb.Source == b.Source && r.eb.Destination == b.Destination && r.eb.Key == b.Key &&
			tablesEqual(r.eb.Args, b.Args)
	})
}

func tablesEqual(a, b amqp.Table) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

// cloneTable copies t's top level, so that the caller may reuse its table.
func cloneTable(t amqp.Table) amqp.Table {
	if t == nil {
		return nil
	}
	c := make(amqp.Table, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}
