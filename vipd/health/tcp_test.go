package health

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// listen returns a loopback listener that accepts and closes connections
// until the test ends.
func listen(t *testing.T) (netip.AddrPort, net.Listener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).AddrPort(), ln
}

// closedPort returns a loopback port nobody listens on.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	return a
}

func TestTCP(t *testing.T) {
	open, _ := listen(t)
	closed := closedPort(t)
	cases := []struct {
		name string
		c    TCP
		ok   bool
	}{
		{"open port", TCP{Addr: open, Timeout: time.Second}, true},
		{"open port, default timeout", TCP{Addr: open}, true},
		{"bindto a local address", TCP{Addr: open, BindTo: netip.MustParseAddr("127.0.0.2"), Timeout: time.Second}, true},
		{"closed port", TCP{Addr: closed, Timeout: time.Second}, false},
		{"bindto an address not on this host", TCP{Addr: open, BindTo: netip.MustParseAddr("192.0.2.1"), Timeout: time.Second}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.c.Check(context.Background())
			if r.OK != c.ok || (r.Err == nil) != c.ok || r.Duration <= 0 {
				t.Fatalf("Check = %+v, want OK %v", r, c.ok)
			}
			if !c.ok {
				var ce *CheckError
				if !errors.As(r.Err, &ce) || ce.Check != "TCP_CHECK" || ce.Target != c.c.Addr.String() {
					t.Errorf("error %v is not a TCP_CHECK CheckError for %v", r.Err, c.c.Addr)
				}
				if errors.Is(r.Err, ErrTimeout) {
					t.Errorf("a refused connection reported as a timeout: %v", r.Err)
				}
			}
		})
	}
}

func TestTCPStopsWithContext(t *testing.T) {
	open, _ := listen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := (&TCP{Addr: open}).Check(ctx); r.OK || !errors.Is(r.Err, context.Canceled) {
		t.Fatalf("Check with a cancelled context = %+v", r)
	}
}
