// Command amqpha-cluster starts a local RabbitMQ cluster on loopback with the
// project's harness, prints its nodes and the URIs a program would use, and
// tears it down on Ctrl-C (or SIGTERM).
//
//	go run ./integration/cmd/amqpha-cluster [-nodes 3] [-net-ticktime 10s]
//	    [-extra-ip IP [-user NAME]] [-env-file FILE]
//
// With -extra-ip the nodes accept AMQP on that address of this host too (on
// the port of their direct URI), for clients in other network namespaces or
// machines; -user creates a user with a random password who may log in from
// there (RabbitMQ's guest may log in from loopback only). -env-file writes,
// once the cluster is ready, the ports, the data directory and that user's
// credentials as shell variables (mode 0600), for scripts such as
// examples/vipd/lab.sh; the password goes nowhere else.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/amqpha/amqpha/integration/cluster"
)

// options are the command's flags.
type options struct {
	nodes   int
	tick    time.Duration
	verbose bool
	extraIP string // -extra-ip
	user    string // -user
	envFile string // -env-file
}

func main() {
	var o options
	flag.IntVar(&o.nodes, "nodes", 3, "number of nodes")
	flag.DurationVar(&o.tick, "net-ticktime", 0, "Erlang net_ticktime (0: RabbitMQ's 60s)")
	flag.BoolVar(&o.verbose, "v", false, "log every harness step")
	flag.StringVar(&o.extraIP, "extra-ip", "", "an `address` of this host where the nodes accept AMQP too (same ports as their direct URIs)")
	flag.StringVar(&o.user, "user", "", "create a user `name` with a random password who may log in from any address (needs -env-file)")
	flag.StringVar(&o.envFile, "env-file", "", "once ready, write ports, data directory and -user's credentials to `file` as shell variables (removed on exit)")
	flag.Parse()
	if err := run(os.Stdout, o); err != nil {
		fmt.Fprintln(os.Stderr, "amqpha-cluster:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, o options) error {
	if o.user != "" && o.envFile == "" {
		return errors.New("-user needs -env-file: the password is written there and nowhere else")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	level := slog.LevelWarn
	if o.verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	where := "127.0.0.1"
	if o.extraIP != "" {
		where += " and " + o.extraIP
	}
	fmt.Fprintf(out, "Starting a %d-node RabbitMQ cluster on %s …\n", o.nodes, where)
	began := time.Now()
	startCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	c, err := cluster.Start(startCtx, cluster.Options{Nodes: o.nodes, NetTicktime: o.tick, ExtraIP: o.extraIP, Logger: log})
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "Stopping the cluster …")
		if o.envFile != "" {
			os.Remove(o.envFile)
		}
		if err := c.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "amqpha-cluster:", err)
		}
		fmt.Fprintln(out, "Stopped; nothing left behind.")
	}()
	fmt.Fprintf(out, "Cluster ready in %.1f s (data in %s).\n\n", time.Since(began).Seconds(), c.Dir())

	var password string
	if o.user != "" {
		password = randomPassword()
		if err := c.AddUser(ctx, o.user, password); err != nil {
			return err
		}
		fmt.Fprintf(out, "User %s may log in from any address; its password is in %s.\n\n", o.user, o.envFile)
	}
	if o.envFile != "" {
		if err := writeEnvFile(o.envFile, c, o, password); err != nil {
			return err
		}
	}

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

func randomPassword() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// writeEnvFile writes what a script needs to reach the cluster as lines of
// NAME='value', readable by the owner only. It appears at once, complete
// (written aside and renamed), so its existence means the cluster is ready.
//
//	AMQPHA_DATA_DIR    the cluster's directory
//	AMQPHA_URIS        the nodes' URIs through their proxies (guest, loopback)
//	AMQPHA_AMQP_PORTS  each node's own AMQP port, on 127.0.0.1 and -extra-ip
//	AMQPHA_EXTRA_IP    -extra-ip
//	AMQPHA_USER        -user, and AMQPHA_PASSWORD its password
func writeEnvFile(path string, c *cluster.Cluster, o options, password string) error {
	var ports []string
	for _, n := range c.Nodes() {
		u, err := url.Parse(n.DirectURI())
		if err != nil {
			return err
		}
		ports = append(ports, u.Port())
	}
	var b strings.Builder
	set := func(name, value string) {
		// Single quotes keep a shell from expanding anything; a quote
		// inside is closed, escaped and reopened.
		fmt.Fprintf(&b, "%s='%s'\n", name, strings.ReplaceAll(value, "'", `'\''`))
	}
	set("AMQPHA_DATA_DIR", c.Dir())
	set("AMQPHA_URIS", strings.Join(c.URIs(), " "))
	set("AMQPHA_AMQP_PORTS", strings.Join(ports, " "))
	set("AMQPHA_EXTRA_IP", o.extraIP)
	set("AMQPHA_USER", o.user)
	set("AMQPHA_PASSWORD", password)

	tmp, err := os.CreateTemp(filepath.Dir(path), ".amqpha-env-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	// CreateTemp makes the file 0600.
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
