package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/netip"
	"slices"
	"strings"
	"testing/fstest"

	"github.com/amqpha/amqpha/vipd/config"
)

func ExampleParse() {
	const conf = `
vrrp_script chk_rabbit{
    script "/usr/local/bin/check-rabbit --port 5672"
    weight -20
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 90
    version 3
    advert_int 0.5
    virtual_ipaddress {
        10.0.0.100/24 dev eth0
    }
    track_script {
        chk_rabbit
        chk_missing
    }
}
virtual_server 10.0.0.100 5672 {
    lb_algo wrr
    lb_kind DR
    protocal TCP
    real_server 10.0.0.11 5672 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`
	cfg, err := config.Parse("keepalived.conf", []byte(conf))
	if err != nil {
		fmt.Println(err)
		return
	}
	in := cfg.VRRPInstance("VI_1")
	fmt.Println(in.Name, "version", in.EffectiveVersion(), "every", in.Interval(), "master:", in.InitialMaster())
	fmt.Println("VIPs:", in.VIPs())
	fmt.Println("tracks", in.TrackScript[0].Name, "with weight", in.TrackScript[0].Weight,
		"running", cfg.VRRPScript("chk_rabbit").Script.Argv)
	rs := cfg.VirtualServers[0].RealServers[0]
	fmt.Println("check", rs.IP, "port", rs.TCPCheck[0].ConnectPort, "every", rs.TCPCheck[0].DelayLoop)
	for _, n := range cfg.Notes {
		fmt.Println(n)
	}
	// Output:
	// VI_1 version 3 every 500ms master: false
	// VIPs: [10.0.0.100/24]
	// tracks chk_rabbit with weight -20 running [/usr/local/bin/check-rabbit --port 5672]
	// check 10.0.0.11 port 5672 every 1m0s
	// keepalived.conf:18: track_script "chk_missing": no vrrp_script chk_missing is defined; vrrp_instance VI_1 does not track it
	// keepalived.conf:21: virtual_server 10.0.0.100 5672: no protocol set; vipd uses TCP, where keepalived 1.3.6 and later would use UDP
	// keepalived.conf:24: unknown keyword "protocal" in virtual_server 10.0.0.100 5672 (did you mean "protocol"?); ignored, protocol stays TCP, the default, which is what this line asks for
}

// A file with errors: parsing goes on after the first, so one run reports
// them all, and the partial Config must not be run.
func ExampleParse_errors() {
	const conf = `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 300
    advert_int 0.5
    virtual_ipaddress {
        10.0.0.100/24
    }
}
`
	_, err := config.Parse("keepalived.conf", []byte(conf))
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Printf("line %d: %s\n", e.Line, e.Msg)
		}
	}
	// Output:
	// line 4: virtual_router_id: expected an integer 1..255, got "300"
	// line 5: advert_int: expected whole seconds 1..255 for VRRP version 2, got "0.5"; sub-second and fractional intervals need version 3
}

// A configuration split over files: the main file includes a directory of
// instances, in lexical order. Any fs.FS works; here an in-memory one.
func ExampleParseFS() {
	fsys := fstest.MapFS{
		"etc/vipd/vipd.conf": {Data: []byte("global_defs {\n    router_id lb-1\n}\ninclude conf.d/*.conf\n")},
		"etc/vipd/conf.d/10-rabbit.conf": {Data: []byte(`
vrrp_instance rabbit {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        10.0.0.100/24
    }
}`)},
		"etc/vipd/conf.d/20-rabbit-v6.conf": {Data: []byte(`
vrrp_instance rabbit6 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        fe80::100
        2001:db8::100/64
    }
}`)},
	}
	cfg, err := config.ParseFS(fsys, "etc/vipd/vipd.conf")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Files)
	for _, in := range cfg.VRRPInstances {
		fmt.Println(in.Name, in.Pos, "version", in.EffectiveVersion(), in.VIPs())
	}
	// Output:
	// [etc/vipd/vipd.conf etc/vipd/conf.d/10-rabbit.conf etc/vipd/conf.d/20-rabbit-v6.conf]
	// rabbit etc/vipd/conf.d/10-rabbit.conf:2 version 2 [10.0.0.100/24]
	// rabbit6 etc/vipd/conf.d/20-rabbit-v6.conf:2 version 3 [fe80::100/128 2001:db8::100/64]
}

// An include that leads back to the file holding it: the *Error says where,
// and wraps ErrIncludeCycle.
func ExampleError() {
	fsys := fstest.MapFS{
		"vipd.conf":        {Data: []byte("include conf.d/*.conf\n")},
		"conf.d/loop.conf": {Data: []byte("# included by vipd.conf\ninclude ../vipd.conf\n")},
	}
	_, err := config.ParseFS(fsys, "vipd.conf")
	var e *config.Error
	if errors.As(err, &e) {
		fmt.Println(e.File, e.Line, errors.Is(e, config.ErrIncludeCycle))
		fmt.Println(e.Msg)
	}
	// Output:
	// conf.d/loop.conf 2 true
	// include "../vipd.conf": include cycle: vipd.conf -> conf.d/loop.conf -> vipd.conf
}

// Check a file the way `vipd check -f` does: every note, then every error.
func ExampleLoad() {
	cfg, err := config.Load("/etc/keepalived/keepalived.conf")
	if cfg == nil {
		log.Fatal(err) // the file could not be read
	}
	for _, n := range cfg.Notes {
		fmt.Printf("note (%s): %s\n", n.Kind, n)
	}
	var list config.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Println("error:", e)
		}
		log.Fatalf("%d errors: not starting", len(list))
	}
}

// A configuration built in code starts from the Default constructors;
// Validate then checks it as Parse would. Hand-built blocks have no file
// positions, so print the messages alone.
func ExampleConfig_Validate() {
	v4 := netip.MustParsePrefix("10.0.0.100/24")
	v6 := netip.MustParsePrefix("2001:db8::100/64")
	in := config.DefaultVRRPInstance()
	in.Name = "rabbit"
	in.Interface = "eth0"
	in.VirtualRouterID = 51
	in.VirtualIPAddress = []config.VirtualIP{{Address: v4}, {Address: v6}}
	cfg := config.DefaultConfig()
	cfg.VRRPInstances = []config.VRRPInstance{in}

	var list config.ErrorList
	if errors.As(cfg.Validate(), &list) {
		for _, e := range list {
			fmt.Println(e.Msg)
		}
	}

	// One instance per family; they may share the VRID.
	in6 := in
	in6.Name = "rabbit6"
	in6.VirtualIPAddress = []config.VirtualIP{{Address: v6}}
	in.VirtualIPAddress = []config.VirtualIP{{Address: v4}}
	cfg.VRRPInstances = []config.VRRPInstance{in, in6}
	fmt.Println(cfg.Validate())
	// Output:
	// vrrp_instance rabbit: virtual_ipaddress: 2001:db8::100 is IPv6 but the first address, 10.0.0.100, is IPv4; all the addresses of an instance must be of one family (put the others in virtual_ipaddress_excluded)
	// <nil>
}

// The effective configuration as JSON, as `vipd check` prints it: keywords
// as keys, defaults filled in, durations as strings, passwords redacted.
func ExampleConfig_JSON() {
	cfg, err := config.Parse("keepalived.conf", []byte(`
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    authentication {
        auth_type PASS
        auth_pass s3cr3t
    }
    virtual_ipaddress {
        10.0.0.100/24
    }
}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := cfg.JSON()
	if err != nil {
		fmt.Println(err)
		return
	}
	var effective struct {
		VRRPInstance []map[string]any `json:"vrrp_instance"`
	}
	if err := json.Unmarshal(b, &effective); err != nil {
		fmt.Println(err)
		return
	}
	in := effective.VRRPInstance[0]
	fmt.Println(in["state"], in["priority"], in["advert_int"], in["garp_master_delay"], in["authentication"])
	// Output: BACKUP 100 1s 5s map[auth_pass:<redacted> auth_type:PASS]
}

// Notes of one kind, here the keywords vipd did not recognise.
func ExampleConfig_NotesOf() {
	cfg, err := config.Parse("keepalived.conf", []byte(`
global_defs {
    notification_email {
        ops@example.com
    }
    router_id lb-1
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priorty 100
    virtual_ipaddress {
        10.0.0.100/24
    }
}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range cfg.NotesOf(config.NoteUnknown) {
		fmt.Println(n)
	}
	fmt.Println("priority:", cfg.VRRPInstance("VI_1").Priority, "notes in all:", len(cfg.Notes))
	// Output:
	// keepalived.conf:11: unknown keyword "priorty" in vrrp_instance VI_1 (did you mean "priority"?); ignored, priority stays 100, the default, which is what this line asks for
	// priority: 100 notes in all: 2
}

// A password from the file prints, logs and marshals as "<redacted>"; only
// Reveal gives the value, for the code that puts it on the wire.
func ExampleSecret() {
	pass := config.Secret("s3cr3t")
	fmt.Println(pass)
	fmt.Printf("%v %q %#v\n", pass, pass, pass)
	fmt.Println(len(pass.Reveal()))
	// Output:
	// <redacted>
	// <redacted> "<redacted>" "<redacted>"
	// 6
}

// The status codes an HTTP_GET check accepts.
func ExampleStatusRange_Contains() {
	cfg, err := config.Parse("keepalived.conf", []byte(`
virtual_server 10.0.0.100 15672 {
    real_server 10.0.0.11 15672 {
        HTTP_GET {
            url {
                path /api/health/checks/alarms
                status_code 200-299
            }
        }
    }
}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	codes := cfg.VirtualServers[0].RealServers[0].HTTPGet[0].URLs[0].StatusCode
	for _, code := range []int{204, 503} {
		fmt.Println(code, slices.ContainsFunc(codes, func(r config.StatusRange) bool { return r.Contains(code) }))
	}
	// Output:
	// 204 true
	// 503 false
}

// What vipd does with keepalived's keywords: here the checkers a
// real_server may hold that vipd refuses, with what to do instead.
func ExampleKeywords() {
	for _, k := range config.Keywords() {
		if k.Block == "real_server" && k.Support == config.Refused && strings.HasSuffix(k.Keyword, "_CHECK") {
			fmt.Printf("%s: %s\n", k.Keyword, k.Why)
		}
	}
	// Output:
	// BFD_CHECK: vipd has no BFD; use TCP_CHECK or MISC_CHECK
	// DNS_CHECK: vipd has no DNS check; use MISC_CHECK with a script that queries the server (e.g. dig)
	// FILE_CHECK: vipd has no file check; use MISC_CHECK with a script that reads the file
	// PING_CHECK: vipd has no ICMP check; use TCP_CHECK on the service's port, or MISC_CHECK with ping
	// SMTP_CHECK: vipd has no SMTP check; use TCP_CHECK on the SMTP port, or MISC_CHECK with a script that speaks SMTP
	// UDP_CHECK: vipd has no UDP check; use MISC_CHECK with a script that probes the service
}
