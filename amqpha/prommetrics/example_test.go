package prommetrics_test

import (
	"fmt"
	"log"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/amqpha/prommetrics"
)

// Count a client's publishes in a registry of your own. Here the adapter is
// fed by hand, as a client would feed it, and the registry gathered as a
// scrape would.
func ExampleNew() {
	reg := prometheus.NewRegistry()
	m, err := prommetrics.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	var _ amqpha.Config = amqpha.Config{Metrics: m} // what Dial would get

	m.ConnectionUp("publish", "127.0.0.1:5672", "")
	for range 3 {
		m.Published(false)
		m.Confirmed(2 * time.Millisecond)
	}
	m.ConnectionDown("publish", "127.0.0.1:5672", true) // the node died
	m.ConnectionUp("publish", "127.0.0.1:5673", "127.0.0.1:5672")

	families, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			labels := ""
			for _, l := range s.GetLabel() {
				labels += fmt.Sprintf(" %s=%s", l.GetName(), l.GetValue())
			}
			switch {
			case s.Counter != nil && s.Counter.GetValue() > 0:
				fmt.Printf("%s%s %v\n", f.GetName(), labels, s.Counter.GetValue())
			case s.Gauge != nil:
				fmt.Printf("%s%s %v\n", f.GetName(), labels, s.Gauge.GetValue())
			case s.Histogram != nil:
				fmt.Printf("%s count %d\n", f.GetName(), s.Histogram.GetSampleCount())
			}
		}
	}
	// Output:
	// amqpha_confirm_latency_seconds count 3
	// amqpha_confirmed_total 3
	// amqpha_connected connection=publish node=127.0.0.1:5673 1
	// amqpha_node_switches_total connection=publish 1
	// amqpha_published_total 3
	// amqpha_reconnects_total connection=publish 1
}

// Give the latency histogram buckets of your own, and tell two clients
// apart with a label.
func ExampleBuckets() {
	reg := prometheus.NewRegistry()
	for _, name := range []string{"orders", "audit"} {
		_, err := prommetrics.New(prometheus.WrapRegistererWith(prometheus.Labels{"client": name}, reg),
			prommetrics.Buckets(.001, .01, .1, 1))
		if err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("registered")
	// Output: registered
}
