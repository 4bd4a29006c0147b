package balancer_test

import (
	"fmt"
	"log"

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
