package lvs

import (
	"maps"
	"net/netip"
	"slices"
)

// plan returns the kernel operations that turn have into want, touching
// only the services in owned (which includes every key of want).
//
// have is the kernel's table, with destinations read at least for the
// owned services; want is normalized; last is the state the previous
// Apply left for the owned services (nil before the first), used to tell
// drift from wanted changes.
//
// Unwanted owned services are deleted first; then, service by service in
// key order, the service is added or updated, its destinations are
// updated and added in address order, and then the unwanted ones are
// deleted, so that a pool is never emptied on the way (a sorry server
// leaves after the real servers are back).
func plan(have, want Table, owned map[ServiceKey]struct{}, last Table) []Change {
	var out []Change
	for _, k := range slices.SortedFunc(maps.Keys(owned), ServiceKey.Compare) {
		if _, wanted := want[k]; wanted {
			continue
		}
		if h, ok := have[k]; ok {
			out = append(out, Change{Op: OpDeleteService, Service: h.Service})
		}
	}
	for _, k := range want.Keys() {
		w := want[k]
		l, inLast := last[k]
		h, ok := have[k]
		if !ok {
			out = append(out, Change{Op: OpAddService, Service: w.Service, Drift: inLast})
			for _, d := range w.sortedDests() {
				out = append(out, Change{Op: OpAddDestination, Service: w.Service, Dest: d, Drift: inLast})
			}
			continue
		}
		if !sameSettings(h.Service, w.Service) {
			drift := inLast && !sameSettings(l.Service, h.Service)
			out = append(out, Change{Op: OpUpdateService, Service: w.Service, OldService: h.Service, Drift: drift})
		}
		svc := w.Service
		var adds []Change
		for _, d := range w.Destinations {
			hd, present := h.Destinations[d.Key()]
			ld, wasSet := l.Destinations[d.Key()]
			switch {
			case !present:
				adds = append(adds, Change{Op: OpAddDestination, Service: svc, Dest: d, Drift: wasSet})
			case !sameDest(hd, d):
				adds = append(adds, Change{Op: OpUpdateDestination, Service: svc, Dest: d, OldDest: hd, Drift: wasSet && !sameDest(hd, ld)})
			}
		}
		var dels []Change
		for _, d := range h.Destinations {
			if _, keep := w.Destinations[d.Key()]; keep {
				continue
			}
			_, wasSet := l.Destinations[d.Key()]
			dels = append(dels, Change{Op: OpDeleteDestination, Service: svc, Dest: d, Drift: inLast && !wasSet})
		}
		out = append(out, sortByDest(adds)...)
		out = append(out, sortByDest(dels)...)
	}
	return out
}

func sortByDest(cs []Change) []Change {
	slices.SortFunc(cs, func(a, b Change) int { return a.Dest.Key().Compare(b.Dest.Key()) })
	return cs
}

// record applies a change that succeeded to t, the reconciler's picture
// of the kernel.
func record(t Table, c Change) {
	k := c.Service.Key()
	switch c.Op {
	case OpAddService:
		t[k] = ServiceState{Service: c.Service, Destinations: map[netip.AddrPort]Destination{}}
	case OpUpdateService:
		st := t[k]
		st.Service = c.Service
		t[k] = st
	case OpDeleteService:
		delete(t, k)
	case OpAddDestination, OpUpdateDestination:
		st, ok := t[k]
		if !ok {
			return
		}
		if st.Destinations == nil {
			st.Destinations = map[netip.AddrPort]Destination{}
			t[k] = st
		}
		st.Destinations[c.Dest.Key()] = c.Dest
	case OpDeleteDestination:
		delete(t[k].Destinations, c.Dest.Key())
	}
}
