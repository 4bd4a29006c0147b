// Package dnstest runs a DNS server on loopback for tests of DNS discovery.
package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server is a DNS server on loopback (UDP and TCP on one ephemeral port)
// answering from records the test sets. It answers NXDOMAIN for names it
// has no record of, and puts the A records of names starting with "glued."
// in the additional section of SRV answers.
type Server struct {
	mu       sync.Mutex
	rrs      []dns.RR
	truncate bool // answer UDP queries truncated and empty
	queries  map[string]int
	addr     string
	servers  []*dns.Server
}

// Start starts a server with records in zone-file syntax and stops it when
// the test ends.
func Start(t testing.TB, records ...string) *Server {
	t.Helper()
	z := &Server{queries: map[string]int{}}
	z.Set(t, records...)
	var pc net.PacketConn
	var ln net.Listener
	for range 20 { // the UDP port's TCP twin may be taken
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no UDP and TCP port pair free on 127.0.0.1")
	}
	z.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(z.serve)
	for _, s := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		z.servers = append(z.servers, s)
		go s.ActivateAndServe()
		<-started
	}
	t.Cleanup(z.Stop)
	return z
}

// Stop stops the server; later queries time out.
func (z *Server) Stop() {
	for _, s := range z.servers {
		s.Shutdown()
	}
}

// Set replaces the records.
func (z *Server) Set(t testing.TB, records ...string) {
	t.Helper()
	var rrs []dns.RR
	for _, s := range records {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		rrs = append(rrs, rr)
	}
	z.mu.Lock()
	z.rrs = rrs
	z.mu.Unlock()
}

// Queries counts the queries received over network ("udp", "tcp", or
// "all").
func (z *Server) Queries(net string) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.queries[net]
}

func (z *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	z.mu.Lock()
	defer z.mu.Unlock()
	network := w.RemoteAddr().Network()
	z.queries[network]++
	z.queries["all"]++
	m := new(dns.Msg)
	m.SetReply(req)
	q := req.Question[0]
	switch {
	case z.truncate && network == "udp":
		m.Truncated = true
	default:
		for _, rr := range z.rrs {
			h := rr.Header()
			if strings.EqualFold(h.Name, q.Name) && h.Rrtype == q.Qtype {
				m.Answer = append(m.Answer, rr)
			}
		}
		if q.Qtype == dns.TypeSRV {
			for _, rr := range z.rrs {
				if rr.Header().Rrtype == dns.TypeA && strings.HasPrefix(rr.Header().Name, "glued.") {
					m.Extra = append(m.Extra, rr)
				}
			}
		}
		if len(m.Answer) == 0 && !z.known(q.Name) {
			m.Rcode = dns.RcodeNameError
		}
	}
	w.WriteMsg(m)
}

func (z *Server) known(name string) bool {
	for _, rr := range z.rrs {
		if strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// Addr is the server's "host:port".
func (z *Server) Addr() string { return z.addr }

// SetTruncate makes UDP answers truncated and empty, as a server does when
// the answer does not fit.
func (z *Server) SetTruncate(on bool) {
	z.mu.Lock()
	z.truncate = on
	z.mu.Unlock()
}
