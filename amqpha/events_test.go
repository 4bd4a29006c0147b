package amqpha

import (
	"testing"
	"time"
)

func TestEventQueueDeliversInOrder(t *testing.T) {
	got := make(chan EventKind, 100)
	q := newEventQueue(func(e Event) { got <- e.Kind }, 100)
	for i := range 50 {
		q.post(Event{Kind: EventKind(i%8 + 1)})
	}
	q.close()
	for i := range 50 {
		if k := <-got; k != EventKind(i%8+1) {
			t.Fatalf("event %d is %v", i, k)
		}
	}
}

func TestEventQueueNeverBlocksAndCountsDrops(t *testing.T) {
	release := make(chan struct{})
	q := newEventQueue(func(Event) { <-release }, 4)
	done := make(chan struct{})
	go func() {
		for range 100 {
			q.post(Event{Kind: EventReady})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("post blocked behind a slow callback")
	}
	if d := q.dropped.Load(); d < 100-4-1 {
		t.Fatalf("dropped %d of 100 with room for 4 (+1 in the callback)", d)
	}
	close(release)
	q.close()
	q.post(Event{Kind: EventClosed}) // after close: dropped, no panic
}

// Without a callback, events are neither kept nor counted as dropped (no
// one asked for them), and close does not wait for a goroutine that was
// never started.
func TestEventQueueWithoutCallback(t *testing.T) {
	q := newEventQueue(nil, 4)
	for range 10 {
		q.post(Event{Kind: EventReady})
	}
	q.mu.Lock()
	kept := len(q.q)
	q.mu.Unlock()
	if kept != 0 {
		t.Fatalf("%d events kept with no callback to take them", kept)
	}
	if d := q.dropped.Load(); d != 0 {
		t.Fatalf("%d events counted as dropped with no callback", d)
	}
	closed := make(chan struct{})
	go func() {
		q.close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("close blocked with no callback goroutine")
	}
}
