package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Side-by-side mode (-side-by-side) runs the plain client of plain.go next
// to amqpha: same cluster, same rate, its own quorum queue, and the same
// faults at the same moments.
//
// Fairness. Faults act on nodes, and the two clients may sit on different
// nodes: amqpha leaves a hung node in half a second, the plain client stays
// until its heartbeat gives up, and each picks its next node its own way.
// Breaking the node of each side separately would break two nodes of three
// at once, which takes the quorum queues' majority away and measures the
// cluster, not the clients. So the demo places both clients on the same
// nodes instead: the plain client's connections start on the nodes of
// amqpha's publishing and consuming connections (which also puts both
// queues' leaders on the same node), and right before each fault the demo
// moves them there again if they drifted (placePlain: publishers finish
// their confirms first, the consumer is cancelled and acks what it holds
// first, so the move itself loses, fails and duplicates nothing, and it
// happens before the fault's clock starts). The fault then hits the node of
// one of amqpha's connections, which is also the node of the plain client's
// connection of the same role. Each fault records whether the plain
// client's connection really was there (hit); a fault that missed it is not
// counted in its gaps.
const plainQueue = "plain-demo"

// placeTimeout bounds a placement before a fault.
const placeTimeout = 10 * time.Second

// plainClient is the plain client's two connections.
type plainClient struct {
	pub, cons *plainConn
}

// startPlain starts the plain client with its connections on uris[pubFirst]
// and uris[consFirst]: the publishing connection first, so that it declares
// the queue (and places its leader) there.
func startPlain(ctx context.Context, d *demo, s *side, uris []string, pubFirst, consFirst int,
	say func(string, ...any), nodeName func(string) string) (*plainClient, error) {
	pc := &plainClient{}
	pc.pub = startPlainConn("publishing", uris, pubFirst, plainQueue, nil, say, nodeName)
	if err := pc.pub.waitReady(ctx); err != nil {
		pc.close()
		return nil, err
	}
	pc.cons = startPlainConn("consuming", uris, consFirst, plainQueue, func(m amqp.Delivery) {
		s.handle(m.MessageId)
		if sent, err := strconv.ParseInt(string(m.Body), 10, 64); err == nil {
			d.noteAfterFaults(s, sent, true)
		}
	}, say, nodeName)
	if err := pc.cons.waitReady(ctx); err != nil {
		pc.close()
		return nil, err
	}
	return pc, nil
}

// close closes both connections; safe to call twice.
func (pc *plainClient) close() {
	for _, c := range []*plainConn{pc.cons, pc.pub} {
		if c != nil {
			c.close()
		}
	}
}

// conn is the plain client's connection of role ("publishing" or
// "consuming").
func (pc *plainClient) conn(role string) *plainConn {
	if role == "consuming" {
		return pc.cons
	}
	return pc.pub
}

// placePlain moves the plain client's connections onto the nodes of
// amqpha's (pub, cons: indexes into the plain client's URIs; -1 leaves a
// connection where it is), both at once, and says so.
func placePlain(ctx context.Context, out io.Writer, d *demo, pc *plainClient, pub, cons int) {
	ctx, cancel := context.WithTimeout(ctx, placeTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range []struct {
		c *plainConn
		i int
	}{{pc.pub, pub}, {pc.cons, cons}} {
		if p.i < 0 {
			continue
		}
		wg.Go(func() {
			moved, err := p.c.place(ctx, p.i)
			switch {
			case err != nil:
				fmt.Fprintf(out, "%s   could not place the plain %s connection on %s: %v\n", d.since(), p.c.role, p.c.nodeName(p.c.uris[p.i]), err)
			case moved:
				fmt.Fprintf(out, "%s   plain %s connection placed on %s, with amqpha's (not a fault)\n", d.since(), p.c.role, p.c.nodeName(p.c.uris[p.i]))
			}
		})
	}
	wg.Wait()
}

// producePlain is one plain producer goroutine's message: publish and wait
// for the confirm (with its one retry). A publish cut short by Ctrl-C is
// counted neither way.
func producePlain(ctx context.Context, pc *plainClient, d *demo, s *side, id string) {
	sent := time.Now().UnixNano()
	s.published.Add(1)
	err := pc.pub.publish(ctx, amqp.Publishing{MessageId: id, DeliveryMode: amqp.Persistent,
		Body: strconv.AppendInt(nil, sent, 10)})
	switch {
	case err == nil:
		s.confirm(id)
		d.noteAfterFaults(s, sent, false)
	case ctx.Err() == nil:
		s.fail(err)
	}
}

func sideBySideHeader(out io.Writer) {
	fmt.Fprintf(out, `Side by side: the same rate through a plain amqp091-go client on its own quorum queue %q, with the
  reconnect loop a careful developer writes by hand: the nodes in turn (5 s handshake deadline), a fixed 1 s
  backoff after NotifyClose, heartbeat 10 s, a 5 s confirm wait per message and one retry 1 s later; no hang
  detector, no node quarantine, nothing re-published after a failover.
Fairness: before each fault the plain client's connections are moved (cleanly, not counted) onto the nodes of
  amqpha's publishing and consuming connections, so every fault hits both clients at the same moment.
Progress: published / confirmed / consumed per client, and the nodes of its publishing/consuming connections.
`, plainQueue)
}

// progressSideBySide is the side-by-side progress line.
func progressSideBySide(d *demo, amqphaNodes, plainNodes string) string {
	a, p := d.sides[sideAmqpha], d.sides[sidePlain]
	return fmt.Sprintf("%s  amqpha %6d %6d %6d on %s  |  plain %6d %6d %6d on %s",
		d.since(), a.published.Load(), a.confirmed.Load(), a.consumed.Load(), amqphaNodes,
		p.published.Load(), p.confirmed.Load(), p.consumed.Load(), plainNodes)
}

// shortNode turns "node 1" into "1" and "none" into "-".
func shortNode(name string) string {
	if n, ok := strings.CutPrefix(name, "node "); ok {
		return n
	}
	return "-"
}

// gapStats is the median and worst of a list of gaps (ns), with how many
// faults hit the side and saw no message through since.
func gapStats(gaps []int64, unseen int) string {
	if len(gaps) == 0 && unseen == 0 {
		return "—"
	}
	s := "never"
	if len(gaps) > 0 {
		slices.Sort(gaps)
		med := gaps[len(gaps)/2]
		if len(gaps)%2 == 0 {
			med = (gaps[len(gaps)/2-1] + gaps[len(gaps)/2]) / 2
		}
		s = fmt.Sprintf("%.3f / %.3f s", time.Duration(med).Seconds(), time.Duration(gaps[len(gaps)-1]).Seconds())
	}
	if unseen > 0 && len(gaps) > 0 {
		s += fmt.Sprintf(", %d never", unseen)
	}
	return s
}

// reportSideBySide prints the comparison table; lost is per side.
func reportSideBySide(out io.Writer, d *demo, o options, lost [numSides]int, interrupted bool) {
	faults := d.faultList()
	fmt.Fprintln(out)
	if interrupted {
		fmt.Fprintln(out, "Report, side by side (interrupted: messages still in flight are not counted as lost)")
		lost = [numSides]int{}
	} else {
		fmt.Fprintln(out, "Report, side by side (same cluster, same rate, the same faults at the same moments on the same nodes)")
	}
	row := func(label string, cells ...string) {
		fmt.Fprintf(out, "  %-42s %20s %20s\n", label, cells[0], cells[1])
	}
	both := func(f func(s *side) string) []string {
		return []string{f(d.sides[sideAmqpha]), f(d.sides[sidePlain])}
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	row("", "amqpha", "plain amqp091-go")
	row("published", both(func(s *side) string { return num(s.published.Load()) })...)
	row("confirmed", both(func(s *side) string { return num(s.confirmed.Load()) })...)
	row("consumed (distinct)", both(func(s *side) string { return num(s.consumed.Load()) })...)
	row("lost (confirmed, never consumed)", strconv.Itoa(lost[sideAmqpha]), strconv.Itoa(lost[sidePlain]))
	row("duplicates (redelivered)", both(func(s *side) string { return strconv.Itoa(s.duplicates()) })...)
	row("publish errors (given up)", both(func(s *side) string { return num(s.failed.Load()) })...)
	if len(faults) > 0 {
		fmt.Fprintln(out, "  failover gap, median / worst: from a fault to the next message confirmed (a fault on the")
		fmt.Fprintln(out, "  publishing connections' node) or consumed (on the consuming connections' node)")
		var kinds []string
		for _, k := range o.faults {
			if !slices.Contains(kinds, k) {
				kinds = append(kinds, k)
			}
		}
		for _, k := range kinds {
			for _, role := range []string{"publishing", "consuming"} {
				var cells [numSides]string
				n := 0
				for i := range cells {
					var gaps []int64
					unseen := 0
					for _, f := range faults {
						if f.kind != k || f.conn != role || !f.hit[i] {
							continue
						}
						g := f.confirmGap[i].Load()
						if role == "consuming" {
							g = f.consumeGap[i].Load()
						}
						if g == 0 {
							unseen++
						} else {
							gaps = append(gaps, g)
						}
					}
					cells[i] = gapStats(gaps, unseen)
					n = max(n, len(gaps)+unseen)
				}
				if n == 0 {
					continue
				}
				what := "confirmed"
				if role == "consuming" {
					what = "consumed"
				}
				row(fmt.Sprintf("  %-4s → next %s (%d)", k, what, n), cells[:]...)
			}
		}
		fmt.Fprintln(out, "  faults (gaps: from the fault to the first message sent after it being confirmed / consumed):")
		for i, f := range faults {
			fmt.Fprintf(out, "    %d. %-4s %s (%s connections)  amqpha %s / %s  plain ", i+1, f.kind, f.node, f.conn,
				gap(f.confirmGap[sideAmqpha].Load()), gap(f.consumeGap[sideAmqpha].Load()))
			if f.hit[sidePlain] {
				fmt.Fprintf(out, "%s / %s\n", gap(f.confirmGap[sidePlain].Load()), gap(f.consumeGap[sidePlain].Load()))
			} else {
				fmt.Fprintln(out, "not on that node (not counted)")
			}
		}
		fmt.Fprintln(out, "  A hang of the node that leads a quorum queue stalls it until net_ticktime (10 s here) declares the node down: the cluster's floor.")
	}
	for _, s := range d.sides {
		s.mu.Lock()
		if s.firstErr != nil {
			fmt.Fprintf(out, "  first publish error, %s: %v\n", map[int]string{sideAmqpha: "amqpha", sidePlain: "plain"}[s.idx], s.firstErr)
		}
		s.mu.Unlock()
	}
	fmt.Fprintln(out, "  Only amqpha's lost count decides the exit status; the plain client's is reported.")
}
