// Package lvstest provides an in-memory [lvs.Kernel] for tests of code
// that programs IPVS: it keeps services and destinations as the kernel
// does, answers with the kernel's errors ([lvs.ErrExist],
// [lvs.ErrNotFound], [lvs.ErrNoScheduler]), switches destinations at
// local addresses to [lvs.Local] as the kernel does, and can be told to
// fail. Its methods double as ipvsadm for tests that change the "kernel"
// by hand.
package lvstest

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"

	"github.com/amqpha/amqpha/vipd/lvs"
)

// Kernel is an in-memory IPVS table. The zero value is not usable; call
// [New]. It is safe for concurrent use.
type Kernel struct {
	mu      sync.Mutex
	svcs    map[lvs.ServiceKey]*entry
	local   map[netip.Addr]bool
	fail    func(op lvs.Op, s lvs.Service, d lvs.Destination) error
	readErr error
	reads   int
	writes  int
}

type entry struct {
	svc   lvs.Service
	dests map[netip.AddrPort]lvs.Destination
}

var _ lvs.Kernel = (*Kernel)(nil)

// New returns an empty kernel.
func New() *Kernel {
	return &Kernel{svcs: map[lvs.ServiceKey]*entry{}, local: map[netip.Addr]bool{}}
}

// SetLocal declares addrs local to the director: destinations added or
// updated at them get the [lvs.Local] method, as old kernels did (6.1
// keeps the method given; without SetLocal the fake behaves so).
func (k *Kernel) SetLocal(addrs ...netip.Addr) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, a := range addrs {
		k.local[a] = true
	}
}

// FailWith makes every later mutating call first ask f; a non-nil error
// is returned and nothing changes. f runs with the kernel locked and must
// not call it. nil removes the hook.
func (k *Kernel) FailWith(f func(op lvs.Op, s lvs.Service, d lvs.Destination) error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fail = f
}

// FailReads makes Services and Destinations return err (nil: succeed).
func (k *Kernel) FailReads(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.readErr = err
}

// Counts returns how many read calls (Services, Destinations) and
// mutating calls were made, failed ones included.
func (k *Kernel) Counts() (reads, writes int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reads, k.writes
}

// ResetCounts sets both counts to 0.
func (k *Kernel) ResetCounts() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reads, k.writes = 0, 0
}

// Table returns a copy of the whole table, as stored.
func (k *Kernel) Table() lvs.Table {
	k.mu.Lock()
	defer k.mu.Unlock()
	t := lvs.Table{}
	for key, e := range k.svcs {
		t[key] = lvs.ServiceState{Service: e.svc, Destinations: maps.Clone(e.dests)}
	}
	return t
}

// Services returns the services in no particular order.
func (k *Kernel) Services(ctx context.Context) ([]lvs.Service, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reads++
	if err := k.readCheck(ctx); err != nil {
		return nil, err
	}
	out := make([]lvs.Service, 0, len(k.svcs))
	for _, e := range k.svcs {
		out = append(out, e.svc)
	}
	return out, nil
}

// Destinations returns the destinations of s in no particular order; none
// when s is absent (as the kernel's dump does).
func (k *Kernel) Destinations(ctx context.Context, s lvs.Service) ([]lvs.Destination, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.reads++
	if err := k.readCheck(ctx); err != nil {
		return nil, err
	}
	e, ok := k.svcs[s.Key()]
	if !ok {
		return nil, nil
	}
	return slices.Collect(maps.Values(e.dests)), nil
}

// AddService adds s; [lvs.ErrExist] if present.
func (k *Kernel) AddService(ctx context.Context, s lvs.Service) error {
	return k.write(ctx, lvs.OpAddService, s, lvs.Destination{}, func() error {
		key := s.Key()
		if _, ok := k.svcs[key]; ok {
			return fmt.Errorf("lvstest: %s: %w", key, lvs.ErrExist)
		}
		if err := checkService(s); err != nil {
			return err
		}
		k.svcs[key] = &entry{svc: stored(s), dests: map[netip.AddrPort]lvs.Destination{}}
		return nil
	})
}

// UpdateService replaces the settings of s; [lvs.ErrNotFound] if absent.
func (k *Kernel) UpdateService(ctx context.Context, s lvs.Service) error {
	return k.write(ctx, lvs.OpUpdateService, s, lvs.Destination{}, func() error {
		e, err := k.lookup(s)
		if err != nil {
			return err
		}
		if err := checkService(s); err != nil {
			return err
		}
		e.svc = stored(s)
		return nil
	})
}

// DeleteService deletes s with its destinations; [lvs.ErrNotFound] if
// absent.
func (k *Kernel) DeleteService(ctx context.Context, s lvs.Service) error {
	return k.write(ctx, lvs.OpDeleteService, s, lvs.Destination{}, func() error {
		if _, err := k.lookup(s); err != nil {
			return err
		}
		delete(k.svcs, s.Key())
		return nil
	})
}

// AddDestination adds d to s; [lvs.ErrNotFound] when s is absent,
// [lvs.ErrExist] when d is present.
func (k *Kernel) AddDestination(ctx context.Context, s lvs.Service, d lvs.Destination) error {
	return k.write(ctx, lvs.OpAddDestination, s, d, func() error {
		e, err := k.lookup(s)
		if err != nil {
			return err
		}
		if _, ok := e.dests[d.Key()]; ok {
			return fmt.Errorf("lvstest: %s of %s: %w", d.Key(), s.Key(), lvs.ErrExist)
		}
		if err := d.Validate(e.svc); err != nil {
			return err
		}
		e.dests[d.Key()] = k.localized(d)
		return nil
	})
}

// UpdateDestination sets the weight and method of d in s;
// [lvs.ErrNotFound] when either is absent.
func (k *Kernel) UpdateDestination(ctx context.Context, s lvs.Service, d lvs.Destination) error {
	return k.write(ctx, lvs.OpUpdateDestination, s, d, func() error {
		e, err := k.lookup(s)
		if err != nil {
			return err
		}
		if _, ok := e.dests[d.Key()]; !ok {
			return fmt.Errorf("lvstest: %s of %s: %w", d.Key(), s.Key(), lvs.ErrNotFound)
		}
		if err := d.Validate(e.svc); err != nil {
			return err
		}
		e.dests[d.Key()] = k.localized(d)
		return nil
	})
}

// DeleteDestination deletes d from s; [lvs.ErrNotFound] when either is
// absent.
func (k *Kernel) DeleteDestination(ctx context.Context, s lvs.Service, d lvs.Destination) error {
	return k.write(ctx, lvs.OpDeleteDestination, s, d, func() error {
		e, err := k.lookup(s)
		if err != nil {
			return err
		}
		if _, ok := e.dests[d.Key()]; !ok {
			return fmt.Errorf("lvstest: %s of %s: %w", d.Key(), s.Key(), lvs.ErrNotFound)
		}
		delete(e.dests, d.Key())
		return nil
	})
}

func (k *Kernel) readCheck(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return k.readErr
}

func (k *Kernel) write(ctx context.Context, op lvs.Op, s lvs.Service, d lvs.Destination, f func() error) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writes++
	if err := ctx.Err(); err != nil {
		return err
	}
	if k.fail != nil {
		if err := k.fail(op, s, d); err != nil {
			return err
		}
	}
	return f()
}

func (k *Kernel) lookup(s lvs.Service) (*entry, error) {
	e, ok := k.svcs[s.Key()]
	if !ok {
		return nil, fmt.Errorf("lvstest: %s: %w", s.Key(), lvs.ErrNotFound)
	}
	return e, nil
}

func (k *Kernel) localized(d lvs.Destination) lvs.Destination {
	if k.local[d.Addr] {
		d.Forward = lvs.Local
	}
	return d
}

// checkService rejects what the kernel rejects: bad services and unknown
// schedulers.
func checkService(s lvs.Service) error {
	if err := s.Validate(); err != nil {
		return err
	}
	if s.Scheduler != "" && !slices.Contains(lvs.Schedulers, s.Scheduler) {
		return fmt.Errorf("lvstest: %s: %q: %w", s.Key(), s.Scheduler, lvs.ErrNoScheduler)
	}
	return nil
}

// stored returns s as the kernel reports it: a firewall-mark service has
// no protocol, the family is explicit, the scheduler is named.
func stored(s lvs.Service) lvs.Service {
	s.Family = s.Key().Family
	if s.FWMark != 0 {
		s.Protocol = 0
	}
	if s.Scheduler == "" {
		s.Scheduler = lvs.DefaultScheduler
	}
	return s
}
