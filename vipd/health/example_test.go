package health_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/amqpha/amqpha/vipd/health"
	"github.com/amqpha/amqpha/vipd/script"
)

// A Monitor runs a real server's checks on their own goroutines and calls
// OnChange when the real server goes down or comes back.
func ExampleMonitor() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()

	changes := make(chan health.Status, 8)
	m, err := health.NewMonitor(health.MonitorConfig{
		Checks: []health.Check{{
			Name:             "TCP_CHECK " + addr.String(),
			Checker:          &health.TCP{Addr: addr, Timeout: time.Second},
			DelayLoop:        100 * time.Millisecond,
			Retry:            1,
			DelayBeforeRetry: 50 * time.Millisecond,
		}},
		OnChange: func(s health.Status) { changes <- s },
	})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	ln.Close() // the real server goes away
	s := <-changes
	fmt.Println(s.State, s.Checks[0].Name == "TCP_CHECK "+addr.String())
	// Output: down true
}

// With misc_dynamic, a MISC_CHECK's exit status 2..255 sets the real
// server's weight to status-2.
func ExampleMisc() {
	c := &health.Misc{
		Command: script.Command{Argv: []string{"/bin/sh", "-c", "exit 12"}, Timeout: 5 * time.Second},
		Dynamic: true,
	}
	r := c.Check(context.Background())
	fmt.Println(r.OK, r.Weight, r.WeightSet)
	// Output: true 10 true
}
