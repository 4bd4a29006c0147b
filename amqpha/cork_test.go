package amqpha

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/fakebroker"
)

// Publishes that queue behind one another share system calls: a send with
// others waiting behind it leaves its frames for the next send to take
// along. Before, every publish was one write of its own (amqp091-go
// flushes each), the larger part of a publish's CPU time at windows of 64
// and more.
func TestConcurrentPublishesShareWrites(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), func(c *Config) { c.HangTimeout = -1 })
	p := newTestPublisher(t, c, PublisherConfig{Window: 256})
	ctx := testCtx(t, time.Minute)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("warm-up")}); err != nil {
		t.Fatal(err)
	}
	tc := c.sup.trackedFor(p.cur.conn)
	if tc == nil {
		t.Fatal("no socket for the publisher's connection")
	}
	const goroutines, each = 64, 50
	before := tc.writes.Load()
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: make([]byte, 1024)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	writes := tc.writes.Load() - before
	t.Logf("%d publishes in %d socket writes", goroutines*each, writes)
	if writes > goroutines*each*9/10 {
		t.Fatalf("%d publishes took %d socket writes: sends waiting behind one another did not share them", goroutines*each, writes)
	}
	if got := len(srv.Publishes()); got != goroutines*each+1 {
		t.Fatalf("the broker read %d publishes, want %d", got, goroutines*each+1)
	}
}

// A send corked because another waited behind it is not left in the
// buffer when that other gives up (its ctx ends): the last waiter to give
// up flushes, and the corked message is confirmed.
func TestCorkedSendFlushedWhenTheWaiterGivesUp(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	// Nothing else writes meanwhile (no probes; heartbeats every 30 s).
	c := fakeClient(t, srv.URL(), func(c *Config) { c.HangTimeout = -1; c.Heartbeat = time.Minute })
	p := newTestPublisher(t, c, PublisherConfig{})
	ctx := testCtx(t, 20*time.Second)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("warm-up")}); err != nil {
		t.Fatal(err)
	}
	s := p.cur
	s.waiting.Add(1) // as if a send waited behind the next one
	conf, err := p.PublishAsync(ctx, "", "q", amqp.Publishing{MessageId: "corked"})
	if err != nil {
		t.Fatal(err)
	}
	s.tc.wmu.Lock()
	held := len(s.tc.wbuf)
	s.tc.wmu.Unlock()
	if held == 0 {
		t.Fatal("the send with a waiter behind it was not corked")
	}
	select {
	case <-conf.Done():
		t.Fatal("confirmed while its frames were held back")
	case <-time.After(100 * time.Millisecond):
	}
	s.stopWaiting() // the waiter gives up
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := conf.Wait(wctx); err != nil {
		t.Fatalf("the corked message after its waiter gave up: %v", err)
	}
	// Confirmed as it was first sent: not taken for stuck (ConfirmTimeout)
	// and sent again, which would also have confirmed it, late.
	sent := 0
	for _, pub := range srv.Publishes() {
		if pub.Props.MessageID == "corked" {
			sent++
		}
	}
	if sent != 1 {
		t.Fatalf("the corked message reached the broker %d times, want once", sent)
	}
}

// A send that gives up waiting behind a write the broker does not read
// (its ctx ends) returns by its ctx: the flush it owes the send before it
// does not hold it there.
func TestWaiterLeavesByCtxBehindAStuckWrite(t *testing.T) {
	srv := fakebroker.Start(t)
	srv.DeclareQueue("q")
	c := fakeClient(t, srv.URL(), func(c *Config) { c.HangTimeout = -1; c.Heartbeat = time.Minute })
	p := newTestPublisher(t, c, PublisherConfig{})
	ctx := testCtx(t, 30*time.Second)
	if err := p.Publish(ctx, "", "q", amqp.Publishing{Body: []byte("warm-up")}); err != nil {
		t.Fatal(err)
	}
	s := p.cur
	srv.StopReading()
	// A message larger than the socket buffers: its write blocks (in
	// PublishAsync, which sends in its caller's goroutine when it can).
	bigDone := make(chan error, 1)
	go func() { bigDone <- p.Publish(ctx, "", "q", amqp.Publishing{Body: make([]byte, 64<<20)}) }()
	if err := srv.WaitFor(ctx, func() bool { return len(s.sendSem) > 0 }); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.Publish(wctx, "", "q", amqp.Publishing{Body: []byte("behind")}) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a publish behind a stuck write was confirmed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the publish that gave up waiting did not return by its ctx")
	}
	srv.ResumeReading()
	if err := <-bigDone; err != nil {
		t.Fatalf("the large message once the broker reads again: %v", err)
	}
}

// What a cork holds back leaves in order, with the next write or flush, and
// a write that would take the held bytes past corkMax sends them first: a
// large message is never copied into the buffer, and nothing is reordered.
func TestCorkKeepsOrderAndBound(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	tc := &trackedConn{Conn: client, sock: client}
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server)
		got <- b
	}()
	var want []byte
	write := func(b []byte) {
		t.Helper()
		if n, err := tc.Write(b); err != nil || n != len(b) {
			t.Fatalf("Write(%d bytes) = %d, %v", len(b), n, err)
		}
		want = append(want, b...)
	}
	tc.cork()
	write([]byte("one "))
	write([]byte("two "))
	if n := tc.writes.Load(); n != 0 {
		t.Fatalf("%d socket writes while corked, want 0", n)
	}
	big := bytes.Repeat([]byte{'x'}, corkMax)
	write(big) // past corkMax with what is held: held bytes first, then big
	if n := tc.writes.Load(); n != 2 {
		t.Fatalf("%d socket writes after a write past corkMax, want 2", n)
	}
	write([]byte("three "))
	tc.uncork()
	write([]byte("four")) // uncorked: takes "three " along, one write
	if n := tc.writes.Load(); n != 3 {
		t.Fatalf("%d socket writes, want 3", n)
	}
	tc.cork()
	write([]byte(" five"))
	tc.uncork()
	tc.flush()
	client.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the peer read %d bytes, not the %d written in order", len(b), len(want))
	}
}
