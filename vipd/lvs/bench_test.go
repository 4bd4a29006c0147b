package lvs_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/lvs/lvstest"
)

// benchTable returns n persistent wrr services with m DR destinations
// each.
func benchTable(n, m int) lvs.Table {
	t := lvs.Table{}
	for i := range n {
		s := lvs.Service{Addr: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 5672, Protocol: lvs.TCP, Scheduler: "wrr", Persistence: 50 * time.Second}
		ds := make([]lvs.Destination, m)
		for j := range m {
			ds[j] = lvs.Destination{Addr: netip.AddrFrom4([4]byte{10, 2, byte(i), byte(j + 1)}), Port: 5672, Weight: 1, Forward: lvs.Route}
		}
		t.Add(s, ds...)
	}
	return t
}

// BenchmarkApply100x10 programs 100 services of 10 destinations each into
// an empty in-memory kernel: 1100 kernel operations.
func BenchmarkApply100x10(b *testing.B) {
	ctx := context.Background()
	want := benchTable(100, 10)
	b.ReportAllocs()
	for b.Loop() {
		r := lvs.NewReconciler(lvstest.New(), nil)
		cs, err := r.Apply(ctx, want)
		if err != nil || len(cs) != 1100 {
			b.Fatalf("Apply: %d changes, %v", len(cs), err)
		}
	}
}

// BenchmarkReconcileOneChange reconciles 100x10 against a kernel that holds
// it but for one weight: 101 reads, a diff and one update.
func BenchmarkReconcileOneChange(b *testing.B) {
	ctx := context.Background()
	want := benchTable(100, 10)
	r := lvs.NewReconciler(lvstest.New(), nil)
	if _, err := r.Apply(ctx, want); err != nil {
		b.Fatal(err)
	}
	key := want.Keys()[42]
	dk := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, 42, 3}), 5672)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		st := want[key]
		d := st.Destinations[dk]
		d.Weight = 1 + i%2
		st.Destinations[dk] = d
		cs, err := r.Apply(ctx, want)
		if err != nil || len(cs) != 1 || cs[0].Op != lvs.OpUpdateDestination {
			b.Fatalf("Apply: %v, %v", cs, err)
		}
	}
}
