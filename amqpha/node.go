package amqpha

import (
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"
)

// nodeAddr is a parsed node URI. Its String is safe to log.
type nodeAddr struct {
	raw      string   // as given; holds the password
	uri      amqp.URI // parsed
	params   uriParams
	redacted string
}

func (n *nodeAddr) String() string { return n.redacted }
func (n *nodeAddr) hostPort() string {
	return net.JoinHostPort(n.uri.Host, strconv.Itoa(n.uri.Port))
}

// parseNode parses an AMQP URI. Its errors never repeat the URI, which may
// hold a password.
func parseNode(raw string) (*nodeAddr, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a valid URI")
	}
	if u.Scheme != "amqp" && u.Scheme != "amqps" {
		return nil, errors.New("scheme must be amqp or amqps")
	}
	if u.Fragment != "" || strings.HasSuffix(raw, "#") {
		return nil, errors.New("a URI fragment (#…) means nothing to AMQP; write # in a password as %23")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, errors.New("the URI's query does not parse")
	}
	// The parameters first: their errors say what is wrong, where
	// amqp091-go's would (and could repeat the URI).
	params, err := parseParams(u.Scheme, q)
	if err != nil {
		return nil, err
	}
	uri, err := amqp.ParseURI(raw)
	if err != nil {
		return nil, errors.New("not a valid AMQP URI")
	}
	return &nodeAddr{raw: raw, uri: uri, params: params, redacted: redact(u)}, nil
}

// redact hides the password of u, keeping the user name.
func redact(u *url.URL) string {
	if _, has := u.User.Password(); has {
		c := *u
		c.User = url.UserPassword(u.User.Username(), "xxxxx")
		return c.String()
	}
	return u.String()
}
