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

func TestEventQueueWithoutCallback(t *testing.T) {
	q := newEventQueue(nil, 4)
	q.post(Event{Kind: EventReady})
	q.close()
}
