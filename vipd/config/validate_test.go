package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestValidateHandBuilt(t *testing.T) {
	good := func() *Config {
		c := DefaultConfig()
		in := DefaultVRRPInstance()
		in.Name, in.Interface, in.VirtualRouterID = "VI", "eth0", 9
		in.VirtualIPAddress = []VirtualIP{{Address: netip.MustParsePrefix("10.0.0.1/32")}}
		c.VRRPInstances = append(c.VRRPInstances, in)
		vs := DefaultVirtualServer()
		vs.IP, vs.Port = netip.MustParseAddr("10.0.0.1"), 80
		rs := DefaultRealServer()
		rs.IP, rs.Port = netip.MustParseAddr("10.0.0.2"), 80
		vs.RealServers = append(vs.RealServers, rs)
		c.VirtualServers = append(c.VirtualServers, vs)
		return c
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"no interface", func(c *Config) { c.VRRPInstances[0].Interface = "" }, "no interface given"},
		{"vrid", func(c *Config) { c.VRRPInstances[0].VirtualRouterID = 256 }, `virtual_router_id: expected an integer 1..255, got "256"`},
		{"advert_int v2", func(c *Config) { c.VRRPInstances[0].AdvertInt = Duration(500 * time.Millisecond) }, "whole seconds 1..255"},
		{"auth v3", func(c *Config) {
			c.VRRPInstances[0].Version = 3
			c.VRRPInstances[0].Authentication = &Authentication{AuthType: "PASS", AuthPass: "x"}
		}, "version 3 has no authentication"},
		{"undefined track script", func(c *Config) {
			c.VRRPInstances[0].TrackScript = []TrackScript{{Name: "nope"}}
		}, "no vrrp_script nope is defined"},
		{"no addresses", func(c *Config) { c.VRRPInstances[0].VirtualIPAddress = nil }, "no virtual_ipaddress"},
		{"two forms", func(c *Config) { c.VirtualServers[0].Fwmark = 3 }, "exactly one of an address, fwmark or group, got 2"},
		{"bad scheduler", func(c *Config) { c.VirtualServers[0].LVSSched = "best" }, `unknown scheduler "best"`},
		{"same vrid", func(c *Config) {
			in := c.VRRPInstances[0]
			in.Name = "VI2"
			c.VRRPInstances = append(c.VRRPInstances, in)
		}, "virtual_router_id 9 on eth0 (IPv4) is already used by vrrp_instance VI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.change(c)
			err := c.Validate()
			var list ErrorList
			if !errors.As(err, &list) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an ErrorList with %q", err, tt.want)
			}
		})
	}
}

func TestSameVRIDAllowed(t *testing.T) {
	two := func(a, b string) string {
		return instance(a) + strings.Replace(instance(b), "VI_1", "VI_2", 1)
	}
	// Another interface, another family, or unicast with disjoint peers.
	mustParse(t, two("", "interface eth1"))
	mustParse(t, instance("")+"vrrp_instance V6 {\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {\n 2001:db8::1\n }\n}\n")
	mustParse(t, two("unicast_peer {\n 192.168.1.2\n}", "unicast_peer {\n 192.168.1.3\n}"))
}

// The same VRID on one interface and family, multicast or with a unicast
// peer in common, is one error at the second instance's virtual_router_id
// line that names the first instance and where it is.
func TestSameVRIDRefused(t *testing.T) {
	two := func(a, b string) string {
		return instance(a) + strings.Replace(instance(b), "VI_1", "VI_2", 1)
	}
	const msg = "vrrp_instance VI_2: virtual_router_id 51 on eth0 (IPv4) is already used by vrrp_instance VI_1 at keepalived.conf:1"
	for _, tc := range []struct {
		name, a, b string
		line       int // VI_2's virtual_router_id
	}{
		{"multicast", "", "", 11},
		{"shared unicast peer", "unicast_peer {\n 192.168.1.2\n}", "unicast_peer {\n 192.168.1.2\n 192.168.1.4\n}", 13},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list := errorList(t, two(tc.a, tc.b))
			if len(list) != 1 || list[0].File != "keepalived.conf" || list[0].Line != tc.line || list[0].Msg != msg {
				t.Fatalf("errors:\n%v\nwant one: keepalived.conf:%d: %s", list, tc.line, msg)
			}
		})
	}
}
