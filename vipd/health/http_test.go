package health

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/internal/testenv"
	"github.com/amqpha/amqpha/vipd/config"
)

const body = `{"status":"ok"}`

// mgmt is a fake RabbitMQ management API: its health endpoints answer 200
// with guest/guest and 401 without.
func mgmt() http.Handler {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if u, p, ok := r.BasicAuth(); !ok || u != "guest" || p != "guest" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("/api/health/checks/alarms", auth(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) }))
	mux.HandleFunc("/api/health/checks/local-alarms", auth(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"status":"failed","reason":"resource alarm(s) in effect"}`))
	}))
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Host)) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/api/health/checks/alarms", http.StatusFound)
	})
	mux.HandleFunc("/query", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("x") != "1" {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, MaxBody+10)) })
	return mux
}

func addrOf(t *testing.T, s *httptest.Server) netip.AddrPort {
	t.Helper()
	return s.Listener.Addr().(*net.TCPAddr).AddrPort()
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestHTTP(t *testing.T) {
	srv := httptest.NewServer(mgmt())
	t.Cleanup(srv.Close)
	a := addrOf(t, srv)
	url := func(path string, codes ...config.StatusRange) config.URL {
		return config.URL{Path: path, StatusCode: codes}
	}
	guest := func(c HTTP) HTTP { c.User, c.Password = "guest", "guest"; return c }
	cases := []struct {
		name   string
		c      HTTP
		ok     bool
		kind   error
		errHas string
	}{
		{name: "healthy endpoint", c: guest(HTTP{URLs: []config.URL{url("/api/health/checks/alarms")}}), ok: true},
		{name: "no credentials: 401", c: HTTP{URLs: []config.URL{url("/api/health/checks/alarms")}}, kind: ErrStatus, errHas: "status 401, want 200-299"},
		{name: "401 accepted when asked for", c: HTTP{URLs: []config.URL{url("/api/health/checks/alarms", config.StatusRange{Lo: 401, Hi: 401})}}, ok: true},
		{name: "503 from a failing health check", c: guest(HTTP{URLs: []config.URL{url("/api/health/checks/local-alarms")}}),
			kind: ErrStatus, errHas: "GET /api/health/checks/local-alarms: status 503"},
		{name: "every url must pass", c: guest(HTTP{URLs: []config.URL{url("/api/health/checks/alarms"), url("/api/health/checks/local-alarms")}}),
			kind: ErrStatus},
		{name: "status ranges", c: guest(HTTP{URLs: []config.URL{url("/api/health/checks/local-alarms",
			config.StatusRange{Lo: 200, Hi: 200}, config.StatusRange{Lo: 500, Hi: 599})}}), ok: true},
		{name: "matching digest", c: guest(HTTP{URLs: []config.URL{{Path: "/api/health/checks/alarms", Digest: strings.ToUpper(md5hex(body))}}}), ok: true},
		{name: "wrong digest", c: guest(HTTP{URLs: []config.URL{{Path: "/api/health/checks/alarms", Digest: md5hex("other")}}}),
			kind: ErrDigest, errHas: "body MD5 " + md5hex(body)},
		{name: "body too long for a digest", c: HTTP{URLs: []config.URL{{Path: "/big", Digest: md5hex("")}}}, kind: ErrDigest, errHas: "longer"},
		{name: "body too long without digest is fine", c: HTTP{URLs: []config.URL{url("/big")}}, ok: true},
		{name: "virtualhost is the Host header", c: HTTP{Virtualhost: "rabbit.example", URLs: []config.URL{{Path: "/host", Digest: md5hex("rabbit.example")}}}, ok: true},
		{name: "url virtualhost wins", c: HTTP{Virtualhost: "rabbit.example", URLs: []config.URL{{Path: "/host", Virtualhost: "mq.example", Digest: md5hex("mq.example")}}}, ok: true},
		{name: "without virtualhost Host is the address", c: HTTP{URLs: []config.URL{{Path: "/host", Digest: md5hex(a.String())}}}, ok: true},
		{name: "redirects are not followed", c: HTTP{URLs: []config.URL{url("/moved", config.StatusRange{Lo: 302, Hi: 302})}}, ok: true},
		{name: "redirect is a failure by default", c: HTTP{URLs: []config.URL{url("/moved")}}, kind: ErrStatus, errHas: "status 302"},
		{name: "path without slash, with a query", c: HTTP{URLs: []config.URL{url("query?x=1")}}, ok: true},
		{name: "timeout", c: HTTP{Timeout: 200 * time.Millisecond, URLs: []config.URL{url("/hang")}}, kind: ErrTimeout, errHas: "no answer within 200ms"},
		{name: "no urls", c: HTTP{}, errHas: "no url"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.c.Addr = a
			r := c.c.Check(context.Background())
			if r.OK != c.ok || (r.Err == nil) != c.ok {
				t.Fatalf("Check = %+v, want OK %v", r, c.ok)
			}
			if c.kind != nil && !errors.Is(r.Err, c.kind) {
				t.Errorf("error %v is not %v", r.Err, c.kind)
			}
			if r.Err != nil && !strings.Contains(r.Err.Error(), c.errHas) {
				t.Errorf("error %q lacks %q", r.Err, c.errHas)
			}
		})
	}
}

func TestHTTPNeverShowsThePassword(t *testing.T) {
	const secret = "s3cret-pa55"
	srv := httptest.NewServer(mgmt())
	t.Cleanup(srv.Close)
	for _, c := range []HTTP{
		{Addr: addrOf(t, srv), User: "guest", Password: secret, URLs: []config.URL{{Path: "/api/health/checks/alarms"}}},
		{Addr: closedPort(t), User: "guest", Password: secret, URLs: []config.URL{{Path: "/api/health/checks/alarms"}}},
		{Addr: addrOf(t, srv), User: "guest", Password: secret, Timeout: 100 * time.Millisecond, URLs: []config.URL{{Path: "/hang"}}},
	} {
		r := c.Check(context.Background())
		if r.OK {
			t.Fatal("passed with a wrong password")
		}
		var b strings.Builder
		for _, s := range []string{r.Err.Error(), logString(&c)} {
			b.WriteString(s)
		}
		if strings.Contains(b.String(), secret) {
			t.Errorf("password shown: %s", b.String())
		}
	}
}

func TestSSLGet(t *testing.T) {
	srv := httptest.NewUnstartedServer(mgmt())
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	u := []config.URL{{Path: "/api/health/checks/alarms"}}
	cases := []struct {
		name string
		c    HTTP
		ok   bool
	}{
		{"unknown CA is refused", HTTP{TLS: &tls.Config{}, URLs: u}, false},
		{"trusted CA, address as server name", HTTP{TLS: &tls.Config{RootCAs: roots}, URLs: u}, true},
		{"trusted CA, virtualhost as server name", HTTP{TLS: &tls.Config{RootCAs: roots}, Virtualhost: "example.com", URLs: u}, true},
		{"trusted CA, virtualhost with a port: the name alone is the server name", HTTP{TLS: &tls.Config{RootCAs: roots}, Virtualhost: "example.com:8443", URLs: u}, true},
		{"trusted CA, name not in the certificate", HTTP{TLS: &tls.Config{RootCAs: roots}, Virtualhost: "rabbit.invalid", URLs: u}, false},
		{"verification off", HTTP{TLS: &tls.Config{InsecureSkipVerify: true}, Virtualhost: "rabbit.invalid", URLs: u}, true},
		{"plain HTTP to a TLS port", HTTP{URLs: u}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.c.Addr, c.c.User, c.c.Password = addrOf(t, srv), "guest", "guest"
			r := c.c.Check(context.Background())
			if r.OK != c.ok {
				t.Fatalf("Check = %+v, want OK %v", r, c.ok)
			}
			var ce *CheckError
			if !c.ok && (!errors.As(r.Err, &ce) || ce.Check != c.c.kind()) {
				t.Errorf("error %v is not a %s CheckError", r.Err, c.c.kind())
			}
		})
	}
}

func TestIPv6Loopback(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		testenv.Missing(t, "no IPv6 loopback: %v", err)
	}
	srv := httptest.NewUnstartedServer(mgmt())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	a := addrOf(t, srv)
	h := HTTP{Addr: a, User: "guest", Password: "guest", URLs: []config.URL{{Path: "/host", Digest: md5hex(a.String())}}}
	if r := h.Check(context.Background()); !r.OK {
		t.Errorf("HTTP_GET over IPv6: %v", r.Err)
	}
	if r := (&TCP{Addr: a, BindTo: netip.IPv6Loopback()}).Check(context.Background()); !r.OK {
		t.Errorf("TCP_CHECK over IPv6: %v", r.Err)
	}
}
