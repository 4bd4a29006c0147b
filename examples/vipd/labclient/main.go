// Command labclient is the client of examples/vipd/lab.sh: a plain
// amqp091-go program of the kind vipd exists for. It knows one address, the
// virtual IP, and has no failover logic of its own beyond a reconnect loop:
// when its connection breaks it dials the same address again, and whichever
// director holds the VIP by then answers.
//
//	AMQP_USER=… AMQP_PASSWORD=… labclient -addr 10.213.0.100:5672 -duration 20s
//
// For -duration it publishes persistent messages (numbered, the number as
// message-id) to a quorum queue with publisher confirms, at most -window
// unconfirmed at a time, and counts the confirmed ones. A message whose
// connection died before its confirm, or that the broker nacked, is
// published again on the next connection: at-least-once, so a few
// duplicates are expected and no loss. Every outage (a reconnect, or more
// than -min-gap without a confirm) is reported as the time between the last
// confirm before it and the first after it: its gap.
//
// Then it consumes the whole queue, through the VIP again, and compares:
// a confirmed message that is not in the queue is lost. The last line is
//
//	result: confirmed C, in queue Q (D distinct, X duplicates), lost L, gaps N, longest gap G s
//
// and the exit status is 1 if anything was lost. The credentials come from
// the environment only (a command line is visible to every user of the
// machine) and are never printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// settings are the command's flags.
type settings struct {
	addr           string
	queue          string
	duration       time.Duration
	rate           int
	window         int
	confirmTimeout time.Duration
	minGap         time.Duration
	every          time.Duration
	user, password string
}

func main() {
	var s settings
	flag.StringVar(&s.addr, "addr", "10.213.0.100:5672", "`host:port` of the virtual IP")
	flag.StringVar(&s.queue, "queue", "amqlab", "quorum queue to publish to and drain")
	flag.DurationVar(&s.duration, "duration", 20*time.Second, "how long to publish")
	flag.IntVar(&s.rate, "rate", 200, "messages per second")
	flag.IntVar(&s.window, "window", 50, "most messages unconfirmed at a time")
	flag.DurationVar(&s.confirmTimeout, "confirm-timeout", time.Second, "a connection whose oldest unconfirmed message waits longer is taken for dead")
	flag.DurationVar(&s.minGap, "min-gap", 250*time.Millisecond, "report as a gap every time without a confirm longer than this, reconnect or not")
	flag.DurationVar(&s.every, "every", 5*time.Second, "print the count this often")
	flag.Parse()
	s.user, s.password = os.Getenv("AMQP_USER"), os.Getenv("AMQP_PASSWORD")
	if s.user == "" || s.password == "" || s.rate <= 0 || s.window <= 0 || s.duration <= 0 || s.confirmTimeout <= 0 || s.every <= 0 {
		fmt.Fprintln(os.Stderr, "labclient: set AMQP_USER and AMQP_PASSWORD; -rate, -window, -duration, -confirm-timeout and -every must be positive")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	p := &publisher{s: s, confirmed: map[int]bool{}}
	began := time.Now()
	p.run(ctx)
	fmt.Printf("published for %.1f s: %d messages, %d confirmed, %d reconnects\n",
		time.Since(began).Seconds(), p.next-1, len(p.confirmed), p.reconnects)

	fmt.Printf("draining %s through %s …\n", s.queue, s.addr)
	seen, err := drain(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "labclient:", err)
		os.Exit(1)
	}
	total, lost := 0, 0
	for _, n := range seen {
		total += n
	}
	for id := range p.confirmed {
		if seen[id] == 0 {
			lost++
		}
	}
	var longest time.Duration
	for _, g := range p.gaps {
		longest = max(longest, g)
	}
	fmt.Printf("result: confirmed %d, in queue %d (%d distinct, %d duplicates), lost %d, gaps %d, longest gap %.3f s\n",
		len(p.confirmed), total, len(seen), total-len(seen), lost, len(p.gaps), longest.Seconds())
	if lost > 0 {
		os.Exit(1)
	}
}

// uri is the broker's address with the credentials; never printed.
func (s settings) uri() string {
	u := url.URL{Scheme: "amqp", User: url.UserPassword(s.user, s.password), Host: s.addr, Path: "/"}
	return u.String()
}

// dial connects with short timeouts: the TCP connect to the VIP must be
// quick (a director that died leaves nothing answering), the AMQP
// handshake behind the proxy may take longer on a busy machine.
func dial(s settings) (*amqp.Connection, error) {
	return amqp.DialConfig(s.uri(), amqp.Config{
		Heartbeat: 2 * time.Second,
		Dial: func(network, addr string) (net.Conn, error) {
			c, err := net.DialTimeout(network, addr, 500*time.Millisecond)
			if err != nil {
				return nil, err
			}
			// Cleared by amqp091-go once the handshake is done.
			return c, c.SetDeadline(time.Now().Add(5 * time.Second))
		},
	})
}

// declare declares the quorum queue; every connection does, so the first
// one on a fresh cluster creates it.
func declare(ch *amqp.Channel, queue string) error {
	_, err := ch.QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	return err
}

// closeQuickly closes a connection that may be dead without waiting long
// for the broker's answer.
func closeQuickly(c *amqp.Connection) { c.CloseDeadline(time.Now().Add(300 * time.Millisecond)) }

// publisher publishes numbered messages and remembers which were confirmed.
type publisher struct {
	s          settings
	next       int          // the next new message's number, from 1
	resend     []int        // numbers to publish again before new ones
	confirmed  map[int]bool // numbers the broker confirmed
	reconnects int

	lastConfirm time.Time
	reconnected bool // a reconnect happened since the last confirm
	gaps        []time.Duration
}

// inflight is a message published and not yet confirmed.
type inflight struct {
	id   int
	dc   *amqp.DeferredConfirmation
	sent time.Time
}

// run publishes until the duration has passed, then until every message
// published is confirmed (or 30 s more have passed), reconnecting as often
// as it takes. It returns early when ctx ends.
func (p *publisher) run(ctx context.Context) {
	p.next = 1
	stopNew := time.Now().Add(p.s.duration)
	giveUp := stopNew.Add(30 * time.Second)
	p.lastConfirm = time.Now()
	lastPrint := time.Now()
	for ctx.Err() == nil && time.Now().Before(giveUp) {
		if time.Now().After(stopNew) && len(p.resend) == 0 {
			return
		}
		conn, err := dial(p.s)
		if err != nil {
			fmt.Printf("dial %s: %v\n", p.s.addr, err)
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		if p.reconnects > 0 || p.next > 1 {
			fmt.Printf("connected again to %s (reconnect %d)\n", p.s.addr, p.reconnects)
		} else {
			fmt.Printf("connected to %s\n", p.s.addr)
		}
		err = p.session(ctx, conn, stopNew, giveUp, &lastPrint)
		closeQuickly(conn)
		if err == nil {
			return
		}
		p.reconnects++
		p.reconnected = true
		fmt.Printf("connection lost after %d confirmed: %v\n", len(p.confirmed), err)
	}
}

// session publishes on one connection until it fails (the error says how)
// or there is nothing left to do (nil).
func (p *publisher) session(ctx context.Context, conn *amqp.Connection, stopNew, giveUp time.Time, lastPrint *time.Time) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	if err := declare(ch, p.s.queue); err != nil {
		return err
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	tick := time.NewTicker(time.Second / time.Duration(p.s.rate))
	defer tick.Stop()
	var pending []inflight
	// Whatever is still unconfirmed when the session ends goes out again.
	defer func() {
		for _, m := range pending {
			p.resend = append(p.resend, m.id)
		}
	}()
	for {
		var headDone <-chan struct{}
		var headLate <-chan time.Time
		if len(pending) > 0 {
			headDone = pending[0].dc.Done()
			headLate = time.After(time.Until(pending[0].sent.Add(p.s.confirmTimeout)))
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-closed:
			return fmt.Errorf("closed: %v", err)
		case <-headLate:
			return fmt.Errorf("no confirm within %v", p.s.confirmTimeout)
		case <-headDone:
			for len(pending) > 0 && isDone(pending[0].dc) {
				m := pending[0]
				pending = pending[1:]
				if !m.dc.Acked() {
					p.resend = append(p.resend, m.id)
					continue
				}
				p.confirm(m.id)
			}
		case <-tick.C:
			now := time.Now()
			if now.Sub(*lastPrint) >= p.s.every {
				*lastPrint = now
				fmt.Printf("confirmed %d\n", len(p.confirmed))
			}
			if now.After(giveUp) {
				return nil
			}
			if len(pending) >= p.s.window {
				continue
			}
			var id int
			switch {
			case len(p.resend) > 0:
				id, p.resend = p.resend[0], p.resend[1:]
			case now.Before(stopNew):
				id = p.next
				p.next++
			case len(pending) == 0:
				return nil // everything published is confirmed
			default:
				continue
			}
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", p.s.queue, false, false, amqp.Publishing{
				DeliveryMode: amqp.Persistent,
				MessageId:    strconv.Itoa(id),
				ContentType:  "text/plain",
				Body:         []byte("message " + strconv.Itoa(id)),
			})
			if err != nil {
				p.resend = append(p.resend, id)
				return err
			}
			pending = append(pending, inflight{id: id, dc: dc, sent: now})
		}
	}
}

// confirm counts a confirm and reports the time without one before it if
// a reconnect happened in between or it was long.
func (p *publisher) confirm(id int) {
	now := time.Now()
	if gap := now.Sub(p.lastConfirm); (p.reconnected || gap > p.s.minGap) && len(p.confirmed) > 0 {
		p.gaps = append(p.gaps, gap)
		began := p.lastConfirm
		fmt.Printf("gap %d: %.3f s without a confirm (from %s to %s)\n",
			len(p.gaps), gap.Seconds(), began.Format("15:04:05.000"), now.Format("15:04:05.000"))
	}
	p.lastConfirm, p.reconnected = now, false
	p.confirmed[id] = true
}

func isDone(dc *amqp.DeferredConfirmation) bool {
	select {
	case <-dc.Done():
		return true
	default:
		return false
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// drain consumes every message of the queue and returns how often each
// number came. A connection lost half-way starts the count over (the
// unacknowledged messages go back to the queue); it tries for a minute.
func drain(ctx context.Context, s settings) (map[int]int, error) {
	deadline := time.Now().Add(time.Minute)
	var last error
	for ctx.Err() == nil && time.Now().Before(deadline) {
		seen, err := drainOnce(ctx, s)
		if err == nil {
			return seen, nil
		}
		last = err
		fmt.Printf("drain: %v; again\n", err)
		sleep(ctx, 200*time.Millisecond)
	}
	if last == nil {
		last = ctx.Err()
	}
	return nil, fmt.Errorf("drain %s: %w", s.queue, last)
}

func drainOnce(ctx context.Context, s settings) (map[int]int, error) {
	conn, err := dial(s)
	if err != nil {
		return nil, err
	}
	defer closeQuickly(conn)
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	q, err := ch.QueueDeclarePassive(s.queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	if err != nil {
		return nil, err
	}
	if err := ch.Qos(500, 0, false); err != nil {
		return nil, err
	}
	deliveries, err := ch.ConsumeWithContext(ctx, s.queue, "", false, false, false, false, nil)
	if err != nil {
		return nil, err
	}
	seen := map[int]int{}
	got := 0
	for got < q.Messages {
		idle := time.NewTimer(10 * time.Second)
		select {
		case d, ok := <-deliveries:
			idle.Stop()
			if !ok {
				return nil, errors.New("the consumer's channel closed")
			}
			id, err := strconv.Atoi(d.MessageId)
			if err != nil {
				return nil, fmt.Errorf("message with message-id %q", d.MessageId)
			}
			seen[id]++
			got++
			if got%100 == 0 || got == q.Messages {
				if err := d.Ack(true); err != nil {
					return nil, err
				}
			}
		case <-idle.C:
			return nil, fmt.Errorf("got %d of %d messages, then nothing for 10 s", got, q.Messages)
		case <-ctx.Done():
			idle.Stop()
			return nil, ctx.Err()
		}
	}
	return seen, nil
}
