package cluster

import (
	"bufio"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with the same line, until closed.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(ln, target)
	t.Cleanup(p.close)
	return p
}

type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dialLine(t *testing.T, addr string) *lineConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{Conn: c, r: bufio.NewReader(c)}
}

// roundTrip sends line and returns the answer, or an error if none comes
// within d.
func (c *lineConn) roundTrip(line string, d time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := c.r.ReadString('\n')
	if len(got) > 0 {
		got = got[:len(got)-1]
	}
	return got, err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProxyForwards(t *testing.T) {
	p := startProxy(t, echoServer(t))
	c := dialLine(t, p.addr())
	if got, err := c.roundTrip("hello", 5*time.Second); err != nil || got != "hello" {
		t.Fatalf("roundTrip = %q, %v", got, err)
	}
	if n := p.count(); n != 1 {
		t.Fatalf("count = %d, want 1", n)
	}
}

func TestProxyCutHoldsTrafficAndHealReleasesIt(t *testing.T) {
	p := startProxy(t, echoServer(t))
	old := dialLine(t, p.addr())
	if _, err := old.roundTrip("before", 5*time.Second); err != nil {
		t.Fatal(err)
	}

	p.setCut(true)
	// Waiting for a non-event: only a timer can bound it.
	if got, err := old.roundTrip("during", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("existing connection answered across a cut: %q, %v", got, err)
	}
	fresh := dialLine(t, p.addr()) // accepted by the kernel, held by the proxy
	if got, err := fresh.roundTrip("new", 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new connection answered across a cut: %q, %v", got, err)
	}

	p.setCut(false)
	// The held bytes arrive, in order, as after a TCP retransmission.
	old.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := old.r.ReadString('\n'); err != nil || got != "during\n" {
		t.Fatalf("held line after heal = %q, %v", got, err)
	}
	fresh.SetDeadline(time.Now().Add(5 * time.Second))
	if got, err := fresh.r.ReadString('\n'); err != nil || got != "new\n" {
		t.Fatalf("held line on new connection after heal = %q, %v", got, err)
	}
	if got, err := old.roundTrip("after", 5*time.Second); err != nil || got != "after" {
		t.Fatalf("roundTrip after heal = %q, %v", got, err)
	}
}

func TestProxyResetClosesConnections(t *testing.T) {
	p := startProxy(t, echoServer(t))
	c := dialLine(t, p.addr())
	if _, err := c.roundTrip("x", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := p.reset(); n != 2 { // the client side and the upstream side
		t.Fatalf("reset closed %d connections, want 2", n)
	}
	if _, err := c.roundTrip("y", 5*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("connection survived a reset: %v", err)
	}
	c2 := dialLine(t, p.addr())
	if got, err := c2.roundTrip("z", 5*time.Second); err != nil || got != "z" {
		t.Fatalf("new connection after reset = %q, %v", got, err)
	}
}

func TestProxyToDeadTargetClosesClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	p := startProxy(t, dead)
	c, err := net.DialTimeout("tcp", p.addr(), 5*time.Second)
	if err != nil {
		return // reset before connect returned: closed, as wanted
	}
	defer c.Close()
	lc := &lineConn{Conn: c, r: bufio.NewReader(c)}
	if _, err := lc.roundTrip("x", 5*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("want the connection closed, got %v", err)
	}
}

func TestProxyCloseEndsEverything(t *testing.T) {
	p := startProxy(t, echoServer(t))
	c := dialLine(t, p.addr())
	p.setCut(true)
	io.WriteString(c, "held\n")
	p.close()
	p.close() // twice is fine
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.r.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("connection survived close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", p.addr(), time.Second); err == nil {
		t.Fatal("listener still accepts after close")
	}
}
