//go:build integration

package failover

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/discovery"
	"github.com/amqpha/amqpha/integration/dnstest"
)

// srvRecords returns SRV records that name the proxied ports of nodes.
func srvRecords(nodes ...int) []string {
	recs := []string{"rabbit-hosts.test. 30 IN A 127.0.0.1"}
	for _, i := range nodes {
		u, _ := url.Parse(shared.Node(i).URI())
		recs = append(recs, fmt.Sprintf("_amqp._tcp.rabbit.test. 30 IN SRV 0 1 %s rabbit-hosts.test.", u.Port()))
	}
	return recs
}

// waitNode waits until the client's publishing connection is on node i.
func waitNode(t *testing.T, c *amqpha.Client, i int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if n := connectedNode(c); n != nil && n.Index() == i {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("client on %q, want node %d", c.Node(), i)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client given only a DNS SRV name connects to the nodes it names,
// follows a change of the records at the next connection loss, and keeps
// its last node set while the DNS server is down.
func TestClientWithDNSDiscovery(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	z := dnstest.Start(t, srvRecords(0, 1)...)
	res, err := discovery.DNS(discovery.DNSConfig{
		Name: "_amqp._tcp.rabbit.test", SRV: true, Template: "amqp://guest:guest@x/",
		Nameservers: []string{z.Addr()}, MinInterval: time.Nanosecond, Timeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, ev := client(t, amqpha.Config{Resolver: res})
	if n := connectedNode(c); n == nil || n.Index() == 2 {
		t.Fatalf("connected to %q, not one of the nodes DNS names", c.Node())
	}
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 2*time.Minute)
	publish := func() {
		t.Helper()
		if err := pub.Publish(ctx, "", q, amqp.Publishing{Body: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	publish()

	// The records now name node 2 only: the next connection goes there.
	z.Set(t, srvRecords(2)...)
	connectedNode(c).ResetConnections()
	waitNode(t, c, 2)
	publish()

	// DNS is down: the client reconnects from the last good set.
	z.Stop()
	ready := ev.count(amqpha.EventReady)
	shared.Node(2).ResetConnections()
	if _, err := ev.waitEvent(amqpha.EventReady, ready, time.Minute); err != nil {
		t.Fatal(err)
	}
	waitNode(t, c, 2)
	publish()
}

// A client given a name with an A record connects to that address.
func TestClientWithDNSAddressRecord(t *testing.T) {
	restore(t)
	z := dnstest.Start(t, "rabbit.test. 30 IN A 127.0.0.1")
	u, _ := url.Parse(shared.Node(1).URI())
	var port int
	fmt.Sscan(u.Port(), &port)
	res, err := discovery.DNS(discovery.DNSConfig{Name: "rabbit.test", Port: port, Nameservers: []string{z.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client(t, amqpha.Config{Resolver: res})
	if n := connectedNode(c); n == nil || n.Index() != 1 {
		t.Fatalf("connected to %q, want node 1", c.Node())
	}
}
