package fakebroker

import (
	"fmt"
	"net"
	"sync/atomic"
)

// node is one listener of the server: a cluster node. All nodes share the
// server's state (queues, exchanges, consumers, stored messages).
type node struct {
	index int
	ln    net.Listener
	addr  string

	// Guarded by Server.mu.
	killed bool
	hung   bool
	hungCh chan struct{} // open while hung

	silent atomic.Bool // mirrors hung for the writers
}

func (n *node) url() string { return "amqp://guest:guest@" + n.addr + "/" }

// WithNodes makes the server listen on n addresses (n at least 1), its
// nodes, which share every queue, exchange, consumer and stored message,
// like the nodes of one RabbitMQ cluster. Kill, Hang and Revive act on one
// node; everything else acts on all of them.
func WithNodes(n int) Option { return func(c *config) { c.nodes = max(n, 1) } }

// Nodes returns how many nodes the server has.
func (s *Server) Nodes() int { return len(s.nodes) }

// NodeURL returns the AMQP URL of node i, "amqp://guest:guest@127.0.0.1:PORT/".
// It panics if i is not a node's index.
func (s *Server) NodeURL(i int) string { return s.nodeAt(i).url() }

// NodeAddr returns the listening address of node i, "127.0.0.1:PORT".
func (s *Server) NodeAddr(i int) string { return s.nodeAt(i).addr }

// NodeOf returns the index of the node a connection (by its id, as in
// Publish.Conn) came in on, or -1 if the connection has ended.
func (s *Server) NodeOf(conn int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.conns[conn]; ok {
		return c.node.index
	}
	return -1
}

func (s *Server) nodeAt(i int) *node {
	if i < 0 || i >= len(s.nodes) {
		panic(fmt.Sprintf("fakebroker: no node %d (the server has %d)", i, len(s.nodes)))
	}
	return s.nodes[i]
}

// Kill stops node i as a crashed process would: every connection to it is
// closed at once without a word (messages they had been delivered and had
// not acknowledged go back to their queues), and until Revive the node
// resets every new connection right after accepting it. A hung node that
// is killed stays down until Revive.
func (s *Server) Kill(i int) {
	n := s.nodeAt(i)
	s.mu.Lock()
	n.killed = true
	var conns []*conn
	for _, c := range s.connList(false) {
		if c.node == n {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown()
	}
}

// Hang makes node i stop reading from and writing to its connections,
// including heartbeats, as a stopped (SIGSTOP) process would: the kernel
// still accepts new connections, but their handshake never starts. Messages
// delivered to the node's consumers stay unacknowledged there until Revive
// or Kill; while it hangs, no new message goes to its consumers.
func (s *Server) Hang(i int) {
	n := s.nodeAt(i)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !n.hung {
		n.hung = true
		n.hungCh = make(chan struct{})
		n.silent.Store(true)
	}
}

// Revive undoes Kill and Hang of node i: it accepts connections again, and
// a hung node's connections resume reading and writing (a client that gave
// up on one meanwhile will find it closed).
func (s *Server) Revive(i int) {
	n := s.nodeAt(i)
	s.mu.Lock()
	defer s.mu.Unlock()
	n.killed = false
	if n.hung {
		n.hung = false
		close(n.hungCh)
		n.silent.Store(false)
		for _, c := range s.conns {
			if c.node == n {
				c.wakeWriter()
			}
		}
	}
	s.dispatchAllLocked()
}

// resetClose closes a TCP connection with a reset, as a host whose broker is
// down answers.
func resetClose(nc net.Conn) {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = nc.Close()
}

// OpenConnectionsOn returns how many connections to node i completed
// connection.open and are still open.
func (s *Server) OpenConnectionsOn(i int) int {
	n := s.nodeAt(i)
	s.mu.Lock()
	defer s.mu.Unlock()
	count := 0
	for _, c := range s.conns {
		if c.node == n && c.open {
			count++
		}
	}
	return count
}

// HasExchange reports whether exchange exists: built in, or declared and
// not deleted.
func (s *Server) HasExchange(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, builtin := builtinExchanges[name]
	return builtin || s.exchanges[name]
}

// Shutdown stops node i as a broker shutting down does: every open
// connection to it is sent connection.close 320 CONNECTION_FORCED (and ends
// when its client answers, or two seconds later), and until Revive the node
// resets new connections, like Kill.
func (s *Server) Shutdown(i int) {
	n := s.nodeAt(i)
	frame := closeFrame(0, 320, "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'", methodKey{})
	s.mu.Lock()
	n.killed = true
	var drop []*conn // still in the handshake
	for _, c := range s.connList(false) {
		switch {
		case c.node != n:
		case c.open:
			c.enqueue(&outItem{lane: c.ch0, kind: itemConnClose, data: frame})
		default:
			drop = append(drop, c)
		}
	}
	s.mu.Unlock()
	for _, c := range drop {
		c.shutdown()
	}
}

// noteBlockedPublisher marks c as a publishing connection. In WithStore
// mode Block applies, as RabbitMQ's resource alarms do, only to connections
// that publish: one that publishes for the first time while blocked is sent
// connection.blocked now, and its reader stops before the publish's content.
func (s *Server) noteBlockedPublisher(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.published {
		return
	}
	c.published = true
	if s.blocked && c.capBlocked && !c.sentBlocked {
		c.sentBlocked = true
		c.enqueue(&outItem{lane: c.ch0, data: blockedFrame(s.blockReason)})
	}
}
