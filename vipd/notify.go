package main

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

// notifier runs notify scripts one at a time, in the order the transitions
// happened, on its own goroutine: a slow or hanging script delays the next
// notification (up to its timeout), never the VRRP loop. The queue is
// bounded; when it is full the notification is dropped and counted.
type notifier struct {
	log   *slog.Logger
	queue chan notification
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{}

	mu     sync.Mutex
	closed bool
}

type notification struct {
	inst  *instance
	state vrrp.State
	prio  int
}

const notifyQueue = 64

func newNotifier(log *slog.Logger) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{log: log, queue: make(chan notification, notifyQueue), ctx: ctx, stop: cancel, done: make(chan struct{})}
	go n.run()
	return n
}

func (n *notifier) enqueue(i *instance, state vrrp.State, prio int) {
	if i.spec.NotifyState[state].Argv == nil && i.spec.Notify == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	select {
	case n.queue <- notification{inst: i, state: state, prio: prio}:
	default:
		i.met.notifyDropped.Add(1)
		n.log.Error("notification queue full: dropped", "instance", i.spec.Name, "state", state.String())
	}
}

func (n *notifier) run() {
	defer close(n.done)
	for x := range n.queue {
		n.deliver(x)
	}
}

// deliver runs notify_<state> and then notify (with the arguments
// keepalived gives it: INSTANCE, name, state, priority).
func (n *notifier) deliver(x notification) {
	s := x.inst.spec
	if c, ok := s.NotifyState[x.state]; ok && c.Argv != nil {
		n.runOne(x, c)
	}
	if s.Notify != nil {
		kind := "INSTANCE"
		if s.group {
			kind = "GROUP"
		}
		n.runOne(x, *s.Notify, kind, s.Name, keepalivedState(x.state), strconv.Itoa(x.prio))
	}
}

func (n *notifier) runOne(x notification, c script.Command, args ...string) {
	x.inst.met.notifyRuns.Add(1)
	r, err := script.Run(n.ctx, c, args...)
	if err != nil || !r.OK() {
		x.inst.met.notifyFailures.Add(1)
		n.log.Warn("notify script failed", "instance", x.inst.spec.Name, "script", c.Argv[0],
			"exit", r.ExitCode, "timed_out", r.TimedOut, "err", err, "output", string(r.Output))
	}
}

// keepalivedState names a state as keepalived passes it to notify scripts.
func keepalivedState(s vrrp.State) string {
	switch s {
	case vrrp.Master:
		return "MASTER"
	case vrrp.Backup:
		return "BACKUP"
	case vrrp.Fault:
		return "FAULT"
	case vrrp.Stopped:
		return "STOP"
	}
	return s.String()
}

// close delivers what is queued (notify_stop among it) for up to grace,
// then kills the script still running and drops the rest. Later enqueues
// are ignored. Safe twice.
func (n *notifier) close(grace time.Duration) {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	t := time.AfterFunc(grace, n.stop)
	<-n.done
	t.Stop()
	n.stop()
}
