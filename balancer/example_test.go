package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/balancer"
)

// Prefer the RAM nodes (priority 1) and spread over them by weight; use the
// disc node only when both RAM nodes are down.
func ExamplePriority() {
	nodes := []balancer.Node{
		{Addr: "amqp://disc-1", Priority: 2},
		{Addr: "amqp://ram-1", Priority: 1, Weight: 1},
		{Addr: "amqp://ram-2", Priority: 1, Weight: 1},
	}
	b, _ := balancer.New("priority+wrr")
	p := b.Build(nodes)
	ramDown := func(i int) bool { return nodes[i].Priority == 1 }
	r, _ := p.Pick(balancer.PickInfo{Skip: ramDown})
	fmt.Println(r.Node.Addr)
	// Output: amqp://disc-1
}

// One producer keeps landing on the same node while that node is up.
func ExampleSourceHash() {
	p := balancer.SourceHash("").Build([]balancer.Node{{Addr: "amqp://a"}, {Addr: "amqp://b"}, {Addr: "amqp://c"}})
	first, _ := p.Pick(balancer.PickInfo{Key: "billing-producer"})
	again, _ := p.Pick(balancer.PickInfo{Key: "billing-producer"})
	fmt.Println(first.Node.Addr == again.Node.Addr)
	// Output: true
}

// Choose an algorithm by name, as amqpha.Config.BalancerName does; a
// misspelt name is an error that lists the known ones.
func ExampleNew() {
	b, err := balancer.New("priority+lc")
	fmt.Println(b != nil, err)
	_, err = balancer.New("leastconn")
	fmt.Println(err)
	// Output:
	// true <nil>
	// balancer: unknown algorithm "leastconn" (known: lc, p2c, random, rr, sh, wlc, wrr)
}

// The algorithms New knows, for a --help text or a config check.
func ExampleNames() {
	fmt.Println(balancer.Names())
	// Output: [lc p2c random rr sh wlc wrr]
}

// first is a custom balancer: always the first usable node in the order
// discovery gave.
type first struct{}

func (first) Build(nodes []balancer.Node) balancer.Picker {
	return firstPicker(append([]balancer.Node(nil), nodes...))
}

type firstPicker []balancer.Node

func (p firstPicker) Pick(info balancer.PickInfo) (balancer.Result, error) {
	for i, n := range p {
		if info.Skip == nil || !info.Skip(i) {
			return balancer.Result{Node: n, Index: i}, nil
		}
	}
	return balancer.Result{}, balancer.ErrNoNode
}

// Register a balancer of your own, then choose it by name (for example in
// amqpha.Config.BalancerName).
func ExampleRegister() {
	if err := balancer.Register("first", func() balancer.Balancer { return first{} }); err != nil {
		log.Print(err) // the name is taken
	}
	b, _ := balancer.New("first")
	r, _ := b.Build([]balancer.Node{{Addr: "amqp://a"}, {Addr: "amqp://b"}}).Pick(balancer.PickInfo{Skip: func(i int) bool { return i == 0 }})
	fmt.Println(r.Node.Addr)
	// Output: amqp://b
}

// One pass over the nodes, as the amqpha client makes it when it reconnects:
// every node at most once, in the balancer's order, until one answers or
// Pick says that none is left.
func ExamplePicker() {
	nodes := []balancer.Node{{Addr: "amqp://a"}, {Addr: "amqp://b"}, {Addr: "amqp://c"}}
	p := balancer.RoundRobin().Build(nodes)
	connect := func(addr string) error { return errors.New("connection refused") } // the whole cluster is down

	tried := make([]bool, len(nodes))
	for {
		r, err := p.Pick(balancer.PickInfo{Skip: func(i int) bool { return tried[i] }})
		if errors.Is(err, balancer.ErrNoNode) {
			fmt.Println("every node failed:", tried)
			break
		}
		tried[r.Index] = true
		err = connect(r.Node.Addr)
		if r.Done != nil {
			r.Done(balancer.DoneInfo{Err: err}) // at once here; when the connection ends otherwise
		}
	}
	// Output: every node failed: [true true true]
}

// Every node in turn; the turns of a node that is down go to the others.
func ExampleRoundRobin() {
	p := balancer.RoundRobin().Build([]balancer.Node{{Addr: "amqp://a"}, {Addr: "amqp://b"}, {Addr: "amqp://c"}})
	bDown := func(i int) bool { return i == 1 }
	count := map[string]int{}
	for range 6 {
		r, _ := p.Pick(balancer.PickInfo{Skip: bDown})
		count[r.Node.Addr]++
	}
	fmt.Println(count)
	// Output: map[amqp://a:3 amqp://c:3]
}

// Weights 5, 1 and 1: in every seven picks, five go to the first node.
func ExampleWeightedRoundRobin() {
	p := balancer.WeightedRoundRobin().Build([]balancer.Node{
		{Addr: "amqp://big", Weight: 5},
		{Addr: "amqp://small-1", Weight: 1},
		{Addr: "amqp://small-2", Weight: 1},
	})
	count := map[string]int{}
	for range 7 {
		r, _ := p.Pick(balancer.PickInfo{})
		count[r.Node.Addr]++
	}
	fmt.Println(count)
	// Output: map[amqp://big:5 amqp://small-1:1 amqp://small-2:1]
}

// A connection counts against its node from Pick until Done, and the counts
// belong to the balancer, so they survive a new node set.
func ExampleLeastConnections() {
	b := balancer.LeastConnections()
	p := b.Build([]balancer.Node{{Addr: "amqp://a"}, {Addr: "amqp://b"}})
	first, _ := p.Pick(balancer.PickInfo{})
	second, _ := p.Pick(balancer.PickInfo{})
	fmt.Println("spread:", first.Node.Addr != second.Node.Addr)

	first.Done(balancer.DoneInfo{Err: errors.New("connection reset")})
	third, _ := p.Pick(balancer.PickInfo{})
	fmt.Println("the freed node is next:", third.Node.Addr == first.Node.Addr)

	// Node c joins: it has no connections yet, a and b have one each.
	p = b.Build([]balancer.Node{{Addr: "amqp://a"}, {Addr: "amqp://b"}, {Addr: "amqp://c"}})
	fourth, _ := p.Pick(balancer.PickInfo{})
	fmt.Println(fourth.Node.Addr)
	// Output:
	// spread: true
	// the freed node is next: true
	// amqp://c
}

// Connections in proportion to weight: the node of weight 2 holds twice as
// many as the node of weight 1.
func ExampleWeightedLeastConnections() {
	p := balancer.WeightedLeastConnections().Build([]balancer.Node{
		{Addr: "amqp://large", Weight: 2},
		{Addr: "amqp://small", Weight: 1},
	})
	count := map[string]int{}
	for range 6 {
		r, _ := p.Pick(balancer.PickInfo{}) // none ends: no Done
		count[r.Node.Addr]++
	}
	fmt.Println(count)
	// Output: map[amqp://large:4 amqp://small:2]
}

// Many producers started at once, each with four publishing connections:
// two random choices keep them from all rushing to the node that is least
// loaded at that moment.
func ExamplePowerOfTwoChoices() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client, err := amqpha.Dial(ctx, amqpha.Config{
		Nodes: []string{
			"amqp://app:secret@rabbit-1:5672/",
			"amqp://app:secret@rabbit-2:5672/",
			"amqp://app:secret@rabbit-3:5672/",
		},
		Balancer:    balancer.PowerOfTwoChoices(),
		Connections: 4,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close(context.Background())
}

// Random uses only the nodes that are not skipped.
func ExampleRandom() {
	p := balancer.Random().Build([]balancer.Node{{Addr: "amqp://a"}, {Addr: "amqp://b"}, {Addr: "amqp://c"}})
	onlyB := func(i int) bool { return i != 1 }
	for range 3 {
		r, _ := p.Pick(balancer.PickInfo{Skip: onlyB})
		fmt.Println(r.Node.Addr)
	}
	// Output:
	// amqp://b
	// amqp://b
	// amqp://b
}
