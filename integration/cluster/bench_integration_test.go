//go:build integration

package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/cluster"
)

// BenchmarkClusterStart measures starting a 3-node cluster until every node
// runs and sees the others, and reports it in seconds.
func BenchmarkClusterStart(b *testing.B) {
	var total time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		began := time.Now()
		c, err := cluster.Start(ctx, cluster.Options{})
		total += time.Since(began)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.Close()
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/start")
}
