package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"slices"
	"time"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/balancer"
	"github.com/amqpha/amqpha/discovery"
)

// Find the cluster by its SRV records and prefer the nodes of the lowest
// SRV priority, spread by SRV weight.
func ExampleDNS() {
	res, err := discovery.DNS(discovery.DNSConfig{
		Name:     "_amqp._tcp.rabbit.example.com",
		SRV:      true,
		Template: "amqps://app:secret@rabbit.example.com/orders",
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := amqpha.Dial(ctx, amqpha.Config{Resolver: res, BalancerName: "priority+wrr"})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
}

// Learn the running nodes from the management API, and connect to the node
// that leads the "orders" quorum queue when it is up.
func ExampleManagement() {
	res, err := discovery.Management(discovery.ManagementConfig{
		Seeds:    []string{"http://rabbit-1:15672", "http://rabbit-2:15672"},
		User:     "monitor",
		Password: "secret",
		Template: "amqp://app:secret@x/",
		LeaderOf: "orders",
	})
	if err != nil {
		log.Fatal(err)
	}
	client, err := amqpha.Dial(context.Background(), amqpha.Config{Resolver: res, BalancerName: "priority+rr"})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
}

// A fixed list of nodes, with the priorities a "priority+" balancer honours.
func ExampleStatic() {
	res := discovery.Static(
		balancer.Node{Addr: "amqp://app:secret@rabbit-1:5672/", Priority: 1},
		balancer.Node{Addr: "amqp://app:secret@rabbit-2:5672/", Priority: 1},
		balancer.Node{Addr: "amqp://app:secret@rabbit-3:5672/", Priority: 2}, // only when both others are down
	)
	nodes, err := res.Resolve(context.Background())
	fmt.Println(len(nodes), err)

	_, err = discovery.Static().Resolve(context.Background())
	fmt.Println(errors.Is(err, discovery.ErrNoNodes))
	// Output:
	// 3 <nil>
	// true
}

// Look the nodes up in DNS, and use a static list while DNS has never
// answered. Here the nameserver is down (nothing listens on 127.0.0.1:1), so
// the static list is what the client gets.
func ExampleFallback() {
	fromDNS, err := discovery.DNS(discovery.DNSConfig{
		Name:        "rabbit.example.com",
		Template:    "amqp://app:secret@x/",
		Nameservers: []string{"127.0.0.1:1"},
		Timeout:     500 * time.Millisecond,
	})
	if err != nil {
		log.Fatal(err)
	}
	res := discovery.Fallback(fromDNS, discovery.Static(
		balancer.Node{Addr: "amqp://app:secret@10.0.0.11:5672/"},
		balancer.Node{Addr: "amqp://app:secret@10.0.0.12:5672/"},
	))
	// The client asks like this before every reconnection pass.
	nodes, err := discovery.ResolveFresh(context.Background(), res)
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range nodes {
		fmt.Println(n.Addr)
	}
	// Output:
	// amqp://app:secret@10.0.0.11:5672/
	// amqp://app:secret@10.0.0.12:5672/
}

// drained is a Resolver of one's own: it wraps another and leaves out the
// hosts under maintenance. It returns the whole node set every time, and
// ErrNoNodes when nothing is left.
type drained struct {
	inner discovery.Resolver
	hosts map[string]bool // not changed after construction, so safe to share
}

func (d drained) Resolve(ctx context.Context) ([]balancer.Node, error) {
	nodes, err := d.inner.Resolve(ctx)
	if err != nil {
		return nil, err
	}
	nodes = slices.DeleteFunc(nodes, func(n balancer.Node) bool {
		u, err := url.Parse(n.Addr)
		return err == nil && d.hosts[u.Hostname()]
	})
	if len(nodes) == 0 {
		return nil, discovery.ErrNoNodes
	}
	return nodes, nil
}

// Wrap a resolver to take a node out of rotation while it is upgraded.
func ExampleResolver() {
	var res discovery.Resolver = drained{
		inner: discovery.Static(
			balancer.Node{Addr: "amqp://app:secret@rabbit-1:5672/"},
			balancer.Node{Addr: "amqp://app:secret@rabbit-2:5672/"},
			balancer.Node{Addr: "amqp://app:secret@rabbit-3:5672/"},
		),
		hosts: map[string]bool{"rabbit-2": true},
	}
	nodes, err := res.Resolve(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, n := range nodes {
		fmt.Println(n.Addr)
	}
	// Output:
	// amqp://app:secret@rabbit-1:5672/
	// amqp://app:secret@rabbit-3:5672/
}
