package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/amqpha/amqpha/internal/testpki"
)

// TLSClientName is the common name of the client certificate of a TLS
// cluster ([Options.TLS]), and the name of the user that logs in with it
// over SASL EXTERNAL.
const TLSClientName = "amqpha-tls-client"

// TLSFiles are the PEM files of a TLS cluster ([Options.TLS]): the CA
// that signed every node's server certificate, and a client certificate
// the nodes accept, signed by the same CA, whose common name is
// [TLSClientName].
type TLSFiles struct {
	CA         string // the CA certificate
	ClientCert string // the client certificate
	ClientKey  string // its private key (unencrypted)
	// Pool holds the CA, for a tls.Config's RootCAs.
	Pool *x509.CertPool
	// Client is the client certificate with its key, for a tls.Config's
	// Certificates.
	Client tls.Certificate
}

// pki is a TLS cluster's certificate authority: made at Start, it signs
// a server certificate for every node as the node is made.
type pki struct {
	ca    *testpki.CA
	files TLSFiles
}

// newPKI makes a CA and a client certificate under dir.
func newPKI(dir string) (*pki, error) {
	ca, err := testpki.New(dir, "amqpha test CA "+filepath.Base(filepath.Dir(dir)))
	if err != nil {
		return nil, fmt.Errorf("cluster: tls: %w", err)
	}
	p := &pki{ca: ca, files: TLSFiles{CA: ca.File, Pool: ca.Pool}}
	p.files.ClientCert, p.files.ClientKey, err = ca.Issue("client", TLSClientName, nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, fmt.Errorf("cluster: tls: %w", err)
	}
	if p.files.Client, err = tls.LoadX509KeyPair(p.files.ClientCert, p.files.ClientKey); err != nil {
		return nil, fmt.Errorf("cluster: tls: %w", err)
	}
	return p, nil
}

// TLS returns the certificate files of a cluster started with
// [Options.TLS], nil for one without.
func (c *Cluster) TLS() *TLSFiles {
	if c.pki == nil {
		return nil
	}
	f := c.pki.files
	return &f
}

// tlsConfig is the part of node n's rabbitmq.conf that turns on its TLS
// listeners (AMQP and management) and SASL EXTERNAL, with a server
// certificate of its own made now.
func (n *Node) tlsConfig() (string, error) {
	p := n.c.pki
	cert, key, err := p.ca.Issue(fmt.Sprintf("node%d", n.index), "localhost", []string{"localhost", "127.0.0.1"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return "", fmt.Errorf("cluster: tls: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "listeners.ssl.default = %s\n", n.addr(portAMQPS))
	for _, prefix := range []string{"ssl_options", "management.ssl"} {
		fmt.Fprintf(&b, "%s.cacertfile = %s\n%s.certfile = %s\n%s.keyfile = %s\n", prefix, p.files.CA, prefix, cert, prefix, key)
	}
	// A client certificate is asked for and verified when given, not
	// required: guest logs in over TLS with a password too.
	fmt.Fprintf(&b, "ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = false\n")
	fmt.Fprintf(&b, "auth_mechanisms.1 = PLAIN\nauth_mechanisms.2 = AMQPLAIN\nauth_mechanisms.3 = EXTERNAL\n")
	fmt.Fprintf(&b, "ssl_cert_login_from = common_name\n")
	fmt.Fprintf(&b, "management.ssl.ip = 127.0.0.1\nmanagement.ssl.port = %d\n", n.port(portMgmtTLS))
	// The management API over TLS requires the client certificate: a
	// health check must present it (vipd's SSL block).
	fmt.Fprintf(&b, "management.ssl.verify = verify_peer\nmanagement.ssl.fail_if_no_peer_cert = true\n")
	return b.String(), nil
}

// TLSURI is the node's amqps:// URI (user guest, on 127.0.0.1, which its
// server certificate names, as does "localhost"), without the proxy and
// without query parameters: a client adds its own (cacertfile, …). ""
// unless the cluster has [Options.TLS].
func (n *Node) TLSURI() string {
	if n.c.pki == nil {
		return ""
	}
	u := url.URL{Scheme: "amqps", User: url.UserPassword("guest", "guest"), Host: n.addr(portAMQPS), Path: "/"}
	return u.String()
}

// ManagementTLSURL is the base URL of the node's management API over
// TLS, which asks for the cluster's client certificate ([TLSFiles]) and
// refuses a client without one; "" unless the cluster has [Options.TLS].
func (n *Node) ManagementTLSURL() string {
	if n.c.pki == nil {
		return ""
	}
	return "https://" + n.addr(portMgmtTLS)
}

// addTLSUser makes the user that logs in with the client certificate.
func (c *Cluster) addTLSUser(ctx context.Context) error {
	// The password is never used (EXTERNAL sends none) and never shown.
	return c.AddUser(ctx, TLSClientName, randomHex(16))
}
