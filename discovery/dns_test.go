package discovery

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/amqpha/amqpha/balancer"
	"github.com/amqpha/amqpha/integration/dnstest"
)

func addrs(t *testing.T, r Resolver) []string {
	t.Helper()
	return resolvedAddrs(t, r.Resolve)
}

// resolvedAddrs calls resolve and returns the nodes' addresses.
func resolvedAddrs(t *testing.T, resolve func(context.Context) ([]balancer.Node, error)) []string {
	t.Helper()
	nodes, err := resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range nodes {
		out = append(out, n.Addr)
	}
	return out
}

func TestDNSAddressRecordsBecomeNodes(t *testing.T) {
	z := dnstest.Start(t,
		"rabbit.test. 30 IN A 127.0.0.11",
		"rabbit.test. 30 IN A 127.0.0.12",
		"rabbit.test. 30 IN AAAA ::1",
	)
	r, err := DNS(DNSConfig{Name: "rabbit.test", Template: "amqps://app:secret@x/orders", Nameservers: []string{z.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(addrs(t, r), " ")
	want := "amqps://app:secret@127.0.0.11:5671/orders amqps://app:secret@127.0.0.12:5671/orders amqps://app:secret@[::1]:5671/orders"
	if got != want {
		t.Fatalf("nodes %s\nwant %s", got, want)
	}
}

func TestDNSSRVWeightsAndPriorities(t *testing.T) {
	z := dnstest.Start(t,
		"_amqp._tcp.rabbit.test. 30 IN SRV 10 1 5672 disc.test.",
		"_amqp._tcp.rabbit.test. 30 IN SRV 0 3 5673 glued.test.",
		"_amqp._tcp.rabbit.test. 30 IN SRV 0 1 5674 ram.test.",
		"disc.test. 30 IN A 127.0.0.21",
		"glued.test. 30 IN A 127.0.0.22",
		"ram.test. 30 IN A 127.0.0.23",
	)
	r, err := DNS(DNSConfig{Name: "_amqp._tcp.rabbit.test", SRV: true, Nameservers: []string{z.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := r.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		addr             string
		weight, priority int
	}
	wants := []want{
		{"amqp://guest:guest@127.0.0.22:5673/", 3, 0},
		{"amqp://guest:guest@127.0.0.23:5674/", 1, 0},
		{"amqp://guest:guest@127.0.0.21:5672/", 1, 10},
	}
	if len(nodes) != len(wants) {
		t.Fatalf("nodes %+v", nodes)
	}
	for i, w := range wants {
		n := nodes[i]
		if n.Addr != w.addr || n.Weight != w.weight || n.Priority != w.priority || n.Meta["target"] == "" {
			t.Fatalf("node %d = %+v, want %+v", i, n, w)
		}
	}
}

func TestDNSTruncatedAnswerIsAskedOverTCP(t *testing.T) {
	z := dnstest.Start(t, "rabbit.test. 30 IN A 127.0.0.31")
	z.SetTruncate(true)
	r, _ := DNS(DNSConfig{Name: "rabbit.test", Nameservers: []string{z.Addr()}})
	if got := addrs(t, r); len(got) != 1 || !strings.Contains(got[0], "127.0.0.31") {
		t.Fatalf("nodes %v", got)
	}
	if z.Queries("tcp") == 0 {
		t.Fatal("no query over TCP after a truncated answer")
	}
}

func TestDNSFollowsChangesAndKeepsTheLastGoodSet(t *testing.T) {
	z := dnstest.Start(t, "rabbit.test. 30 IN A 127.0.0.41")
	res, _ := DNS(DNSConfig{Name: "rabbit.test", Nameservers: []string{z.Addr()}, MinInterval: time.Second, MaxBackoff: 4 * time.Second})
	r := res.(*dnsResolver)
	now := time.Unix(1000, 0)
	r.cache.now = func() time.Time { return now }

	fresh := func() []string { t.Helper(); return resolvedAddrs(t, r.ResolveFresh) }
	first := addrs(t, r)
	// Within MinInterval: the cached answer, no query, even fresh.
	z.Set(t, "rabbit.test. 30 IN A 127.0.0.42")
	asked := z.Queries("all")
	if got := fresh(); got[0] != first[0] || z.Queries("all") != asked {
		t.Fatalf("within MinInterval: %v, %d queries (was %d)", got, z.Queries("all"), asked)
	}
	// After it, within the TTL (30 s): Resolve answers from the cache,
	// ResolveFresh asks and follows the change.
	now = now.Add(time.Second)
	if got := addrs(t, r); got[0] != first[0] || z.Queries("all") != asked {
		t.Fatalf("within the TTL: %v, %d queries (was %d)", got, z.Queries("all"), asked)
	}
	if got := fresh(); len(got) != 1 || !strings.Contains(got[0], "127.0.0.42") {
		t.Fatalf("after the change: %v", got)
	}
	// Once the TTL ended, Resolve asks too.
	z.Set(t, "rabbit.test. 5 IN A 127.0.0.43")
	now = now.Add(30 * time.Second)
	if got := addrs(t, r); len(got) != 1 || !strings.Contains(got[0], "127.0.0.43") {
		t.Fatalf("after the TTL: %v", got)
	}
	if ttl := r.cache.validTo.Sub(now); ttl != 5*time.Second {
		t.Fatalf("the answer is used for %v, want its TTL of 5 s", ttl)
	}
	// NXDOMAIN: the last good set stays, and lookups back off.
	z.Set(t)
	for range 3 {
		now = now.Add(time.Second)
		if got := fresh(); len(got) != 1 || !strings.Contains(got[0], "127.0.0.43") {
			t.Fatalf("after NXDOMAIN: %v", got)
		}
	}
	// The server is down: still the last good set, without an error.
	z.Stop()
	now = now.Add(10 * time.Second)
	if got := fresh(); len(got) != 1 || !strings.Contains(got[0], "127.0.0.43") {
		t.Fatalf("with the server down: %v", got)
	}
	// Backoff doubles from MinInterval up to MaxBackoff.
	if wait := r.cache.notUntil.Sub(now); wait != 4*time.Second {
		t.Fatalf("backoff after 3 failures is %v, want the 4 s cap", wait)
	}
}

func TestDNSErrorsWithoutAGoodSet(t *testing.T) {
	z := dnstest.Start(t, "other.test. 30 IN A 127.0.0.51")
	r, _ := DNS(DNSConfig{Name: "rabbit.test", Nameservers: []string{z.Addr()}})
	_, err := r.Resolve(context.Background())
	if !errors.Is(err, ErrNoNodes) || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Fatalf("Resolve of a missing name: %v", err)
	}
	z.Set(t, "rabbit.test. 30 IN SRV 0 0 5672 nowhere.test.")
	r, _ = DNS(DNSConfig{Name: "rabbit.test", SRV: true, Nameservers: []string{z.Addr()}})
	if _, err := r.Resolve(context.Background()); err == nil {
		t.Fatal("an SRV target without address gave nodes")
	}
	for _, cfg := range []DNSConfig{{}, {Name: "x", Template: "http://x/"}, {Name: "x", Template: "::"}} {
		if _, err := DNS(cfg); err == nil {
			t.Fatalf("DNS(%+v) accepted", cfg)
		}
	}
}

// FuzzDNSAnswer feeds arbitrary DNS messages to the record handling: it
// must not panic, and every node it makes must carry a usable address.
func FuzzDNSAnswer(f *testing.F) {
	seed := new(dns.Msg)
	seed.SetQuestion("_amqp._tcp.rabbit.test.", dns.TypeSRV)
	for _, s := range []string{
		"_amqp._tcp.rabbit.test. 30 IN SRV 0 5 5672 a.test.",
		"a.test. 30 IN CNAME b.test.",
		"b.test. 30 IN A 127.0.0.1",
		"b.test. 30 IN AAAA ::1",
	} {
		rr, _ := dns.NewRR(s)
		seed.Answer = append(seed.Answer, rr)
	}
	b, _ := seed.Pack()
	f.Add(b)
	f.Add([]byte{0, 0, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0})
	tpl, _ := url.Parse("amqp://u:p@x/v")
	r := &dnsResolver{cfg: DNSConfig{Port: 5672}, tpl: tpl}
	f.Fuzz(func(t *testing.T, data []byte) {
		msg := new(dns.Msg)
		if msg.Unpack(data) != nil {
			return
		}
		srvs, _ := srvTargets(msg)
		for _, s := range srvs {
			ips := append(addresses(msg, s.Target), glueFor(msg, s.Target)...)
			for _, n := range r.nodesFor(ips, int(s.Port), balancer.Node{}) {
				if u, err := url.Parse(n.Addr); err != nil || u.Port() == "" {
					t.Fatalf("node %q: %v", n.Addr, err)
				}
			}
		}
	})
}
