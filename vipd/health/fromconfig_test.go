package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/script"
)

const checksConf = `
virtual_server 10.0.0.1 5672 {
    delay_loop 6
    connect_timeout 4
    retry 2
    delay_before_retry 0.5
    real_server 10.0.0.2 5672 {
        TCP_CHECK {
            connect_timeout 3
            nb_get_retry 3
            delay_before_retry 3
        }
        HTTP_GET {
            url {
                path /api/health/checks/alarms
                status_code 200
            }
            connect_port 15672
            virtualhost rabbit.example
            user monitor
            password s3cret
        }
        SSL_GET {
            url {
                path /
            }
            connect_port 15671
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check 'a b'"
            misc_timeout 5
            misc_dynamic
            user checker
        }
        AMQP_CHECK {
            user monitor
            password hunter2
            vhost /prod
            queue health
            delay_loop 1
        }
    }
}
`

func TestFromConfig(t *testing.T) {
	cfg, err := config.Parse("test.conf", []byte(checksConf))
	if err != nil {
		t.Fatal(err)
	}
	rs := &cfg.VirtualServers[0].RealServers[0]
	var gotUser string
	opts := Options{
		Command: func(s *config.Script, user, group string, timeout time.Duration) (script.Command, error) {
			gotUser = user
			return script.Command{Argv: append([]string{"/usr/bin/sudo"}, s.Argv...), Timeout: timeout}, nil
		},
		TLS: &tls.Config{InsecureSkipVerify: true},
	}
	checks, err := FromConfig(rs, opts)
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("10.0.0.2")
	want := []Check{
		{Name: "TCP_CHECK 10.0.0.2:5672", DelayLoop: 6 * time.Second, Retry: 3, DelayBeforeRetry: 3 * time.Second,
			Checker: &TCP{Addr: netip.AddrPortFrom(ip, 5672), Timeout: 3 * time.Second}},
		{Name: "HTTP_GET 10.0.0.2:15672", DelayLoop: 6 * time.Second, Retry: 2, DelayBeforeRetry: 500 * time.Millisecond,
			Checker: &HTTP{Addr: netip.AddrPortFrom(ip, 15672), Timeout: 4 * time.Second, Virtualhost: "rabbit.example",
				User: "monitor", Password: "s3cret", URLs: []config.URL{{Path: "/api/health/checks/alarms", StatusCode: []config.StatusRange{{Lo: 200, Hi: 200}}}}}},
		{Name: "SSL_GET 10.0.0.2:15671", DelayLoop: 6 * time.Second, Retry: 2, DelayBeforeRetry: 500 * time.Millisecond,
			Checker: &HTTP{Addr: netip.AddrPortFrom(ip, 15671), Timeout: 4 * time.Second, TLS: opts.TLS,
				URLs: []config.URL{{Path: "/", StatusCode: []config.StatusRange{{Lo: 200, Hi: 299}}}}}},
		{Name: "MISC_CHECK /usr/local/bin/check", DelayLoop: 6 * time.Second, Retry: 2, DelayBeforeRetry: 500 * time.Millisecond,
			Checker: &Misc{Dynamic: true, Command: script.Command{Argv: []string{"/usr/bin/sudo", "/usr/local/bin/check", "a b"}, Timeout: 5 * time.Second}}},
		{Name: "AMQP_CHECK 10.0.0.2:5672", DelayLoop: time.Second, Retry: 2, DelayBeforeRetry: 500 * time.Millisecond,
			Checker: &AMQP{Addr: netip.AddrPortFrom(ip, 5672), Timeout: 4 * time.Second, User: "monitor", Password: "hunter2", VHost: "/prod", Queue: "health"}},
	}
	if len(checks) != len(want) {
		t.Fatalf("%d checks, want %d", len(checks), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(checks[i], want[i]) {
			t.Errorf("check %d:\n got %+v %+v\nwant %+v %+v", i, checks[i], checks[i].Checker, want[i], want[i].Checker)
		}
	}
	if gotUser != "checker" {
		t.Errorf("Command got user %q, want checker", gotUser)
	}
}

func TestFromConfigErrors(t *testing.T) {
	cfg, err := config.Parse("test.conf", []byte(`
virtual_server 10.0.0.1 5672 {
    real_server 10.0.0.3 5672 {
        MISC_CHECK {
            misc_path /bin/true
        }
    }
}`))
	if err != nil {
		t.Fatal(err)
	}
	rs := &cfg.VirtualServers[0].RealServers[0]
	// config.Parse refuses a checker without a port; a hand-made one can
	// still lack it.
	rs.TCPCheck = []config.TCPCheck{{CheckCommon: config.CheckCommon{ConnectIP: rs.IP}}}
	failing := Options{Command: func(*config.Script, string, string, time.Duration) (script.Command, error) {
		return script.Command{}, errors.New("no such user")
	}}
	checks, err := FromConfig(rs, failing)
	if len(checks) != 1 || err == nil || !strings.Contains(err.Error(), "no address and port") {
		t.Fatalf("FromConfig = %v, %v", checks, err)
	}
	// The refused program is a check that always fails, saying why: the
	// real server stays out instead of being taken as up unchecked.
	if r := checks[0].Checker.Check(context.Background()); r.OK || r.Err == nil || !strings.Contains(r.Err.Error(), "no such user") || checks[0].Name != "MISC_CHECK /bin/true" {
		t.Fatalf("refused MISC_CHECK %q: %+v", checks[0].Name, r)
	}
	// Without Options.Command the program runs as is.
	rs.TCPCheck = nil
	checks, err = FromConfig(rs, Options{})
	if err != nil || len(checks) != 1 || !reflect.DeepEqual(checks[0].Checker, &Misc{Command: script.Command{Argv: []string{"/bin/true"}, Timeout: 60 * time.Second}}) {
		t.Fatalf("FromConfig = %+v, %v", checks, err)
	}
}

// TestVirtualhostFromConfig: keepalived's virtualhost of a url, an
// HTTP_GET/SSL_GET, a real_server or a virtual_server (first given wins,
// in that order) is the Host header of the checks' requests and, for
// SSL_GET, the TLS server name sent (SNI) and verified; sni_name replaces
// the TLS name only.
func TestVirtualhostFromConfig(t *testing.T) {
	var mu sync.Mutex
	var sni []string
	srv := httptest.NewUnstartedServer(mgmt())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		sni = append(sni, h.ServerName)
		mu.Unlock()
		return nil, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	plain := httptest.NewServer(mgmt())
	t.Cleanup(plain.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate()) // valid for example.com and 127.0.0.1
	tlsAddr, httpAddr := addrOf(t, srv), addrOf(t, plain)

	cases := []struct {
		name, vs, rs, check, url, sni string
		host                          string // Host header expected
		tlsName                       string // server name expected in the TLS hello ("" for HTTP_GET)
		ok                            bool
	}{
		{name: "virtual_server's", vs: "virtualhost example.com", host: "example.com", tlsName: "example.com", ok: true},
		{name: "real_server's before virtual_server's", vs: "virtualhost vs.invalid", rs: "virtualhost example.com", host: "example.com", tlsName: "example.com", ok: true},
		{name: "check's before real_server's", rs: "virtualhost rs.invalid", check: "virtualhost example.com", host: "example.com", tlsName: "example.com", ok: true},
		{name: "url's first", check: "virtualhost example.com", url: "virtualhost url.example", host: "url.example", tlsName: "", ok: false},
		{name: "a name not in the certificate fails SSL_GET", vs: "virtualhost rabbit.invalid", host: "rabbit.invalid", tlsName: "rabbit.invalid", ok: false},
		{name: "sni_name is the TLS name", vs: "virtualhost rabbit.invalid", sni: "sni_name example.com", host: "rabbit.invalid", tlsName: "example.com", ok: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, kind := range []string{"HTTP_GET", "SSL_GET"} {
				a := httpAddr
				if kind == "SSL_GET" {
					a = tlsAddr
				}
				conf := fmt.Sprintf(`virtual_server %s %d {
    protocol TCP
    %s
    real_server %s %d {
        %s
        %s {
            %s
            %s
            url {
                path /host
                digest %s
                %s
            }
        }
    }
}`, a.Addr(), a.Port(), c.vs, a.Addr(), a.Port(), c.rs, kind, c.check, c.sni, md5hex(c.host), c.url)
				cfg, err := config.Parse("test.conf", []byte(conf))
				if err != nil {
					t.Fatalf("%s: %v", kind, err)
				}
				checks, err := FromConfig(&cfg.VirtualServers[0].RealServers[0], Options{TLS: &tls.Config{RootCAs: roots}})
				if err != nil || len(checks) != 1 {
					t.Fatalf("%s: %d checks, %v", kind, len(checks), err)
				}
				mu.Lock()
				sni = nil
				mu.Unlock()
				r := checks[0].Checker.Check(context.Background())
				mu.Lock()
				got := slices.Clone(sni)
				mu.Unlock()
				if kind == "HTTP_GET" {
					if !r.OK {
						t.Errorf("HTTP_GET: Host header is not %q: %v", c.host, r.Err)
					}
					continue
				}
				want := c.tlsName
				if want == "" {
					want = c.host
				}
				if r.OK != c.ok || len(got) != 1 || got[0] != want {
					t.Errorf("SSL_GET: OK %v (err %v), server names %q; want OK %v and %q", r.OK, r.Err, got, c.ok, want)
				}
			}
		})
	}
}
