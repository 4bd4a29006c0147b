package amqpha

import (
	"errors"
	"math"
	"reflect"
	"time"
)

// RetryPolicy makes a consumer retry a message whose handler returned
// [Requeue] after a growing delay, instead of at once, and dead-letter it
// after MaxAttempts handler calls. The zero value (MaxAttempts 0) is off:
// Requeue returns the message to its queue at once, as basic.nack does.
//
// # How it works
//
// The consumer holds the failed delivery, unacknowledged, for the delay,
// then returns it to its queue (basic.nack with requeue), and the broker
// delivers it again. The delay runs on a timer, not on a handler: the
// consumer goes on with the messages after it, so a retried message is
// overtaken by them (ordering is kept only for messages that succeed). A
// held message counts against [ConsumerConfig.Prefetch], so the prefetch
// bounds how many wait at once; when every prefetched message waits,
// deliveries pause until the first delay ends.
//
// Attempts are the broker's count: a quorum queue tells in the
// x-delivery-count header how often a message was returned before (by a
// requeue, or by a consumer's channel that closed holding it), so the
// count holds across consumers, processes and failovers. The handler call
// that fails as attempt MaxAttempts (x-delivery-count MaxAttempts-1 or
// more) rejects the message without requeue, and the broker dead-letters
// it to the queue's x-dead-letter-exchange (or drops it, without one).
// A first delivery is attempt 1 whatever x-delivery-count it carries (a
// message republished from a dead-letter queue keeps the count of its
// former life; the quorum queue replaces it when it redelivers).
// Classic queues do not count: there, only the redelivered flag is known,
// and a redelivered message that fails is dead-lettered (at most two
// attempts), unless it carries an x-delivery-count of 1 or more of its
// publisher's, which is taken for the count. Use a quorum queue, and give
// it a delivery-limit (the queue argument x-delivery-limit, or a policy)
// of MaxAttempts or more, as a backstop the broker enforces by itself.
//
// # Failover and Close
//
// If the consumer's channel or connection is lost during a delay, the
// broker returns the message to the queue at once and delivers it again
// (counting the return): the delay is cut short, never lost. Consumer.Close
// cuts it short too, returning the message at once.
//
// The delay must end before RabbitMQ's consumer_timeout (30 minutes by
// default) would close the channel for a delivery left unacknowledged: it
// is at most 10 minutes.
type RetryPolicy struct {
	// MaxAttempts is how many times a message is handed to the handler
	// in all, the first delivery included, before it is dead-lettered; 0
	// turns retries off (then Delay and MaxDelay must be 0 too), 1
	// dead-letters on the first Requeue.
	MaxAttempts int
	// Delay is the wait before the second attempt; each later one waits
	// twice the one before, up to MaxDelay. 0 means 1 s.
	Delay time.Duration
	// MaxDelay caps the wait. 0 means 1 min; at most 10 min.
	MaxDelay time.Duration
}

const (
	defaultRetryDelay    = time.Second
	defaultRetryMaxDelay = time.Minute
	maxRetryDelay        = 10 * time.Minute
	maxRetryAttempts     = 1 << 20
)

// check refuses what cannot work, naming the field.
func (r RetryPolicy) check() error {
	k, f := ErrInvalidArgument, "ConsumerConfig.Retry."
	switch {
	case r.MaxAttempts < 0 || r.MaxAttempts > maxRetryAttempts:
		return invalid(k, f+"MaxAttempts", "%d, want 0 (off) to %d", r.MaxAttempts, maxRetryAttempts)
	case r.MaxAttempts == 0 && (r.Delay != 0 || r.MaxDelay != 0):
		return invalid(k, f+"MaxAttempts", "0 (retries off) with a Delay or MaxDelay set, which would be ignored: Requeue would return the message at once; set MaxAttempts")
	case r.Delay < 0 || r.Delay > maxRetryDelay:
		return invalid(k, f+"Delay", "%v, want 0 (the default, %v) to %v (RabbitMQ's consumer_timeout closes a channel that holds a delivery for 30 min)", r.Delay, defaultRetryDelay, maxRetryDelay)
	case r.MaxDelay < 0 || r.MaxDelay > maxRetryDelay:
		return invalid(k, f+"MaxDelay", "%v, want 0 (the default, %v) to %v (RabbitMQ's consumer_timeout closes a channel that holds a delivery for 30 min)", r.MaxDelay, defaultRetryMaxDelay, maxRetryDelay)
	case r.MaxDelay != 0 && r.MaxDelay < r.withDefaults().Delay:
		return invalid(k, f+"MaxDelay", "%v is less than Delay (%v)", r.MaxDelay, r.withDefaults().Delay)
	}
	return nil
}

func (r RetryPolicy) withDefaults() RetryPolicy {
	orDefault(&r.Delay, defaultRetryDelay)
	orDefault(&r.MaxDelay, max(defaultRetryMaxDelay, r.Delay))
	return r
}

// delay is the wait after failed attempt n (1 for the first delivery):
// Delay doubled n-1 times, at most MaxDelay.
func (r RetryPolicy) delay(n int) time.Duration {
	d := r.Delay
	for i := 1; i < n && d < r.MaxDelay; i++ {
		if d > math.MaxInt64/2 {
			return r.MaxDelay
		}
		d *= 2
	}
	return min(d, r.MaxDelay)
}

// attempt tells which handler call this delivery is (1 for the first),
// and whether the broker counted it (x-delivery-count, quorum queues).
// A quorum queue counts only what it redelivers, from 1 (it sets the
// redelivered flag exactly when its count is above 0): a header on a first
// delivery, or a count of 0 on a redelivered one, is the publisher's (a
// message republished from a dead-letter queue keeps the count of its
// former life) and counts nothing. Trusted, it would dead-letter such a
// message at its first failure, or, static on a classic queue, retry it
// forever.
func (d *Delivery) attempt() (n int, counted bool) {
	if !d.Redelivered {
		return 1, false
	}
	c, ok := deliveryCount(d.Headers["x-delivery-count"])
	if !ok || c == 0 {
		return 2, false
	}
	if c >= maxRetryAttempts {
		return maxRetryAttempts, true
	}
	return int(c) + 1, true
}

// deliveryCount reads an x-delivery-count header value: any integer type
// amqp091-go decodes; a negative or non-integer value does not count.
func deliveryCount(v any) (int64, bool) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), rv.Int() >= 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(min(rv.Uint(), math.MaxInt64)), true
	}
	return 0, false
}

// retryLater carries out a handler's Requeue under the consumer's
// RetryPolicy: the delivery is held for the delay and then returned to the
// queue, or rejected to the dead-letter exchange after the last attempt.
func (k *Consumer) retryLater(d *Delivery) error {
	r := k.cfg.Retry
	n, counted := d.attempt()
	if n >= r.MaxAttempts || (!counted && d.Redelivered) {
		k.log.Debug("message failed its last attempt; dead-lettering it", "attempt", n, "counted", counted, "message_id", d.MessageId)
		return d.Reject(false)
	}
	wait := r.delay(n)
	k.bg.Go(func() { k.holdThenRequeue(d, wait) })
	return nil
}

// holdThenRequeue returns d to its queue after wait, or at once when the
// consumer closes. A delivery whose channel is lost meanwhile was returned
// by the broker already: its Nack sends nothing (ErrStaleDelivery) and
// only counts it settled.
func (k *Consumer) holdThenRequeue(d *Delivery, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-d.s.ctx.Done(): // lost, or Close gave up on the handlers
	case <-k.stopTaking:
	}
	if err := d.Nack(true); err != nil && !errors.Is(err, ErrStaleDelivery) && !errors.Is(err, ErrSettled) {
		k.log.Warn("returning a message to retry it failed", "err", err)
	}
}
