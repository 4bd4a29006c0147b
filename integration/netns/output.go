package netns

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// maxOutput bounds what a process's output keeps; beyond it the oldest half
// is dropped.
const maxOutput = 1 << 20

// output collects a process's standard output and error. Writers and waiters
// may run on any goroutine; every write wakes the waiters.
type output struct {
	mu      sync.Mutex
	buf     []byte
	dropped int64
	changed chan struct{} // closed and replaced on every write
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, b...)
	if len(o.buf) > maxOutput {
		cut := len(o.buf) - maxOutput/2
		o.dropped += int64(cut)
		o.buf = append(o.buf[:0], o.buf[cut:]...)
	}
	close(o.changed)
	o.changed = make(chan struct{})
	return len(b), nil
}

// snapshot returns the text so far and a channel closed by the next write.
func (o *output) snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := string(o.buf)
	if o.dropped > 0 {
		s = fmt.Sprintf("[%d bytes dropped]\n", o.dropped) + s
	}
	return s, o.changed
}

func (o *output) String() string {
	s, _ := o.snapshot()
	return s
}

// waitFor blocks until cond holds for the output so far, exited is closed
// (after which the output is complete and cond gets one last look), or
// timeout passes. It returns the output cond held for.
func (o *output) waitFor(exited <-chan struct{}, timeout time.Duration, cond func(string) bool) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s, changed := o.snapshot()
		if cond(s) {
			return s, nil
		}
		select {
		case <-changed:
		case <-exited:
			if s = o.String(); cond(s) {
				return s, nil
			}
			return s, ErrExited
		case <-timer.C:
			return s, ErrTimeout
		}
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[%d lines before]\n", len(lines)-n) + strings.Join(lines[len(lines)-n:], "\n")
}
