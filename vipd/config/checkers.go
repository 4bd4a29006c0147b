package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// CheckCommon holds the options every checker has. After Parse they hold
// the values in effect: unset options come from the real server, then the
// virtual server, then the checker's default.
type CheckCommon struct {
	// ConnectIP and ConnectPort default to the real server's address and
	// port.
	ConnectIP   netip.Addr `json:"connect_ip,omitzero"`
	ConnectPort int        `json:"connect_port,omitempty"`
	BindTo      netip.Addr `json:"bindto,omitzero"`
	// ConnectTimeout defaults to 5s.
	ConnectTimeout Duration `json:"connect_timeout"`
	// Retry is how many more times a failed check is tried before the real
	// server is declared down: default 1, 0 for MISC_CHECK. Old name:
	// nb_get_retry.
	Retry int `json:"retry"`
	// DelayBeforeRetry defaults to 1s, 3s for HTTP_GET and SSL_GET.
	DelayBeforeRetry Duration `json:"delay_before_retry"`
	// DelayLoop is the time between checks, default the virtual server's.
	DelayLoop Duration `json:"delay_loop"`
	// Alpha starts the check failed, so the real server takes no traffic
	// until it passes once; default the real server's, then the virtual
	// server's, then off.
	Alpha bool `json:"alpha,omitempty"`

	meta *meta
}

func newCheckCommon() CheckCommon { return CheckCommon{meta: newMeta()} }

// TCPCheck is a TCP_CHECK block: a TCP connection is opened and closed.
type TCPCheck struct {
	Pos Pos `json:"-"`
	CheckCommon
}

// HTTPCheck is an HTTP_GET or SSL_GET block.
type HTTPCheck struct {
	Pos Pos `json:"-"`
	CheckCommon
	// Virtualhost is the Host header of the requests, and with SSL_GET the
	// TLS server name, unless a url has its own. After Parse it holds the
	// value in effect: this block's, else the real server's, else the
	// virtual server's, as in keepalived.
	Virtualhost string `json:"virtualhost,omitempty"`
	// EnableSNI is keepalived's enable_sni. vipd verifies the server's
	// certificate and so always sends the server name it verifies (SNI),
	// with or without it.
	EnableSNI bool `json:"enable_sni,omitempty"`
	// SNIName is the TLS server name to send and verify instead of the
	// virtualhost.
	SNIName string `json:"sni_name,omitempty"`
	URLs    []URL  `json:"url"`
	// User and Password (vipd's keywords; keepalived has none) send HTTP
	// basic authentication with every request, as RabbitMQ's management
	// health endpoints (/api/health/checks/...) require.
	User     string `json:"user,omitempty"`
	Password Secret `json:"password,omitempty"`
}

// URL is a url block of HTTP_GET / SSL_GET.
type URL struct {
	Path   string `json:"path"`
	Digest string `json:"digest,omitempty"`
	// StatusCode lists the accepted status codes; default 200-299.
	StatusCode  []StatusRange `json:"status_code"`
	Virtualhost string        `json:"virtualhost,omitempty"`
}

// StatusRange is a range of HTTP status codes, Lo..Hi inclusive. It
// marshals as "200" or "200-299".
type StatusRange struct{ Lo, Hi int }

// MarshalText formats the range as it is written in the file.
func (r StatusRange) MarshalText() ([]byte, error) {
	if r.Lo == r.Hi {
		return []byte(strconv.Itoa(r.Lo)), nil
	}
	return []byte(fmt.Sprintf("%d-%d", r.Lo, r.Hi)), nil
}

// Contains reports whether code lies in the range.
func (r StatusRange) Contains(code int) bool { return code >= r.Lo && code <= r.Hi }

// MiscCheck is a MISC_CHECK block: a program whose exit status is the
// result.
type MiscCheck struct {
	Pos Pos `json:"-"`
	CheckCommon
	MiscPath *Script `json:"misc_path"`
	// MiscTimeout is how long the program may run; default DelayLoop.
	MiscTimeout Duration `json:"misc_timeout"`
	// MiscDynamic: exit status 2..255 sets the weight to status-2.
	MiscDynamic bool   `json:"misc_dynamic"`
	User        string `json:"user,omitempty"`
	Group       string `json:"group,omitempty"`
}

// AMQPCheck is an AMQP_CHECK block, vipd's own checker: an AMQP 0-9-1
// handshake with the real server, logging in as User to VHost (and, when
// Queue is set, declaring it passively).
type AMQPCheck struct {
	Pos Pos `json:"-"`
	CheckCommon
	User     string `json:"user,omitempty"`
	Password Secret `json:"password,omitempty"`
	VHost    string `json:"vhost"` // default "/"
	Queue    string `json:"queue,omitempty"`
}

// checker walks a checker block; common points at the checker's
// CheckCommon, target at the checker.
func (d *decoder) checker(kind string, s *stmt, h keywords, common *CheckCommon, target any) {
	if len(s.args) > 0 {
		d.errorf(s, s.kw.line, "%s: expected no argument before '{', got %d", s.kw.val, len(s.args))
	}
	d.walk(kind, s, h, common.meta, func() any { return target })
}

// checkKeywords returns the keywords every checker has; conn adds the
// connection options (all checkers but MISC_CHECK).
func (d *decoder) checkKeywords(c *CheckCommon, conn bool) keywords {
	h := keywords{
		"connect_timeout":    value(d.timeoutHandler(&c.ConnectTimeout)),
		"retry":              value(d.retryHandler(&c.Retry)),
		"nb_get_retry":       value(d.retryHandler(&c.Retry)),
		"delay_before_retry": value(d.delayHandler(&c.DelayBeforeRetry)),
		"delay_loop": value(func(s *stmt) {
			if v, ok := d.secondsArg(s, time.Millisecond, 24*time.Hour); ok {
				c.DelayLoop = v
			}
		}),
		"alpha": value(d.boolHandler(&c.Alpha)),
	}
	if !conn {
		return h
	}
	h["connect_ip"] = value(func(s *stmt) {
		if v, ok := d.addrArg(s); ok {
			c.ConnectIP = v
		}
	})
	h["connect_port"] = value(func(s *stmt) {
		if v, ok := d.portArg(s); ok {
			c.ConnectPort = v
		}
	})
	h["bindto"] = value(func(s *stmt) {
		if v, ok := d.addrArg(s); ok {
			c.BindTo = v
		}
	})
	return h
}

func (d *decoder) httpCheck(s *stmt) HTTPCheck {
	c := HTTPCheck{Pos: s.pos(), CheckCommon: newCheckCommon()}
	d.checker("HTTP_GET", s, d.httpKeywords(&c), &c.CheckCommon, &c)
	if len(c.URLs) == 0 {
		d.errPos(c.Pos, "%s: expected at least one url { path ... } block", s.kw.val)
	}
	return c
}

func (d *decoder) httpKeywords(c *HTTPCheck) keywords {
	h := d.checkKeywords(&c.CheckCommon, true)
	h["virtualhost"] = value(d.hostHandler(&c.Virtualhost))
	h["enable_sni"] = value(func(s *stmt) {
		if v, ok := d.boolArg(s); ok {
			c.EnableSNI = v
		}
	})
	h["sni_name"] = value(d.hostHandler(&c.SNIName))
	h["user"] = value(func(s *stmt) {
		if v, ok := d.strArg(s); ok {
			c.User = v
		}
	})
	h["password"] = value(d.passwordHandler(&c.Password))
	h["url"] = block(func(s *stmt) {
		if len(s.args) > 0 {
			d.errorf(s, s.kw.line, "url: expected no argument before '{', got %d", len(s.args))
		}
		u := URL{}
		m := newMeta()
		d.walk("url", s, d.urlKeywords(&u), m, func() any { return &u })
		if u.Path == "" && !m.isBad("path") {
			d.errPos(s.pos(), "url: no path given")
		}
		if len(u.StatusCode) == 0 {
			u.StatusCode = []StatusRange{{200, 299}}
		}
		c.URLs = append(c.URLs, u)
	})
	return h
}

func (d *decoder) urlKeywords(u *URL) keywords {
	return keywords{
		"path": value(func(s *stmt) {
			if v, ok := d.strArg(s); ok {
				u.Path = v
			}
		}),
		"digest": value(func(s *stmt) {
			v, ok := d.strArg(s)
			if !ok {
				return
			}
			if len(v) != 32 || strings.Trim(strings.ToLower(v), "0123456789abcdef") != "" {
				d.errorf(s, s.args[0].line, "digest: expected 32 hexadecimal digits (an MD5 sum), got %q", v)
				return
			}
			u.Digest = strings.ToLower(v)
		}),
		"status_code": value(func(s *stmt) {
			if !d.nargs(s, 1, -1) {
				return
			}
			for _, a := range s.args {
				lo, hi, isRange := strings.Cut(a.val, "-")
				if !isRange {
					hi = lo
				}
				l, ok1 := parseInt(lo)
				h, ok2 := parseInt(hi)
				if !ok1 || !ok2 || l < 100 || h > 599 || l > h {
					d.errorf(s, a.line, "status_code: expected a code or a range of codes within 100..599, got %q", a.val)
					continue
				}
				u.StatusCode = append(u.StatusCode, StatusRange{l, h})
			}
		}),
		"virtualhost": value(d.hostHandler(&u.Virtualhost)),
	}
}

func (d *decoder) miscKeywords(c *MiscCheck) keywords {
	h := d.checkKeywords(&c.CheckCommon, false)
	h["misc_path"] = value(func(s *stmt) {
		if v, ok := d.commandArg(s); ok {
			c.MiscPath = v
		}
	})
	h["misc_timeout"] = value(func(s *stmt) {
		if v, ok := d.wholeSecondsArg(s, 0, 86400); ok {
			c.MiscTimeout = v
		}
	})
	h["misc_dynamic"] = value(func(s *stmt) {
		if d.flag(s) {
			c.MiscDynamic = true
		}
	})
	h["user"] = value(func(s *stmt) {
		if d.nargs(s, 1, 2) {
			c.User = s.args[0].val
			if len(s.args) == 2 {
				c.Group = d.group(s, s.args[1].val)
			}
		}
	})
	return h
}

func (d *decoder) amqpKeywords(c *AMQPCheck) keywords {
	h := d.checkKeywords(&c.CheckCommon, true)
	str := func(p *string) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.strArg(s); ok {
				*p = v
			}
		}
	}
	h["user"] = value(str(&c.User))
	h["vhost"] = value(str(&c.VHost))
	h["queue"] = value(str(&c.Queue))
	h["password"] = value(d.passwordHandler(&c.Password))
	return h
}

// passwordHandler sets *p from a password keyword, never quoting the
// argument in an error: it is a secret.
func (d *decoder) passwordHandler(p *Secret) func(*stmt) {
	return func(s *stmt) {
		if len(s.args) != 1 {
			d.errorf(s, s.kw.line, "password: expected one argument (the password), got %d", len(s.args))
			return
		}
		*p = Secret(s.args[0].val)
	}
}

// hostHandler sets *p from a host name keyword (virtualhost, sni_name):
// one word without blanks, slashes or control characters, at most 255
// bytes, as it goes into a Host header and a TLS server name.
func (d *decoder) hostHandler(p *string) func(*stmt) {
	return func(s *stmt) {
		v, ok := d.strArg(s)
		if !ok {
			return
		}
		if v == "" || len(v) > 255 || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '/' || r == '@' }) {
			d.errorf(s, s.args[0].line, "%s: expected a host name (and optionally :port) of at most 255 characters, got %q", s.kw.val, v)
			return
		}
		*p = v
	}
}

// boolHandler sets *p from an optional <BOOL> keyword.
func (d *decoder) boolHandler(p *bool) func(*stmt) {
	return func(s *stmt) {
		if v, ok := d.boolArg(s); ok {
			*p = v
		}
	}
}
