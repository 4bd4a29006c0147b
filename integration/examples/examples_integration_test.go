//go:build integration

package examples

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/clustertest"
	"github.com/amqpha/amqpha/integration/dnstest"
)

// How long a program may take to do what a test waits for. Generous: the
// machine is small and the examples may run with -race.
const (
	lineTimeout = time.Minute
	exitTimeout = 2 * time.Minute
)

func urisFlag() string { return strings.Join(shared.URIs(), ",") }

// The README's first steps: the producer publishes K messages, all
// confirmed; the consumer (given its nodes by AMQPHA_URIS, separated by
// spaces as ./run.sh cluster prints them) then takes exactly those K and
// leaves the queue empty.
func TestProducerThenConsumer(t *testing.T) {
	const k = 300
	queue := testQueue(t)

	prod := start(t, nil, "producer", "-uris", urisFlag(), "-queue", queue, "-count", fmt.Sprint(k), "-rate", "0", "-every", "100")
	out := prod.finish(exitTimeout)
	for _, want := range []string{"connected to amqp://guest:xxxxx@", "confirmed 100/300", "confirmed 300/300", "done: sent 300, confirmed 300, failed 0 "} {
		if !strings.Contains(out, want) {
			t.Errorf("the producer's output lacks %q", want)
		}
	}

	cons := start(t, []string{"AMQPHA_URIS=" + strings.Join(shared.URIs(), " ")}, "consumer", "-queue", queue, "-count", fmt.Sprint(k), "-every", "100", "-timeout", "2m")
	out = cons.finish(exitTimeout)
	for _, want := range []string{"consuming " + queue, `consumed 300 (last: "message 300 of 300")`, "done: consumed 300, duplicates skipped 0 "} {
		if !strings.Contains(out, want) {
			t.Errorf("the consumer's output lacks %q", want)
		}
	}
	if n := messagesIn(t, queue); n != 0 {
		t.Errorf("%d messages left in the queue after the consumer took %d", n, k)
	}
}

// amqpha's point: the node the producer is connected to (which, as the
// producer declared the queue there, leads the quorum queue) is killed
// mid-run; every message
// is still confirmed, and the consumer gets every one of them.
func TestProducerSurvivesKill(t *testing.T) {
	clustertest.Restore(t, shared)
	const k = 1500
	queue := testQueue(t)

	prod := start(t, nil, "producer", "-uris", urisFlag(), "-queue", queue, "-count", fmt.Sprint(k), "-rate", "150", "-every", "100")
	victim := nodeIn(t, prod.waitLine("connected to ", lineTimeout))
	prod.waitLine("confirmed 300/", lineTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Logf("killing %v, the producer's node", victim)
	if err := victim.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	moved := nodeIn(t, prod.waitLine("now connected to ", lineTimeout))
	if moved == victim {
		t.Errorf("the producer moved to the node that was killed")
	}
	out := prod.finish(exitTimeout)
	if want := fmt.Sprintf("done: sent %d, confirmed %d, failed 0 ", k, k); !strings.Contains(out, want) {
		t.Fatalf("the producer's output lacks %q", want)
	}

	cons := start(t, nil, "consumer", "-uris", urisFlag(), "-queue", queue, "-count", fmt.Sprint(k), "-every", "500", "-timeout", "2m")
	out = cons.finish(exitTimeout)
	if want := fmt.Sprintf("done: consumed %d, ", k); !strings.Contains(out, want) {
		t.Errorf("the consumer's output lacks %q", want)
	}
}

// Ctrl-C stops the producer: no new message, every one already sent is
// still confirmed, exit status 0.
func TestProducerStopsOnInterrupt(t *testing.T) {
	queue := testQueue(t)
	prod := start(t, nil, "producer", "-uris", urisFlag(), "-queue", queue, "-count", "100000", "-rate", "200", "-every", "100")
	prod.waitLine("confirmed 100/100000", lineTimeout)
	prod.signal(syscall.SIGINT)
	done := prod.waitLine("done: ", lineTimeout)
	prod.finish(exitTimeout)
	var sent, confirmed, failed int
	if _, err := fmt.Sscanf(done, "done: sent %d, confirmed %d, failed %d ", &sent, &confirmed, &failed); err != nil {
		t.Fatalf("%q: %v", done, err)
	}
	if sent == 100000 || confirmed != sent || failed != 0 {
		t.Errorf("after Ctrl-C: sent %d, confirmed %d, failed %d; want fewer than 100000 sent, all confirmed", sent, confirmed, failed)
	}
}

// SIGTERM stops a consumer that has nothing to do: graceful close, exit 0.
func TestConsumerStopsOnSignal(t *testing.T) {
	queue := testQueue(t)
	cons := start(t, nil, "consumer", "-uris", urisFlag(), "-queue", queue, "-timeout", "2m")
	cons.waitLine("consuming "+queue, lineTimeout)
	cons.signal(syscall.SIGTERM)
	if out := cons.finish(exitTimeout); !strings.Contains(out, "done: consumed 0, duplicates skipped 0 ") {
		t.Errorf("the consumer's output lacks its summary")
	}
}

// The only configuration is a DNS name: SRV records on a DNS server on
// loopback name the nodes; the one with the lowest SRV priority gets the
// publishing connection, and every message published is consumed.
func TestDNSSRV(t *testing.T) {
	const name = "_amqp._tcp.rabbit.example."
	preferred := shared.Node(2)
	var records []string
	for _, n := range shared.Nodes() {
		u, err := url.Parse(n.URI())
		if err != nil {
			t.Fatal(err)
		}
		prio := 1
		if n == preferred {
			prio = 0
		}
		target := fmt.Sprintf("node%d.rabbit.example.", n.Index())
		records = append(records,
			fmt.Sprintf("%s 60 IN SRV %d 1 %s %s", name, prio, u.Port(), target),
			fmt.Sprintf("%s 60 IN A %s", target, u.Hostname()))
	}
	dns := dnstest.Start(t, records...)
	queue := testQueue(t)

	p := start(t, nil, "dns-srv", "-srv", name, "-nameserver", dns.Addr(), "-queue", queue, "-count", "50", "-timeout", "2m")
	p.waitLine("DNS names 3 nodes", lineTimeout)
	if got := nodeIn(t, p.waitLine("publish connection on ", lineTimeout)); got != preferred {
		t.Errorf("publishing on %v, want %v (SRV priority 0)", got, preferred)
	}
	out := p.finish(exitTimeout)
	if !strings.Contains(out, "done: published 50, consumed 50") {
		t.Errorf("the program's output lacks its summary")
	}
	if dns.Queries("all") == 0 {
		t.Errorf("the program never asked the DNS server")
	}
}

// The custom balancer puts connections on the nodes of the program's zone
// ("y"), each on a node of its own, and falls back to the other zone when
// the zone has too few nodes.
func TestCustomBalancer(t *testing.T) {
	for _, tc := range []struct {
		zones       string // of nodes 0, 1, 2
		connections int
		inZone      int // connections that must be on a node of zone y
	}{
		{zones: "x,x,y", connections: 1, inZone: 1},
		{zones: "y,x,y", connections: 2, inZone: 2},
		{zones: "x,y,x", connections: 2, inZone: 1}, // the second falls back to x
	} {
		t.Run(fmt.Sprintf("%s/%d", tc.zones, tc.connections), func(t *testing.T) {
			queue := testQueue(t)
			p := start(t, nil, "custom-balancer", "-uris", urisFlag(), "-zones", tc.zones, "-zone", "y",
				"-connections", fmt.Sprint(tc.connections), "-queue", queue, "-count", "5")
			out := p.finish(exitTimeout)
			if !strings.Contains(out, "published 5 messages, all confirmed") {
				t.Errorf("the program's output lacks the confirms")
			}
			zones := strings.Split(tc.zones, ",")
			used := map[int]bool{}
			inZone := 0
			for _, l := range strings.Split(out, "\n") {
				if !strings.Contains(l, " is on ") {
					continue
				}
				n := nodeIn(t, l).Index()
				if want := fmt.Sprintf("(zone %q)", zones[n]); !strings.HasSuffix(l, want) {
					t.Errorf("%s: want %s", l, want)
				}
				if used[n] {
					t.Errorf("%s: node %d has another connection too", l, n)
				}
				used[n] = true
				if zones[n] == "y" {
					inZone++
				}
			}
			if len(used) != tc.connections || inZone != tc.inZone {
				t.Errorf("%d connections on distinct nodes, %d in zone y; want %d and %d", len(used), inZone, tc.connections, tc.inZone)
			}
		})
	}
}

// The README's first program, given the cluster's nodes as arguments,
// publishes a message and reads it back.
func TestQuickstart(t *testing.T) {
	t.Cleanup(func() {
		ch, closeConn := rawChannel(t)
		if ch == nil {
			return
		}
		defer closeConn()
		if _, err := ch.QueueDelete("quickstart", false, false, false); err != nil {
			t.Logf("delete quickstart: %v", err)
		}
	})
	p := start(t, nil, "quickstart", shared.URIs()...)
	out := p.finish(exitTimeout)
	if !strings.Contains(out, `received "hello"`) {
		t.Errorf("quickstart's output lacks %q", `received "hello"`)
	}
}
