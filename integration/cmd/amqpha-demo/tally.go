package main

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Sides of a run: the gaps of a fault are kept per side, by these indexes.
const (
	sideAmqpha = iota
	sidePlain
	numSides
)

// fault is one injected fault and what each side saw after it.
type fault struct {
	kind, node, conn string
	at               time.Time
	// hit tells whether the side's connection of that role was on the node
	// when the fault struck (always true for amqpha: the node is chosen by
	// its connection).
	hit [numSides]bool
	// From the fault to the first confirm of a message sent after it, and to
	// the first such message being consumed, in ns; 0 while not seen.
	confirmGap [numSides]atomic.Int64
	consumeGap [numSides]atomic.Int64
}

// side is what one client published, had confirmed and consumed. Its
// producer, consumer and the printer share it.
type side struct {
	idx       int // sideAmqpha or sidePlain
	published atomic.Int64
	confirmed atomic.Int64
	consumed  atomic.Int64
	failed    atomic.Int64

	mu       sync.Mutex
	ids      map[string]bool // confirmed
	handled  map[string]int
	firstErr error
}

func newSide(idx int) *side {
	return &side{idx: idx, ids: map[string]bool{}, handled: map[string]int{}}
}

// confirm records a confirmed message.
func (s *side) confirm(id string) {
	s.confirmed.Add(1)
	s.mu.Lock()
	s.ids[id] = true
	s.mu.Unlock()
}

// fail records a publish that returned err.
func (s *side) fail(err error) {
	s.failed.Add(1)
	s.mu.Lock()
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.mu.Unlock()
}

// handle records a consumed message.
func (s *side) handle(id string) {
	s.mu.Lock()
	s.handled[id]++
	first := s.handled[id] == 1
	s.mu.Unlock()
	if first {
		s.consumed.Add(1)
	}
}

// missing counts the confirmed messages not consumed yet.
func (s *side) missing() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id := range s.ids {
		if s.handled[id] == 0 {
			n++
		}
	}
	return n
}

// duplicates counts deliveries beyond the first of each message.
func (s *side) duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	dups := 0
	for _, n := range s.handled {
		dups += n - 1
	}
	return dups
}

// demo holds the sides and the faults.
type demo struct {
	began atomic.Int64 // unix ns when publishing began; 0 before
	sides []*side      // amqpha, then the plain client in side-by-side mode

	mu     sync.Mutex
	faults []*fault
}

// since is the time since publishing began, for output lines; 0 before.
func (d *demo) since() string {
	began := d.began.Load()
	if began == 0 {
		return fmt.Sprintf("t=%5.1fs", 0.0)
	}
	return fmt.Sprintf("t=%5.1fs", time.Since(time.Unix(0, began)).Seconds())
}

func (d *demo) addFault(f *fault) {
	d.mu.Lock()
	d.faults = append(d.faults, f)
	d.mu.Unlock()
}

func (d *demo) faultList() []*fault {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*fault(nil), d.faults...)
}

// noteAfterFaults records a message of s sent at sent (unix ns) as
// confirmed or consumed for every fault it is the first of its kind after.
func (d *demo) noteAfterFaults(s *side, sent int64, consumed bool) {
	now := time.Now().UnixNano()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, f := range d.faults {
		if sent <= f.at.UnixNano() {
			continue
		}
		gap := &f.confirmGap[s.idx]
		if consumed {
			gap = &f.consumeGap[s.idx]
		}
		gap.CompareAndSwap(0, now-f.at.UnixNano())
	}
}

func gap(ns int64) string {
	if ns == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f s", time.Duration(ns).Seconds())
}

// report prints the default mode's report on amqpha's side.
func report(out io.Writer, d *demo, lost int, interrupted bool) {
	s := d.sides[sideAmqpha]
	faults := d.faultList()
	s.mu.Lock()
	defer s.mu.Unlock()
	dups := 0
	for _, n := range s.handled {
		dups += n - 1
	}
	fmt.Fprintln(out)
	if interrupted {
		fmt.Fprintln(out, "Report (interrupted: messages still in flight are not counted as lost)")
		lost = 0
	} else {
		fmt.Fprintln(out, "Report")
	}
	fmt.Fprintf(out, "  published           %d\n", s.published.Load())
	fmt.Fprintf(out, "  confirmed           %d\n", len(s.ids))
	fmt.Fprintf(out, "  consumed (distinct) %d\n", len(s.handled))
	fmt.Fprintf(out, "  lost: %d (confirmed, never consumed)\n", lost)
	fmt.Fprintf(out, "  duplicates          %d (redelivered after a failover; de-duplicate by message-id)\n", dups)
	fmt.Fprintf(out, "  publish errors      %d", s.failed.Load())
	if s.firstErr != nil {
		fmt.Fprintf(out, " (first: %v)", s.firstErr)
	}
	fmt.Fprintln(out)
	if len(faults) > 0 {
		fmt.Fprintln(out, "  faults (gap = from the fault to the first message sent after it being confirmed / consumed):")
		for i, f := range faults {
			fmt.Fprintf(out, "    %d. %-4s %s (%s connection)  confirm gap %s  consume gap %s\n", i+1, f.kind, f.node, f.conn,
				gap(f.confirmGap[sideAmqpha].Load()), gap(f.consumeGap[sideAmqpha].Load()))
		}
		fmt.Fprintln(out, "  A hang of the node that leads the quorum queue stalls it until net_ticktime (10 s here) declares the node down: the cluster's floor.")
	}
}
