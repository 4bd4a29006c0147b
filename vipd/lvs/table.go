package lvs

import (
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

// Table is a set of IPVS services with their destinations, keyed by
// [Service.Key]: the table vipd wants, or the one read from the kernel
// ([ReadTable]). The zero value (nil) is an empty table to read; use
// make or [Table.Add] to build one. A Table is a plain value: it is not
// safe for concurrent writes.
type Table map[ServiceKey]ServiceState

// ServiceState is a service and its destinations, keyed by
// [Destination.Key].
type ServiceState struct {
	Service      Service
	Destinations map[netip.AddrPort]Destination
}

// Add puts s in t, replacing its settings if already present, and adds
// (or replaces) the destinations ds. It returns t, allocating it if nil.
func (t Table) Add(s Service, ds ...Destination) Table {
	if t == nil {
		t = Table{}
	}
	k := s.Key()
	st := t[k]
	if st.Destinations == nil {
		st.Destinations = make(map[netip.AddrPort]Destination, len(ds))
	}
	st.Service = s
	for _, d := range ds {
		st.Destinations[d.Key()] = d
	}
	t[k] = st
	return t
}

// Keys returns the keys of t in [ServiceKey.Compare] order.
func (t Table) Keys() []ServiceKey {
	return slices.SortedFunc(maps.Keys(t), ServiceKey.Compare)
}

// Clone returns a deep copy of t.
func (t Table) Clone() Table {
	if t == nil {
		return nil
	}
	out := make(Table, len(t))
	for k, st := range t {
		out[k] = ServiceState{Service: st.Service, Destinations: maps.Clone(st.Destinations)}
	}
	return out
}

// Equal reports whether t and u hold the same services with the same
// settings and destinations, compared in normalized form (a fraction of
// a second of persistence, an empty scheduler name and a full netmask
// compare as the kernel stores them). The kernel's [Local] method equals
// any method, as the reconciler sees it.
func (t Table) Equal(u Table) bool {
	if len(t) != len(u) {
		return false
	}
	for k, a := range t {
		b, ok := u[k]
		if !ok || !sameSettings(a.Service.normalized(), b.Service.normalized()) || len(a.Destinations) != len(b.Destinations) {
			return false
		}
		for dk, da := range a.Destinations {
			db, ok := b.Destinations[dk]
			if !ok || !(sameDest(da, db) || sameDest(db, da)) {
				return false
			}
		}
	}
	return true
}

// Validate checks every service and destination of t (see
// [Service.Validate], [Destination.Validate]) and that each sits under its
// own key. The error joins every problem; each wraps [ErrInvalid].
func (t Table) Validate() error {
	var errs []error
	for _, k := range t.Keys() {
		st := t[k]
		if err := st.Service.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if st.Service.Key() != k {
			errs = append(errs, invalidf("service %s is filed under key %s", st.Service.Key(), k))
			continue
		}
		for dk, d := range st.Destinations {
			if d.Key() != dk {
				errs = append(errs, invalidf("%s: destination %s is filed under %s", k, d.Key(), dk))
				continue
			}
			if err := d.Validate(st.Service); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// String lists t as ipvsadm -Ln does, one service a line followed by its
// destinations, in key order.
func (t Table) String() string {
	var b strings.Builder
	for _, k := range t.Keys() {
		st := t[k]
		b.WriteString(st.Service.String())
		b.WriteByte('\n')
		for _, d := range st.sortedDests() {
			b.WriteString("  -> ")
			b.WriteString(d.String())
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func (st ServiceState) sortedDests() []Destination {
	ds := slices.Collect(maps.Values(st.Destinations))
	slices.SortFunc(ds, func(a, b Destination) int { return a.Key().Compare(b.Key()) })
	return ds
}

// normalized returns a copy of t with every service normalized; the
// destination maps are shared with t.
func (t Table) normalized() Table {
	out := make(Table, len(t))
	for k, st := range t {
		out[k] = ServiceState{Service: st.Service.normalized(), Destinations: st.Destinations}
	}
	return out
}
