package discovery

import (
	"context"
	"errors"
	"testing"

	"github.com/amqpha/amqpha/balancer"
)

func TestStatic(t *testing.T) {
	in := []balancer.Node{{Addr: "amqp://a"}, {Addr: "amqp://b", Weight: 2}}
	r := Static(in...)
	in[0].Addr = "changed"
	got, err := r.Resolve(context.Background())
	if err != nil || len(got) != 2 || got[0].Addr != "amqp://a" || got[1].Weight != 2 {
		t.Fatalf("Resolve = %v, %v", got, err)
	}
	got[1].Addr = "changed"
	again, _ := r.Resolve(context.Background())
	if again[1].Addr != "amqp://b" {
		t.Fatal("Resolve handed out its own slice")
	}
	if _, err := Static().Resolve(context.Background()); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("empty: err = %v, want ErrNoNodes", err)
	}
}
