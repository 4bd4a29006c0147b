package discovery_test

import (
	"context"
	"log"
	"time"

	"github.com/amqpha/amqpha/amqpha"
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
