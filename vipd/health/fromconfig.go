package health

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/script"
)

// Options are the choices [FromConfig] cannot take from the configuration.
// The zero value works.
type Options struct {
	// Command turns a MISC_CHECK's misc_path into the command to run:
	// user and group are the check's "user" keyword (empty: the global
	// script_user), timeout its misc_timeout. It is where the daemon
	// resolves users and applies enable_script_security. When it refuses
	// a program, the check is kept as one that always fails with its
	// error: the real server stays out rather than up unchecked. nil runs
	// the program as vipd's own user.
	Command func(s *config.Script, user, group string, timeout time.Duration) (script.Command, error)
	// TLS is the TLS configuration of SSL_GET checks (cloned per check);
	// nil verifies certificates against the system's roots.
	TLS *tls.Config
}

// FromConfig returns the checks of real server rs of a parsed
// configuration (whose checkers hold the values in effect: connect_ip,
// connect_port, connect_timeout, retry, delay_before_retry and delay_loop
// inherited from the real and virtual server): its TCP_CHECK, HTTP_GET,
// SSL_GET, MISC_CHECK and AMQP_CHECK blocks, in that order.
func FromConfig(rs *config.RealServer, opts Options) ([]Check, error) {
	var (
		checks []Check
		errs   []error
	)
	add := func(kind, target string, common *config.CheckCommon, c Checker) {
		checks = append(checks, Check{
			Name:             kind + " " + target,
			Checker:          c,
			DelayLoop:        common.DelayLoop.Duration(),
			Retry:            common.Retry,
			DelayBeforeRetry: common.DelayBeforeRetry.Duration(),
			Alpha:            common.Alpha,
		})
	}
	addr := func(kind string, c *config.CheckCommon) (netip.AddrPort, bool) {
		if !c.ConnectIP.IsValid() || c.ConnectPort <= 0 || c.ConnectPort > 65535 {
			errs = append(errs, fmt.Errorf("health: %s of real server %s: no address and port to connect to (connect_ip %v, connect_port %d)",
				kind, rs.IP, c.ConnectIP, c.ConnectPort))
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(c.ConnectIP, uint16(c.ConnectPort)), true
	}
	for i := range rs.TCPCheck {
		c := &rs.TCPCheck[i]
		if a, ok := addr("TCP_CHECK", &c.CheckCommon); ok {
			add("TCP_CHECK", a.String(), &c.CheckCommon, &TCP{Addr: a, BindTo: c.BindTo, Timeout: c.ConnectTimeout.Duration()})
		}
	}
	httpChecks := func(kind string, list []config.HTTPCheck, tlsCfg *tls.Config) {
		for i := range list {
			c := &list[i]
			a, ok := addr(kind, &c.CheckCommon)
			if !ok {
				continue
			}
			t := tlsCfg
			if t != nil && c.SNIName != "" { // sni_name: the name sent and verified
				t = t.Clone()
				t.ServerName = c.SNIName
			}
			h := &HTTP{Addr: a, BindTo: c.BindTo, Timeout: c.ConnectTimeout.Duration(), Virtualhost: c.Virtualhost,
				URLs: append([]config.URL(nil), c.URLs...), TLS: t, User: c.User, Password: c.Password}
			add(kind, a.String(), &c.CheckCommon, h)
		}
	}
	httpChecks("HTTP_GET", rs.HTTPGet, nil)
	sslCfg := &tls.Config{}
	if opts.TLS != nil {
		sslCfg = opts.TLS
	}
	httpChecks("SSL_GET", rs.SSLGet, sslCfg)
	for i := range rs.MiscCheck {
		c := &rs.MiscCheck[i]
		if c.MiscPath == nil || len(c.MiscPath.Argv) == 0 {
			errs = append(errs, fmt.Errorf("health: MISC_CHECK of real server %s: no misc_path", rs.IP))
			continue
		}
		timeout := c.MiscTimeout.Duration()
		cmd := script.Command{Argv: c.MiscPath.Argv, Timeout: timeout}
		if opts.Command != nil {
			var err error
			if cmd, err = opts.Command(c.MiscPath, c.User, c.Group, timeout); err != nil {
				// Refused (enable_script_security, an unknown user): the
				// check stays, failing, so the real server is kept out
				// rather than taken as up unchecked.
				add("MISC_CHECK", c.MiscPath.Argv[0], &c.CheckCommon, refused(c.MiscPath.Argv[0], err))
				continue
			}
		}
		add("MISC_CHECK", c.MiscPath.Argv[0], &c.CheckCommon, &Misc{Command: cmd, Dynamic: c.MiscDynamic})
	}
	for i := range rs.AMQPCheck {
		c := &rs.AMQPCheck[i]
		if a, ok := addr("AMQP_CHECK", &c.CheckCommon); ok {
			add("AMQP_CHECK", a.String(), &c.CheckCommon, &AMQP{Addr: a, BindTo: c.BindTo, Timeout: c.ConnectTimeout.Duration(),
				User: c.User, Password: c.Password, VHost: c.VHost, Queue: c.Queue})
		}
	}
	return checks, errors.Join(errs...)
}

// refused is the checker of a MISC_CHECK whose program may not run: it
// fails every time, saying why.
func refused(program string, why error) Checker {
	err := &CheckError{Check: "MISC_CHECK", Target: program, Err: fmt.Errorf("not run: %w", why)}
	return CheckerFunc(func(context.Context) Result { return fail(time.Now(), err) })
}
