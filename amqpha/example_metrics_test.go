package amqpha_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/amqpha/prommetrics"
)

// Export the client's counts to Prometheus: publishes, confirms and their
// latency, nacks, errors by reason, deliveries, and each connection's
// reconnects, node switches and current node.
func ExampleMetrics() {
	reg := prometheus.NewRegistry()
	metrics, err := prommetrics.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := amqpha.Dial(ctx, amqpha.Config{
		Nodes:   []string{"amqp://app:secret@rabbit-1:5672/", "amqp://app:secret@rabbit-2:5672/"},
		Metrics: metrics,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())

	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	log.Fatal(http.ListenAndServe("127.0.0.1:9464", nil))
}
