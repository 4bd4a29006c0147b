package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amqpha/amqpha/balancer"
)

// ManagementConfig configures a resolver that asks the RabbitMQ management
// API which nodes run and where they listen for AMQP.
type ManagementConfig struct {
	// Seeds are management API base URLs ("http://rabbit-1:15672"),
	// asked in turn until one answers. Put no credentials in them.
	Seeds []string
	// User and Password authenticate to the management API (basic auth);
	// they never appear in errors or logs.
	User, Password string
	// Template is the AMQP URI whose host and port are replaced by each
	// listener's; "" means "amqp://guest:guest@x/". With amqps:// the
	// "amqp/ssl" listeners are used, else the "amqp" ones.
	Template string
	// LeaderOf, if set, names a queue in vhost Vhost whose leader (quorum
	// queue) or home node (classic queue) gets Node.Priority 0 and the
	// other nodes 1: with a "priority+" balancer the client connects to
	// the node that leads it when it can.
	LeaderOf string
	// Vhost is LeaderOf's virtual host; "" means "/".
	Vhost string
	// HTTP is the client for the API; nil means one with a 2 s timeout.
	HTTP *http.Client
	// MinInterval and MaxBackoff: as for DNSConfig (defaults 1 s, 30 s).
	MinInterval time.Duration
	MaxBackoff  time.Duration
	// Logger receives failed lookups; nil discards them.
	Logger *slog.Logger
}

// Management returns a resolver that learns the running cluster members
// and their AMQP listeners from the management API of any seed. Nodes that
// do not run are left out, so a node that leaves the cluster or stops
// drops out of the set and one that joins comes in at the next lookup. As
// with DNS, the last good set is kept while no seed answers.
func Management(cfg ManagementConfig) (Resolver, error) {
	if len(cfg.Seeds) == 0 {
		return nil, errors.New("discovery: Management: no Seeds")
	}
	for _, s := range cfg.Seeds {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil {
			return nil, fmt.Errorf("discovery: Management: seed %q: want an http(s) URL without credentials", redactURL(s))
		}
	}
	tpl, err := parseTemplate("Management", cfg.Template)
	if err != nil {
		return nil, err
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 2 * time.Second}
	}
	return &mgmtResolver{cfg: cfg, tpl: tpl, cache: newCache("management API", cfg.MinInterval, cfg.MaxBackoff, cfg.Logger)}, nil
}

// redactURL hides anything after a scheme's "//" up to "@".
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

type mgmtResolver struct {
	cfg   ManagementConfig
	tpl   *url.URL
	cache cache
}

// Resolve asks the management API unless the last answer is less than
// MinInterval old.
func (r *mgmtResolver) Resolve(ctx context.Context) ([]balancer.Node, error) {
	return r.cache.resolve(ctx, true, r.lookup)
}

func (r *mgmtResolver) lookup(ctx context.Context) ([]balancer.Node, time.Duration, error) {
	var errs []error
	for _, seed := range r.cfg.Seeds {
		nodes, err := r.ask(ctx, seed)
		if err == nil {
			return nodes, 0, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, 0, errors.Join(errs...)
}

type mgmtNode struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
}

type mgmtListener struct {
	Node      string `json:"node"`
	Protocol  string `json:"protocol"`
	IPAddress string `json:"ip_address"`
	Port      int    `json:"port"`
}

type mgmtOverview struct {
	Listeners []mgmtListener `json:"listeners"`
}

type mgmtQueue struct {
	Leader string `json:"leader"`
	Node   string `json:"node"`
}

func (r *mgmtResolver) ask(ctx context.Context, seed string) ([]balancer.Node, error) {
	var nodes []mgmtNode
	if err := r.get(ctx, seed, "/api/nodes", &nodes); err != nil {
		return nil, err
	}
	var ov mgmtOverview
	if err := r.get(ctx, seed, "/api/overview", &ov); err != nil {
		return nil, err
	}
	leader := ""
	if r.cfg.LeaderOf != "" {
		var q mgmtQueue
		err := r.get(ctx, seed, "/api/queues/"+url.PathEscape(cmpOr(r.cfg.Vhost, "/"))+"/"+url.PathEscape(r.cfg.LeaderOf), &q)
		if err != nil {
			r.cache.log.Warn("cannot learn the queue's leader", "queue", r.cfg.LeaderOf, "err", err)
		}
		leader = cmpOr(q.Leader, q.Node)
	}
	return nodesFromManagement(nodes, ov.Listeners, r.tpl, leader)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// nodesFromManagement makes a node of every AMQP listener of a running
// member. A listener on a wildcard address is reached at the host part of
// its node's name (rabbit@host).
func nodesFromManagement(members []mgmtNode, listeners []mgmtListener, tpl *url.URL, leader string) ([]balancer.Node, error) {
	proto := "amqp"
	if tpl.Scheme == "amqps" {
		proto = "amqp/ssl"
	}
	running := map[string]bool{}
	for _, m := range members {
		if m.Running {
			running[m.Name] = true
		}
	}
	var out []balancer.Node
	for _, l := range listeners {
		if l.Protocol != proto || !running[l.Node] || l.Port <= 0 || l.Port > 65535 {
			continue
		}
		host := l.IPAddress
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			_, h, ok := strings.Cut(l.Node, "@")
			if !ok || h == "" {
				continue
			}
			host = h
		}
		u := *tpl
		u.Host = net.JoinHostPort(host, strconv.Itoa(l.Port))
		if back, err := url.Parse(u.String()); err != nil || back.Port() == "" {
			continue // a host name no URI can carry
		}
		n := balancer.Node{Addr: u.String(), Meta: map[string]string{"source": "management", "node": l.Node}}
		if leader != "" {
			n.Priority = 1
			if l.Node == leader {
				n.Priority = 0
				n.Meta["leader"] = "true"
			}
		}
		if !slices.ContainsFunc(out, func(o balancer.Node) bool { return o.Addr == n.Addr }) {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no running node with an %s listener", proto)
	}
	return out, nil
}

func (r *mgmtResolver) get(ctx context.Context, seed, path string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(seed, "/")+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(r.cfg.User, r.cfg.Password)
	resp, err := r.cfg.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s%s: %s", seed, path, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s%s: %w", seed, path, err)
	}
	return nil
}
