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

func TestFallbackTakesTheFirstSetFound(t *testing.T) {
	ctx := context.Background()
	static := Static(balancer.Node{Addr: "amqp://static"})
	got, err := Fallback(Static(), static).Resolve(ctx)
	if err != nil || len(got) != 1 || got[0].Addr != "amqp://static" {
		t.Fatalf("Fallback(empty, static) = %v, %v", got, err)
	}
	got, _ = Fallback(Static(balancer.Node{Addr: "amqp://first"}), static).Resolve(ctx)
	if got[0].Addr != "amqp://first" {
		t.Fatalf("Fallback asked the second resolver although the first answered: %v", got)
	}
	if _, err := Fallback(Static(), Static()).Resolve(ctx); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("Fallback of two empty resolvers: %v", err)
	}
	if _, err := Fallback().Resolve(ctx); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("Fallback of nothing: %v", err)
	}
}
