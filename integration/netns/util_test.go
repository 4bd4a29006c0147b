package netns

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

// fakeT records the failures of a helper that is expected to fail, so that
// they do not fail the real test. Call the helper on a goroutine of its own:
// Fatalf and Skipf end that goroutine, as testing does.
type fakeT struct {
	testing.TB // for TempDir, Logf and the rest

	mu       sync.Mutex
	failed   bool
	msg      string
	cleanups []func()
}

func (f *fakeT) Helper() {}

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.msg += fmt.Sprintf(format, args...) + "\n"
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

// Logf keeps what the helper logs with its failures.
func (f *fakeT) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msg += fmt.Sprintf(format, args...) + "\n"
}

func (f *fakeT) Skipf(format string, args ...any) {
	f.TB.Skipf(format, args...) // only from the test goroutine; never reached here
}

func (f *fakeT) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *fakeT) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// runCleanups runs the registered cleanups, last first.
func (f *fakeT) runCleanups() {
	f.mu.Lock()
	fns := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}
