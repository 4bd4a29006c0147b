//go:build integration

package cluster_test

import (
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/cluster"
	"github.com/amqpha/amqpha/integration/clustertest"
)

// Options.ExtraIP makes the nodes accept AMQP on a second address, on the
// port of their direct URI, and AddUser makes a user who can log in there.
// 127.0.0.2 stands in for a bridge's address (examples/vipd/lab.sh uses
// 10.213.0.1): any 127/8 address is local on Linux.
func TestExtraIPAndAddUser(t *testing.T) {
	c := clustertest.Start(t, cluster.Options{Nodes: 1, ExtraIP: "127.0.0.2"})
	if err := c.AddUser(testCtx(t, time.Minute), "lab-user", "s3cret-pw"); err != nil {
		t.Fatal(err)
	}
	direct, err := url.Parse(c.Node(0).DirectURI())
	if err != nil {
		t.Fatal(err)
	}
	extra := url.URL{Scheme: "amqp", User: url.UserPassword("lab-user", "s3cret-pw"),
		Host: net.JoinHostPort("127.0.0.2", direct.Port()), Path: "/"}
	mustWork(t, extra.String())

	extra.User = url.UserPassword("lab-user", "wrong")
	if conn, err := dial(extra.String(), 5*time.Second); err == nil {
		conn.Close()
		t.Errorf("a wrong password logged in")
	}
	// The loopback listener and the proxy are as before.
	mustWork(t, c.Node(0).URI())
	mustWork(t, c.Node(0).DirectURI())

	// Errors name the user, never the password.
	c.Close()
	if err := c.AddUser(testCtx(t, 10*time.Second), "lab-user", "s3cret-pw"); err == nil {
		t.Errorf("AddUser on a closed cluster succeeded")
	} else if got := err.Error(); strings.Contains(got, "s3cret-pw") {
		t.Errorf("AddUser's error shows the password: %s", got)
	}
}
