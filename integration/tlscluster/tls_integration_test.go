//go:build integration

package tlscluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
	"github.com/amqpha/amqpha/integration/cluster"
	"github.com/amqpha/amqpha/integration/clustertest"
	"github.com/amqpha/amqpha/internal/testpki"
)

var shared *cluster.Cluster

// Three nodes: a quorum queue keeps its majority when the failover test
// kills one. The management API lists a new connection once statistics
// are next collected (every 5 s by default): every 500 ms here.
func TestMain(m *testing.M) {
	os.Exit(clustertest.Main(m, cluster.Options{TLS: true, NetTicktime: 10 * time.Second,
		Config: "collect_statistics_interval = 500"}, &shared))
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// uri is node n's amqps:// URI with the given query parameters.
func uri(n *cluster.Node, params ...string) string {
	u := n.TLSURI()
	if len(params) > 0 {
		u += "?" + strings.Join(params, "&")
	}
	return u
}

// caParam names the cluster's CA, as a URI parameter.
func caParam() string { return "cacertfile=" + url.QueryEscape(shared.TLS().CA) }

// certParams name the cluster's client certificate and key.
func certParams() []string {
	f := shared.TLS()
	return []string{"certfile=" + url.QueryEscape(f.ClientCert), "keyfile=" + url.QueryEscape(f.ClientKey)}
}

// dial starts a client on nodes under a connection name of the test's
// own, and closes it when the test ends.
func dial(t *testing.T, cfg amqpha.Config) *amqpha.Client {
	t.Helper()
	if cfg.ConnectionName == "" {
		cfg.ConnectionName = t.Name()
	}
	return clustertest.Dial(t, cfg)
}

// publisher makes a publisher of c, closed when the test ends.
func publisher(t *testing.T, c *amqpha.Client) *amqpha.Publisher {
	t.Helper()
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close(context.Background()) })
	return pub
}

// publishConfirmed publishes one persistent message to queue and fails
// the test unless the broker confirms it.
func publishConfirmed(t *testing.T, pub *amqpha.Publisher, queue, id string) {
	t.Helper()
	if err := pub.Publish(ctxFor(t, 30*time.Second), "", queue, amqp.Publishing{MessageId: id, Body: []byte(id)}); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

// brokerConn is a connection as the management API shows it.
type brokerConn struct {
	Node             string `json:"node"`
	User             string `json:"user"`
	AuthMechanism    string `json:"auth_mechanism"`
	SSL              bool   `json:"ssl"`
	SSLProtocol      string `json:"ssl_protocol"`
	PeerCertSubject  string `json:"peer_cert_subject"`
	Timeout          int    `json:"timeout"` // the negotiated heartbeat, seconds
	ChannelMax       int    `json:"channel_max"`
	FrameMax         int    `json:"frame_max"`
	ClientProperties struct {
		ConnectionName string `json:"connection_name"`
	} `json:"client_properties"`
}

// connection waits until the management API (of a running node) lists
// the connection named name, and returns it.
func connection(t *testing.T, name string) brokerConn {
	t.Helper()
	ctx := ctxFor(t, 30*time.Second)
	var last error
	for {
		for _, n := range shared.Nodes() {
			if !n.Running() {
				continue
			}
			conns, err := listConnections(ctx, n)
			if err != nil {
				last = err
				continue
			}
			for _, c := range conns {
				if c.ClientProperties.ConnectionName == name {
					return c
				}
			}
			last = fmt.Errorf("no connection named %q among %d", name, len(conns))
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("management API: %v", errors.Join(ctx.Err(), last))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func listConnections(ctx context.Context, n *cluster.Node) ([]brokerConn, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.ManagementURL()+"/api/connections", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth("guest", "guest")
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("GET /api/connections: %s: %s", resp.Status, b)
	}
	var conns []brokerConn
	return conns, json.NewDecoder(resp.Body).Decode(&conns)
}

// quorumQueue declares a quorum queue through node 0's plain listener
// and deletes it when the test ends.
func quorumQueue(t *testing.T) string {
	t.Helper()
	name := strings.ReplaceAll(t.Name(), "/", "-") + fmt.Sprint(time.Now().UnixNano())
	withChannel(t, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
		return err
	})
	t.Cleanup(func() {
		withChannel(t, func(ch *amqp.Channel) error { _, err := ch.QueueDelete(name, false, false, false); return err })
	})
	return name
}

// withChannel runs f on a channel of a plain connection to a running node.
func withChannel(t *testing.T, f func(*amqp.Channel) error) {
	t.Helper()
	for _, n := range shared.Nodes() {
		if !n.Running() {
			continue
		}
		conn, err := amqp.DialConfig(n.DirectURI(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err != nil {
			t.Fatalf("raw dial: %v", err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		if err := f(ch); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("no node runs")
}

// otherCA writes a CA certificate that signed none of the cluster's
// certificates.
func otherCA(t *testing.T) string {
	t.Helper()
	ca, err := testpki.New(t.TempDir(), "some other CA")
	if err != nil {
		t.Fatal(err)
	}
	return ca.File
}

// TestTLSVerified: an amqps:// node whose cacertfile names the cluster's
// CA connects over TLS and its publish is confirmed; the broker sees a
// TLS connection logged in with the password. With another CA, or with
// the system's roots, the server's certificate is refused: Dial fails
// naming the certificate. The password shows in no error, log line or
// event, of the good dial or the refused ones.
func TestTLSVerified(t *testing.T) {
	t.Parallel() // after TestTLSFailover, which kills a node and restores it
	const user, password = "tls-verified", "pw-7f3k2-not-shown"
	if err := shared.AddUser(ctxFor(t, 30*time.Second), user, password); err != nil {
		t.Fatal(err)
	}
	withUser := func(params ...string) string {
		return strings.Replace(uri(shared.Node(0), params...), "guest:guest@", user+":"+password+"@", 1)
	}
	var (
		mu   sync.Mutex
		seen strings.Builder // every log line and event
	)
	record := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return seen.Write(p)
	})
	log := slog.New(slog.NewTextHandler(record, &slog.HandlerOptions{Level: slog.LevelDebug}))
	onEvent := func(e amqpha.Event) { fmt.Fprintf(record, "event %s %s %v\n", e.Kind, e.Node, e.Err) }
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(seen.String(), password) {
			t.Errorf("logs or events show the password:\n%s", seen.String())
		}
	})

	q := quorumQueue(t)
	c := dial(t, amqpha.Config{Nodes: []string{withUser(caParam())}, Logger: log, OnEvent: onEvent})
	publishConfirmed(t, publisher(t, c), q, "tls-1")
	bc := connection(t, t.Name())
	if !bc.SSL || bc.User != user || bc.AuthMechanism != "PLAIN" {
		t.Fatalf("broker sees %+v, want a TLS connection of %s over PLAIN", bc, user)
	}
	t.Logf("broker: ssl %v (%s), user %s, %s", bc.SSL, bc.SSLProtocol, bc.User, bc.AuthMechanism)

	for _, tc := range []struct{ name, uri string }{
		{"another CA", withUser("cacertfile=" + url.QueryEscape(otherCA(t)))},
		{"system roots", withUser()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := amqpha.Dial(ctxFor(t, 30*time.Second), amqpha.Config{Nodes: []string{tc.uri}, FailFast: true,
				Logger: log, OnEvent: onEvent})
			if err == nil {
				t.Fatal("Dial succeeded: the server's certificate was not verified")
			}
			var uae x509.UnknownAuthorityError
			if !errors.As(err, &uae) {
				t.Fatalf("Dial: %v, want x509.UnknownAuthorityError", err)
			}
			if strings.Contains(err.Error(), password) {
				t.Fatalf("error shows the password: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// writerFunc is an io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestTLSExternal: a URI with auth_mechanism=external and no user or
// password logs in as the user the client certificate's common name
// names (SASL EXTERNAL), with the certificate from the URI's certfile and
// keyfile, or from Config.TLS; its publish is confirmed.
func TestTLSExternal(t *testing.T) {
	t.Parallel() // after TestTLSFailover, which kills a node and restores it
	q := quorumQueue(t)
	host := "amqps://" + strings.SplitN(shared.Node(1).TLSURI(), "@", 2)[1] + "?auth_mechanism=external&"
	f := shared.TLS()
	for _, tc := range []struct {
		name string
		uri  string
		tls  *tls.Config
	}{
		{"files in the URI", host + strings.Join(append(certParams(), caParam()), "&"), nil},
		{"Config.TLS", host + caParam(), &tls.Config{Certificates: []tls.Certificate{f.Client}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each waits for the management API to list it
			c := dial(t, amqpha.Config{Nodes: []string{tc.uri}, TLS: tc.tls})
			publishConfirmed(t, publisher(t, c), q, tc.name)
			bc := connection(t, t.Name())
			if !bc.SSL || bc.AuthMechanism != "EXTERNAL" || bc.User != cluster.TLSClientName {
				t.Fatalf("broker sees %+v, want user %s logged in over EXTERNAL on TLS", bc, cluster.TLSClientName)
			}
			t.Logf("broker: user %s over %s, peer certificate %s", bc.User, bc.AuthMechanism, bc.PeerCertSubject)
		})
	}
}

// TestTLSURIParametersReachTheBroker: heartbeat, channel_max and
// frame_max of a node URI are what the broker negotiated, and
// server_name_indication names the host the certificate is checked
// against (the node's certificate names localhost, the URI's host is
// 127.0.0.1).
func TestTLSURIParametersReachTheBroker(t *testing.T) {
	t.Parallel() // after TestTLSFailover, which kills a node and restores it
	c := dial(t, amqpha.Config{Nodes: []string{uri(shared.Node(2), caParam(),
		"heartbeat=7", "channel_max=100", "frame_max=65536", "connection_timeout=20000", "server_name_indication=localhost")}})
	_ = c
	bc := connection(t, t.Name())
	if bc.Timeout != 7 || bc.ChannelMax != 100 || bc.FrameMax != 65536 || !bc.SSL {
		t.Fatalf("broker sees heartbeat %d, channel_max %d, frame_max %d, ssl %v; want 7, 100, 65536, true", bc.Timeout, bc.ChannelMax, bc.FrameMax, bc.SSL)
	}
	// A name the certificate does not hold is refused.
	_, err := amqpha.Dial(ctxFor(t, 30*time.Second), amqpha.Config{FailFast: true,
		Nodes: []string{uri(shared.Node(2), caParam(), "server_name_indication=rabbit.invalid")}})
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Fatalf("Dial with server_name_indication=rabbit.invalid: %v, want x509.HostnameError", err)
	}
}

// TestTLSFailover: a client on all three nodes' TLS listeners, its node
// killed: the next publish is confirmed over TLS on another node, and the
// queue holds both messages. The package's other tests run in parallel
// after it (t.Parallel), once its node is restored.
func TestTLSFailover(t *testing.T) {
	clustertest.Restore(t, shared)
	q := quorumQueue(t)
	var nodes []string
	for _, n := range shared.Nodes() {
		nodes = append(nodes, uri(n, caParam()))
	}
	c := dial(t, amqpha.Config{Nodes: nodes})
	pub := publisher(t, c)
	publishConfirmed(t, pub, q, "before")
	first := nodeOf(t, c.Node())
	if err := first.Kill(ctxFor(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	publishConfirmed(t, pub, q, "after")
	second := nodeOf(t, c.Node())
	if second == first {
		t.Fatalf("still on %v after it was killed", first)
	}
	// nodeOf found the node by its TLS listener: the only way there is
	// a TLS handshake.
	t.Logf("moved from %v to %v over TLS", first, second)
	got := map[string]bool{}
	withChannel(t, func(ch *amqp.Channel) error {
		for range 2 {
			d, ok, err := ch.Get(q, true)
			if err != nil || !ok {
				return fmt.Errorf("get from %s: ok %v, %v", q, ok, err)
			}
			got[d.MessageId] = true
		}
		return nil
	})
	if !got["before"] || !got["after"] {
		t.Fatalf("queue holds %v, want before and after", got)
	}
}

// nodeOf is the node whose TLS URI the client reports (redacted).
func nodeOf(t *testing.T, addr string) *cluster.Node {
	t.Helper()
	u, err := url.Parse(addr)
	if err != nil {
		t.Fatalf("client node %q: %v", addr, err)
	}
	for _, n := range shared.Nodes() {
		nu, _ := url.Parse(n.TLSURI())
		if nu.Host == u.Host {
			return n
		}
	}
	t.Fatalf("client node %q is none of the cluster's", addr)
	return nil
}
