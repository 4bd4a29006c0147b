package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/health"
)

// testPKI is a CA with a server certificate for rabbit.test and a client
// certificate, all written as PEM files.
type testPKI struct {
	dir                  string
	pool                 *x509.CertPool
	server               tls.Certificate
	caFile, cert, keyPEM string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), pool: x509.NewCertPool()}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p.pool.AddCert(ca)
	issue := func(serial int64, name string, usage x509.ExtKeyUsage) ([]byte, []byte, tls.Certificate) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return certPEM, keyPEM, pair
	}
	_, _, p.server = issue(2, "rabbit.test", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey, _ := issue(3, "vipd", x509.ExtKeyUsageClientAuth)
	write := func(name string, data []byte) string {
		f := filepath.Join(p.dir, name)
		if err := os.WriteFile(f, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	p.caFile = write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	p.cert = write("client.pem", clientCert)
	p.keyPEM = write("client.key", clientKey)
	return p
}

// TestSSLGetWithSSLBlock: the SSL block's CA and client certificate reach
// SSL_GET: against a TLS server with a certificate from that CA that
// requires a client certificate, the check passes with both; without the
// client certificate, without the CA, or with a virtualhost the
// certificate does not name, it fails.
func TestSSLGetWithSSLBlock(t *testing.T) {
	p := newTestPKI(t)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/health/checks/alarms" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, `{"status":"ok"}`)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{p.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: p.pool}
	srv.StartTLS()
	defer srv.Close()
	addr := netip.MustParseAddrPort(strings.TrimPrefix(srv.URL, "https://"))

	check := func(ssl, vhost string) (health.Result, []string) {
		t.Helper()
		text := fmt.Sprintf(`%s
virtual_server 10.0.0.100 443 {
    real_server %s %d {
        SSL_GET {
            virtualhost %s
            connect_timeout 5
            url {
                path /api/health/checks/alarms
            }
        }
    }
}
`, ssl, addr.Addr(), addr.Port(), vhost)
		lc, warnings, errs := resolve(parse(t, text))
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		checks, err := health.FromConfig(&lc.Config.VirtualServers[0].RealServers[0], lc.Health)
		if err != nil || len(checks) != 1 {
			t.Fatalf("FromConfig: %v, %d checks", err, len(checks))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return checks[0].Checker.Check(ctx), warnings
	}
	full := fmt.Sprintf("SSL {\n    ca %s\n    certificate %s\n    key %s\n}", p.caFile, p.cert, p.keyPEM)
	r, warnings := check(full, "rabbit.test")
	if !r.OK {
		t.Fatalf("SSL_GET with the CA and a client certificate failed: %v", r.Err)
	}
	for _, w := range warnings {
		if strings.Contains(w, "SSL_GET verifies") {
			t.Errorf("warned about verification although the CA is given: %s", w)
		}
	}
	for _, c := range []struct{ name, ssl, vhost string }{
		{"no client certificate", fmt.Sprintf("SSL {\n    ca %s\n}", p.caFile), "rabbit.test"},
		{"no CA (system roots)", fmt.Sprintf("SSL {\n    certificate %s\n    key %s\n}", p.cert, p.keyPEM), "rabbit.test"},
		{"a name the certificate lacks", full, "other.test"},
	} {
		if r, _ := check(c.ssl, c.vhost); r.OK || r.Err == nil {
			t.Errorf("%s: SSL_GET passed", c.name)
		} else {
			t.Logf("%s: %v", c.name, r.Err)
		}
	}
}

// TestSSLBlockFileErrors: unreadable or wrong files are configuration
// errors naming the file and line.
func TestSSLBlockFileErrors(t *testing.T) {
	p := newTestPKI(t)
	for _, c := range []struct{ name, block, want string }{
		{"missing ca", "SSL {\n    ca /nonexistent/ca.pem\n}", "test.conf:2: SSL: ca: open /nonexistent/ca.pem"},
		{"ca without PEM", fmt.Sprintf("SSL {\n    ca %s\n}", p.keyPEM), "holds no PEM certificate"},
		{"key of another certificate", fmt.Sprintf("SSL {\n    certificate %s\n    key %s\n}", p.caFile, p.keyPEM), "test.conf:2: SSL: certificate"},
	} {
		_, _, errs := resolve(parse(t, "\n"+c.block+"\n"))
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), c.want) {
			t.Errorf("%s: errors %v, want one containing %q", c.name, errs, c.want)
		}
	}
}
