package main

import (
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestPacersSpaceFrames: with an interval, each frame on an interface
// (per family) gets a slot at least that far after the previous one,
// whoever asks; other interfaces and families are not held up; without
// an interval nothing waits.
func TestPacersSpaceFrames(t *testing.T) {
	p := &pacers{next: map[string]time.Time{}}
	t0 := time.Unix(1000, 0)
	const iv = 100 * time.Millisecond
	want := []time.Time{t0, t0.Add(iv), t0.Add(2 * iv)}
	for k, w := range want {
		if got := p.reserve("eth0", false, iv, t0); !got.Equal(w) {
			t.Fatalf("frame %d at %v, want %v", k, got, w)
		}
	}
	if got := p.reserve("eth1", false, iv, t0); !got.Equal(t0) {
		t.Fatalf("another interface waits: %v", got)
	}
	if got := p.reserve("eth0", true, iv, t0); !got.Equal(t0) {
		t.Fatalf("IPv6 waits for IPv4: %v", got)
	}
	later := t0.Add(time.Second)
	if got := p.reserve("eth0", false, iv, later); !got.Equal(later) {
		t.Fatalf("after a quiet second: %v, want %v", got, later)
	}
	if got := p.reserve("eth0", false, 0, t0); !got.Equal(t0) {
		t.Fatalf("no interval: %v", got)
	}
	// Counted from the send, as keepalived counts it: a frame that left
	// late pushes the next one back.
	p.sent("eth2", false, iv, t0.Add(5*time.Millisecond))
	if got := p.reserve("eth2", false, iv, t0); !got.Equal(t0.Add(5*time.Millisecond + iv)) {
		t.Fatalf("after a late send: %v", got)
	}
}

// fakeSender records the addresses announced and when.
type fakeSender struct {
	mu    sync.Mutex
	addrs []netip.Addr
	at    []time.Time
}

func (f *fakeSender) Announce(addrs []netip.Addr) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range addrs {
		f.addrs = append(f.addrs, a)
		f.at = append(f.at, time.Now())
	}
	return len(addrs), nil
}

func (f *fakeSender) Close() error { return nil }

func (f *fakeSender) sent() ([]netip.Addr, []time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.addrs), slices.Clone(f.at)
}

// TestAnnouncerPaced: a takeover's round with vrrp_garp_interval sends
// every address garp_master_repeat times, one frame at a time, no two
// closer than the interval; a stop in the middle of the round ends it.
func TestAnnouncerPaced(t *testing.T) {
	a1, a2 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	spec := instanceSpec{
		Name: "VI_1", Interface: "eth0",
		VIPs:         []vipSpec{{Prefix: netip.PrefixFrom(a1, 24)}, {Prefix: netip.PrefixFrom(a2, 24)}},
		GARPRepeat:   3,
		GARPInterval: 20 * time.Millisecond,
	}
	f := &fakeSender{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ann, err := newAnnouncerWith(spec, newInstanceMetrics(), log, func(string) (sender, error) { return f, nil }, &pacers{next: map[string]time.Time{}})
	if err != nil {
		t.Fatal(err)
	}
	defer ann.close()
	ann.start()
	waitUntil(t, "six frames", func() bool { addrs, _ := f.sent(); return len(addrs) == 6 })
	addrs, at := f.sent()
	if want := []netip.Addr{a1, a2, a1, a2, a1, a2}; !slices.Equal(addrs, want) {
		t.Fatalf("sent %v, want %v", addrs, want)
	}
	for k := 1; k < len(at); k++ {
		if gap := at[k].Sub(at[k-1]); gap < spec.GARPInterval {
			t.Fatalf("frames %d and %d %v apart, under vrrp_garp_interval %v", k-1, k, gap, spec.GARPInterval)
		}
	}

	// A long interval: the round is under way when stop comes.
	spec.GARPInterval = time.Hour
	f2 := &fakeSender{}
	ann2, err := newAnnouncerWith(spec, newInstanceMetrics(), log, func(string) (sender, error) { return f2, nil }, &pacers{next: map[string]time.Time{}})
	if err != nil {
		t.Fatal(err)
	}
	defer ann2.close()
	ann2.start()
	waitUntil(t, "the first frame", func() bool { addrs, _ := f2.sent(); return len(addrs) == 1 })
	ann2.stop()
	ann2.close() // returns only once the goroutine is done: the stop cut the wait short
	if addrs, _ := f2.sent(); len(addrs) != 1 {
		t.Fatalf("frames after stop: %v", addrs)
	}
}
