// Command producer publishes persistent messages to a quorum queue through
// amqpha and counts the broker's confirms. Kill the node it is connected to
// while it runs: it moves to another node, publishes again what was not
// confirmed, and still ends with every message confirmed.
//
//	AMQPHA_URIS=amqp://guest:guest@127.0.0.1:5672/,amqp://… go run ./examples/producer -count 1000 -rate 100
//
// What differs from plain amqp091-go: you give it every node, not one; it
// reconnects by itself; a nil error from a confirmation means the broker has
// the message — there is no confirm channel to watch and no re-publishing to
// write.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
	"unicode"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
)

func main() {
	uris := flag.String("uris", os.Getenv("AMQPHA_URIS"), "AMQP URIs of the cluster's nodes, separated by commas or spaces (default $AMQPHA_URIS)")
	queue := flag.String("queue", "amqpha-example", "quorum queue to declare and publish to")
	count := flag.Int("count", 1000, "messages to publish")
	rate := flag.Int("rate", 100, "messages per second (0: as fast as the confirm window allows)")
	every := flag.Int("every", 100, "print a line every this many confirms")
	timeout := flag.Duration("timeout", time.Minute, "how long one message may take to be confirmed, failovers included")
	flag.Parse()
	if *uris == "" || *count <= 0 || *rate < 0 || *rate > 1e6 || *every <= 0 || *timeout <= 0 {
		fmt.Fprintln(os.Stderr, "producer: set -uris (or AMQPHA_URIS); -count, -every and -timeout must be positive, -rate 0 to 1000000")
		os.Exit(2)
	}

	// Ctrl-C or SIGTERM stops publishing; messages already sent still get
	// their confirms (within -timeout) before the program exits.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	failed, err := run(ctx, splitList(*uris), *queue, *count, *rate, *every, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "producer:", err) // amqpha's errors never contain a password
		os.Exit(1)
	}
	if failed > 0 {
		os.Exit(1)
	}
}

func run(ctx context.Context, uris []string, queue string, count, rate, every int, timeout time.Duration) (failed int, err error) {
	// Dial returns once one node accepted a connection. From then on the
	// client keeps a connection on some live node for as long as it runs.
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	client, err := amqpha.Dial(dialCtx, amqpha.Config{
		Nodes:          uris,
		ConnectionName: "amqpha-example-producer",
		// Events arrive on one goroutine of the client's, in order. Node
		// addresses in them have the password replaced by xxxxx.
		OnEvent: func(e amqpha.Event) {
			switch e.Kind {
			case amqpha.EventReconnecting:
				fmt.Printf("connection lost on %s: %v\n", e.Node, e.Err)
			case amqpha.EventNodeSwitched:
				fmt.Printf("now connected to %s\n", e.Node)
			case amqpha.EventBlocked:
				fmt.Printf("broker blocks publishing: %s\n", e.Reason)
			}
		},
	})
	cancel()
	if err != nil {
		return 0, err
	}
	defer func() {
		// Close waits for outstanding confirms and the client's goroutines;
		// bound it so a dead cluster cannot keep the program alive.
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, client.Close(closeCtx))
	}()
	fmt.Printf("connected to %s\n", client.Node())

	// Declared through the client, the queue is declared again on every
	// connection the client opens, before publishing resumes there.
	// Declaring it is idempotent: the consumer declares it too.
	if _, err := client.DeclareQueue(ctx, amqpha.QuorumQueue(queue)); err != nil {
		return 0, err
	}
	// A Publisher is a confirm-mode channel that follows the client from
	// node to node. Messages are persistent and mandatory by default.
	pub, err := client.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		return 0, err
	}

	// PublishAsync hands a message over and returns its Confirmation at
	// once (it waits only while 256 messages are unconfirmed); this
	// goroutine waits for the confirmations, in order.
	type pending struct {
		c      *amqpha.Confirmation
		cancel context.CancelFunc
	}
	inflight := make(chan pending, 256)
	waited := make(chan struct{})
	confirmed := 0
	go func() {
		defer close(waited)
		for p := range inflight {
			// Wait returns when the broker confirmed the message (nil), or
			// it failed for good, or its context ended: the message context
			// bounds it, so Background is fine here.
			err := p.c.Wait(context.Background())
			p.cancel()
			if err != nil {
				failed++
				fmt.Printf("message %s not confirmed: %v\n", p.c.MessageID(), err)
				continue
			}
			confirmed++
			if confirmed%every == 0 || confirmed == count {
				fmt.Printf("confirmed %d/%d\n", confirmed, count)
			}
		}
	}()

	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		tick = t.C
	}
	began := time.Now()
	sent, notSent := 0, 0
	for sent < count && ctx.Err() == nil {
		if tick != nil {
			select {
			case <-ctx.Done():
				continue
			case <-tick:
			}
		}
		// Each message gets its own deadline, failovers included. It keeps
		// ctx's values but not its cancellation, so that Ctrl-C does not
		// abandon messages already sent.
		msgCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		c, err := pub.PublishAsync(msgCtx, "", queue, amqp.Publishing{
			ContentType: "text/plain",
			Body:        fmt.Appendf(nil, "message %d of %d", sent+1, count),
			// MessageId is left empty: amqpha sets a unique one, which
			// stays the same if the message has to be sent again.
		})
		if err != nil {
			cancel()
			notSent++ // the client closed, or the window stayed full for -timeout
			fmt.Printf("message %d not sent: %v\n", sent+1, err)
			break
		}
		inflight <- pending{c, cancel}
		sent++
	}
	close(inflight)
	<-waited
	failed += notSent
	if ctx.Err() != nil {
		fmt.Println("interrupted")
	}
	fmt.Printf("done: sent %d, confirmed %d, failed %d in %v\n", sent, confirmed, failed, time.Since(began).Round(time.Millisecond))
	return failed, nil
}

// splitList splits a list separated by commas or white space, as
// ./run.sh cluster prints the URIs.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}
