package amqpha

import (
	"context"
	"sync"
)

// userCalls runs calls into user code (Metrics, the logger's handler) on
// one goroutine of its own, in order, so that they never run on the
// goroutines that receive confirms and returns: amqp091-go drops a
// notification its receiver does not take within 5 s, and a slow metrics
// backend or log handler must not be able to cause that. post never
// blocks; the queue grows while user code is slow.
type userCalls struct {
	mu      sync.Mutex
	queue   []func()
	running bool   // a drain goroutine is on the queue
	posted  uint64 // calls posted so far
	ran     uint64 // calls run so far
	ranMore *sync.Cond
	wg      sync.WaitGroup
}

func newUserCalls() *userCalls {
	u := &userCalls{}
	u.ranMore = sync.NewCond(&u.mu)
	return u
}

// post queues f. The goroutine that runs the queue starts when there is
// work and ends when it is empty, so an idle client keeps none.
func (u *userCalls) post(f func()) {
	u.mu.Lock()
	u.queue = append(u.queue, f)
	u.posted++
	start := !u.running
	u.running = true
	u.mu.Unlock()
	if start {
		u.wg.Go(u.drain)
	}
}

func (u *userCalls) drain() {
	u.mu.Lock()
	for len(u.queue) > 0 {
		q := u.queue
		u.queue = nil
		u.mu.Unlock()
		for i, f := range q {
			f()
			q[i] = nil
		}
		u.mu.Lock()
		u.ran += uint64(len(q))
		u.ranMore.Broadcast()
	}
	u.running = false
	u.mu.Unlock()
}

// flush waits until every call posted before it has run, or ctx ends;
// calls posted meanwhile do not make it wait longer.
func (u *userCalls) flush(ctx context.Context) error {
	u.mu.Lock()
	target := u.posted
	u.mu.Unlock()
	return waitFor(ctx, func() {
		u.mu.Lock()
		for u.ran < target {
			u.ranMore.Wait()
		}
		u.mu.Unlock()
	})
}
