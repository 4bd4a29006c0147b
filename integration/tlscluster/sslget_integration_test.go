//go:build integration

package tlscluster

import (
	"context"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/health"
)

// TestSSLGetManagementTLS: vipd's SSL_GET, configured as keepalived.conf
// writes it with an SSL { ca certificate key } block, checks the health
// endpoint of a real node's management API over TLS (which requires the
// client certificate): it passes with the cluster's CA and client
// certificate, and fails without the client certificate and with another
// CA.
func TestSSLGetManagementTLS(t *testing.T) {
	f := shared.TLS()
	u, err := url.Parse(shared.Node(0).ManagementTLSURL())
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(u.Host)
	check := func(ssl string) health.Result {
		t.Helper()
		text := fmt.Sprintf(`%s
virtual_server 10.0.0.100 15671 {
    real_server %s %d {
        SSL_GET {
            connect_timeout 5
            user guest
            password guest
            url {
                path /api/health/checks/alarms
                status_code 200
            }
        }
    }
}
`, ssl, addr.Addr(), addr.Port())
		cfg, err := config.Parse("ssl.conf", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		tlsCfg, err := health.TLSFromSSL(cfg.SSL)
		if err != nil {
			t.Fatal(err)
		}
		checks, err := health.FromConfig(&cfg.VirtualServers[0].RealServers[0], health.Options{TLS: tlsCfg})
		if err != nil || len(checks) != 1 {
			t.Fatalf("FromConfig: %v, %d checks", err, len(checks))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return checks[0].Checker.Check(ctx)
	}
	block := func(lines ...string) string { return "SSL {\n    " + strings.Join(lines, "\n    ") + "\n}" }
	if r := check(block("ca "+f.CA, "certificate "+f.ClientCert, "key "+f.ClientKey)); !r.OK {
		t.Fatalf("SSL_GET with the CA and the client certificate: %v", r.Err)
	}
	for _, tc := range []struct{ name, ssl string }{
		{"no client certificate", block("ca " + f.CA)},
		{"another CA", block("ca "+otherCA(t), "certificate "+f.ClientCert, "key "+f.ClientKey)},
	} {
		r := check(tc.ssl)
		if r.OK || r.Err == nil {
			t.Errorf("%s: SSL_GET passed", tc.name)
			continue
		}
		if strings.Contains(r.Err.Error(), "guest:guest") {
			t.Errorf("%s: error shows the password: %v", tc.name, r.Err)
		}
		t.Logf("%s: %v", tc.name, r.Err)
	}
}
