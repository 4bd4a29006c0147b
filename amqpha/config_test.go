package amqpha

import (
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/balancer"
)

func TestValidateNeverShowsPasswords(t *testing.T) {
	for _, raw := range []string{
		"amqp://user:s3cret@host:bad-port/",
		"http://user:s3cret@host/",
		"amqp://user:s3cret@[::1/",
		"amqp://user:s3cret@host:5672/%zz",
	} {
		err := Config{Nodes: []string{raw}}.Validate()
		if err == nil {
			t.Errorf("Validate(%q) = nil, want an error", raw)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Validate(%q) = %q: shows the password", raw, err)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := []string{"amqp://guest:guest@127.0.0.1:5672/", "amqps://u:p@example.test/vhost"}
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"nodes", Config{Nodes: ok}, true},
		{"no nodes", Config{}, false},
		{"fractional heartbeat", Config{Nodes: ok, Heartbeat: 1500 * time.Millisecond}, false},
		{"negative dial timeout", Config{Nodes: ok, DialTimeout: -1}, false},
		{"negative hang timeout disables", Config{Nodes: ok, HangTimeout: -1}, true},
		{"negative event buffer", Config{Nodes: ok, EventBuffer: -1}, false},
		{"huge event buffer", Config{Nodes: ok, EventBuffer: 1 << 40}, false},
		{"negative heartbeat: the broker's", Config{Nodes: ok, Heartbeat: -time.Second}, true},
		{"heartbeat past 16 bits", Config{Nodes: ok, Heartbeat: 65536 * time.Second}, false},
		{"largest heartbeat", Config{Nodes: ok, Heartbeat: 65535 * time.Second}, true},
		{"negative rebalance interval: off", Config{Nodes: ok, RebalanceInterval: -time.Second}, true},
		{"negative connections", Config{Nodes: ok, Connections: -1}, false},
		{"huge connections", Config{Nodes: ok, Connections: 1 << 30}, false},
		{"negative reconnect backoff", Config{Nodes: ok, ReconnectInitial: -1}, false},
		{"balancer by name", Config{Nodes: ok, BalancerName: "priority+wlc"}, true},
		{"unknown balancer", Config{Nodes: ok, BalancerName: "fastest"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cfg.Validate(); (err == nil) != tc.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestDefaultsFillZeroFields(t *testing.T) {
	c := Config{Nodes: []string{"amqp://h"}}.withDefaults()
	d := DefaultConfig()
	if c.DialTimeout != d.DialTimeout || c.HangTimeout != d.HangTimeout || c.Heartbeat != d.Heartbeat ||
		c.Balancer == nil || c.Resolver == nil || c.Logger == nil {
		t.Fatalf("withDefaults left zero fields: %+v", c)
	}
	if c.Balancer.Build(nil) == nil {
		t.Fatal("default balancer builds no picker")
	}
	lc := Config{Nodes: []string{"amqp://h"}, BalancerName: "lc"}.withDefaults()
	r, _ := lc.Balancer.Build([]balancer.Node{{Addr: "amqp://h"}}).Pick(balancer.PickInfo{})
	if r.Done == nil {
		t.Fatal(`BalancerName "lc" did not choose least connections (no Done to count with)`)
	}
	// DefaultConfig returns a fresh value each time.
	d.DialTimeout = time.Hour
	if DefaultConfig().DialTimeout == time.Hour {
		t.Fatal("DefaultConfig shares its value")
	}
}

func TestParseNodeRedacts(t *testing.T) {
	a, err := parseNode("amqp://alice:s3cret@10.0.0.1:5673/prod")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(a.String(), "s3cret") || !strings.Contains(a.String(), "alice") {
		t.Fatalf("String() = %q", a.String())
	}
	if a.hostPort() != "10.0.0.1:5673" || a.uri.Vhost != "prod" {
		t.Fatalf("hostPort %q, vhost %q", a.hostPort(), a.uri.Vhost)
	}
	b, err := parseNode("amqps://[::1]/")
	if err != nil || b.hostPort() != "[::1]:5671" {
		t.Fatalf("amqps default port: %v %v", b, err)
	}
}
