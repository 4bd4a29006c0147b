package cluster

import (
	"errors"
	"net"
	"sync"
	"time"
)

// proxy forwards TCP connections from a loopback listener to one node's
// AMQP port. It is how the harness cuts a node off the network from the
// client's point of view while the node itself keeps running and stays in
// the cluster.
//
// While cut, bytes stop moving in both directions on every connection, old
// and new: nothing is read from either side, so the peers' writes pile up in
// their socket buffers and eventually block, as they would behind a lost
// link; no FIN or RST is sent. New connections are accepted (the kernel
// would do so anyway for the listener) but are not forwarded. Healing lets
// the held bytes through in order, as TCP retransmission would.
type proxy struct {
	ln     net.Listener
	target string
	dial   func(network, addr string) (net.Conn, error)

	mu     sync.Mutex
	gate   chan struct{} // closed while traffic flows; replaced by Cut
	cut    bool
	closed bool
	conns  map[net.Conn]bool // open connections; true for the client side

	done chan struct{} // closed by close
	wg   sync.WaitGroup
}

// newProxy starts forwarding connections accepted on ln to target. It owns
// ln from here on.
func newProxy(ln net.Listener, target string) *proxy {
	p := &proxy{
		ln:     ln,
		target: target,
		dial:   (&net.Dialer{Timeout: 5 * time.Second}).Dial,
		gate:   make(chan struct{}),
		conns:  make(map[net.Conn]bool),
		done:   make(chan struct{}),
	}
	close(p.gate)
	p.wg.Add(1)
	go p.acceptLoop()
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

// setCut cuts (true) or heals (false) every connection through the proxy.
func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == cut {
		return
	}
	p.cut = cut
	if cut {
		p.gate = make(chan struct{})
	} else {
		close(p.gate)
	}
}

func (p *proxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// wait blocks until traffic may flow. It reports false when the proxy is
// closing.
func (p *proxy) wait() bool {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	select {
	case <-gate:
		return true
	case <-p.done:
		return false
	}
}

// reset closes every connection through the proxy at once with an RST, as a
// router restart or a firewall reset would. The listener stays open.
func (p *proxy) reset() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		n++
	}
	return n
}

// count is the number of open client connections through the proxy.
func (p *proxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, client := range p.conns {
		if client {
			n++
		}
	}
	return n
}

// close stops the listener, closes every connection and waits for every
// goroutine of the proxy. Safe to call twice.
func (p *proxy) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// track registers c so close and reset reach it; false when closing.
func (p *proxy) track(c net.Conn, client bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = client
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // listener closed
		}
		if !p.track(c, true) {
			c.Close()
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve forwards one client connection. A connection accepted while the
// proxy is cut is not forwarded until it heals.
func (p *proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	if !p.wait() {
		return
	}
	upstream, err := p.dial("tcp", p.target)
	if err != nil {
		// The node is down: the client sees its connection closed, as
		// close to "refused" as an accepted connection can get.
		if tc, ok := client.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		return
	}
	if !p.track(upstream, false) {
		upstream.Close()
		return
	}
	defer p.untrack(upstream)

	var pair sync.WaitGroup
	pair.Add(2)
	go func() { defer pair.Done(); p.pipe(upstream, client) }()
	go func() { defer pair.Done(); p.pipe(client, upstream) }()
	pair.Wait()
}

// pipe copies src to dst, holding bytes while the proxy is cut. When either
// side ends, both are closed so the other direction ends too (AMQP has no
// use for half-closed connections).
func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		if !p.wait() {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
