package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
)

// fill publishes n persistent 1 KiB messages into queue through node 0 and
// waits for their confirms.
func fill(ctx context.Context, c *cluster.Cluster, queue string, n int) error {
	conn, ch, err := node0Channel(c)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := ch.Confirm(false); err != nil {
		return err
	}
	const batch = 500
	for sent := 0; sent < n; sent += batch {
		var dcs []*amqp.DeferredConfirmation
		for i := sent; i < min(sent+batch, n); i++ {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
				amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: fmt.Sprint(i), Body: body})
			if err != nil {
				return err
			}
			dcs = append(dcs, dc)
		}
		for _, dc := range dcs {
			if ok, err := dc.WaitContext(ctx); err != nil || !ok {
				return fmt.Errorf("filling %s: confirm %v %v", queue, ok, err)
			}
		}
	}
	return nil
}

// consumeRaw consumes n messages with plain amqp091-go (prefetch 100, one
// ack per message) and returns messages per second and the client's cost
// per message from basic.consume to the last ack.
func consumeRaw(ctx context.Context, uri, queue string, n int) (float64, perMessage, error) {
	conn, err := amqp.Dial(uri)
	if err != nil {
		return 0, perMessage{}, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, perMessage{}, err
	}
	if err := ch.Qos(100, 0, false); err != nil {
		return 0, perMessage{}, err
	}
	began, before := time.Now(), costNow()
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return 0, perMessage{}, err
	}
	for got := 0; got < n; got++ {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return 0, perMessage{}, errors.New("raw consumer closed")
			}
			if err := d.Ack(false); err != nil {
				return 0, perMessage{}, err
			}
		case <-ctx.Done():
			return 0, perMessage{}, ctx.Err()
		}
	}
	return float64(n) / time.Since(began).Seconds(), costNow().since(before, int64(n)), nil
}

// consumeAmqpha consumes n messages through amqpha (prefetch 100, one
// handler, Ack) and returns messages per second and the client's cost per
// message from Consume to the last handler's return.
func consumeAmqpha(ctx context.Context, uri, queue string, n int) (float64, perMessage, error) {
	cl, err := amqpha.Dial(ctx, amqpha.Config{Nodes: []string{uri}})
	if err != nil {
		return 0, perMessage{}, err
	}
	defer cl.Close(context.Background())
	var got atomic.Int64
	done := make(chan struct{})
	began, before := time.Now(), costNow()
	k, err := cl.Consume(ctx, queue, amqpha.ConsumerConfig{Prefetch: 100}, func(context.Context, *amqpha.Delivery) amqpha.Action {
		if got.Add(1) == int64(n) {
			close(done)
		}
		return amqpha.Ack
	})
	if err != nil {
		return 0, perMessage{}, err
	}
	select {
	case <-done:
	case <-ctx.Done():
		return 0, perMessage{}, ctx.Err()
	}
	rate, per := float64(n)/time.Since(began).Seconds(), costNow().since(before, int64(n))
	return rate, per, k.Close(ctx)
}

func consumerThroughput(ctx context.Context, c *cluster.Cluster, rounds, n int) error {
	const queue = "bench-consume"
	var raws, ours, rawCPU, ourCPU, rawAllocs, ourAllocs []float64
	for r := range rounds {
		for _, kind := range []string{"raw", "amqpha"} {
			if err := declare(c, queue); err != nil {
				return err
			}
			if err := fill(ctx, c, queue, n); err != nil {
				return err
			}
			consume := consumeRaw
			if kind == "amqpha" {
				consume = consumeAmqpha
			}
			rate, per, err := consume(ctx, c.Node(0).DirectURI(), queue, n)
			if err != nil {
				return fmt.Errorf("%s consumer round %d: %w", kind, r, err)
			}
			if kind == "raw" {
				raws, rawCPU, rawAllocs = append(raws, rate), append(rawCPU, per.cpuMicros), append(rawAllocs, per.allocs)
			} else {
				ours, ourCPU, ourAllocs = append(ours, rate), append(ourCPU, per.cpuMicros), append(ourAllocs, per.allocs)
			}
			fmt.Fprintf(os.Stderr, "consume round %d %s: %.0f msg/s, %.1f µs CPU/msg, %.1f allocs/msg\n", r, kind, rate, per.cpuMicros, per.allocs)
		}
	}
	if err := deleteQueue(c, queue); err != nil {
		return err
	}
	raw, our := median(raws), median(ours)
	fmt.Println("### Client cost per consumed message, amqpha vs raw amqp091-go")
	fmt.Println()
	fmt.Println("| messages per run | raw CPU µs/msg | amqpha CPU µs/msg | CPU ratio | raw allocs/msg | amqpha allocs/msg | raw msg/s | amqpha msg/s | msg/s ratio |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	fmt.Printf("| %d | %.1f | %.1f | %.2f | %.1f | %.1f | %.0f | %.0f | %.2f |\n\n", n, median(rawCPU), median(ourCPU), median(ourCPU)/median(rawCPU),
		median(rawAllocs), median(ourAllocs), raw, our, our/raw)
	fmt.Printf("Quorum queue filled beforehand with persistent 1 KiB messages; manual ack of each message, prefetch 100, one handler; medians of %d interleaved runs, both on node 0 directly.\n\n", rounds)
	return nil
}

// consumerFailover kills the consumers' node n times while a producer
// publishes and a consumer handles, and reports the time from each kill to
// the first message handled on the new connection. Every confirmed message
// must be handled.
func consumerFailover(ctx context.Context, c *cluster.Cluster, n int) error {
	const queue = "bench-consumer-failover"
	if err := declare(c, queue); err != nil {
		return err
	}
	cl, err := amqpha.Dial(ctx, amqpha.Config{Nodes: c.URIs()})
	if err != nil {
		return err
	}
	defer cl.Close(context.Background())
	p, err := cl.NewPublisher(amqpha.PublisherConfig{Window: 64})
	if err != nil {
		return err
	}
	var (
		mu      sync.Mutex
		handled = map[string]bool{}
		gen     atomic.Uint64 // generation before the current fault
		lastGen atomic.Uint64 // generation of the last delivery handled
		firstAt atomic.Int64  // first message handled on a newer connection
	)
	if _, err := cl.Consume(ctx, queue, amqpha.ConsumerConfig{Prefetch: 100, Concurrency: 4}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		mu.Lock()
		handled[d.MessageId] = true
		mu.Unlock()
		lastGen.Store(d.Generation)
		if d.Generation > gen.Load() {
			firstAt.CompareAndSwap(0, time.Now().UnixNano())
		}
		return amqpha.Ack
	}); err != nil {
		return err
	}
	l := startLoad(ctx, p, queue)
	defer func() {
		select {
		case <-l.done:
		default:
			l.stop()
		}
	}()
	if err := l.waitConfirms(200, time.Minute); err != nil {
		return err
	}
	var gaps []time.Duration
	for r := range n {
		victim := nodeAt(c, cl.ConsumerNode())
		if victim == nil {
			return errors.New("consumers not connected")
		}
		// Deliveries of a newer generation than the last one handled
		// come on the connection that replaced the victim's.
		gen.Store(lastGen.Load())
		firstAt.Store(0)
		t0 := time.Now()
		if err := victim.Kill(ctx); err != nil {
			return err
		}
		deadline := time.Now().Add(2 * time.Minute)
		for firstAt.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if firstAt.Load() == 0 {
			return fmt.Errorf("kill %d: nothing handled on a new connection in 2 min", r)
		}
		gap := time.Duration(firstAt.Load() - t0.UnixNano())
		gaps = append(gaps, gap)
		fmt.Fprintf(os.Stderr, "consumer kill %d of %s: next message handled after %v\n", r, victim.Name(), gap.Round(time.Millisecond))
		if err := victim.Start(ctx); err != nil {
			return err
		}
		if err := c.WaitClustered(ctx); err != nil {
			return err
		}
	}
	l.stop()
	total, lost := 0, 0
	deadline := time.Now().Add(3 * time.Minute)
	for {
		total, lost = 0, 0
		mu.Lock()
		l.confirmed.Range(func(k, _ any) bool {
			total++
			if !handled[k.(string)] {
				lost++
			}
			return true
		})
		mu.Unlock()
		if lost == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Println("### Consumer failover: SIGKILL of the consumers' node → next message handled on the new connection")
	fmt.Println()
	fmt.Println("| kills | median | worst | confirmed | handled at least once | lost |")
	fmt.Println("|---:|---:|---:|---:|---:|---:|")
	fmt.Printf("| %d | %v | %v | %d | %d | %d |\n\n", n, ms(median(durs(gaps))), ms(slices.Max(durs(gaps))), total, total-lost, lost)
	if err := deleteQueue(c, queue); err != nil {
		return err
	}
	if lost > 0 {
		return fmt.Errorf("%d confirmed messages never handled", lost)
	}
	return nil
}
