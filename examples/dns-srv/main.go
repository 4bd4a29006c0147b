// Command dns-srv finds the cluster through DNS SRV records — its only
// configuration is a DNS name — then publishes messages and consumes them
// back in one program.
//
//	go run ./examples/dns-srv -srv _amqp._tcp.rabbit.example.com
//
// The records name the nodes and their AMQP ports, with the usual SRV
// meaning of priority (lower first) and weight (share within a priority):
//
//	_amqp._tcp.rabbit.example.com. 60 IN SRV 0 1 5672 rabbit-1.example.com.
//	_amqp._tcp.rabbit.example.com. 60 IN SRV 0 1 5672 rabbit-2.example.com.
//	_amqp._tcp.rabbit.example.com. 60 IN SRV 1 1 5672 rabbit-3.example.com.
//
// The client looks the name up again before every reconnection, so nodes
// added to or removed from DNS are followed without a restart. User,
// password and vhost come from $AMQPHA_TEMPLATE, an AMQP URI whose host and
// port are replaced by each node's (default amqp://guest:guest@localhost/).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/discovery"
)

func main() {
	srv := flag.String("srv", "_amqp._tcp.rabbit.example.", "SRV name of the cluster")
	nameserver := flag.String("nameserver", "", `DNS server as host:port, e.g. 127.0.0.1:5353 ("": those of /etc/resolv.conf)`)
	queue := flag.String("queue", "amqpha-example-dns", "quorum queue to declare, publish to and consume")
	count := flag.Int("count", 100, "messages to publish and consume")
	timeout := flag.Duration("timeout", time.Minute, "give up after this long")
	flag.Parse()
	if *srv == "" || *count <= 0 || *timeout <= 0 {
		fmt.Fprintln(os.Stderr, "dns-srv: set -srv; -count and -timeout must be positive")
		os.Exit(2)
	}
	template := os.Getenv("AMQPHA_TEMPLATE")
	if template == "" {
		template = "amqp://guest:guest@localhost/"
	}
	var nameservers []string
	if *nameserver != "" {
		nameservers = []string{*nameserver}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	res, err := discovery.DNS(discovery.DNSConfig{
		Name:        *srv,
		SRV:         true,
		Template:    template,
		Nameservers: nameservers,
	})
	if err == nil {
		err = run(ctx, res, *queue, *count)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dns-srv:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, res discovery.Resolver, queue string, count int) (err error) {
	// Not needed — the client resolves by itself — but it shows what DNS
	// says. Node addresses hold the template's password: redact them.
	nodes, err := res.Resolve(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("DNS names %d nodes:\n", len(nodes))
	for _, n := range nodes {
		fmt.Printf("  %s  priority %d weight %d  (%s)\n", redact(n.Addr), n.Priority, n.Weight, n.Meta["target"])
	}

	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	client, err := amqpha.Dial(dialCtx, amqpha.Config{
		Resolver: res,
		// priority+wrr honours both SRV fields: the lowest priority's nodes
		// first, spread by weight; the next priority only when they are
		// all down.
		BalancerName:   "priority+wrr",
		ConnectionName: "amqpha-example-dns-srv",
		OnEvent: func(e amqpha.Event) {
			if e.Kind == amqpha.EventNodeSwitched {
				fmt.Printf("%s connection now on %s\n", e.Connection, e.Node)
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

	if _, err := client.DeclareQueue(ctx, amqpha.QuorumQueue(queue)); err != nil {
		return err
	}

	// The consumer: count this run's messages, once each. Messages left in
	// the queue by an earlier run are acknowledged and not counted.
	runID := strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	var (
		mu   sync.Mutex
		seen = map[string]bool{}
		all  = make(chan struct{})
	)
	consumer, err := client.Consume(ctx, queue, amqpha.ConsumerConfig{}, func(_ context.Context, d *amqpha.Delivery) amqpha.Action {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(d.MessageId, runID) && !seen[d.MessageId] {
			seen[d.MessageId] = true
			if len(seen) == count {
				close(all)
			}
		}
		return amqpha.Ack
	})
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, consumer.Close(closeCtx))
	}()

	// The producer: one message at a time; Publish returns nil once the
	// broker has the message. Here the program sets the message-ids
	// itself (a business key would do): a message sent again after a
	// failover keeps its id.
	pub, err := client.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		return err
	}
	for i := range count {
		msg := amqp.Publishing{MessageId: runID + strconv.Itoa(i), Body: fmt.Appendf(nil, "message %d of %d", i+1, count)}
		if err := pub.Publish(ctx, "", queue, msg); err != nil {
			return fmt.Errorf("message %d: %w", i+1, err)
		}
	}
	fmt.Printf("published %d messages, all confirmed\n", count)

	select {
	case <-all:
	case <-ctx.Done():
		mu.Lock()
		got := len(seen)
		mu.Unlock()
		return fmt.Errorf("consumed %d of %d messages: %w", got, count, ctx.Err())
	}
	for _, c := range client.Connections() {
		fmt.Printf("%s connection on %s\n", c.Name, c.Node)
	}
	fmt.Printf("done: published %d, consumed %d\n", count, count)
	return nil
}

// redact replaces the password in an AMQP URI with xxxxx.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable URI)"
	}
	return u.Redacted()
}
