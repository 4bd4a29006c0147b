package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
)

// TestIssuedCertificatesVerify: a server certificate verifies against the
// CA for its names and addresses only; a client certificate is one.
func TestIssuedCertificatesVerify(t *testing.T) {
	ca, err := New(t.TempDir(), "test CA")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := ca.Issue("server", "localhost", []string{"localhost", "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for name, ok := range map[string]bool{"localhost": true, "127.0.0.1": true, "other.test": false} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: name})
		if (err == nil) != ok {
			t.Errorf("verify for %s: %v, want ok=%v", name, err, ok)
		}
	}
	other, _ := New(t.TempDir(), "other CA")
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other.Pool}); err == nil {
		t.Error("verified against another CA")
	}
	c, k, err := ca.Issue("client", "app", nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(c, k); err != nil {
		t.Fatal(err)
	}
}
