// Command custom-balancer adds a node-choosing algorithm of its own to
// amqpha, "prefer-zone": connect to a node in this program's zone (say, the
// same availability zone), and to the other nodes only when every node of
// the zone is down. It publishes a few messages and shows the node each of
// its connections is on.
//
//	AMQPHA_URIS=amqp://…@rabbit-a1/,amqp://…@rabbit-a2/,amqp://…@rabbit-b1/ \
//	  go run ./examples/custom-balancer -zones a,a,b -zone b -connections 2
//
// A balancer only chooses; amqpha does the rest. It tells the picker which
// nodes to skip: down or recently failed ones, those already tried in this
// reconnection pass, and at first those another connection of the client
// is on (so that one node's failure takes down one connection only).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/balancer"
	"github.com/amqpha/amqpha/discovery"
)

// preferZone is the balancer. A client builds a picker from it whenever its
// node set changes.
type preferZone struct{ zone string }

func (b preferZone) Build(nodes []balancer.Node) balancer.Picker {
	p := &zonePicker{nodes: slices.Clone(nodes)} // the caller may reuse nodes
	for i, n := range nodes {
		if n.Meta["zone"] == b.zone {
			p.near = append(p.near, i)
		} else {
			p.far = append(p.far, i)
		}
	}
	return p
}

// zonePicker never changes after Build, so Pick, which may run on several
// goroutines at once, needs no lock: round-robin over the zone's nodes,
// then over the others.
type zonePicker struct {
	nodes     []balancer.Node
	near, far []int // indexes into nodes
	next      atomic.Uint64
}

func (p *zonePicker) Pick(info balancer.PickInfo) (balancer.Result, error) {
	start := p.next.Add(1)
	for _, group := range [][]int{p.near, p.far} {
		for k := range uint64(len(group)) {
			i := group[(start+k)%uint64(len(group))]
			if info.Skip == nil || !info.Skip(i) {
				return balancer.Result{Node: p.nodes[i], Index: i}, nil
			}
		}
	}
	return balancer.Result{}, balancer.ErrNoNode
}

var _ balancer.Picker = (*zonePicker)(nil)

func main() {
	uris := flag.String("uris", os.Getenv("AMQPHA_URIS"), "AMQP URIs of the cluster's nodes, separated by commas or spaces (default $AMQPHA_URIS)")
	zones := flag.String("zones", os.Getenv("AMQPHA_ZONES"), "zone of each node, in -uris order, separated by commas or spaces (default $AMQPHA_ZONES)")
	zone := flag.String("zone", os.Getenv("AMQPHA_ZONE"), "this program's zone (default $AMQPHA_ZONE)")
	connections := flag.Int("connections", 1, "publishing connections (each on a node of its own while there are enough)")
	queue := flag.String("queue", "amqpha-example", "quorum queue to declare and publish to")
	count := flag.Int("count", 10, "messages to publish")
	flag.Parse()
	nodeURIs := splitList(*uris)
	nodeZones := splitList(*zones)
	if len(nodeURIs) == 0 || len(nodeZones) != len(nodeURIs) || *connections <= 0 || *count <= 0 {
		fmt.Fprintln(os.Stderr, "custom-balancer: set -uris and one zone per URI in -zones; -connections and -count must be positive")
		os.Exit(2)
	}

	// Register makes the algorithm available by name, like the built-in
	// "rr" or "priority+wrr"; the name can then come from a configuration
	// file. The function is called once per client.
	if err := balancer.Register("prefer-zone", func() balancer.Balancer { return preferZone{zone: *zone} }); err != nil {
		fmt.Fprintln(os.Stderr, "custom-balancer:", err)
		os.Exit(1)
	}

	// The zone travels in each node's metadata. Here it comes from a flag;
	// a discovery.Resolver of your own could read it from an inventory.
	nodes := make([]balancer.Node, len(nodeURIs))
	for i, u := range nodeURIs {
		nodes[i] = balancer.Node{Addr: u, Meta: map[string]string{"zone": nodeZones[i]}}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, nodes, *connections, *queue, *count); err != nil {
		fmt.Fprintln(os.Stderr, "custom-balancer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, nodes []balancer.Node, connections int, queue string, count int) (err error) {
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	client, err := amqpha.Dial(dialCtx, amqpha.Config{
		Resolver:       discovery.Static(nodes...),
		BalancerName:   "prefer-zone",
		Connections:    connections,
		ConnectionName: "amqpha-example-custom-balancer",
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
	// One publisher per connection: NewPublisher puts each on the
	// connection with the fewest publishers.
	pubs := make([]*amqpha.Publisher, connections)
	for i := range pubs {
		if pubs[i], err = client.NewPublisher(amqpha.PublisherConfig{}); err != nil {
			return err
		}
	}
	for i := range count {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := pubs[i%len(pubs)].Publish(pctx, "", queue, amqp.Publishing{Body: fmt.Appendf(nil, "message %d of %d", i+1, count)})
		cancel()
		if err != nil {
			return fmt.Errorf("message %d: %w", i+1, err)
		}
	}
	fmt.Printf("published %d messages, all confirmed\n", count)

	// Connections dialled with no free node in the zone are elsewhere.
	for _, c := range client.Connections() {
		fmt.Printf("%s is on %s (zone %q)\n", c.Name, c.Node, zoneOf(nodes, c.Node))
	}
	return nil
}

// zoneOf finds the zone of the node whose host and port addr has (addr is
// redacted, so it is not equal to any node's Addr).
func zoneOf(nodes []balancer.Node, addr string) string {
	a, err := url.Parse(addr)
	if err != nil {
		return ""
	}
	for _, n := range nodes {
		if u, err := url.Parse(n.Addr); err == nil && u.Host == a.Host {
			return n.Meta["zone"]
		}
	}
	return ""
}

// splitList splits a list separated by commas or white space, as
// ./run.sh cluster prints the URIs.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}
