package netns

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestOutputWait(t *testing.T) {
	o := newOutput()
	exited := make(chan struct{})
	got := make(chan error, 1)
	go func() {
		_, err := o.waitFor(exited, 10*time.Second, func(s string) bool { return strings.Contains(s, "ready") })
		got <- err
	}()
	// Split across writes: the condition sees the whole text.
	fmt.Fprint(o, "starting… rea")
	fmt.Fprint(o, "dy\n")
	if err := <-got; err != nil {
		t.Fatalf("waitFor = %v", err)
	}

	if _, err := o.waitFor(exited, time.Millisecond, func(string) bool { return false }); !errors.Is(err, ErrTimeout) {
		t.Errorf("waitFor without a match = %v; want ErrTimeout", err)
	}
	close(exited)
	if _, err := o.waitFor(exited, 10*time.Second, func(string) bool { return false }); !errors.Is(err, ErrExited) {
		t.Errorf("waitFor after exit = %v; want ErrExited", err)
	}
}

func TestOutputBounded(t *testing.T) {
	o := newOutput()
	line := strings.Repeat("x", 1023) + "\n"
	for range 3 * maxOutput / len(line) {
		fmt.Fprint(o, line)
	}
	fmt.Fprint(o, "last\n")
	s := o.String()
	if len(s) > maxOutput+100 {
		t.Errorf("output holds %d bytes; want at most about %d", len(s), maxOutput)
	}
	if !strings.HasPrefix(s, "[") || !strings.Contains(s, "bytes dropped]") || !strings.HasSuffix(s, "last\n") {
		t.Errorf("output does not mark the drop or lost its end: %q … %q", s[:40], s[len(s)-10:])
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"", 3, ""},
		{"a\nb\n", 3, "a\nb"},
		{"a\nb\nc\nd\n", 2, "[2 lines before]\nc\nd"},
	}
	for _, tc := range tests {
		if got := tail(tc.in, tc.n); got != tc.want {
			t.Errorf("tail(%q, %d) = %q; want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
