package health

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// DefaultConnectTimeout bounds a TCP, AMQP or HTTP check whose timeout is
// not set: keepalived's connect_timeout default.
const DefaultConnectTimeout = 5 * time.Second

// Checker checks a real server once.
//
// A [Monitor] calls Check from the goroutine it runs for that check, never
// concurrently with itself, and waits for it; the VRRP loop never calls it.
// Check must return soon after ctx ends and bound its own run (the
// checkers here do so with their connect_timeout or misc_timeout). It
// reports failure in the [Result], never by panicking.
type Checker interface {
	Check(ctx context.Context) Result
}

// CheckerFunc adapts a function to [Checker].
type CheckerFunc func(ctx context.Context) Result

// Check calls f(ctx).
func (f CheckerFunc) Check(ctx context.Context) Result { return f(ctx) }

// Result is the outcome of one check. The zero value is a failure without
// a reason.
type Result struct {
	// OK: the real server answered as it should.
	OK bool
	// Drain (with OK): the real server answers but asks to be taken out of
	// rotation (maintenance): it keeps its place with weight 0.
	Drain bool
	// Weight, when WeightSet (with OK), replaces the real server's weight
	// from now on: MISC_CHECK with misc_dynamic exiting with 2..255 sets
	// status-2. Results without WeightSet leave the weight as it was.
	Weight    int
	WeightSet bool
	// Err says why the check failed; nil when OK. It never holds a
	// password.
	Err error
	// Duration is how long the check took.
	Duration time.Duration
}

// pass returns a successful Result for a check that began at start.
func pass(start time.Time) Result {
	return Result{OK: true, Duration: time.Since(start)}
}

// fail returns a failed Result for a check that began at start.
func fail(start time.Time, err error) Result {
	return Result{Err: err, Duration: time.Since(start)}
}

// timeoutOr returns d, or def when d is not positive.
func timeoutOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// timedOut reports whether a check whose context is ctx, bounded by
// deadline, failed because the deadline passed. Socket deadlines equal to
// the context's may fire before the context's own timer, so the clock is
// asked too; a cancelled ctx is not a timeout.
func timedOut(ctx context.Context, deadline time.Time) bool {
	if errors.Is(ctx.Err(), context.Canceled) {
		return false
	}
	return ctx.Err() != nil || !time.Now().Before(deadline)
}

// dialer returns a dialer that binds to bindTo when it is set (bindto).
func dialer(bindTo netip.Addr) *net.Dialer {
	d := &net.Dialer{}
	if bindTo.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: bindTo.AsSlice(), Zone: bindTo.Zone()}
	}
	return d
}

// unzoned is a's address and port without an IPv6 zone, for URLs; the
// checks dial a itself.
func unzoned(a netip.AddrPort) string {
	return netip.AddrPortFrom(a.Addr().WithZone(""), a.Port()).String()
}

// dialTo returns a DialContext that dials addr whatever address it is
// asked for.
func dialTo(d *net.Dialer, addr netip.AddrPort) func(ctx context.Context, network, _ string) (net.Conn, error) {
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr.String())
	}
}
