package amqphatest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha/amqphatest"
)

// fatalTB records Fatalf instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper()                        {}
func (f *fatalTB) Fatalf(format string, a ...any) { f.msg = fmt.Sprintf(format, a...) }

func TestNodeCounts(t *testing.T) {
	for _, n := range []int{0, -1, amqphatest.MaxNodes + 1} {
		if _, err := amqphatest.Start(amqphatest.WithNodes(n)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("WithNodes(%d)", n)) {
			t.Errorf("Start(WithNodes(%d)) = %v, want an error naming it", n, err)
		}
		tb := &fatalTB{TB: t}
		if srv := amqphatest.NewServer(tb, amqphatest.WithNodes(n)); srv != nil || !strings.Contains(tb.msg, "WithNodes") {
			t.Errorf("NewServer(WithNodes(%d)): server %v, Fatalf %q", n, srv, tb.msg)
		}
	}
	for _, n := range []int{1, amqphatest.MaxNodes} {
		srv := amqphatest.NewServer(t, amqphatest.WithNodes(n))
		if srv.Nodes() != n || len(srv.URLs()) != n || len(srv.Config().Nodes) != n {
			t.Errorf("WithNodes(%d): %d nodes, %d URLs", n, srv.Nodes(), len(srv.URLs()))
		}
		if err := srv.Config().Validate(); err != nil {
			t.Errorf("Config().Validate() = %v", err)
		}
	}
	if srv := amqphatest.NewServer(t, nil); srv.Nodes() != amqphatest.DefaultNodes {
		t.Errorf("default: %d nodes, want %d", srv.Nodes(), amqphatest.DefaultNodes)
	}
}

func TestPanicsOnBadArguments(t *testing.T) {
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(2))
	for _, c := range []struct {
		name string
		call func()
		want string
	}{
		{"Kill(-1)", func() { srv.Kill(-1) }, "no node -1"},
		{"Kill(2)", func() { srv.Kill(2) }, "no node 2"},
		{"Hang(2)", func() { srv.Hang(2) }, "no node 2"},
		{"Shutdown(5)", func() { srv.Shutdown(5) }, "no node 5"},
		{"Revive(2)", func() { srv.Revive(2) }, "no node 2"},
		{"URL(2)", func() { srv.URL(2) }, "no node 2"},
		{"Connections(-1)", func() { srv.Connections(-1) }, "no node -1"},
		{"NackNext(-1)", func() { srv.NackNext(-1) }, "NackNext(-1)"},
		{"ReturnNext(-3)", func() { srv.ReturnNext(-3) }, "ReturnNext(-3)"},
		{"Block(256 bytes)", func() { srv.Block(strings.Repeat("r", 256)) }, "at most 255"},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), c.want) {
					t.Fatalf("panic %v, want one containing %q", r, c.want)
				}
			}()
			c.call()
		})
	}
	srv.Block(strings.Repeat("r", 255)) // the limit itself works
	srv.Unblock()
}

func TestPublishInputs(t *testing.T) {
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(1))
	for _, c := range []struct {
		name          string
		exchange, key string
		msg           amqp.Publishing
		want          string
	}{
		{"missing exchange", "nope", "k", amqp.Publishing{}, `no exchange "nope"`},
		{"long exchange", strings.Repeat("e", 256), "k", amqp.Publishing{}, "at most 255"},
		{"long key", "", strings.Repeat("k", 256), amqp.Publishing{}, "at most 255"},
		{"bad header", "", "k", amqp.Publishing{Headers: amqp.Table{"h": struct{}{}}}, "unsupported field type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := srv.Publish(c.exchange, c.key, c.msg); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Publish = %v, want an error containing %q", err, c.want)
			}
		})
	}
	queues, err := srv.Publish("", "nobody", amqp.Publishing{Body: []byte("x")})
	if err != nil || len(queues) != 0 {
		t.Fatalf("unroutable Publish = %v, %v; want no queue, no error", queues, err)
	}
	queues, err = srv.Publish("", strings.Repeat("k", 255), amqp.Publishing{})
	if err != nil || len(queues) != 0 {
		t.Fatalf("Publish with a 255-byte key = %v, %v", queues, err)
	}
	if srv.Ready("nobody") != nil || srv.Acked("nobody") != nil || srv.Rejected("nobody") != nil || srv.Unacked("nobody") != 0 {
		t.Fatal("an undeclared queue has messages")
	}
}

func TestNodeIndex(t *testing.T) {
	srv := amqphatest.NewServer(t)
	u := srv.URL(2)
	host := strings.TrimSuffix(strings.TrimPrefix(u, "amqp://guest:guest@"), "/")
	for _, c := range []struct {
		addr string
		want int
	}{
		{u, 2},
		{"amqp://guest:xxxxx@" + host + "/", 2},
		{"amqp://other:pw@" + host + "/vhost", 2},
		{host, 2},
		{srv.URL(0), 0},
		{"", -1},
		{"amqp://127.0.0.1:1/", -1},
		{"not a url", -1},
		{"%zz", -1},
	} {
		if got := srv.NodeIndex(c.addr); got != c.want {
			t.Errorf("NodeIndex(%q) = %d, want %d", c.addr, got, c.want)
		}
	}
}

func TestWaitNilCondition(t *testing.T) {
	srv := amqphatest.NewServer(t, amqphatest.WithNodes(1))
	if err := srv.Wait(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "nil condition") {
		t.Fatalf("Wait(nil) = %v, want an error", err)
	}
}
