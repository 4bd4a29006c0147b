package balancer

import "errors"

// ErrNoNode is returned by Pick when every node is skipped, or there is none.
var ErrNoNode = errors.New("balancer: no node available")

// Node is one member of the cluster as the balancer sees it. Every balancer
// reads the same type, so a node set can move from one algorithm to another.
type Node struct {
	// Addr is how to reach the node: for amqpha, an AMQP URI (amqp:// or
	// amqps://). It identifies the node; two nodes never share it.
	Addr string
	// Weight is the node's share of connections for weighted algorithms;
	// 0 means 1.
	Weight int
	// Priority groups nodes: algorithms that honour it use lower values
	// first.
	Priority int
	// Meta carries whatever discovery learned about the node (zone, disc or
	// RAM node, …). Pickers must not modify it.
	Meta map[string]string
}

// Balancer builds pickers. Build is called by the client's supervisor
// goroutine whenever the node set changes; it may be slow but must not
// block on I/O.
type Balancer interface {
	// Build returns a picker over nodes. The picker must not keep nodes'
	// slice: the caller may reuse it.
	Build(nodes []Node) Picker
}

// Picker chooses a node. Pick is called for every dial, possibly from
// several goroutines at once; it takes no lock and never blocks.
type Picker interface {
	Pick(info PickInfo) (Result, error)
}

// PickInfo is what the caller knows when it asks for a node.
type PickInfo struct {
	// Skip reports the nodes, by index in the node set the picker was
	// built from, that must not be returned now. Nil skips none.
	Skip func(index int) bool
	// Key is what hashing algorithms (sh) map onto a node; empty means the
	// balancer's own key.
	Key string
}

// Result is a picked node.
type Result struct {
	Node  Node
	Index int // position in the node set the picker was built from
	// Done, if not nil, is called once when the connection to the node
	// ends or fails to open, so that algorithms that count connections can
	// release theirs.
	Done func(DoneInfo)
}

// DoneInfo tells a picker how a connection ended.
type DoneInfo struct {
	// Err is why the connection ended or failed; nil for a clean close.
	Err error
}
