package amqpha

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/internal/testpki"
)

// testFiles are a CA and a client certificate, as PEM files.
type testFiles struct{ dir, ca, cert, key string }

func newTestFiles(t testing.TB) testFiles {
	t.Helper()
	dir := t.TempDir()
	ca, err := testpki.New(dir, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("client", "app", nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	return testFiles{dir: dir, ca: ca.File, cert: cert, key: key}
}

// TestNodeURIParameters: every query parameter amqp091-go reads (and
// frame_max, verify) is accepted with a valid value and refused, with an
// error naming it, with each kind of wrong one; unknown, repeated and
// empty parameters are refused.
func TestNodeURIParameters(t *testing.T) {
	f := newTestFiles(t)
	notPEM := filepath.Join(f.dir, "not.pem")
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	esc := url.QueryEscape
	tlsq := "cacertfile=" + esc(f.ca) + "&certfile=" + esc(f.cert) + "&keyfile=" + esc(f.key)
	for _, tc := range []struct {
		uri  string
		want string // "" for valid, else a piece of the error
	}{
		{"amqps://h/?" + tlsq, ""},
		{"amqps://h/?" + tlsq + "&auth_mechanism=external", ""},
		{"amqps://h/?" + tlsq + "&auth_mechanism=EXTERNAL&auth_mechanism=plain", ""},
		{"amqps://h/?server_name_indication=rabbit.example", ""},
		{"amqps://h/?verify=verify_peer", ""},
		{"amqp://h/?heartbeat=0&connection_timeout=0&channel_max=0&frame_max=0", ""},
		{"amqp://h/?heartbeat=65535&connection_timeout=2147483647&channel_max=65535&frame_max=4294967295", ""},
		{"amqp://h/?frame_max=4096&auth_mechanism=amqplain", ""},

		{"amqps://h/?cacertfil=" + esc(f.ca), `unknown URI parameter "cacertfil" (did you mean cacertfile?)`},
		{"amqp://h/?hartbeat=5", "did you mean heartbeat?"},
		{"amqp://h/?x=1", `unknown URI parameter "x"; amqpha reads`},
		{"amqps://h/?password=hunter2&" + tlsq, "password is not supported"},
		{"amqps://h/?depth=2", "depth is not supported"},
		{"amqp://h/?heartbeat=5&heartbeat=6", "heartbeat given 2 times"},
		{"amqp://h/?heartbeat=", "heartbeat is empty"},
		{"amqp://h/?heartbeat=-1", "heartbeat: want whole seconds"},
		{"amqp://h/?heartbeat=65536", "heartbeat: want whole seconds"},
		{"amqp://h/?heartbeat=1.5", "heartbeat: want whole seconds"},
		{"amqp://h/?connection_timeout=-5", "connection_timeout: want milliseconds"},
		{"amqp://h/?connection_timeout=2147483648", "connection_timeout: want milliseconds"},
		{"amqp://h/?connection_timeout=99999999999999999999", "connection_timeout: want milliseconds"},
		{"amqp://h/?channel_max=65536", "channel_max: want"},
		{"amqp://h/?channel_max=x", "channel_max: want"},
		{"amqp://h/?channel_max=1", "channel_max: want 0 (the default, 2047) or 2 to 65535"},
		{"amqp://h/?channel_max=2", ""},
		{"amqp://h/?frame_max=4095", "frame_max: want bytes"},
		{"amqp://h/?frame_max=1", "frame_max: want bytes"},
		{"amqp://h/?frame_max=4294967296", "frame_max: want bytes"},
		{"amqp://h/?auth_mechanism=kerberos", "auth_mechanism: want plain, amqplain or external"},
		{"amqp://h/?auth_mechanism=external,plain", "auth_mechanism: want plain"},
		{"amqp://h/?auth_mechanism=external", "auth_mechanism=external needs an amqps:// URI"},
		{"amqp://h/?cacertfile=" + esc(f.ca), "cacertfile needs an amqps:// URI"},
		{"amqp://h/?server_name_indication=x", "server_name_indication needs an amqps:// URI"},
		{"amqps://h/?server_name_indication=a%20b", "server_name_indication: want a host name"},
		{"amqps://h/?verify=verify_none", "verify=verify_none is refused"},
		{"amqps://h/?verify=yes", "verify: want verify_peer"},
		{"amqps://h/?certfile=" + esc(f.cert), "certfile and keyfile go together"},
		{"amqps://h/?keyfile=" + esc(f.key), "certfile and keyfile go together"},
		{"amqps://h/?cacertfile=%2Fnonexistent%2Fca.pem", "cacertfile: open /nonexistent/ca.pem"},
		{"amqps://h/?cacertfile=" + esc(notPEM), "holds no PEM certificate"},
		{"amqps://h/?certfile=" + esc(f.ca) + "&keyfile=" + esc(f.key), "URI parameters certfile " + f.ca},
		{"amqp://h/?heartbeat=5;x=1", "query does not parse"},
		{"amqp://h/#frag", "fragment"},
		{"amqp://u:pa#ss@h/", "not a valid"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			_, err := parseNode(tc.uri)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want %q in it", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Fatalf("error shows a secret: %v", err)
			}
			// Validate refuses the same, naming the node.
			if cerr := (Config{Nodes: []string{"amqp://ok/", tc.uri}}).Validate(); (cerr == nil) != (tc.want == "") ||
				cerr != nil && !strings.Contains(cerr.Error(), "Nodes[1]") {
				t.Fatalf("Validate: %v", cerr)
			}
		})
	}
}

// TestNodeURIParametersReachTheDial: what a URI sets is what a dial to
// that node asks for, taking precedence over Config's heartbeat and dial
// timeout; other nodes keep Config's.
func TestNodeURIParametersReachTheDial(t *testing.T) {
	f := newTestFiles(t)
	c := &Client{cfg: Config{Heartbeat: 10 * time.Second, DialTimeout: 2 * time.Second}}
	plain, err := parseNode("amqp://u:p@h/")
	if err != nil {
		t.Fatal(err)
	}
	a, err := parseNode("amqps://u:p@10.0.0.1/?heartbeat=0&connection_timeout=1500&channel_max=64&frame_max=8192" +
		"&auth_mechanism=external&auth_mechanism=amqplain&cacertfile=" + url.QueryEscape(f.ca) +
		"&certfile=" + url.QueryEscape(f.cert) + "&keyfile=" + url.QueryEscape(f.key) + "&server_name_indication=rabbit.test")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.amqpConfig(plain, "x"); got.Heartbeat != 10*time.Second || got.ChannelMax != 0 || got.FrameSize != 0 ||
		len(got.SASL) != 1 || got.SASL[0].Mechanism() != "PLAIN" || c.dialTimeout(plain) != 2*time.Second {
		t.Fatalf("plain node: %+v, timeout %v", got, c.dialTimeout(plain))
	}
	got := c.amqpConfig(a, "x")
	if got.Heartbeat != 0 || got.ChannelMax != 64 || got.FrameSize != 8192 || c.dialTimeout(a) != 1500*time.Millisecond {
		t.Fatalf("heartbeat %v, channel_max %d, frame size %d, timeout %v", got.Heartbeat, got.ChannelMax, got.FrameSize, c.dialTimeout(a))
	}
	var mechs []string
	for _, s := range got.SASL {
		mechs = append(mechs, s.Mechanism())
	}
	if strings.Join(mechs, ",") != "EXTERNAL,AMQPLAIN" {
		t.Fatalf("SASL %v, want EXTERNAL,AMQPLAIN", mechs)
	}
	cfg, err := nodeTLS(nil, a)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InsecureSkipVerify || cfg.RootCAs == nil || len(cfg.Certificates) != 1 || cfg.ServerName != "rabbit.test" || cfg.MinVersion < tls.VersionTLS12 {
		t.Fatalf("TLS %+v", cfg)
	}
	// Without parameters: the system's roots, the URI's host, verified.
	b, _ := parseNode("amqps://u:p@rabbit-1/")
	if cfg, err := nodeTLS(nil, b); err != nil || cfg.InsecureSkipVerify || cfg.RootCAs != nil || cfg.ServerName != "rabbit-1" {
		t.Fatalf("TLS of a plain amqps:// node: %+v, %v", cfg, err)
	}
	// Config.TLS is the base the URI adds to, and is not changed.
	base := &tls.Config{MinVersion: tls.VersionTLS13, NextProtos: []string{"amqp"}}
	if cfg, err := nodeTLS(base, a); err != nil || cfg.MinVersion != tls.VersionTLS13 || cfg.RootCAs == nil || base.RootCAs != nil || base.ServerName != "" {
		t.Fatalf("TLS over a base: %+v, %v", cfg, err)
	}
}

// TestNodeURIFilesReadAtEveryDial: the CA and client certificate files
// are read again for each dial: a file gone since Validate fails the
// dial's TLS setup with an error naming it.
func TestNodeURIFilesReadAtEveryDial(t *testing.T) {
	f := newTestFiles(t)
	a, err := parseNode("amqps://h/?cacertfile=" + url.QueryEscape(f.ca))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(f.ca)
	if _, err := nodeTLS(nil, a); err == nil || !strings.Contains(err.Error(), f.ca) {
		t.Fatalf("nodeTLS after the CA file went: %v", err)
	}
}

// TestConfigTLSAndURIConflicts: a node URI may not set what Config.TLS
// sets; EXTERNAL needs a client certificate from one of them.
func TestConfigTLSAndURIConflicts(t *testing.T) {
	f := newTestFiles(t)
	pair, err := tls.LoadX509KeyPair(f.cert, f.key)
	if err != nil {
		t.Fatal(err)
	}
	ca := "cacertfile=" + url.QueryEscape(f.ca)
	certs := "certfile=" + url.QueryEscape(f.cert) + "&keyfile=" + url.QueryEscape(f.key)
	for _, tc := range []struct {
		name string
		tls  *tls.Config
		uri  string
		want string
	}{
		{"CA in both", &tls.Config{RootCAs: x509.NewCertPool()}, "amqps://h/?" + ca, "cacertfile and Config.TLS.RootCAs"},
		{"client certificate in both", &tls.Config{Certificates: []tls.Certificate{pair}}, "amqps://h/?" + certs, "certfile and Config.TLS"},
		{"client certificate callback and file", &tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}, "amqps://h/?" + certs, "certfile and Config.TLS"},
		{"server name in both", &tls.Config{ServerName: "a"}, "amqps://h/?server_name_indication=b", "server_name_indication and Config.TLS.ServerName"},
		{"CA, and verification off", &tls.Config{InsecureSkipVerify: true}, "amqps://h/?" + ca, "InsecureSkipVerify turns that off"},
		{"verify_peer, and verification off", &tls.Config{InsecureSkipVerify: true}, "amqps://h/?verify=verify_peer", "InsecureSkipVerify turns that off"},
		{"verification off alone", &tls.Config{InsecureSkipVerify: true}, "amqps://h/", ""},
		{"external without a certificate", nil, "amqps://h/?auth_mechanism=external", "needs a client certificate"},
		{"external, certificate from Config.TLS", &tls.Config{Certificates: []tls.Certificate{pair}}, "amqps://h/?auth_mechanism=external&" + ca, ""},
		{"external, certificate from the URI", &tls.Config{RootCAs: x509.NewCertPool()}, "amqps://h/?auth_mechanism=external&" + certs, ""},
		{"different things in each", &tls.Config{ServerName: "a", Certificates: []tls.Certificate{pair}}, "amqps://h/?" + ca, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Config{Nodes: []string{tc.uri}, TLS: tc.tls}.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want %q", err, tc.want)
			}
			// A node from a Resolver is checked at its dials instead.
			a, perr := parseNode(tc.uri)
			if perr != nil {
				t.Fatal(perr)
			}
			if _, err := nodeTLS(tc.tls, a); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("nodeTLS: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestDialRefusesConflictBeforeConnecting: a node from a Resolver whose
// URI conflicts with Config.TLS fails its dial with the reason and
// without the password, before any connection is made.
func TestDialRefusesConflictBeforeConnecting(t *testing.T) {
	a, err := parseNode("amqps://u:hunter2@127.0.0.1:1/?server_name_indication=b")
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{cfg: Config{TLS: &tls.Config{ServerName: "a"}, DialTimeout: time.Second}}
	_, _, err = c.dial(t.Context(), a, "x")
	var ne *NodeError
	if !asNodeError(err, &ne) || ne.Op != "tls" || !strings.Contains(err.Error(), "server_name_indication") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("dial: %v", err)
	}
}

func asNodeError(err error, ne **NodeError) bool {
	e, ok := err.(*NodeError)
	*ne = e
	return ok
}

// TestCredentialsAreFreshEachDial: amqp091-go zeroes a password it used;
// each dial's credentials are new values.
func TestCredentialsAreFreshEachDial(t *testing.T) {
	a, err := parseNode("amqp://u:p@h/?auth_mechanism=plain&auth_mechanism=amqplain")
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{}
	first := c.saslFor(a)
	first[0].(*amqp.PlainAuth).Password = ""
	first[1].(*amqp.AMQPlainAuth).Password = ""
	again := c.saslFor(a)
	if again[0].(*amqp.PlainAuth).Password != "p" || again[1].(*amqp.AMQPlainAuth).Password != "p" {
		t.Fatal("a dial's credentials share values with an earlier dial's")
	}
}

// FuzzNodeURI: no URI makes parseNode panic; what it accepts keeps the
// rules; neither its errors nor its String ever show the password.
func FuzzNodeURI(f *testing.F) {
	for _, s := range []string{
		"amqp://guest:guest@127.0.0.1:5672/",
		"amqps://u:p@host/vh?heartbeat=5&channel_max=10&frame_max=8192&connection_timeout=300",
		"amqps://u:p@h/?auth_mechanism=external&auth_mechanism=plain&verify=verify_peer",
		"amqps://u:p@h/?server_name_indication=x&cacertfil=/x",
		"amqp://u:p@h/?heartbeat=1&heartbeat=2",
		"amqp://u:p@h/#x",
		"amqp://u:secret@[::1",
	} {
		f.Add(s)
	}
	const marker = "PW-marker-7731"
	f.Fuzz(func(t *testing.T, raw string) {
		a, err := parseNode(raw)
		if err == nil {
			p := a.params
			if p.frameMax != 0 && p.frameMax < minFrameMax || p.dialTimeout < 0 || p.heartbeat < 0 ||
				(p.certFile == "") != (p.keyFile == "") {
				t.Fatalf("accepted %q with %+v", raw, p)
			}
			if a.uri.Scheme != "amqps" && (p.external() || p.caFile != "" || p.certFile != "" || p.serverName != "") {
				t.Fatalf("accepted TLS parameters on %q", raw)
			}
		}
		// The same URI with a recognisable password: it shows nowhere.
		u, perr := url.Parse(raw)
		if perr != nil || u.User == nil || strings.Contains(raw, marker) {
			return
		}
		u.User = url.UserPassword(u.User.Username(), marker)
		a, err = parseNode(u.String())
		if err != nil && strings.Contains(err.Error(), marker) {
			t.Fatalf("error shows the password: %v", err)
		}
		if err == nil && strings.Contains(a.String(), marker) {
			t.Fatalf("String shows the password: %s", a)
		}
		if err == nil {
			if verr := (Config{Nodes: []string{u.String()}}).Validate(); verr != nil && strings.Contains(verr.Error(), marker) {
				t.Fatalf("Validate shows the password: %v", verr)
			}
		}
	})
}

// TestNodeURIFileBounded: a file that never ends (a device) is refused,
// not read forever.
func TestNodeURIFileBounded(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/dev/zero is Linux's")
	}
	_, err := parseNode("amqps://h/?cacertfile=/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("cacertfile=/dev/zero: %v", err)
	}
}
