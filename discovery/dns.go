package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/amqpha/amqpha/balancer"
)

// DNSConfig configures a DNS resolver. Zero fields other than Name and
// Template take the defaults below.
type DNSConfig struct {
	// Name is the name to look up: an SRV name such as
	// "_amqp._tcp.rabbit.example.com" when SRV is set, else a name whose
	// A and AAAA records each become a node.
	Name string
	// SRV looks up SRV records: each target and port becomes a node, with
	// the record's priority as balancer priority (lower first) and its
	// weight as balancer weight.
	SRV bool
	// Port is the AMQP port of A/AAAA nodes; 0 means the Template's port,
	// else 5672 (5671 for amqps).
	Port int
	// Template is an AMQP URI whose host and port are replaced by each
	// node's, keeping scheme, user, password and vhost, e.g.
	// "amqps://app:secret@rabbit/orders". "" means "amqp://guest:guest@x/".
	Template string
	// Nameservers are "host:port" addresses asked in turn; empty means
	// those of /etc/resolv.conf.
	Nameservers []string
	// Timeout bounds one query to one nameserver; 0 means 2 s.
	Timeout time.Duration
	// MinInterval is the least time between two lookups: a Resolve sooner
	// than that returns the last answer. 0 means 1 s.
	MinInterval time.Duration
	// MaxBackoff bounds the wait after failed lookups (MinInterval doubling
	// with each failure in a row), during which the last good set is
	// returned without asking. 0 means 30 s.
	MaxBackoff time.Duration
	// Logger receives failed lookups; nil discards them.
	Logger *slog.Logger
}

// DNS returns a resolver that looks the cluster up in DNS with
// github.com/miekg/dns. Resolve uses the last answer until its smallest
// TTL ends; ResolveFresh, which the client calls before each reconnection
// pass, asks again whenever MinInterval has passed, so changed records are
// followed at the next connection loss (and, with
// amqpha.Config.RebalanceInterval, once their TTL ends). A truncated
// UDP answer is asked again over TCP. When a lookup fails (timeout,
// SERVFAIL, NXDOMAIN, no records) the last good node set is returned and
// lookups back off; the error is returned only while there has never been
// a good set; with a good set at hand a lookup gets at most 300 ms, so a
// dead DNS server delays a reconnection by that much once per backoff
// period.
func DNS(cfg DNSConfig) (Resolver, error) {
	if cfg.Name == "" {
		return nil, errors.New("discovery: DNS: Name is empty")
	}
	tpl, err := parseTemplate("DNS", cfg.Template)
	if err != nil {
		return nil, err
	}
	if cfg.Port == 0 {
		cfg.Port = 5672
		if tpl.Scheme == "amqps" {
			cfg.Port = 5671
		}
		if p, err := strconv.Atoi(tpl.Port()); err == nil {
			cfg.Port = p
		}
	}
	if len(cfg.Nameservers) == 0 {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil {
			return nil, fmt.Errorf("discovery: DNS: no Nameservers and %w", err)
		}
		for _, s := range cc.Servers {
			cfg.Nameservers = append(cfg.Nameservers, net.JoinHostPort(s, cc.Port))
		}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	return &dnsResolver{cfg: cfg, tpl: tpl, cache: newCache("DNS "+cfg.Name, cfg.MinInterval, cfg.MaxBackoff, cfg.Logger)}, nil
}

type dnsResolver struct {
	cfg   DNSConfig
	tpl   *url.URL
	cache cache
}

// Resolve returns the last answer while its TTL lasts, else asks DNS.
func (r *dnsResolver) Resolve(ctx context.Context) ([]balancer.Node, error) {
	return r.cache.resolve(ctx, false, r.lookup)
}

// ResolveFresh asks DNS unless the last lookup was less than MinInterval
// ago.
func (r *dnsResolver) ResolveFresh(ctx context.Context) ([]balancer.Node, error) {
	return r.cache.resolve(ctx, true, r.lookup)
}

// lookup asks DNS for the node set; ttl is the smallest TTL of the records
// used.
func (r *dnsResolver) lookup(ctx context.Context) (nodes []balancer.Node, ttl time.Duration, err error) {
	var minTTL uint32 = math.MaxUint32
	ctx = context.WithValue(ctx, ttlKey{}, &minTTL)
	nodes, err = r.lookupNodes(ctx)
	if err != nil {
		return nil, 0, err
	}
	if minTTL != math.MaxUint32 {
		ttl = time.Duration(minTTL) * time.Second
	}
	return nodes, ttl, nil
}

// ttlKey carries, through one lookup's context, where query notes the
// smallest TTL it saw.
type ttlKey struct{}

func (r *dnsResolver) lookupNodes(ctx context.Context) ([]balancer.Node, error) {
	name := dns.Fqdn(r.cfg.Name)
	if !r.cfg.SRV {
		return r.hostNodes(ctx, name, r.cfg.Port, balancer.Node{})
	}
	msg, err := r.query(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	targets, err := srvTargets(msg)
	if err != nil {
		return nil, err
	}
	var nodes []balancer.Node
	var errs []error
	for _, t := range targets {
		proto := balancer.Node{Weight: int(t.Weight), Priority: int(t.Priority), Meta: map[string]string{"target": t.Target}}
		if ips := glueFor(msg, t.Target); len(ips) > 0 {
			nodes = append(nodes, r.nodesFor(ips, int(t.Port), proto)...)
			continue
		}
		ns, err := r.hostNodes(ctx, t.Target, int(t.Port), proto)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		nodes = append(nodes, ns...)
	}
	if len(nodes) == 0 {
		return nil, errors.Join(append(errs, errors.New("no SRV target has an address"))...)
	}
	return nodes, nil
}

// hostNodes makes a node of every A and AAAA record of host.
func (r *dnsResolver) hostNodes(ctx context.Context, host string, port int, proto balancer.Node) ([]balancer.Node, error) {
	var ips []net.IP
	var errs []error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		msg, err := r.query(ctx, host, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ips = append(ips, addresses(msg, host)...)
	}
	if len(ips) == 0 {
		errs = append(errs, fmt.Errorf("no A or AAAA record for %s", host))
		return nil, errors.Join(errs...)
	}
	return r.nodesFor(ips, port, proto), nil
}

func (r *dnsResolver) nodesFor(ips []net.IP, port int, proto balancer.Node) []balancer.Node {
	out := make([]balancer.Node, 0, len(ips))
	for _, ip := range ips {
		u := *r.tpl
		u.Host = net.JoinHostPort(ip.String(), strconv.Itoa(port))
		n := proto
		n.Addr = u.String()
		n.Meta = map[string]string{"source": "dns"}
		for k, v := range proto.Meta {
			n.Meta[k] = v
		}
		out = append(out, n)
	}
	return out
}

// query asks each nameserver in turn until one answers, over UDP and, if
// the answer is truncated, again over TCP.
func (r *dnsResolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(4096, false)
	var errs []error
	for _, server := range r.cfg.Nameservers {
		msg, err := r.exchange(ctx, q, server, "udp")
		if err == nil && msg.Truncated {
			msg, err = r.exchange(ctx, q, server, "tcp")
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch msg.Rcode {
		case dns.RcodeSuccess:
			if low, ok := ctx.Value(ttlKey{}).(*uint32); ok {
				for _, rr := range msg.Answer {
					*low = minU32(*low, rr.Header().Ttl)
				}
			}
			return msg, nil
		case dns.RcodeNameError:
			return nil, fmt.Errorf("%s: NXDOMAIN", name)
		default:
			errs = append(errs, fmt.Errorf("%s %s from %s: %s", name, dns.TypeToString[qtype], server, dns.RcodeToString[msg.Rcode]))
		}
	}
	return nil, errors.Join(errs...)
}

func minU32(a, b uint32) uint32 {
	if a < b {
		return a
	}
	return b
}

func (r *dnsResolver) exchange(ctx context.Context, q *dns.Msg, server, network string) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: r.cfg.Timeout}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	msg, _, err := c.ExchangeContext(ctx, q, server)
	return msg, err
}

// srvTargets returns the SRV records of msg's answer, sorted by priority,
// then by weight (heaviest first), then by target.
func srvTargets(msg *dns.Msg) ([]*dns.SRV, error) {
	var out []*dns.SRV
	for _, rr := range msg.Answer {
		if srv, ok := rr.(*dns.SRV); ok && srv.Target != "" && srv.Target != "." && srv.Port != 0 {
			out = append(out, srv)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no SRV records")
	}
	slices.SortStableFunc(out, func(a, b *dns.SRV) int {
		if a.Priority != b.Priority {
			return int(a.Priority) - int(b.Priority)
		}
		if a.Weight != b.Weight {
			return int(b.Weight) - int(a.Weight)
		}
		return strings.Compare(a.Target, b.Target)
	})
	return out, nil
}

// glueFor returns the addresses msg's additional section gives for host.
func glueFor(msg *dns.Msg, host string) []net.IP {
	return addressesIn(msg.Extra, host)
}

// addresses returns the A and AAAA records of msg's answer for host.
func addresses(msg *dns.Msg, host string) []net.IP {
	return addressesIn(msg.Answer, host)
}

// addressesIn returns the A and AAAA records for host (or for a name host
// is a CNAME of) among rrs, without repeats.
func addressesIn(rrs []dns.RR, host string) []net.IP {
	names := map[string]bool{strings.ToLower(dns.Fqdn(host)): true}
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && names[strings.ToLower(c.Hdr.Name)] {
			names[strings.ToLower(c.Target)] = true
		}
	}
	var ips []net.IP
	for _, rr := range rrs {
		var ip net.IP
		switch a := rr.(type) {
		case *dns.A:
			if names[strings.ToLower(a.Hdr.Name)] {
				ip = a.A
			}
		case *dns.AAAA:
			if names[strings.ToLower(a.Hdr.Name)] {
				ip = a.AAAA
			}
		}
		if ip != nil && !slices.ContainsFunc(ips, ip.Equal) {
			ips = append(ips, ip)
		}
	}
	return ips
}
