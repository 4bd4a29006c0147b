package health

import (
	"time"

	"github.com/amqpha/amqpha/vipd/lvs"
)

// tracker is the state of one check of a real server, as keepalived keeps
// it: it starts [lvs.Up] ([lvs.Down] with Alpha); a failure while up is
// tried again Retry times, DelayBeforeRetry apart, before the check counts
// as failed and the real server goes [lvs.Down]; one success brings it
// back. While down a failing check is not retried: the next try comes
// after DelayLoop. The first result is taken at once: a real server whose
// first check fails goes down without retries, as in keepalived.
//
// It is a plain value used by one goroutine: it knows nothing of time
// except the delays it hands back.
type tracker struct {
	retry            int
	delayLoop        time.Duration
	delayBeforeRetry time.Duration

	state lvs.State
	// retries is how many times the current failure was tried again.
	retries int
	// ran: a result was observed.
	ran bool
}

func newTracker(c *Check) tracker {
	t := tracker{
		retry:            max(c.Retry, 0),
		delayLoop:        timeoutOr(c.DelayLoop, DefaultDelayLoop),
		delayBeforeRetry: max(c.DelayBeforeRetry, 0),
	}
	if c.Alpha {
		t.state = lvs.Down
	}
	return t
}

// observe takes the result of one check and returns how long to wait
// before the next one.
func (t *tracker) observe(r Result) time.Duration {
	first := !t.ran
	t.ran = true
	if r.OK {
		t.retries = 0
		t.state = lvs.Up
		if r.Drain {
			t.state = lvs.Drain
		}
		return t.delayLoop
	}
	if t.state == lvs.Down {
		return t.delayLoop
	}
	if t.retries < t.retry && !first {
		t.retries++
		return t.delayBeforeRetry
	}
	t.retries = 0
	t.state = lvs.Down
	return t.delayLoop
}

// worstDetection is the longest a tracker that was up takes to go down
// after its real server failed, if every attempt takes attempt: the rest
// of the current delay_loop, then retry+1 attempts delay_before_retry
// apart.
func (t *tracker) worstDetection(attempt time.Duration) time.Duration {
	n := time.Duration(t.retry)
	return t.delayLoop + (n+1)*attempt + n*t.delayBeforeRetry
}
