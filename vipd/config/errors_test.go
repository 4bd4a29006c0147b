package config

import (
	"errors"
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // each an error line, or the start of one
	}{
		{"vrid out of range", instance("virtual_router_id 300"),
			[]string{`keepalived.conf:7: virtual_router_id: expected an integer 1..255, got "300"`}},
		{"vrid not a number", instance("virtual_router_id abc"),
			[]string{`keepalived.conf:7: virtual_router_id: expected an integer 1..255, got "abc"`}},
		{"priority 0", instance("priority 0"),
			[]string{`keepalived.conf:7: priority: expected an integer 1..255, got "0"`}},
		{"bad state", instance("state EQUAL"),
			[]string{`keepalived.conf:7: state: expected MASTER or BACKUP, got "EQUAL"`}},
		{"missing required", "vrrp_instance X {\n}\n", []string{
			"keepalived.conf:1: vrrp_instance X: no interface given",
			"keepalived.conf:1: vrrp_instance X: no virtual_router_id given",
			"keepalived.conf:1: vrrp_instance X: no virtual_ipaddress",
		}},
		{"sub-second advert_int in v2", instance("advert_int 0.1"),
			[]string{`keepalived.conf:7: advert_int: expected whole seconds 1..255 for VRRP version 2, got "0.1"; sub-second and fractional intervals need version 3`}},
		{"fractional advert_int in v2", instance("advert_int 1.5"),
			[]string{`keepalived.conf:7: advert_int: expected whole seconds 1..255 for VRRP version 2, got "1.5"`}},
		{"advert_int v3 too long", instance("version 3\nadvert_int 41"),
			[]string{`keepalived.conf:8: advert_int: expected 0.01..40.95 seconds in steps of 0.01 for VRRP version 3, got "41"`}},
		{"advert_int v3 not centiseconds", instance("version 3\nadvert_int 0.125"),
			[]string{`keepalived.conf:8: advert_int: expected 0.01..40.95 seconds in steps of 0.01`}},
		{"advert_int garbage", instance("advert_int 1s"),
			[]string{`keepalived.conf:7: advert_int: expected a time in seconds 0.01..255 (e.g. 3 or 0.5), got "1s"`}},
		{"bad version", instance("version 4"),
			[]string{`keepalived.conf:7: version: expected an integer 2..3, got "4"`}},
		{"mixed families", instance("virtual_ipaddress {\n 2001:db8::1\n}"),
			[]string{"keepalived.conf:7: vrrp_instance VI_1: virtual_ipaddress: 2001:db8::1 is IPv6 but the first address, 192.168.1.10, is IPv4"}},
		{"bad vip", instance("virtual_ipaddress {\n 192.168.1.300/24\n}"),
			[]string{`keepalived.conf:8: virtual_ipaddress: expected an address ADDR or ADDR/PREFIX, got "192.168.1.300/24"`}},
		{"bad scope", instance("virtual_ipaddress {\n 192.168.1.11 scope planet\n}"),
			[]string{`keepalived.conf:8: virtual_ipaddress: scope: expected site|link|host|nowhere|global, got "planet"`}},
		{"dev without value", instance("virtual_ipaddress {\n 192.168.1.11 dev\n}"),
			[]string{`keepalived.conf:8: virtual_ipaddress: dev after 192.168.1.11: expected a value`}},
		{"peer family", instance("unicast_peer {\n 2001:db8::2\n}"),
			[]string{"keepalived.conf:7: vrrp_instance VI_1: unicast_peer 2001:db8::2 is IPv6 but the virtual addresses are IPv4"}},
		{"unicast_src family", instance("unicast_src_ip 2001:db8::2"),
			[]string{"keepalived.conf:7: vrrp_instance VI_1: unicast_src_ip 2001:db8::2 is IPv6"}},
		{"bad peer", instance("unicast_peer {\n 10.0.0.2 ttl 3\n}"),
			[]string{`keepalived.conf:8: unicast_peer: expected min_ttl N or max_ttl N after 10.0.0.2, got "ttl"`}},
		{"track weight range", instance("track_interface {\n eth1 weight 300\n}"),
			[]string{`keepalived.conf:8: track_interface weight: expected an integer -253..253, got "300"`}},
		{"auth missing type", instance("authentication {\n auth_pass x\n}"),
			[]string{"keepalived.conf:7: vrrp_instance VI_1: authentication: no auth_type given: expected PASS or AH"}},
		{"auth PASS without pass", instance("authentication {\n auth_type PASS\n}"),
			[]string{"keepalived.conf:7: vrrp_instance VI_1: authentication: auth_type PASS needs an auth_pass"}},
		{"bad auth_type", instance("authentication {\n auth_type MD5\n}"),
			[]string{`keepalived.conf:8: auth_type: expected PASS or AH, got "MD5"`}},
		{"duplicate vrid", instance("") + strings.Replace(instance(""), "VI_1", "VI_2", 1), []string{
			"keepalived.conf:11: vrrp_instance VI_2: virtual_router_id 51 on eth0 (IPv4) is already used by vrrp_instance VI_1 at keepalived.conf:1"}},
		{"duplicate instance name", instance("") + instance("virtual_router_id 52"),
			[]string{"keepalived.conf:9: vrrp_instance VI_1 is already defined at keepalived.conf:1"}},
		{"duplicate script", "vrrp_script a {\n script /x\n}\nvrrp_script a {\n script /y\n}\n" + instance("track_script {\n a\n}"),
			[]string{"keepalived.conf:4: vrrp_script a is already defined at keepalived.conf:1"}},
		{"script without script", "vrrp_script a {\n interval 2\n}\n" + instance("track_script {\n a\n}"),
			[]string{"keepalived.conf:1: vrrp_script a: no script given"}},
		{"script weight", "vrrp_script a {\n script /x\n weight -254\n}\n",
			[]string{`keepalived.conf:3: weight: expected an integer -253..253, got "-254"`}},
		{"script weight option", "vrrp_script a {\n script /x\n weight 2 backwards\n}\n",
			[]string{`keepalived.conf:3: weight: expected "reverse" after the weight, got "backwards"`}},
		{"unterminated script quote", instance(`notify_master "/bin/x 'a b"`),
			[]string{"keepalived.conf:7: notify_master: cannot split the command into arguments: unterminated quote"}},
		{"notify too many words", instance(`notify_master /bin/x a b c`),
			[]string{"keepalived.conf:7: notify_master: expected a script and at most a user and a group, got 3 more words"}},
		{"value keyword with block", instance("priority 5 {\n}"),
			[]string{"keepalived.conf:7: priority: does not take a block"}},
		{"block keyword without block", instance("virtual_ipaddress 10.0.0.1"),
			[]string{"keepalived.conf:7: virtual_ipaddress: expected a block { ... }"}},
		{"flag with argument", instance("nopreempt yes"),
			[]string{"keepalived.conf:7: nopreempt: expected no argument, got 1"}},
		{"bad bool", instance("v3_checksum_as_v2 maybe"),
			[]string{`keepalived.conf:7: v3_checksum_as_v2: expected on|off|true|false|yes|no, got "maybe"`}},
		{"missing brace", "vrrp_instance X {\n interface eth0\n",
			[]string{"keepalived.conf:1: vrrp_instance: block has no closing '}'"}},
		{"extra brace", "}\n", []string{"keepalived.conf:1: unexpected '}' with no block open"}},
		{"stray brace", "{\n}\n", []string{"keepalived.conf:1: unexpected '{': a block must follow a keyword"}},
		{"unterminated quote", "global_defs {\n router_id \"abc\n}\n",
			[]string{"keepalived.conf:2: unterminated double-quoted string (a quote may not span lines)"}},
		{"conditional line", "@main router_id x\n",
			[]string{`keepalived.conf:1: "@main": keepalived's conditional lines (@), parameters ($) and sequences (~) are not supported by vipd`}},
		{"parameter definition hides value", "$PASS=topsecret\n", []string{`keepalived.conf:1: "$PASS=...":`}},
		{"bad global version", "global_defs {\n vrrp_version 1\n}",
			[]string{`keepalived.conf:2: vrrp_version: expected an integer 2..3, got "1"`}},
		{"bad mcast group", "global_defs {\n vrrp_mcast_group4 10.0.0.1\n}",
			[]string{`keepalived.conf:2: vrrp_mcast_group4: expected an IPv4 multicast address, got "10.0.0.1"`}},
		{"bad vs address", "virtual_server 10.0.0.300 80 {\n}",
			[]string{`keepalived.conf:1: virtual_server: expected an IPv4 or IPv6 address, got "10.0.0.300"`}},
		{"bad vs port", "virtual_server 10.0.0.1 70000 {\n}",
			[]string{`keepalived.conf:1: virtual_server: expected a port 1..65535, got "70000"`}},
		{"bad lb_algo", "virtual_server 10.0.0.1 80 {\n lb_algo fastest\n real_server 10.0.0.2 80 {\n }\n}",
			[]string{`keepalived.conf:2: lb_algo: expected one of rr|wrr|lc|wlc|lblc|sh|mh|dh|fo|ovf|lblcr|sed|nq|twos, got "fastest"`}},
		{"bad lb_kind", "virtual_server 10.0.0.1 80 {\n lb_kind FAST\n real_server 10.0.0.2 80 {\n }\n}",
			[]string{`keepalived.conf:2: lb_kind: expected NAT, DR or TUN, got "FAST"`}},
		{"bad protocol", "virtual_server 10.0.0.1 80 {\n protocol ICMP\n real_server 10.0.0.2 80 {\n }\n}",
			[]string{`keepalived.conf:2: protocol: expected TCP, UDP or SCTP, got "ICMP"`}},
		{"bad weight", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n weight -1\n }\n}",
			[]string{`keepalived.conf:3: weight: expected an integer 0..2147483647, got "-1"`}},
		{"real server family", "virtual_server 10.0.0.1 80 {\n real_server 2001:db8::2 80 {\n }\n}",
			[]string{"keepalived.conf:2: virtual_server 10.0.0.1 80: real_server 2001:db8::2 80 is IPv6 but the virtual server is IPv4"}},
		{"duplicate real server", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n }\n real_server 10.0.0.2 80 {\n }\n}",
			[]string{"keepalived.conf:4: virtual_server 10.0.0.1 80: real_server 10.0.0.2 80 is already defined at keepalived.conf:2"}},
		{"duplicate virtual server", "virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n}\nvirtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.3 80 {\n }\n}",
			[]string{"keepalived.conf:6: virtual_server 10.0.0.1 80 (TCP) is already defined at keepalived.conf:1"}},
		{"undefined group", "virtual_server group NOPE {\n real_server 10.0.0.2 80 {\n }\n}",
			[]string{"keepalived.conf:1: virtual_server group NOPE: no virtual_server_group NOPE is defined"}},
		{"checker without port", "virtual_server fwmark 3 {\n real_server 10.0.0.2 {\n TCP_CHECK {\n }\n }\n}",
			[]string{"keepalived.conf:3: real_server 10.0.0.2 0: TCP_CHECK: no port to connect to"}},
		{"http without url", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n HTTP_GET {\n }\n }\n}",
			[]string{"keepalived.conf:3: HTTP_GET: expected at least one url { path ... } block"}},
		{"bad status code", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n HTTP_GET {\n url {\n path /\n status_code 200-99\n }\n }\n }\n}",
			[]string{`keepalived.conf:6: status_code: expected a code or a range of codes within 100..599, got "200-99"`}},
		{"bad digest", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n HTTP_GET {\n url {\n path /\n digest xyz\n }\n }\n }\n}",
			[]string{`keepalived.conf:6: digest: expected 32 hexadecimal digits (an MD5 sum), got "xyz"`}},
		{"misc without path", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n MISC_CHECK {\n }\n }\n}",
			[]string{"keepalived.conf:3: real_server 10.0.0.2 80: MISC_CHECK: no misc_path given"}},
		{"amqp password without user", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n AMQP_CHECK {\n password pw\n }\n }\n}",
			[]string{"keepalived.conf:3: real_server 10.0.0.2 80: AMQP_CHECK: a password is given but no user"}},
		{"http password without user", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n HTTP_GET {\n password pw\n url {\n path /\n }\n }\n }\n}",
			[]string{"keepalived.conf:3: real_server 10.0.0.2 80: HTTP_GET: a password is given but no user"}},
		{"ssl certificate without key", "SSL {\n certificate /etc/vipd/client.pem\n}",
			[]string{"keepalived.conf:1: SSL: certificate and key go together (a client certificate needs its key)"}},
		{"ssl encrypted key", "SSL {\n certificate /c.pem\n key /k.pem\n password pw\n}",
			[]string{"keepalived.conf:1: SSL: password: vipd does not take encrypted keys; give key an unencrypted PEM key readable by root only"}},
		{"second ssl block", "SSL {\n ca /a.pem\n}\nSSL {\n ca /b.pem\n}",
			[]string{"keepalived.conf:4: SSL: a second SSL block (the first is at keepalived.conf:1)"}},
		{"bad vsg range", "virtual_server_group G {\n 10.0.0.9-3\n}",
			[]string{`keepalived.conf:2: virtual_server_group: expected ADDR, ADDR-LAST, ADDR-ADDR or ADDR/PREFIX, got "10.0.0.9-3"`}},
		{"bad connect_timeout", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n TCP_CHECK {\n connect_timeout 0\n }\n }\n}",
			[]string{`keepalived.conf:4: connect_timeout: expected a time in seconds 0.001..3600 (e.g. 3 or 0.5), got "0"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := errorList(t, tt.src)
			text := list.Error()
			for _, w := range tt.want {
				found := false
				for _, e := range list {
					if strings.HasPrefix(e.Error(), w) {
						found = true
						if e.Line < 1 || e.File != "keepalived.conf" {
							t.Errorf("error %q has file %q line %d", e, e.File, e.Line)
						}
					}
				}
				if !found {
					t.Errorf("no error starting with\n  %s\ngot:\n%s", w, text)
				}
			}
		})
	}
}

func TestErrorListCollectsAll(t *testing.T) {
	list := errorList(t, instance("virtual_router_id 300\npriority 999\nstate SLAVE"))
	if len(list) != 3 {
		t.Fatalf("%d errors, want 3:\n%v", len(list), list)
	}
	for i, line := range []int{7, 8, 9} {
		if list[i].Line != line {
			t.Errorf("error %d at line %d, want %d", i, list[i].Line, line)
		}
	}
	if got := len(list.Unwrap()); got != 3 {
		t.Errorf("Unwrap: %d errors", got)
	}
	var e *Error
	if !errors.As(error(list), &e) || e.Line != 7 {
		t.Errorf("errors.As found %v", e)
	}
	if !strings.Contains(list.Error(), "\n") {
		t.Error("errors are not one a line")
	}
}

func TestSecretsNeverInErrors(t *testing.T) {
	srcs := []string{
		instance("authentication {\n auth_type PASS\n auth_pass hunter2 extra\n}"),
		instance("authentication {\n auth_type PASS\n auth_pass \"hunter2\n}"),
		instance("authentication {\n auth_type PASS\n auth_pas hunter2\n}"),
		instance("authentication {\n auth_type PASS\n auth_pass\n hunter2\n}"),
		"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n AMQP_CHECK {\n password hunter2 x\n }\n }\n}",
		"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n AMQP_CHECK {\n user u\n hunter2\n }\n }\n}",
		"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n HTTP_GET {\n password hunter2 x\n url {\n path /\n }\n }\n }\n}",
		"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n SSL_GET {\n password hunter2\n url {\n path /\n }\n }\n }\n}",
		"SSL {\n password hunter2 x\n}",
		"SSL {\n ca /a.pem\n hunter2\n}",
		"$SECRET=hunter2\n",
	}
	for _, src := range srcs {
		cfg, err := parseSrc(t, src)
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the secret: %v", err)
		}
		for _, n := range cfg.Notes {
			if strings.Contains(n.String(), "hunter2") {
				t.Errorf("note shows the secret: %v", n)
			}
		}
	}
}
