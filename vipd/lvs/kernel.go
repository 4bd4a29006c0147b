package lvs

import (
	"context"
	"fmt"
	"net/netip"
)

// Kernel is the part of the kernel's IPVS that the [Reconciler] needs:
// list, add, update and delete services and their destinations. [Netlink]
// implements it on Linux; package lvstest has an in-memory one.
//
// A Reconciler calls it from one goroutine at a time, and its calls may
// block on the kernel. Implementations check ctx before starting; a call
// in flight need not be cancellable. Errors wrap [ErrExist] when adding
// what is present, [ErrNotFound] when changing or deleting what is
// absent, and [ErrNoScheduler] for an unknown scheduler.
//
// A service passed to the methods that take one identifies it by
// [Service.Key]; AddService and UpdateService also set its settings. The
// services and destinations returned may be in any order and any
// representation that normalizes to the kernel's state (the reconciler
// normalizes them).
type Kernel interface {
	Services(ctx context.Context) ([]Service, error)
	Destinations(ctx context.Context, s Service) ([]Destination, error)
	AddService(ctx context.Context, s Service) error
	UpdateService(ctx context.Context, s Service) error
	DeleteService(ctx context.Context, s Service) error
	AddDestination(ctx context.Context, s Service, d Destination) error
	UpdateDestination(ctx context.Context, s Service, d Destination) error
	DeleteDestination(ctx context.Context, s Service, d Destination) error
}

// ReadTable reads the whole IPVS table from k, every service with its
// destinations, normalized. It blocks on k; it is safe to call while a
// [Reconciler] works on k only if k itself allows concurrent calls
// ([Netlink] does).
func ReadTable(ctx context.Context, k Kernel) (Table, error) {
	return readTable(ctx, k, nil)
}

// readTable reads the services of k and, for those keep selects (all when
// keep is nil), their destinations. Services keep rejects are in the
// result without destinations.
func readTable(ctx context.Context, k Kernel, keep func(ServiceKey) bool) (Table, error) {
	svcs, err := k.Services(ctx)
	if err != nil {
		return nil, fmt.Errorf("lvs: list services: %w", err)
	}
	t := make(Table, len(svcs))
	for _, s := range svcs {
		s = s.normalized()
		key := s.Key()
		st := ServiceState{Service: s}
		if keep == nil || keep(key) {
			ds, err := k.Destinations(ctx, s)
			if err != nil {
				return nil, fmt.Errorf("lvs: list destinations of %s: %w", key, err)
			}
			st.Destinations = make(map[netip.AddrPort]Destination, len(ds))
			for _, d := range ds {
				st.Destinations[d.Key()] = d
			}
		}
		t[key] = st
	}
	return t, nil
}
