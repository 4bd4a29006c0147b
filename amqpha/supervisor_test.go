package amqpha

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// closedPorts returns n loopback addresses nothing listens on.
func closedPorts(t *testing.T, n int) []string {
	t.Helper()
	var uris []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		uris = append(uris, "amqp://guest:s3cret@"+ln.Addr().String()+"/")
		ln.Close()
	}
	return uris
}

type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.evs = append(l.evs, e); l.mu.Unlock() }
func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.evs...)
}

func TestFailFastTriesEveryNodeOnceWithoutSleeping(t *testing.T) {
	uris := closedPorts(t, 3)
	var log eventLog
	// A backoff of an hour: had the pass slept between nodes, ctx would
	// end first and Dial would return its error instead.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Dial(ctx, Config{Nodes: uris, FailFast: true, OnEvent: log.add, ReconnectInitial: time.Hour, ReconnectMax: time.Hour})
	var ce *ConnectError
	if !errors.As(err, &ce) || len(ce.Errs) != 3 {
		t.Fatalf("Dial = %v, want a ConnectError with 3 node errors", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error shows the password: %v", err)
	}
	var ne *NodeError
	if !errors.As(ce.Errs[0], &ne) || ne.Op != "dial" {
		t.Fatalf("first error %v, want a dial NodeError", ce.Errs[0])
	}
	tried := map[string]bool{}
	for _, e := range log.all() {
		if e.Kind == EventConnecting {
			tried[e.Node] = true
		}
		if strings.Contains(e.Node, "s3cret") {
			t.Fatalf("event shows the password: %+v", e)
		}
	}
	if len(tried) != 3 {
		t.Fatalf("one pass tried %v, want all 3 nodes", tried)
	}
}

// Without FailFast, Dial does not give up when a pass fails: it makes pass
// after pass, each trying every node once (the backoff comes between
// passes, never between the nodes of one), until its context ends, and then
// returns the last pass's ConnectError with the context's error.
func TestDialKeepsTryingUntilContextEnds(t *testing.T) {
	uris := closedPorts(t, 2)
	const passes = 4
	failed := make(chan string, 256)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dialed := make(chan error, 1)
	go func() {
		_, err := Dial(ctx, Config{Nodes: uris, ReconnectInitial: 10 * time.Millisecond, OnEvent: func(e Event) {
			if e.Kind == EventConnectFailed {
				select {
				case failed <- e.Node:
				default: // more than the test reads
				}
			}
		}})
		dialed <- err
	}()
	var nodes []string
	deadline := time.After(time.Minute)
	for len(nodes) < passes*len(uris) {
		select {
		case n := <-failed:
			nodes = append(nodes, n)
		case err := <-dialed:
			t.Fatalf("Dial returned %v after %d failed connects, before its context ended", err, len(nodes))
		case <-deadline:
			t.Fatalf("only %d failed connects in a minute: %q", len(nodes), nodes)
		}
	}
	for p := range passes {
		if pass := nodes[2*p : 2*p+2]; pass[0] == pass[1] {
			t.Fatalf("pass %d tried %q, want both nodes once; all failures: %q", p, pass, nodes)
		}
	}
	cancel()
	var err error
	select {
	case err = <-dialed:
	case <-time.After(time.Minute):
		t.Fatal("Dial did not return once its context ended")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial = %v, want context.Canceled", err)
	}
	var ce *ConnectError
	if !errors.As(err, &ce) || len(ce.Errs) != 2 {
		t.Fatalf("Dial = %v, want the last pass's ConnectError (2 nodes) wrapped", err)
	}
}

func TestBackoffBetweenPassesGrowsAndIsCapped(t *testing.T) {
	c := &Client{cfg: Config{ReconnectInitial: 100 * time.Millisecond, ReconnectMax: time.Second}.withDefaults()}
	c.log = c.cfg.Logger
	s := newSupervisor(c, rolePublish, "publish")
	var prev time.Duration
	for i := range 12 {
		d := s.bo.NextBackOff()
		if d <= 0 || d > 1500*time.Millisecond {
			t.Fatalf("backoff %d = %v, want within (0, 1.5 s] (max 1 s, jitter 0.5)", i, d)
		}
		if i == 0 && (d < 50*time.Millisecond || d > 150*time.Millisecond) {
			t.Fatalf("first backoff %v, want 100 ms ± 50%%", d)
		}
		prev = d
	}
	if prev < 500*time.Millisecond {
		t.Fatalf("backoff after 12 passes is %v, want near the 1 s cap", prev)
	}
	s.bo.Reset()
	if d := s.bo.NextBackOff(); d > 150*time.Millisecond {
		t.Fatalf("after Reset the backoff is %v", d)
	}
}

// selfSigned returns a TLS server config for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test broker"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// tlsServer accepts TLS and then closes: enough to test the handshake.
func tlsServer(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func TestTLSIsVerified(t *testing.T) {
	srv, roots := selfSigned(t)
	addr := tlsServer(t, srv)
	uri := "amqps://guest:s3cret@" + addr + "/"

	// Untrusted certificate: the TLS step fails.
	_, err := Dial(context.Background(), Config{Nodes: []string{uri}, FailFast: true})
	var ne *NodeError
	if !errors.As(err, &ne) || ne.Op != "tls" {
		t.Fatalf("Dial to an untrusted broker = %v, want a tls NodeError", err)
	}
	// Trusted: TLS passes and the AMQP step is what fails (the server is
	// not a broker).
	_, err = Dial(context.Background(), Config{Nodes: []string{uri}, FailFast: true, TLS: &tls.Config{RootCAs: roots}})
	if !errors.As(err, &ne) || ne.Op != "amqp" {
		t.Fatalf("Dial to a trusted non-broker = %v, want an amqp NodeError", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("error shows the password: %v", err)
	}
}
