package discovery

import (
	"context"
	"errors"

	"github.com/amqpha/amqpha/balancer"
)

// ErrNoNodes is returned by a resolver that found no node.
var ErrNoNodes = errors.New("discovery: no nodes")

// Resolver finds the cluster's nodes. Resolve is called by the client's
// supervisor goroutine before each reconnection pass; it may block on I/O
// within ctx. It returns the whole node set, never a delta. Implementations
// must be safe for concurrent use.
type Resolver interface {
	Resolve(ctx context.Context) ([]balancer.Node, error)
}

// FreshResolver is a Resolver that caches its answers (by their TTL) and
// can be asked to look again. The client calls ResolveFresh before every
// reconnection pass, where a changed node set matters most, and Resolve
// otherwise. It is safe for concurrent use.
type FreshResolver interface {
	Resolver
	// ResolveFresh looks the nodes up again, unless its source was asked
	// very recently.
	ResolveFresh(ctx context.Context) ([]balancer.Node, error)
}

// ResolveFresh calls r.ResolveFresh if r is a FreshResolver, else
// r.Resolve.
func ResolveFresh(ctx context.Context, r Resolver) ([]balancer.Node, error) {
	if f, ok := r.(FreshResolver); ok {
		return f.ResolveFresh(ctx)
	}
	return r.Resolve(ctx)
}

// Static returns a resolver that always returns nodes.
func Static(nodes ...balancer.Node) Resolver {
	return static(append([]balancer.Node(nil), nodes...))
}

type static []balancer.Node

func (s static) Resolve(context.Context) ([]balancer.Node, error) {
	if len(s) == 0 {
		return nil, ErrNoNodes
	}
	return append([]balancer.Node(nil), s...), nil
}

// Fallback returns a resolver that asks each of resolvers in turn and
// returns the first node set found, e.g. DNS first and a static list when
// DNS has never answered. Errors are joined when none finds a node.
func Fallback(resolvers ...Resolver) Resolver { return fallback(resolvers) }

type fallback []Resolver

func (f fallback) Resolve(ctx context.Context) ([]balancer.Node, error) {
	return f.resolve(ctx, func(r Resolver) ([]balancer.Node, error) { return r.Resolve(ctx) })
}

func (f fallback) ResolveFresh(ctx context.Context) ([]balancer.Node, error) {
	return f.resolve(ctx, func(r Resolver) ([]balancer.Node, error) { return ResolveFresh(ctx, r) })
}

func (f fallback) resolve(ctx context.Context, ask func(Resolver) ([]balancer.Node, error)) ([]balancer.Node, error) {
	var errs []error
	for _, r := range f {
		nodes, err := ask(r)
		if err == nil && len(nodes) > 0 {
			return nodes, nil
		}
		if err == nil {
			err = ErrNoNodes
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, ErrNoNodes
	}
	return nil, errors.Join(errs...)
}
