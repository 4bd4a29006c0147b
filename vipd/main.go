package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const defaultStatusAddr = "127.0.0.1:9650"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  vipd run -f FILE [-status ADDR] [-log-level debug|info|warn|error]
  vipd check -f FILE [-dump]
  vipd status [-status ADDR]
  vipd realserver --vip ADDR [--state-dir DIR] start|stop|status
`)
}

// run is main without os.Exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "realserver":
		return cmdRealserver(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "vipd: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipd run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "/etc/keepalived/keepalived.conf", "configuration `file`")
	statusAddr := fs.String("status", defaultStatusAddr, "`address` of the status endpoint (GET /status, /metrics); empty for none")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "vipd: -log-level: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))

	// Signals first: a SIGTERM that arrives while instances start must
	// still end in a clean resignation, not the default death.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	d := newDaemon(*file, log)
	if err := d.start(); err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if *statusAddr != "" {
		srv, err := startStatusServer(*statusAddr, d.status, log)
		if err != nil {
			log.Error("cannot start", "err", err)
			d.shutdown()
			return 1
		}
		defer srv.Close()
		log.Info("status endpoint listening", "addr", srv.Addr())
	}
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			if err := d.reload(); err != nil {
				log.Error("reload", "err", err)
			}
		default:
			log.Info("stopping", "signal", sig.String())
			d.shutdown()
			return 0
		}
	}
	return 0
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipd check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "/etc/keepalived/keepalived.conf", "configuration `file`")
	dump := fs.Bool("dump", false, "print the configuration in effect (defaults and inherited values filled in, secrets redacted) as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vipd check: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := checkConfig(*file, *dump, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipd status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("status", defaultStatusAddr, "`address` of the daemon's status endpoint")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fetchStatus(ctx, *addr, stdout); err != nil {
		fmt.Fprintf(stderr, "vipd: %v\n", err)
		return 1
	}
	return 0
}
