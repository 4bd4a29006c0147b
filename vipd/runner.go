package main

import (
	"log/slog"
	"sync"
	"time"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

// runner is the goroutine that runs one vrrp_instance, or every member of
// one vrrp_sync_group: it owns their machines, so that a group changes
// state in one step, as keepalived's single thread does. Reader goroutines
// (one per socket) feed it packets; the trackers kick it; the daemon sends
// it commands (stop, reload).
type runner struct {
	group  *groupSpec // nil: one instance on its own; written like members
	log    *slog.Logger
	track  *tracking
	notify *notifier

	in   chan taggedPacket
	kick chan struct{}
	cmd  chan runnerCmd
	done chan struct{}

	// members: written by the runner's goroutine with mu held; read by
	// others (status, reload) with mu held.
	mu      sync.Mutex
	members []*instance

	gstate vrrp.State // the group's state (runner goroutine only)
	delay  time.Time  // vrrp_startup_delay: no takeover before
}

// runnerCmd is a command to a runner: stop (resigning), or swap in the
// instances of a reloaded configuration.
type runnerCmd struct {
	swap  []*instance // same identities, same order as members
	group *groupSpec
	done  chan struct{}
}

// startRunner starts the goroutine for members (prepared, fresh).
func startRunner(group *groupSpec, members []*instance, track *tracking, notify *notifier, delay time.Time, log *slog.Logger) *runner {
	r := &runner{
		group: group, log: log, track: track, notify: notify,
		in:      make(chan taggedPacket, 16*len(members)),
		kick:    make(chan struct{}, 1),
		cmd:     make(chan runnerCmd),
		done:    make(chan struct{}),
		members: members,
		delay:   delay,
	}
	if group != nil {
		r.log = log.With("sync_group", group.Name)
	}
	for _, i := range members {
		i.setGroup(group)
		go i.io.read(r.in, i.log)
	}
	track.subscribe(r.kick)
	go r.loop()
	return r
}

// name is the group's name or the instance's.
func (r *runner) name() string {
	if r.group != nil {
		return "group " + r.group.Name
	}
	return r.members[0].spec.Name
}

// snapshot returns the current members. Safe from any goroutine.
func (r *runner) snapshot() []*instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*instance(nil), r.members...)
}

// current returns the current sync group (nil for none) and members.
// Safe from any goroutine.
func (r *runner) current() (*groupSpec, []*instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.group, append([]*instance(nil), r.members...)
}

// Stop ends the runner: every master resigns (priority-0 advert,
// addresses removed), every instance notifies STOP, then the group; the
// sockets and announcers close.
func (r *runner) Stop() {
	select {
	case r.cmd <- runnerCmd{}:
	case <-r.done:
	}
	<-r.done
	for _, i := range r.members {
		i.io.close(true)
		i.ann.close()
	}
	r.track.unsubscribe(r.kick)
}

// reload swaps in instances prepared from a reloaded configuration; each
// takes over the machine (the state) of the member it replaces.
func (r *runner) reload(swap []*instance, group *groupSpec) {
	c := runnerCmd{swap: swap, group: group, done: make(chan struct{})}
	r.cmd <- c
	<-c.done
}

func (r *runner) loop() {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// What is tracked decides the state the members start in: a weight-0
	// script without a result yet holds them in FAULT (quietly).
	r.retrack(false)
	now := time.Now()
	for _, i := range r.members {
		if now.Before(r.delay) {
			i.m.DelayStart(r.delay)
		}
		i.apply(i.m.Start(now))
	}
	r.retrack(true)
	for {
		r.refreshStatus()
		var next time.Time
		for _, i := range r.members {
			if d := i.m.Deadline(); !d.IsZero() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(next))
		}
		select {
		case tp := <-r.in:
			if i := r.memberOf(tp.io); i != nil {
				prev := i.m.State()
				i.receive(tp.p)
				r.follow(i, prev)
			}
		case <-timer.C:
			r.timers(time.Now())
		case <-r.kick:
			r.retrack(true)
		case c := <-r.cmd:
			if c.done == nil {
				r.stop()
				return
			}
			r.swap(c.swap, c.group)
			close(c.done)
		}
	}
}

func (r *runner) memberOf(x *instanceIO) *instance {
	for _, i := range r.members {
		if i.io == x {
			return i
		}
	}
	return nil // a socket a reload replaced
}

func (r *runner) refreshStatus() {
	for _, i := range r.members {
		i.refreshStatus()
	}
}

// timers runs the timers that are due. In a sync group a backup whose
// down timer ran out becomes master only when every other member wants
// to be master too; otherwise it is held back and wants it (keepalived's
// vrrp_sync_can_goto_master).
func (r *runner) timers(now time.Time) {
	for _, i := range r.members {
		if r.group != nil && i.m.TimerDue(now) && !r.othersWantMaster(i) {
			i.log.Debug("master down timer expired; held in BACKUP until every member of the sync group wants MASTER")
			i.m.Hold(now)
			continue
		}
		prev := i.m.State()
		i.apply(i.m.Timer(now))
		r.follow(i, prev)
	}
}

func (r *runner) othersWantMaster(i *instance) bool {
	for _, o := range r.members {
		if o != i && !o.m.WantsMaster() {
			return false
		}
	}
	return true
}

// follow makes the rest of i's sync group follow i's transition from
// prev, as keepalived's table of sync transitions does: into MASTER the
// others follow (once all want it), from MASTER to BACKUP they give up
// their addresses too. FAULT is the trackers' business (retrack).
func (r *runner) follow(i *instance, prev vrrp.State) {
	if r.group == nil {
		return
	}
	now := time.Now()
	switch cur := i.m.State(); {
	case cur == vrrp.Master && r.gstate != vrrp.Master:
		if !r.othersWantMaster(i) {
			return
		}
		for _, o := range r.members {
			if o != i {
				o.apply(o.m.ForceMaster(now, "sync group "+r.group.Name+": "+i.spec.Name+" became master"))
			}
		}
		r.setGroupState(vrrp.Master)
	case prev == vrrp.Master && cur == vrrp.Backup && r.gstate != vrrp.Backup:
		for _, o := range r.members {
			if o != i {
				o.apply(o.m.ForceBackup(now, "sync group "+r.group.Name+": "+i.spec.Name+" became backup"))
			}
		}
		r.setGroupState(vrrp.Backup)
	}
}

// setGroupState records the group's new state and runs the group's
// notify scripts (counted in the first member's metrics).
func (r *runner) setGroupState(s vrrp.State) {
	if r.gstate == s {
		return
	}
	r.log.Info("sync group "+s.String(), "from", r.gstate.String())
	r.gstate = s
	// The notifier takes an instance: the group's scripts stand in one
	// (spec.group set: notify gets "GROUP").
	r.notify.enqueue(&instance{spec: r.group.Notify, met: r.members[0].met, log: r.log}, s, 0)
}

// retrack recomputes every member's effective priority and fault from the
// tracked scripts and interfaces. In a sync group one member's fault is
// every member's: all go to FAULT, and come out of it together when none
// is faulted any more. A fault that comes only from weight-0 scripts
// without a first result (at start) is quiet: keepalived runs no
// notify_fault for it, for an instance or for the group (which it
// reports BACKUP meanwhile), but does once the first result is a failure. Called with started false before the
// machines start, it only primes them (no group state yet).
func (r *runner) retrack(started bool) {
	now := time.Now()
	type result struct {
		prio           int
		fault, waiting bool
		why            string
	}
	res := make([]result, len(r.members))
	groupFault, groupWaiting, groupWhy := false, true, ""
	for k, i := range r.members {
		p, f, w, why := r.track.evaluate(i.spec)
		res[k] = result{p, f, w, why}
		if f {
			if !groupFault || (groupWaiting && !w) {
				groupWhy = i.spec.Name + ": " + why
			}
			groupFault, groupWaiting = true, groupWaiting && w
		}
	}
	for k, i := range r.members {
		fault, waiting, why := res[k].fault, res[k].waiting, res[k].why
		if r.group != nil && groupFault {
			if !fault {
				why = "sync group " + r.group.Name + ": " + groupWhy
			}
			fault, waiting = true, groupWaiting
		}
		if i.m.State() == vrrp.Initialize {
			i.quietFault = fault && waiting
		} else if i.quietFault && fault && !waiting {
			// The first result was a failure: FAULT for a reason now. Only
			// the member that failed says so; keepalived leaves the others,
			// in FAULT already, without a notification (vrrp_sync_fault).
			i.quietFault = false
			i.log.Warn("staying in FAULT", "reason", why)
			if res[k].fault && !res[k].waiting {
				i.notify.enqueue(i, vrrp.Fault, int(i.m.Status().Priority))
			}
		}
		if fault != (i.m.State() == vrrp.Fault) {
			if fault {
				i.log.Warn("entering FAULT", "reason", why)
			} else {
				i.quietFault = false
			}
			i.apply(i.m.SetFault(now, fault))
		}
		i.apply(i.m.SetPriority(now, res[k].prio))
	}
	if r.group == nil || !started {
		return
	}
	switch {
	case groupFault && groupWaiting:
		// Held only by scripts that have not reported since start:
		// keepalived's group starts BACKUP (and says so) while its members
		// wait in FAULT quietly; a first failure then makes it FAULT.
		if r.gstate == vrrp.Initialize {
			r.setGroupState(vrrp.Backup)
		}
	case groupFault:
		r.setGroupState(vrrp.Fault)
	case r.gstate == vrrp.Fault || r.gstate == vrrp.Initialize:
		all := true
		for _, i := range r.members {
			all = all && i.m.State() == vrrp.Master
		}
		if all {
			r.setGroupState(vrrp.Master)
		} else {
			r.setGroupState(vrrp.Backup)
		}
	}
}

// stop resigns every member, then notifies the group's STOP.
func (r *runner) stop() {
	now := time.Now()
	for _, i := range r.members {
		i.apply(i.m.Shutdown(now))
	}
	r.refreshStatus()
	if r.group != nil {
		r.setGroupState(vrrp.Stopped)
	}
}

// swap replaces the members with instances made from a reloaded
// configuration. Each keeps its predecessor's machine, so its state: a
// master stays master (addresses the new configuration dropped are
// removed, new ones added and announced, and it advertises at once with
// the new settings), a backup stays backup. This is keepalived's reload.
func (r *runner) swap(next []*instance, group *groupSpec) {
	now := time.Now()
	old := r.members
	for k, n := range next {
		o := old[k]
		n.m = o.m
		o.mu.Lock()
		n.status.State, n.status.Since, n.status.PeerChecksum = o.status.State, o.status.Since, o.status.PeerChecksum
		o.mu.Unlock()
		n.warned = o.warned
		n.setGroup(group)
		if n.io != o.io {
			go n.io.read(r.in, n.log)
		}
		if n.m.State() == vrrp.Master {
			n.moveAddresses(o)
		}
		acts, err := n.m.Reconfigure(now, n.machineConfig())
		if err != nil { // checked when prepared; cannot happen
			n.log.Error("reload: the instance keeps its previous settings in the state machine", "err", err)
		}
		n.apply(acts)
		n.quietFault = o.quietFault
	}
	r.mu.Lock()
	r.members = next
	r.group = group
	r.mu.Unlock()
	for k, o := range old {
		o.ann.close()
		if o.io != next[k].io {
			o.io.close(true)
		}
	}
	r.retrack(true)
}

// moveAddresses, for a master across a reload, removes the addresses o
// held that n does not, adds n's, and announces them if any was new
// (keepalived sends gratuitous ARPs then); otherwise n's announcer only
// resumes the periodic refresh.
func (n *instance) moveAddresses(o *instance) {
	key := func(i *instance, v vipSpec) string { return i.linkFor(v).Name() + " " + v.Prefix.String() }
	want := map[string]bool{}
	for _, v := range n.spec.held() {
		want[key(n, v)] = true
	}
	had := map[string]bool{}
	for _, v := range o.spec.held() {
		had[key(o, v)] = true
		if !want[key(o, v)] {
			if err := o.linkFor(v).Remove(v.Prefix); err != nil {
				n.met.addrErrors.Add(1)
				n.log.Error("cannot remove virtual address", "address", v.Prefix, "err", err)
			}
		}
	}
	added := false
	for _, v := range n.spec.held() {
		added = added || !had[key(n, v)]
	}
	n.apply([]vrrp.Action{{Kind: vrrp.AddAddresses}})
	if added {
		n.ann.start()
	} else {
		n.ann.resume()
	}
}

// setGroup records the instance's sync group for the status.
func (i *instance) setGroup(g *groupSpec) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.status.SyncGroup = ""
	if g != nil {
		i.status.SyncGroup = g.Name
	}
}
