package netns

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ServeName answers every TCP connection to port, on any of h's addresses,
// IPv4 or IPv6, with h's name and a newline, then closes it. Put it on each
// host that may hold a VIP and point a [Probe] at the VIP to see who holds
// it. It fails t if it cannot listen; cleanup stops it.
func (h *Host) ServeName(t testing.TB, port uint16) {
	t.Helper()
	ln, err := h.ListenTCP(netip.AddrPortFrom(netip.IPv6Unspecified(), port))
	if err != nil {
		t.Fatalf("netns: ServeName on %s: %v", h.name, err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed by cleanup
			}
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, h.name+"\n")
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
}

// ProbeConfig tunes a [Probe]. The zero value works.
type ProbeConfig struct {
	// Interval between the starts of two probes; 10 ms if zero. Probes
	// overlap: a new one starts every Interval even while earlier ones
	// still wait, so the resolution is Interval, not Timeout.
	Interval time.Duration
	// Timeout of one probe, connect and answer; 100 ms if zero.
	Timeout time.Duration
}

// Answer is the outcome of one probe.
type Answer struct {
	Sent time.Time // when the probe started dialling
	At   time.Time // when the answer, or the error, came
	From string    // the name the answering host sent; "" on error
	Err  error     // why no answer came
}

// maxAnswers bounds what a probe keeps: ten minutes at the default rate.
const maxAnswers = 60_000

// Probe asks a target address over and over who answers there, from inside
// a client host: a fresh TCP connection per probe, reading the name a
// [Host.ServeName] sends. A test measures a takeover with it: note the time
// T0, kill the master, then [Probe.WaitAnswer] for the first answer from the
// backup at or after T0; its At minus T0 is the takeover time as a client
// sees it, to within [ProbeConfig.Interval] plus one round trip. Start it with
// [Host.StartProbe]. Its methods are safe for concurrent use.
type Probe struct {
	host   *Host
	target netip.AddrPort
	cfg    ProbeConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup // the loop and the probes in flight

	mu      sync.Mutex
	answers []Answer
	dropped int
	changed chan struct{} // closed and replaced on every answer
}

// StartProbe starts probing target from inside h and returns at once; the
// first probe starts immediately. Cleanup stops it (see [Probe.Stop]).
func (h *Host) StartProbe(t testing.TB, target netip.AddrPort, cfg ProbeConfig) *Probe {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 100 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Probe{host: h, target: target, cfg: cfg, cancel: cancel, changed: make(chan struct{})}
	p.wg.Add(1)
	go p.loop(ctx)
	t.Cleanup(p.Stop)
	return p
}

func (p *Probe) loop(ctx context.Context) {
	defer p.wg.Done()
	// Enough slots for every probe that can be in flight at once.
	slots := make(chan struct{}, int(p.cfg.Timeout/p.cfg.Interval)+2)
	ticker := time.NewTicker(p.cfg.Interval)
	defer ticker.Stop()
	for {
		select {
		case slots <- struct{}{}:
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer func() { <-slots }()
				if a, ok := p.once(ctx); ok {
					p.record(a)
				}
			}()
		default: // every slot busy: skip this tick
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// once runs one probe; ok is false if the probe was cut short by Stop.
func (p *Probe) once(ctx context.Context) (a Answer, ok bool) {
	a.Sent = time.Now()
	ctx, cancel := context.WithDeadline(ctx, a.Sent.Add(p.cfg.Timeout))
	defer cancel()
	conn, err := p.host.DialTCP(ctx, p.target)
	if err == nil {
		_ = conn.SetDeadline(a.Sent.Add(p.cfg.Timeout))
		var line string
		line, err = bufio.NewReaderSize(conn, 64).ReadString('\n')
		_ = conn.Close()
		a.From = strings.TrimSpace(line)
		if a.From == "" && err == nil {
			err = errors.New("empty answer")
		}
	}
	a.At = time.Now()
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return a, false // stopped
		}
		a.From, a.Err = "", err
	}
	return a, true
}

func (p *Probe) record(a Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.answers) >= maxAnswers {
		p.dropped++
		return
	}
	p.answers = append(p.answers, a)
	close(p.changed)
	p.changed = make(chan struct{})
}

// Answers returns the answers so far, in the order they came.
func (p *Probe) Answers() []Answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Answer(nil), p.answers...)
}

// WaitAnswer blocks until an answer from the host named from comes that
// arrived at or after since (the zero time: any), at most timeout, and
// returns it. The error wraps [ErrTimeout] and summarises what answered
// instead.
func (p *Probe) WaitAnswer(from string, since time.Time, timeout time.Duration) (Answer, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	next := 0
	for {
		p.mu.Lock()
		for ; next < len(p.answers); next++ {
			if a := p.answers[next]; a.Err == nil && a.From == from && !a.At.Before(since) {
				p.mu.Unlock()
				return a, nil
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			return Answer{}, fmt.Errorf("%w: no answer from %q at %v within %v (%s)",
				ErrTimeout, from, p.target, timeout, Summarize(p.Answers(), since))
		}
	}
}

// Stop stops probing and waits for the probes in flight. It is safe to call
// more than once.
func (p *Probe) Stop() {
	p.cancel()
	p.wg.Wait()
}

// Summarize counts answers at or after since by who answered, failures
// under "error", for logs, e.g. "backup=12 error=340 master=80".
func Summarize(answers []Answer, since time.Time) string {
	counts := map[string]int{}
	var lastErr error
	for _, a := range answers {
		if a.At.Before(since) {
			continue
		}
		if a.Err != nil {
			counts["error"]++
			lastErr = a.Err
			continue
		}
		counts[a.From]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, counts[k])
	}
	if b.Len() == 0 {
		b.WriteString("no answers")
	}
	if lastErr != nil {
		var ne net.Error
		kind := "last error"
		if errors.As(lastErr, &ne) && ne.Timeout() {
			kind = "last error (timeout)"
		}
		fmt.Fprintf(&b, "; %s: %v", kind, lastErr)
	}
	return b.String()
}
