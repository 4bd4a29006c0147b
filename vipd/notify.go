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

// notifier starts notify scripts as keepalived does: when the transition
// happens, each without waiting for any script before it to end, with no
// time limit but notify_stop's (stopTimeout). Scripts are started in the
// order the transitions happened (one goroutine starts them; starting
// takes a fork, never a script's run), so a slow or hanging script delays
// nothing: not the VRRP loop, not another instance's notifications, not
// this instance's next ones. As in keepalived, nothing orders their runs
// once started. The queue of notifications waiting to be started is
// bounded; when it is full a notification is dropped and counted.
type notifier struct {
	log   *slog.Logger
	queue chan notification
	ctx   context.Context
	stop  context.CancelFunc
	done  chan struct{} // the starting goroutine has ended

	running  sync.WaitGroup // every started script's waiter
	stopping sync.WaitGroup // the waiters of notify_stop runs

	mu     sync.Mutex
	closed bool
}

// notification is what one event runs: its scripts, started in order.
type notification struct {
	runs []notifyRun
}

// notifyRun is one script to start; met (may be nil) counts it.
type notifyRun struct {
	what string // for the log: "instance VI_1", "real_server 10.0.0.2:80"
	cmd  script.Command
	args []string
	met  *instanceMetrics
	stop bool // a notify_stop: killed after stopTimeout, waited for at close
}

const notifyQueue = 64

// stopTimeout is how long keepalived lets notify scripts of the STOP state
// run (at shutdown) before it kills them.
const stopTimeout = time.Second

func newNotifier(log *slog.Logger) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{log: log, queue: make(chan notification, notifyQueue), ctx: ctx, stop: cancel, done: make(chan struct{})}
	go n.run()
	return n
}

// enqueue queues an instance's transition to state: notify_<state>, then
// notify with the arguments keepalived gives it (INSTANCE, name, state,
// priority). For a sync group i is a stand-in whose spec has group set:
// notify gets GROUP in place of INSTANCE.
func (n *notifier) enqueue(i *instance, state vrrp.State, prio int) {
	s := i.spec
	var runs []notifyRun
	kind, what := "INSTANCE", "instance "+s.Name
	if s.group {
		kind, what = "GROUP", "vrrp_sync_group "+s.Name
	}
	if c, ok := s.NotifyState[state]; ok && c.Argv != nil {
		runs = append(runs, notifyRun{what: what, cmd: c, met: i.met})
	}
	if s.Notify != nil {
		runs = append(runs, notifyRun{what: what, cmd: *s.Notify, met: i.met,
			args: []string{kind, s.Name, keepalivedState(state), strconv.Itoa(prio)}})
	}
	for k := range runs {
		runs[k].stop = state == vrrp.Stopped
	}
	if !n.push(notification{runs: runs}) {
		i.met.notifyDropped.Add(1)
		n.log.Error("notification queue full: dropped", "instance", s.Name, "state", state.String())
	}
}

// enqueueCommand queues one script with no arguments (a real server's
// notify_up or notify_down).
func (n *notifier) enqueueCommand(what string, c script.Command) {
	if !n.push(notification{runs: []notifyRun{{what: what, cmd: c}}}) {
		n.log.Error("notification queue full: dropped", "for", what, "script", c.Argv[0])
	}
}

// push queues x; false when the queue is full. After close it does nothing.
func (n *notifier) push(x notification) bool {
	if len(x.runs) == 0 {
		return true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return true
	}
	select {
	case n.queue <- x:
		return true
	default:
		return false
	}
}

func (n *notifier) run() {
	defer close(n.done)
	for x := range n.queue {
		for _, r := range x.runs {
			n.start(r)
		}
	}
}

// start starts one script and leaves a goroutine to wait for it.
func (n *notifier) start(r notifyRun) {
	if r.stop {
		r.cmd.Timeout = stopTimeout
	}
	if r.met != nil {
		r.met.notifyRuns.Add(1)
	}
	p, err := script.Start(n.ctx, r.cmd, r.args...)
	if err != nil {
		n.failed(r, script.Result{ExitCode: -1}, err)
		return
	}
	n.running.Add(1)
	if r.stop {
		n.stopping.Add(1)
	}
	go func() {
		defer n.running.Done()
		if r.stop {
			defer n.stopping.Done()
		}
		if res, err := p.Wait(); err != nil || !res.OK() {
			n.failed(r, res, err)
		}
	}()
}

func (n *notifier) failed(r notifyRun, res script.Result, err error) {
	if r.met != nil {
		r.met.notifyFailures.Add(1)
	}
	n.log.Warn("notify script failed", "for", r.what, "script", r.cmd.Argv[0],
		"exit", res.ExitCode, "timed_out", res.TimedOut, "err", err, "output", string(res.Output))
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

// close starts what is queued (notify_stop among it), waits for the
// notify_stop runs (each killed after stopTimeout, as keepalived does) but
// no longer than grace, then kills every script still running and waits
// for their ends. Later enqueues are ignored. Safe twice.
func (n *notifier) close(grace time.Duration) {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		close(n.queue)
	}
	n.mu.Unlock()
	<-n.done
	stopped := make(chan struct{})
	go func() {
		n.stopping.Wait()
		close(stopped)
	}()
	t := time.NewTimer(grace)
	select {
	case <-stopped:
	case <-t.C:
	}
	t.Stop()
	n.stop()
	n.running.Wait()
	<-stopped
}
