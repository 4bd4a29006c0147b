package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
)

// The idle mode (-idle SECONDS, -idle-hangs N) measures what an idle client
// costs the broker and how fast it leaves a node that hangs while it is
// idle:
//
//   - packets a second the broker receives on each idle connection (its
//     recv_cnt over SECONDS), for amqpha with default settings (a publisher
//     and a consumer: two connections) beside plain amqp091-go (one
//     connection, a confirm-mode channel and a consumer, its default 10 s
//     heartbeat), after one message each so both have done real work;
//   - hang detection of an idle amqpha connection: its node is stopped
//     (SIGSTOP) while nothing is published, and the time until the client
//     leaves it is taken; -hangs measures the same under load.

// idleNames names the measured connections in the broker's list.
const (
	idleRaw    = "bench-idle-raw"
	idleAmqpha = "bench-idle-amqpha"
)

// idleOptions are the idle mode's flags.
type idleOptions struct{ seconds, hangs int }

// idleCost runs the idle mode.
func idleCost(ctx context.Context, c *cluster.Cluster, o idleOptions) error {
	if o.seconds > 0 {
		if err := idlePackets(ctx, c, time.Duration(o.seconds)*time.Second); err != nil {
			return err
		}
	}
	if o.hangs > 0 {
		return idleHangs(ctx, c, o.hangs)
	}
	return nil
}

func directURIs(c *cluster.Cluster) []string {
	var uris []string
	for _, n := range c.Nodes() {
		uris = append(uris, n.DirectURI())
	}
	return uris
}

func idlePackets(ctx context.Context, c *cluster.Cluster, span time.Duration) error {
	const queue, haQueue = "bench-idle-raw", "bench-idle-amqpha" // a consumer each
	for _, q := range []string{queue, haQueue} {
		if err := declare(c, q); err != nil {
			return err
		}
		defer deleteQueue(c, q)
	}

	// Plain amqp091-go: one connection, a publisher and a consumer.
	conn, err := amqp.DialConfig(c.Node(0).DirectURI(), amqp.Config{
		Heartbeat:  10 * time.Second,
		Properties: amqp.Table{"connection_name": idleRaw},
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	var deliveries <-chan amqp.Delivery
	if err == nil {
		deliveries, err = ch.Consume(queue, "", true, false, false, false, nil)
	}
	if err == nil {
		var dc *amqp.DeferredConfirmation
		dc, err = ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false, amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body})
		if err == nil {
			_, err = dc.WaitContext(ctx)
		}
	}
	if err == nil {
		select {
		case <-deliveries:
		case <-time.After(10 * time.Second):
			err = errors.New("raw consumer: no delivery")
		}
	}
	if err != nil {
		return fmt.Errorf("raw client: %w", err)
	}

	// amqpha, default settings, on node 0 too.
	cl, err := amqpha.Dial(ctx, amqpha.Config{Nodes: directURIs(c), ConnectionName: idleAmqpha})
	if err != nil {
		return err
	}
	defer cl.Close(context.Background())
	p, err := cl.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		return err
	}
	got := make(chan struct{}, 1)
	k, err := cl.Consume(ctx, haQueue, amqpha.ConsumerConfig{}, func(context.Context, *amqpha.Delivery) amqpha.Action {
		select {
		case got <- struct{}{}:
		default:
		}
		return amqpha.Ack
	})
	if err != nil {
		return err
	}
	defer k.Close(context.Background())
	if err := p.Publish(ctx, "", haQueue, amqp.Publishing{Body: body}); err != nil {
		return err
	}
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		return errors.New("amqpha consumer: no delivery")
	}

	if err := sleep(ctx, 3*time.Second); err != nil { // the handshakes' and the message's packets are over
		return err
	}
	before, err := recvCounts(ctx, c)
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := sleep(ctx, span); err != nil {
		return err
	}
	after, err := recvCounts(ctx, c)
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	fmt.Printf("### Idle connections: packets a second the broker receives (recv_cnt over %.0f s)\n\n", secs)
	fmt.Println("| client | connection | packets/s |")
	fmt.Println("|---|---|---:|")
	var names []string
	for name := range after {
		if strings.HasPrefix(name, idleRaw) || strings.HasPrefix(name, idleAmqpha) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) < 3 {
		return fmt.Errorf("idle connections seen by the broker: %v, want 3", names)
	}
	for _, name := range names {
		client := "amqp091-go (heartbeat 10 s)"
		if strings.HasPrefix(name, idleAmqpha) {
			client = "amqpha (defaults)"
		}
		fmt.Printf("| %s | %s | %.2f |\n", client, name, float64(after[name]-before[name])/secs)
	}
	fmt.Println()
	return nil
}

// recvCounts is recv_cnt by the name the client gave its connection
// (connection_name), as the broker counts it (the management API; its
// figures are refreshed every 5 s, RabbitMQ's collect_statistics_interval).
func recvCounts(ctx context.Context, c *cluster.Cluster) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Node(0).ManagementURL()+"/api/connections", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("guest", "guest")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("management API: %s", resp.Status)
	}
	var conns []struct {
		Name    string `json:"user_provided_name"`
		RecvCnt int64  `json:"recv_cnt"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&conns); err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	for _, c := range conns {
		counts[c.Name] = c.RecvCnt
	}
	return counts, nil
}

// idleHangs stops the node of an idle amqpha client n times and takes the
// time until the client leaves it.
func idleHangs(ctx context.Context, c *cluster.Cluster, n int) error {
	var mu sync.Mutex
	var left time.Time
	var cause error
	cl, err := amqpha.Dial(ctx, amqpha.Config{Nodes: c.URIs(), OnEvent: func(e amqpha.Event) {
		if e.Kind == amqpha.EventReconnecting && e.Connection == "publish" {
			mu.Lock()
			if left.IsZero() {
				left, cause = e.Time, e.Err
			}
			mu.Unlock()
		}
	}})
	if err != nil {
		return err
	}
	defer cl.Close(context.Background())
	var leaves []time.Duration
	for r := range n {
		victim := connected(c, cl)
		if victim == nil {
			return errors.New("client not connected")
		}
		// Idle: nothing published; the detector's own probes only.
		if err := sleep(ctx, 3*time.Second); err != nil {
			return err
		}
		mu.Lock()
		left, cause = time.Time{}, nil
		mu.Unlock()
		t0 := time.Now()
		if err := victim.Pause(); err != nil {
			return err
		}
		deadline := time.Now().Add(time.Minute)
		var at time.Time
		for time.Now().Before(deadline) {
			mu.Lock()
			at = left
			mu.Unlock()
			if !at.IsZero() {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if err := victim.Resume(); err != nil {
			return err
		}
		if at.IsZero() {
			return fmt.Errorf("idle hang %d: the client never left %s", r, victim.Name())
		}
		if !errors.Is(cause, amqpha.ErrHung) {
			return fmt.Errorf("idle hang %d: the client left %s for %v, not as hung", r, victim.Name(), cause)
		}
		leaves = append(leaves, at.Sub(t0))
		fmt.Fprintf(os.Stderr, "idle hang %d of %s: left after %v\n", r, victim.Name(), at.Sub(t0).Round(time.Millisecond))
		if err := c.WaitClustered(ctx); err != nil {
			return err
		}
	}
	fmt.Println("### Hung node under an idle connection: SIGSTOP of its node → the client leaves it")
	fmt.Println()
	fmt.Println("| hangs | median time to leave | worst time to leave |")
	fmt.Println("|---:|---:|---:|")
	fmt.Printf("| %d | %v | %v |\n\n", n, ms(median(durs(leaves))), ms(slices.Max(durs(leaves))))
	return nil
}
