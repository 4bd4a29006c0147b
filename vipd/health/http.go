package health

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/amqpha/amqpha/vipd/config"
)

// MaxBody is how much of an HTTP response an [HTTP] check reads (and
// hashes for a digest); a longer body fails the check when it has a
// digest and is cut off otherwise.
const MaxBody = 1 << 20

// HTTP is an HTTP_GET, or with TLS set an SSL_GET: each of URLs is fetched
// in turn with GET, and the check passes when every answer has a status in
// its url's status_code ranges (default 200-299) and, when the url has a
// digest, a body whose MD5 is that digest. Redirects are not followed (a
// 3xx is the answer), proxies from the environment are not used, and every
// check opens fresh connections.
//
// For RabbitMQ's management API, fetch the health endpoints with the
// monitoring user's credentials:
//
//	/api/health/checks/alarms                  (no resource alarm in the cluster)
//	/api/health/checks/local-alarms            (none on this node)
//	/api/health/checks/node-is-quorum-critical (stopping this node would not lose a quorum queue's majority)
//
// Each answers 200 when healthy and 503 when not. A drained RabbitMQ 3.10
// node closes its management listener too, so these fail with "connection
// refused" while it is in maintenance mode.
//
// The password never appears in errors or logs. Check may be called from
// several goroutines at once.
type HTTP struct {
	// Addr is connect_ip:connect_port.
	Addr   netip.AddrPort
	BindTo netip.Addr
	// Timeout (connect_timeout) bounds each url's request, from connect
	// to the end of the body; 0 means [DefaultConnectTimeout].
	Timeout time.Duration
	// Virtualhost is the Host header (and the TLS server name) unless the
	// url has its own; "" means Addr.
	Virtualhost string
	URLs        []config.URL
	// User, when set, authenticates each request with HTTP basic auth.
	User     string
	Password config.Secret
	// TLS makes this an SSL_GET. Certificates are verified as TLS's
	// settings say: set InsecureSkipVerify to accept any certificate
	// (keepalived's SSL_GET does not verify). ServerName defaults to the
	// virtualhost, else the address.
	TLS *tls.Config
}

var _ Checker = (*HTTP)(nil)

// kind is the keepalived name of the check.
func (c *HTTP) kind() string {
	if c.TLS != nil {
		return "SSL_GET"
	}
	return "HTTP_GET"
}

// LogValue describes the check without its password.
func (c *HTTP) LogValue() slog.Value {
	paths := make([]string, len(c.URLs))
	for i, u := range c.URLs {
		paths[i] = u.Path
	}
	return slog.GroupValue(slog.String("check", c.kind()), slog.String("addr", c.Addr.String()),
		slog.String("user", c.User), slog.String("paths", strings.Join(paths, " ")))
}

// Check fetches every url once. It blocks until all answered, one failed
// or ctx ended.
func (c *HTTP) Check(ctx context.Context) Result {
	start := time.Now()
	if len(c.URLs) == 0 {
		return fail(start, &CheckError{Check: c.kind(), Target: c.Addr.String(), Err: errors.New("no url to fetch")})
	}
	for i := range c.URLs {
		if err := c.get(ctx, &c.URLs[i]); err != nil {
			return fail(start, &CheckError{Check: c.kind(), Target: c.Addr.String(), Err: err})
		}
	}
	return pass(start)
}

// get fetches one url within Timeout.
func (c *HTTP) get(ctx context.Context, u *config.URL) error {
	timeout := timeoutOr(c.Timeout, DefaultConnectTimeout)
	deadline := time.Now().Add(timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	host := u.Virtualhost
	if host == "" {
		host = c.Virtualhost
	}
	scheme := "http"
	tr := &http.Transport{
		DialContext:            dialTo(dialer(c.BindTo), c.Addr), // the URL cannot carry an IPv6 zone
		DisableKeepAlives:      true,
		DisableCompression:     true, // the digest is over the body as sent
		MaxResponseHeaderBytes: 64 << 10,
	}
	defer tr.CloseIdleConnections()
	if c.TLS != nil {
		scheme = "https"
		tr.TLSClientConfig = c.TLS.Clone()
		if tr.TLSClientConfig.ServerName == "" {
			tr.TLSClientConfig.ServerName = serverName(host)
		}
		if tr.TLSClientConfig.ServerName == "" {
			tr.TLSClientConfig.ServerName = c.Addr.Addr().WithZone("").String()
		}
	}
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	path := u.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+unzoned(c.Addr)+path, nil)
	if err != nil {
		return fmt.Errorf("url %q: %w", u.Path, err)
	}
	if host != "" {
		req.Host = host
	}
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password.Reveal())
	}
	req.Header.Set("User-Agent", "vipd-health-check")

	resp, err := client.Do(req)
	if err != nil {
		return c.requestError(ctx, deadline, u.Path, timeout, err)
	}
	defer resp.Body.Close()
	body := io.Reader(io.LimitReader(resp.Body, MaxBody+1))
	h := md5.New()
	if u.Digest != "" {
		body = io.TeeReader(body, h)
	}
	n, err := io.Copy(io.Discard, body)
	if err != nil {
		return c.requestError(ctx, deadline, u.Path, timeout, err)
	}
	if !statusOK(resp.StatusCode, u.StatusCode) {
		return kindf(ErrStatus, "GET %s: status %d, want %s", u.Path, resp.StatusCode, rangesString(u.StatusCode))
	}
	if u.Digest != "" {
		if n > MaxBody {
			return kindf(ErrDigest, "GET %s: body longer than %d bytes", u.Path, MaxBody)
		}
		if got := hex.EncodeToString(h.Sum(nil)); !strings.EqualFold(got, u.Digest) {
			return kindf(ErrDigest, "GET %s: body MD5 %s, want %s", u.Path, got, strings.ToLower(u.Digest))
		}
	}
	return nil
}

// requestError describes a failed request; net/http's errors quote the
// URL, which holds no credentials (they travel in a header).
func (c *HTTP) requestError(ctx context.Context, deadline time.Time, path string, timeout time.Duration, err error) error {
	var ne net.Error
	if timedOut(ctx, deadline) || (ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout()) {
		return timeoutf(err, "GET %s: no answer within %v", path, timeout)
	}
	return fmt.Errorf("GET %s: %w", path, err)
}

// statusOK reports whether code lies in one of ranges; no ranges means
// 200-299.
func statusOK(code int, ranges []config.StatusRange) bool {
	if len(ranges) == 0 {
		return code >= 200 && code <= 299
	}
	for _, r := range ranges {
		if r.Contains(code) {
			return true
		}
	}
	return false
}

func rangesString(ranges []config.StatusRange) string {
	if len(ranges) == 0 {
		return "200-299"
	}
	s := make([]string, len(ranges))
	for i, r := range ranges {
		b, _ := r.MarshalText()
		s[i] = string(b)
	}
	return strings.Join(s, ",")
}

// serverName is the TLS server name of a virtualhost or sni_name, which
// may carry a port ("rabbit.example:15671", "[2001:db8::1]:443"): the
// host alone, as the certificate names it.
func serverName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}
