// Command consumer consumes a queue through amqpha until it has -count
// messages or is told to stop (Ctrl-C, SIGTERM), then stops gracefully: the
// message being handled is finished and acknowledged, the rest stays in the
// queue. Kill the node it is connected to while it runs: it registers again
// on another node and goes on.
//
//	AMQPHA_URIS=amqp://guest:guest@127.0.0.1:5672/,amqp://… go run ./examples/consumer -count 1000
//
// What differs from plain amqp091-go: there is no delivery channel to range
// over and no reconnect loop to write. The handler returns what to do with
// the message (Ack, Requeue, Nack) and amqpha does it, on the channel the
// message came on — never on a newer one after a failover.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/amqpha/amqpha/amqpha"
)

func main() {
	uris := flag.String("uris", os.Getenv("AMQPHA_URIS"), "AMQP URIs of the cluster's nodes, separated by commas or spaces (default $AMQPHA_URIS)")
	queue := flag.String("queue", "amqpha-example", "quorum queue to declare and consume")
	count := flag.Int("count", 0, "stop after this many distinct messages (0: run until Ctrl-C)")
	every := flag.Int("every", 100, "print a line every this many messages")
	prefetch := flag.Int("prefetch", 100, "messages the broker sends ahead of acknowledgements")
	timeout := flag.Duration("timeout", 0, "give up after this long (0: never)")
	flag.Parse()
	if *uris == "" || *count < 0 || *every <= 0 || *prefetch <= 0 || *timeout < 0 {
		fmt.Fprintln(os.Stderr, "consumer: set -uris (or AMQPHA_URIS); -every and -prefetch must be positive, -count and -timeout >= 0")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, *timeout, errTimeout)
		defer cancel()
	}
	if err := run(ctx, splitList(*uris), *queue, *count, *every, *prefetch); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err) // amqpha's errors never contain a password
		os.Exit(1)
	}
}

var errTimeout = errors.New("-timeout reached")

func run(ctx context.Context, uris []string, queue string, count, every, prefetch int) (err error) {
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	client, err := amqpha.Dial(dialCtx, amqpha.Config{
		Nodes:          uris,
		ConnectionName: "amqpha-example-consumer",
		// This program only consumes, so one connection is enough. (A
		// program that also publishes keeps the default: consumers on a
		// connection of their own, which RabbitMQ never blocks.)
		SharedConnection: true,
		OnEvent: func(e amqpha.Event) {
			switch e.Kind {
			case amqpha.EventReconnecting:
				fmt.Printf("connection lost on %s: %v\n", e.Node, e.Err)
			case amqpha.EventNodeSwitched:
				fmt.Printf("now connected to %s\n", e.Node)
			case amqpha.EventConsumerRegistered:
				fmt.Printf("consuming again on %s\n", e.Node)
			}
		},
	})
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, client.Close(closeCtx))
	}()
	fmt.Printf("connected to %s\n", client.Node())

	// Declare the queue here too, so the consumer can start first; both
	// sides declare it with the same arguments.
	if _, err := client.DeclareQueue(ctx, amqpha.QuorumQueue(queue)); err != nil {
		return err
	}

	// Delivery is at least once: after a failover a message can come twice
	// (re-published by a producer whose confirm was lost, or redelivered
	// because an ack was lost). amqpha gives every message a message-id;
	// skip the ones already handled. A real service keeps them in its
	// database, in the same transaction as the work, or with a TTL.
	var (
		mu         sync.Mutex
		seen       = map[string]bool{}
		consumed   int
		duplicates int
		enough     = make(chan struct{})
	)
	began := time.Now()
	handler := func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case count > 0 && consumed >= count:
			return amqpha.Requeue // more than asked for: leave it to others
		case seen[d.MessageId]:
			duplicates++
			return amqpha.Ack // handled before: acknowledge, do nothing
		}
		// The work goes here; return amqpha.Requeue if it failed and
		// should be tried again, amqpha.Nack to dead-letter the message.
		seen[d.MessageId] = true
		consumed++
		if consumed%every == 0 || consumed == count {
			fmt.Printf("consumed %d (last: %q)\n", consumed, d.Body)
		}
		if consumed == count {
			close(enough)
		}
		return amqpha.Ack
	}
	// Consume returns once the broker accepted the consumer; from then on
	// it is registered again on every new connection.
	consumer, err := client.Consume(ctx, queue, amqpha.ConsumerConfig{Prefetch: prefetch}, handler)
	if err != nil {
		return err
	}
	fmt.Printf("consuming %s\n", queue)

	select {
	case <-enough:
	case <-ctx.Done():
	}
	// Stop taking messages and let the running handler finish (its ack is
	// sent); what the broker sent ahead goes back to the queue.
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := consumer.Close(closeCtx); err != nil {
		return err
	}

	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("done: consumed %d, duplicates skipped %d in %v\n", consumed, duplicates, time.Since(began).Round(time.Millisecond))
	if errors.Is(context.Cause(ctx), errTimeout) && consumed < count {
		return fmt.Errorf("%w with %d of %d messages", errTimeout, consumed, count)
	}
	return nil
}

// splitList splits a list separated by commas or white space, as
// ./run.sh cluster prints the URIs.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}
