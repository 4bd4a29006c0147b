//go:build integration

package failover

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
)

// TestUpdateSecretThenFailover: the user's password changes on the broker;
// UpdateSecret tells the live connections (the broker logs each) and every
// later login uses it, so connections lost afterwards come back. The
// secrets appear in no log line, event or error of the client.
func TestUpdateSecretThenFailover(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	tag := fmt.Sprintf("%d", time.Now().UnixNano())
	user, old, secret := "rotating-"+tag, "first-pw-"+tag, "second-pw-"+tag
	if err := shared.AddUser(ctx, user, old); err != nil {
		t.Fatal(err)
	}
	queue := quorumQueue(t, 0, nil)
	var logs lockedBuffer
	ev := &events{}
	c, err := amqpha.Dial(ctx, amqpha.Config{
		Nodes:   urisAs(user, old),
		Logger:  slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent: ev.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	k, err := c.Consume(ctx, queue, amqpha.ConsumerConfig{}, func(ctx context.Context, d *amqpha.Delivery) amqpha.Action {
		got <- d.MessageId
		return amqpha.Ack
	})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close(ctx)

	if err := shared.AddUser(ctx, user, secret); err != nil { // the password changes
		t.Fatal(err)
	}
	if conn, err := amqp.DialConfig(uriAs(shared.Node(0).DirectURI(), user, old), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)}); err == nil {
		conn.Close()
		t.Fatal("the old password still logs in: the test proves nothing")
	}
	reason := "rotated-" + tag
	if err := c.UpdateSecret(ctx, secret, reason); err != nil {
		t.Fatalf("UpdateSecret: %v", err)
	}
	// The broker logs every update it accepted: one per live connection
	// (publishing and consuming). Its log lines may lag a little.
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n != 2; n = brokerLogCount(t, reason) {
		if time.Now().After(deadline) {
			t.Fatalf("the brokers logged %d secret updates with reason %q, want 2", n, reason)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Both connections are lost and log in again with the new secret.
	lost := c.Reconnects()
	for _, n := range []*cluster.Node{connectedNode(c), consumerNode(c)} {
		if n != nil {
			n.ResetConnections()
		}
	}
	for i := range 3 {
		id := fmt.Sprintf("after-%d", i)
		if err := pub.Publish(ctx, "", queue, amqp.Publishing{MessageId: id}); err != nil {
			t.Fatalf("publish after the failover: %v", err)
		}
		select {
		case m := <-got:
			if m != id {
				t.Fatalf("consumed %s, want %s", m, id)
			}
		case <-ctx.Done():
			t.Fatalf("%s not consumed after the failover", id)
		}
	}
	if c.Reconnects() < lost+2 {
		t.Fatalf("%d reconnects, want both connections to have come back", c.Reconnects()-lost)
	}
	k.Close(ctx)
	c.Close(ctx)

	var errs []string
	for _, e := range ev.snapshot() {
		if e.Err != nil {
			errs = append(errs, e.Err.Error())
		}
	}
	all := logs.String() + strings.Join(errs, "\n")
	for _, s := range []string{old, secret} {
		if strings.Contains(all, s) {
			t.Errorf("a password is in the client's logs or events:\n%s", all)
		}
	}
	if err := c.UpdateSecret(ctx, secret, ""); err == nil || strings.Contains(err.Error(), secret) {
		t.Errorf("UpdateSecret after Close: %v, want ErrClosed without the secret", err)
	}
}

// urisAs is the cluster's (proxied) node URIs, logging in as user.
func urisAs(user, password string) []string {
	var out []string
	for _, u := range shared.URIs() {
		out = append(out, uriAs(u, user, password))
	}
	return out
}

func uriAs(raw, user, password string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

// brokerLogCount counts the lines of every node's log that hold s.
func brokerLogCount(t *testing.T, s string) int {
	n := 0
	for _, node := range shared.Nodes() {
		b, err := os.ReadFile(filepath.Join(shared.Dir(), "nodes", fmt.Sprint(node.Index()), "log", node.Name()+".log"))
		if err != nil {
			t.Fatalf("node log: %v", err)
		}
		n += bytes.Count(b, []byte(s))
	}
	return n
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestUpdateSecretLongestThatLogsIn: UpdateSecret refuses a secret too
// long for a login (AMQP's frame-min-size, 4096 bytes, bounds a
// connection.start-ok; RabbitMQ 3.10 refuses a few bytes more, and since
// live connections take the secret, the failure would show only at the
// next failover, as "username or password not allowed" on every node),
// and the longest it takes logs in.
func TestUpdateSecretLongestThatLogsIn(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	tag := fmt.Sprintf("%d", time.Now().UnixNano())
	user := "long-secret-" + tag
	if err := shared.AddUser(ctx, user, "first-"+tag); err != nil {
		t.Fatal(err)
	}
	queue := quorumQueue(t, 0, nil)
	c, err := amqpha.Dial(ctx, amqpha.Config{Nodes: urisAs(user, "first-"+tag)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// The longest secret UpdateSecret takes (each taken one is pushed to
	// the live connection, which the internal user database accepts).
	secret := func(n int) string { return strings.Repeat("s", n) }
	lo, hi := 1, 1<<16 // lo is taken, hi is not
	if err := c.UpdateSecret(ctx, secret(hi), ""); !errors.Is(err, amqpha.ErrInvalidArgument) {
		t.Fatalf("UpdateSecret of %d bytes: %v, want ErrInvalidArgument", hi, err)
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		switch err := c.UpdateSecret(ctx, secret(mid), ""); {
		case err == nil:
			lo = mid
		case errors.Is(err, amqpha.ErrInvalidArgument):
			hi = mid
		default:
			t.Fatalf("UpdateSecret of %d bytes: %v", mid, err)
		}
	}
	if lo < 3000 {
		t.Fatalf("the longest secret taken is %d bytes; a login frame holds about 4000", lo)
	}
	if err := shared.AddUser(ctx, user, secret(lo)); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateSecret(ctx, secret(lo), ""); err != nil {
		t.Fatal(err)
	}
	lost := c.Reconnects()
	connectedNode(c).ResetConnections()
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pub.Publish(pctx, "", queue, amqp.Publishing{}); err != nil || c.Reconnects() == lost {
		t.Fatalf("publish after the failover with a %d-byte secret: %v (%d reconnects)", lo, err, c.Reconnects()-lost)
	}
}
