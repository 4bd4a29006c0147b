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
	var errs []error
	for _, r := range f {
		nodes, err := r.Resolve(ctx)
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
