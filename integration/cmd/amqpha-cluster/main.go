// Command amqpha-cluster starts a local RabbitMQ cluster on loopback with the
// project's harness, prints its nodes and the URIs a program would use, and
// tears it down on Ctrl-C (or SIGTERM).
//
//	go run ./integration/cmd/amqpha-cluster [-nodes 3] [-net-ticktime 10s]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/amqpha/amqpha/integration/cluster"
)

func main() {
	nodes := flag.Int("nodes", 3, "number of nodes")
	tick := flag.Duration("net-ticktime", 0, "Erlang net_ticktime (0: RabbitMQ's 60s)")
	verbose := flag.Bool("v", false, "log every harness step")
	flag.Parse()
	if err := run(os.Stdout, *nodes, *tick, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "amqpha-cluster:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, nodes int, tick time.Duration, verbose bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	fmt.Fprintf(out, "Starting a %d-node RabbitMQ cluster on 127.0.0.1 …\n", nodes)
	began := time.Now()
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	c, err := cluster.Start(startCtx, cluster.Options{Nodes: nodes, NetTicktime: tick, Logger: log})
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "Stopping the cluster …")
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "amqpha-cluster:", err)
		}
		fmt.Fprintln(out, "Stopped; nothing left behind.")
	}()
	fmt.Fprintf(out, "Cluster ready in %.1f s (data in %s).\n\n", time.Since(began).Seconds(), c.Dir())

	st, err := c.Node(0).Status(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tNAME\tAMQP URI (via cut-able proxy)\tDIRECT AMQP URI\tMANAGEMENT (guest/guest)")
	for _, n := range c.Nodes() {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", n.Index(), n.Name(), n.URI(), n.DirectURI(), n.ManagementURL())
	}
	tw.Flush()
	fmt.Fprintf(out, "\nRunning members seen by node 0: %s\n", strings.Join(st.RunningNodes, ", "))
	fmt.Fprintf(out, "\nA program would use: %s\n", strings.Join(c.URIs(), " "))
	fmt.Fprintln(out, "\nPress Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}
