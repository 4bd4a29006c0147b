package amqpha

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/amqpha/amqpha/internal/spell"
)

// A node URI's query parameters, as amqp091-go's ParseURI reads them (and
// frame_max, which RabbitMQ's URI spec names and amqp091-go leaves out).
// amqpha honours every one of them, each for its own node; a parameter
// amqpha does not know fails Validate (and Dial) instead of being ignored
// as amqp091-go ignores it, so that a typo such as "cacertfil" is not a
// connection without the CA it was meant to name.
const (
	paramCertFile    = "certfile"
	paramKeyFile     = "keyfile"
	paramCACertFile  = "cacertfile"
	paramServerName  = "server_name_indication"
	paramAuth        = "auth_mechanism"
	paramHeartbeat   = "heartbeat"
	paramConnTimeout = "connection_timeout"
	paramChannelMax  = "channel_max"
	paramFrameMax    = "frame_max"
	paramVerify      = "verify"
)

var knownParams = []string{
	paramAuth, paramCACertFile, paramCertFile, paramChannelMax, paramConnTimeout,
	paramFrameMax, paramHeartbeat, paramKeyFile, paramServerName, paramVerify,
}

// tlsParams are the parameters that only an amqps:// URI may carry.
var tlsParams = map[string]bool{
	paramCertFile: true, paramKeyFile: true, paramCACertFile: true, paramServerName: true, paramVerify: true,
}

// unsupportedParams are parameters of RabbitMQ's URI spec (read by its
// Erlang client) that amqpha refuses, with the reason.
var unsupportedParams = map[string]string{
	"password":             "encrypted key files are not supported: give keyfile an unencrypted key",
	"depth":                "the chain depth is not limited: verification follows Go's crypto/tls",
	"fail_if_no_peer_cert": "it is a server setting",
}

const (
	// minFrameMax is AMQP's frame-min-size: no peer may ask for less.
	minFrameMax = 4096
	// minChannelMax is the fewest channels with which a connection can
	// serve anything: the hang detector's probe and one publisher or
	// consumer (declarations borrow one briefly).
	minChannelMax = 2
	// maxConnTimeoutMs bounds connection_timeout (about 24.8 days).
	maxConnTimeoutMs = math.MaxInt32
)

// uriParams are a node URI's query parameters, checked.
type uriParams struct {
	certFile, keyFile string // both or neither
	caFile            string
	serverName        string
	verifyPeer        bool          // verify=verify_peer
	sasl              []string      // SASL mechanisms in order, upper case; nil: PLAIN
	heartbeat         time.Duration // whole seconds
	hasHeartbeat      bool
	dialTimeout       time.Duration // connection_timeout; 0: Config.DialTimeout
	channelMax        uint16        // 0: amqp091-go's default
	frameMax          int           // 0: the broker's
}

// external reports whether the node authenticates with its client
// certificate (SASL EXTERNAL) before any password mechanism.
func (p *uriParams) external() bool { return slices.Contains(p.sasl, "EXTERNAL") }

// parseParams checks the query of a node URI of the given scheme. Its
// errors name the parameter but never repeat a value, which could be a
// secret given where it does not belong; file names are repeated.
func parseParams(scheme string, q url.Values) (uriParams, error) {
	var p uriParams
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	slices.Sort(names) // the same URI always gets the same error
	for _, k := range names {
		vs := q[k]
		if why, ok := unsupportedParams[k]; ok {
			return p, fmt.Errorf("URI parameter %s is not supported (%s)", k, why)
		}
		if !slices.Contains(knownParams, k) {
			hint := ""
			if near := spell.Suggest(k, knownParams); near != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", near)
			}
			return p, fmt.Errorf("unknown URI parameter %q%s; amqpha reads %s", clip(k), hint, strings.Join(knownParams, ", "))
		}
		if k != paramAuth && len(vs) > 1 {
			return p, fmt.Errorf("URI parameter %s given %d times, want once", k, len(vs))
		}
		for _, v := range vs {
			if v == "" {
				return p, fmt.Errorf("URI parameter %s is empty", k)
			}
		}
		if scheme != "amqps" && tlsParams[k] {
			return p, fmt.Errorf("URI parameter %s needs an amqps:// URI (TLS)", k)
		}
		v := vs[0]
		var err error
		switch k {
		case paramCertFile:
			p.certFile = v
		case paramKeyFile:
			p.keyFile = v
		case paramCACertFile:
			p.caFile = v
		case paramServerName:
			if len(v) > 253 || strings.ContainsAny(v, " \t\r\n/") {
				return p, fmt.Errorf("URI parameter %s: want a host name", k)
			}
			p.serverName = v
		case paramVerify:
			switch v {
			case "verify_peer":
				p.verifyPeer = true // what amqpha always does, unless Config.TLS says otherwise
			case "verify_none":
				return p, fmt.Errorf("URI parameter verify=verify_none is refused: amqpha always verifies the server's certificate (set Config.TLS.InsecureSkipVerify to turn that off for every node)")
			default:
				return p, fmt.Errorf("URI parameter verify: want verify_peer")
			}
		case paramAuth:
			for _, m := range vs {
				switch u := strings.ToUpper(m); u {
				case "PLAIN", "AMQPLAIN", "EXTERNAL":
					p.sasl = append(p.sasl, u)
				default:
					return p, fmt.Errorf("URI parameter auth_mechanism: want plain, amqplain or external (repeat the parameter for more than one)")
				}
			}
			if p.external() && scheme != "amqps" {
				return p, fmt.Errorf("URI parameter auth_mechanism=external needs an amqps:// URI: the broker takes the user from the client certificate")
			}
		case paramHeartbeat:
			var n uint64
			if n, err = strconv.ParseUint(v, 10, 16); err != nil {
				return p, fmt.Errorf("URI parameter heartbeat: want whole seconds from 0 (the broker's value) to 65535")
			}
			p.heartbeat, p.hasHeartbeat = time.Duration(n)*time.Second, true
		case paramConnTimeout:
			var n uint64
			if n, err = strconv.ParseUint(v, 10, 64); err != nil || n > maxConnTimeoutMs {
				return p, fmt.Errorf("URI parameter connection_timeout: want milliseconds from 0 (Config.DialTimeout) to %d", maxConnTimeoutMs)
			}
			p.dialTimeout = time.Duration(n) * time.Millisecond
		case paramChannelMax:
			var n uint64
			if n, err = strconv.ParseUint(v, 10, 16); err != nil || n != 0 && n < minChannelMax {
				return p, fmt.Errorf("URI parameter channel_max: want 0 (the default, 2047) or %d to 65535: amqpha's hang detector takes one channel of each connection, and each publisher and consumer another", minChannelMax)
			}
			p.channelMax = uint16(n)
		case paramFrameMax:
			var n uint64
			if n, err = strconv.ParseUint(v, 10, 32); err != nil || n != 0 && n < minFrameMax || n > math.MaxInt {
				return p, fmt.Errorf("URI parameter frame_max: want bytes, 0 (the broker's) or %d (AMQP's minimum) to %d", minFrameMax, uint32(math.MaxUint32))
			}
			p.frameMax = int(n)
		}
	}
	if (p.certFile == "") != (p.keyFile == "") {
		return p, errors.New("URI parameters certfile and keyfile go together: give both or neither")
	}
	if _, _, err := p.loadTLS(); err != nil {
		return p, err
	}
	return p, nil
}

// loadTLS reads the node's CA and client certificate files. It runs when
// the URI is checked and again at every dial, so renewed files take
// effect with the next connection. roots and cert are nil when the URI
// names none.
func (p *uriParams) loadTLS() (roots *x509.CertPool, cert *tls.Certificate, err error) {
	if p.caFile != "" {
		pem, err := readPEM(p.caFile)
		if err != nil {
			return nil, nil, fmt.Errorf("URI parameter cacertfile: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("URI parameter cacertfile: %s holds no PEM certificate", p.caFile)
		}
	}
	if p.certFile != "" {
		certPEM, err := readPEM(p.certFile)
		if err != nil {
			return nil, nil, fmt.Errorf("URI parameter certfile: %w", err)
		}
		keyPEM, err := readPEM(p.keyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("URI parameter keyfile: %w", err)
		}
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, nil, fmt.Errorf("URI parameters certfile %s and keyfile %s: %w", p.certFile, p.keyFile, err)
		}
		cert = &c
	}
	return roots, cert, nil
}

// maxPEMFile bounds what is read of a certificate or key file: a CA
// bundle is a few hundred kilobytes; a path to a device must not be read
// forever.
const maxPEMFile = 4 << 20

func readPEM(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPEMFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPEMFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxPEMFile)
	}
	return b, nil
}

// nodeTLS returns the TLS configuration of a dial to node a: base (the
// Config.TLS, possibly nil) with the URI's CA, client certificate and
// server name. A URI may not set what base sets already: that is an error
// rather than a silent choice of one of them.
func nodeTLS(base *tls.Config, a *nodeAddr) (*tls.Config, error) {
	p := &a.params
	if err := tlsConflict(base, p); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	roots, cert, err := p.loadTLS()
	if err != nil {
		return nil, err
	}
	if roots != nil {
		cfg.RootCAs = roots
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	if p.serverName != "" {
		cfg.ServerName = p.serverName
	}
	if cfg.ServerName == "" {
		cfg.ServerName = a.uri.Host
	}
	return cfg, nil
}

// tlsConflict reports a node URI that sets what Config.TLS sets too, and
// an EXTERNAL login with no client certificate anywhere.
func tlsConflict(base *tls.Config, p *uriParams) error {
	if base != nil {
		switch {
		case p.caFile != "" && base.RootCAs != nil:
			return errors.New("URI parameter cacertfile and Config.TLS.RootCAs both name the CA: set it in one place")
		case p.certFile != "" && (len(base.Certificates) > 0 || base.GetClientCertificate != nil):
			return errors.New("URI parameter certfile and Config.TLS both give a client certificate: set it in one place")
		case p.serverName != "" && base.ServerName != "":
			return errors.New("URI parameter server_name_indication and Config.TLS.ServerName both set the server name: set it in one place")
		case (p.caFile != "" || p.verifyPeer) && base.InsecureSkipVerify:
			return errors.New("URI parameter cacertfile or verify=verify_peer asks for the server's certificate to be verified, and Config.TLS.InsecureSkipVerify turns that off")
		}
	}
	if p.external() && p.certFile == "" && (base == nil || len(base.Certificates) == 0 && base.GetClientCertificate == nil) {
		return errors.New("URI parameter auth_mechanism=external needs a client certificate: give certfile and keyfile, or Config.TLS.Certificates")
	}
	return nil
}

// clip shortens a parameter name shown in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
