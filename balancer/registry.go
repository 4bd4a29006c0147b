package balancer

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// PriorityPrefix before an algorithm's name ("priority+wrr") wraps it in
// Priority.
const PriorityPrefix = "priority+"

var registry = struct {
	sync.Mutex
	m map[string]func() Balancer
}{m: map[string]func() Balancer{
	"rr":     RoundRobin,
	"wrr":    WeightedRoundRobin,
	"lc":     LeastConnections,
	"wlc":    WeightedLeastConnections,
	"p2c":    PowerOfTwoChoices,
	"sh":     func() Balancer { return SourceHash("") },
	"random": Random,
}}

// New returns a new balancer by its name: rr, wrr, lc, wlc, p2c, sh, random,
// one added by Register, or any of them after "priority+" (e.g.
// "priority+lc"). Each call returns a balancer of its own (least-connection
// counts are per balancer).
func New(name string) (Balancer, error) {
	inner, prio := strings.CutPrefix(name, PriorityPrefix)
	registry.Lock()
	f := registry.m[inner]
	registry.Unlock()
	if f == nil {
		return nil, fmt.Errorf("balancer: unknown algorithm %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	if prio {
		return Priority(f()), nil
	}
	return f(), nil
}

// Register makes a balancer available to New under name. It fails if the
// name is taken or contains "+".
func Register(name string, f func() Balancer) error {
	if name == "" || strings.Contains(name, "+") || f == nil {
		return fmt.Errorf("balancer: cannot register %q", name)
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.m[name] != nil {
		return fmt.Errorf("balancer: %q is already registered", name)
	}
	registry.m[name] = f
	return nil
}

// Names lists the registered algorithms, sorted.
func Names() []string {
	registry.Lock()
	defer registry.Unlock()
	names := make([]string, 0, len(registry.m))
	for n := range registry.m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
