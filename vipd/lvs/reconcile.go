package lvs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
)

// Reconciler keeps the kernel's IPVS table in step with a wanted [Table]:
// each [Reconciler.Apply] reads the kernel, compares and repairs. It
// remembers, for the life of the process, which services it owns (see
// Ownership in the package documentation).
//
// Its methods are safe for concurrent use; they are serialized, and they
// block on the [Kernel].
type Reconciler struct {
	k   Kernel
	log *slog.Logger

	mu    sync.Mutex
	owned map[ServiceKey]struct{}
	// last is the state of the owned services after the previous Apply,
	// as far as the kernel took the changes; nil before the first.
	last Table
}

// NewReconciler returns a Reconciler working on k, logging each change it
// makes to log at Info level and each failure at Warn level (nil log:
// discard). It owns nothing yet.
func NewReconciler(k Kernel, log *slog.Logger) *Reconciler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{k: k, log: log, owned: map[ServiceKey]struct{}{}}
}

// Apply makes the kernel hold wanted: it reads the kernel's services (and
// the destinations of the services it owns), then adds, updates and
// deletes services and destinations until the owned part of the kernel
// equals wanted. Every service of wanted becomes owned; owned services
// missing from wanted are deleted; services it does not own are left
// alone. A second Apply of the same table changes nothing, unless the
// kernel was changed in between.
//
// When wanted is invalid ([Table.Validate]), Apply returns the error and
// touches nothing. When a kernel operation fails, Apply goes on with the
// others (skipping the destinations of a service it could not add) and
// returns the changes made with the failures joined, each an [*OpError].
// When ctx ends it stops between operations. Apply blocks on the kernel.
func (r *Reconciler) Apply(ctx context.Context, wanted Table) (Changes, error) {
	if err := wanted.Validate(); err != nil {
		return nil, fmt.Errorf("lvs: wanted table: %w", err)
	}
	want := wanted.normalized()
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range want {
		r.owned[k] = struct{}{}
	}
	have, err := readTable(ctx, r.k, r.ownsLocked)
	if err != nil {
		return nil, err
	}
	done, err := r.executeLocked(ctx, have, plan(have, want, r.owned, r.last))
	for k := range r.owned {
		_, wanted := want[k]
		_, present := r.last[k]
		if !wanted && !present {
			delete(r.owned, k) // deleted, by vipd or by hand
		}
	}
	return done, err
}

// Remove deletes every owned service from the kernel, with its
// destinations, and forgets it: for a clean shutdown. Services that fail
// to go stay owned, and the failures are returned joined. It blocks on
// the kernel.
func (r *Reconciler) Remove(ctx context.Context) (Changes, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	have, err := readTable(ctx, r.k, r.ownsLocked)
	if err != nil {
		return nil, err
	}
	var ops []Change
	for _, k := range slices.SortedFunc(maps.Keys(r.owned), ServiceKey.Compare) {
		if h, ok := have[k]; ok {
			ops = append(ops, Change{Op: OpDeleteService, Service: h.Service})
		} else {
			delete(r.owned, k)
		}
	}
	done, err := r.executeLocked(ctx, have, ops)
	if len(r.owned) == 0 {
		r.last = nil
	}
	return done, err
}

// Read returns the owned services as the kernel has them now, with their
// destinations and connection counts ([Destination.Conns]): what
// ipvsadm -L shows of them. It changes nothing and does not wait for an
// Apply in progress; it blocks on the kernel.
func (r *Reconciler) Read(ctx context.Context) (Table, error) {
	r.mu.Lock()
	owned := maps.Clone(r.owned)
	r.mu.Unlock()
	mine := func(k ServiceKey) bool { _, ok := owned[k]; return ok }
	t, err := readTable(ctx, r.k, mine)
	if err != nil {
		return nil, err
	}
	maps.DeleteFunc(t, func(k ServiceKey, _ ServiceState) bool { return !mine(k) })
	return t, nil
}

// Owned returns the keys of the services the reconciler owns, in key
// order.
func (r *Reconciler) Owned() []ServiceKey {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.SortedFunc(maps.Keys(r.owned), ServiceKey.Compare)
}

func (r *Reconciler) ownsLocked(k ServiceKey) bool {
	_, ok := r.owned[k]
	return ok
}

// executeLocked performs ops in order and records in r.last the owned
// part of the kernel as the successful ones left it; it takes over have.
func (r *Reconciler) executeLocked(ctx context.Context, have Table, ops []Change) (Changes, error) {
	// have was read for this call: it becomes the picture of the owned
	// services, changed as operations succeed.
	state := have
	for k := range state {
		if !r.ownsLocked(k) {
			delete(state, k)
		}
	}
	var (
		done   = make(Changes, 0, len(ops))
		errs   []error
		failed map[ServiceKey]bool
	)
	for _, c := range ops {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		k := c.Service.Key()
		if failed[k] {
			continue
		}
		err := r.do(ctx, c)
		if err != nil && errors.Is(err, ErrNotFound) && (c.Op == OpDeleteService || c.Op == OpDeleteDestination) {
			record(state, c) // already gone
			if c.Op == OpDeleteService {
				delete(r.owned, k)
			}
			continue
		}
		if err != nil {
			oe := &OpError{Op: c.Op, Service: k, Err: err}
			if c.Op >= OpAddDestination {
				oe.Dest = c.Dest.Key()
			}
			errs = append(errs, oe)
			r.log.Warn("ipvs change failed", "change", c.String(), "err", err)
			if c.Op == OpAddService {
				if failed == nil {
					failed = map[ServiceKey]bool{}
				}
				failed[k] = true
			}
			continue
		}
		record(state, c)
		if c.Op == OpDeleteService {
			delete(r.owned, k)
		}
		done = append(done, c)
		if r.log.Enabled(ctx, slog.LevelInfo) {
			r.log.Info("ipvs change", "change", c.String(), "drift", c.Drift)
		}
	}
	r.last = state
	return done, errors.Join(errs...)
}

func (r *Reconciler) do(ctx context.Context, c Change) error {
	switch c.Op {
	case OpAddService:
		return r.k.AddService(ctx, c.Service)
	case OpUpdateService:
		return r.k.UpdateService(ctx, c.Service)
	case OpDeleteService:
		return r.k.DeleteService(ctx, c.Service)
	case OpAddDestination:
		return r.k.AddDestination(ctx, c.Service, c.Dest)
	case OpUpdateDestination:
		return r.k.UpdateDestination(ctx, c.Service, c.Dest)
	case OpDeleteDestination:
		return r.k.DeleteDestination(ctx, c.Service, c.Dest)
	}
	return invalidf("unknown operation %s", c.Op)
}
