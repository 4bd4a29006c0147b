package amqpha

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestRetryPolicyCheck(t *testing.T) {
	for _, tc := range []struct {
		r     RetryPolicy
		field string // "" when valid
	}{
		{RetryPolicy{}, ""},
		{RetryPolicy{MaxAttempts: 1}, ""},
		{RetryPolicy{MaxAttempts: 5, Delay: time.Millisecond, MaxDelay: time.Millisecond}, ""},
		{RetryPolicy{MaxAttempts: maxRetryAttempts, Delay: maxRetryDelay, MaxDelay: maxRetryDelay}, ""},
		{RetryPolicy{MaxAttempts: 3, Delay: 2 * time.Minute}, ""}, // MaxDelay's default grows with it
		{RetryPolicy{MaxAttempts: -1}, "MaxAttempts"},
		{RetryPolicy{MaxAttempts: maxRetryAttempts + 1}, "MaxAttempts"},
		{RetryPolicy{MaxAttempts: math.MaxInt}, "MaxAttempts"},
		{RetryPolicy{MaxAttempts: 3, Delay: -time.Second}, "Delay"},
		{RetryPolicy{MaxAttempts: 3, Delay: maxRetryDelay + 1}, "Delay"},
		{RetryPolicy{MaxAttempts: 3, MaxDelay: -1}, "MaxDelay"},
		{RetryPolicy{MaxAttempts: 3, MaxDelay: time.Hour}, "MaxDelay"},
		{RetryPolicy{MaxAttempts: 3, Delay: 2 * time.Second, MaxDelay: time.Second}, "MaxDelay"},
		{RetryPolicy{MaxAttempts: 3, MaxDelay: time.Millisecond}, "MaxDelay"}, // below the default Delay
		// A delay without MaxAttempts would be ignored: Requeue at once,
		// the hot loop the caller meant to avoid.
		{RetryPolicy{Delay: time.Second}, "MaxAttempts"},
		{RetryPolicy{MaxDelay: time.Minute}, "MaxAttempts"},
	} {
		err := tc.r.check()
		if tc.field == "" {
			if err != nil {
				t.Errorf("%+v: %v, want nil", tc.r, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "ConsumerConfig.Retry."+tc.field) {
			t.Errorf("%+v: %v, want ErrInvalidArgument naming %s", tc.r, err, tc.field)
		}
		// Consume refuses it the same way, before any network.
		cfg := ConsumerConfig{Retry: tc.r}
		if err := checkConsumer("q", &cfg, defaultFrameMax); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("checkConsumer with %+v: %v, want ErrInvalidArgument", tc.r, err)
		}
	}
}

func TestRetryDelayDoubles(t *testing.T) {
	r := RetryPolicy{MaxAttempts: 10, Delay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := r.delay(i + 1); got != w*time.Millisecond {
			t.Errorf("delay(%d) = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	if got := r.delay(maxRetryAttempts); got != time.Second {
		t.Errorf("delay(%d) = %v, want the cap", maxRetryAttempts, got)
	}
	d := RetryPolicy{MaxAttempts: 3}.withDefaults()
	if d.Delay != defaultRetryDelay || d.MaxDelay != defaultRetryMaxDelay {
		t.Errorf("defaults: %+v", d)
	}
}

func FuzzRetryDelay(f *testing.F) {
	f.Add(int64(time.Second), int64(time.Minute), 3)
	f.Add(int64(1), int64(maxRetryDelay), 1<<20)
	f.Fuzz(func(t *testing.T, delay, maxDelay int64, n int) {
		r := RetryPolicy{MaxAttempts: 1, Delay: time.Duration(delay), MaxDelay: time.Duration(maxDelay)}
		if r.check() != nil || n < 1 || n > maxRetryAttempts {
			return
		}
		r = r.withDefaults()
		got, next := r.delay(n), r.delay(n+1)
		if got < r.Delay || got > r.MaxDelay || next < got {
			t.Fatalf("%+v: delay(%d) = %v, delay(%d) = %v", r, n, got, n+1, next)
		}
	})
}

func TestDeliveryAttempt(t *testing.T) {
	for _, tc := range []struct {
		h           any
		redelivered bool
		n           int
		counted     bool
	}{
		{nil, false, 1, false},
		{nil, true, 2, false},
		{int64(0), false, 1, false},
		// A first delivery is attempt 1 whatever its header says: a
		// quorum queue counts only redelivered messages; a message
		// republished from a dead-letter queue keeps its old count,
		// and was dead-lettered (dropped, without a DLX) at its first
		// failure.
		{int64(5), false, 1, false},
		// A redelivered message the broker counted has a count of at
		// least 1; 0 is a publisher's header, static on a classic
		// queue: taken as the count, it made every retry attempt 1,
		// retried forever.
		{int64(0), true, 2, false},
		{int64(1), true, 2, true},
		{int64(2), true, 3, true},
		{int32(4), true, 5, true},
		{int16(4), true, 5, true},
		{int8(4), true, 5, true},
		{uint8(4), true, 5, true},
		{uint16(4), true, 5, true},
		{uint32(4), true, 5, true},
		{int(4), true, 5, true},
		{uint64(math.MaxUint64), true, maxRetryAttempts, true},
		{int64(math.MaxInt64), true, maxRetryAttempts, true},
		{int64(-1), true, 2, false}, // not a count
		{"2", true, 2, false},
		{1.5, false, 1, false},
	} {
		d := &Delivery{Delivery: amqp.Delivery{Redelivered: tc.redelivered}}
		if tc.h != nil {
			d.Headers = amqp.Table{"x-delivery-count": tc.h}
		}
		n, counted := d.attempt()
		if n != tc.n || counted != tc.counted {
			t.Errorf("x-delivery-count %#v, redelivered %v: attempt %d counted %v, want %d %v", tc.h, tc.redelivered, n, counted, tc.n, tc.counted)
		}
	}
}

func FuzzDeliveryAttempt(f *testing.F) {
	f.Add(int64(2), uint8(0), true)
	f.Add(int64(-1), uint8(3), false)
	f.Fuzz(func(t *testing.T, v int64, kind uint8, redelivered bool) {
		var h any
		switch kind % 6 {
		case 0:
			h = v
		case 1:
			h = int32(v)
		case 2:
			h = uint64(v)
		case 3:
			h = int8(v)
		case 4:
			h = float64(v)
		case 5:
			h = fmt.Sprint(v)
		}
		d := &Delivery{Delivery: amqp.Delivery{Redelivered: redelivered, Headers: amqp.Table{"x-delivery-count": h}}}
		n, counted := d.attempt()
		if n < 1 || n > maxRetryAttempts {
			t.Fatalf("x-delivery-count %#v: attempt %d", h, n)
		}
		if !counted && n != 1 && !redelivered {
			t.Fatalf("x-delivery-count %#v, not redelivered, not counted: attempt %d, want 1", h, n)
		}
	})
}
