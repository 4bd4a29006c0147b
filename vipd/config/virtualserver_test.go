package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestVirtualServer(t *testing.T) {
	cfg := mustParse(t, `virtual_server 10.0.0.1 5672 {
    delay_loop 6
    lb_algo wrr
    lb_kind DR
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    protocol tcp
    sorry_server 10.0.0.9 5672
    inhibit_on_failure
    connect_timeout 4
    retry 2
    delay_before_retry 0.5
    real_server 10.0.0.2 5672 {
        weight 3
        notify_up "/bin/up 10.0.0.2"
        notify_down /bin/down
        TCP_CHECK {
            connect_timeout 3
            nb_get_retry 3
            delay_before_retry 3
            connect_port 5673
            connect_ip 10.0.0.20
            bindto 10.0.0.1
        }
        HTTP_GET {
            url {
                path /api/health/checks/alarms
                status_code 200 300-399
            }
            url {
                path /
                digest 9B3A0C85A887A256D6939DA88AABD8CD
            }
            connect_port 15672
            virtualhost rabbit.example
        }
        SSL_GET {
            url {
                path /
            }
            retry 4
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/check 'a b'"
            misc_dynamic
            user checker
        }
        AMQP_CHECK {
            user monitor
            password hunter2
            vhost /prod
            queue health
            delay_loop 2
        }
    }
    real_server 10.0.0.3 5672 {
        weight 0
        inhibit_on_failure off
        lvs_method NAT
        retry 9
        delay_loop 1
        TCP_CHECK {
        }
    }
}`)
	if len(cfg.VirtualServers) != 1 {
		t.Fatalf("%d virtual servers", len(cfg.VirtualServers))
	}
	vs := &cfg.VirtualServers[0]
	sec := func(f float64) Duration { return Duration(time.Duration(f * float64(time.Second))) }
	if vs.IP != netip.MustParseAddr("10.0.0.1") || vs.Port != 5672 || vs.DelayLoop != sec(6) || vs.LVSSched != "wrr" ||
		vs.LVSMethod != MethodDR || vs.PersistenceTimeout != sec(50) || vs.PersistenceGranularity != "255.255.255.0" ||
		vs.Protocol != "TCP" || !reflect.DeepEqual(vs.SorryServer, &ServerAddr{IP: netip.MustParseAddr("10.0.0.9"), Port: 5672}) ||
		!vs.InhibitOnFailure || vs.ConnectTimeout != sec(4) || vs.Retry != 2 || vs.DelayBeforeRetry != sec(0.5) {
		t.Errorf("virtual_server %+v", vs)
	}
	if len(vs.RealServers) != 2 {
		t.Fatalf("%d real servers", len(vs.RealServers))
	}
	rs := &vs.RealServers[0]
	if rs.Weight != 3 || rs.LVSMethod != MethodDR || !rs.InhibitOnFailure ||
		rs.NotifyUp == nil || !reflect.DeepEqual(rs.NotifyUp.Argv, []string{"/bin/up", "10.0.0.2"}) || rs.NotifyDown == nil {
		t.Errorf("real_server %+v", rs)
	}
	tcp := rs.TCPCheck[0].CheckCommon
	tcp.meta = nil
	if want := (CheckCommon{ConnectIP: netip.MustParseAddr("10.0.0.20"), ConnectPort: 5673, BindTo: netip.MustParseAddr("10.0.0.1"),
		ConnectTimeout: sec(3), Retry: 3, DelayBeforeRetry: sec(3), DelayLoop: sec(6)}); tcp != want {
		t.Errorf("TCP_CHECK\n got %+v\nwant %+v", tcp, want)
	}
	h := rs.HTTPGet[0]
	if h.ConnectPort != 15672 || h.ConnectIP != rs.IP || h.Retry != 2 || h.DelayBeforeRetry != sec(0.5) || h.ConnectTimeout != sec(4) ||
		h.Virtualhost != "rabbit.example" || len(h.URLs) != 2 ||
		!reflect.DeepEqual(h.URLs[0].StatusCode, []StatusRange{{200, 200}, {300, 399}}) ||
		h.URLs[1].Digest != "9b3a0c85a887a256d6939da88aabd8cd" || !reflect.DeepEqual(h.URLs[1].StatusCode, []StatusRange{{200, 299}}) {
		t.Errorf("HTTP_GET %+v", h)
	}
	if s := rs.SSLGet[0]; s.Retry != 4 || s.ConnectPort != 5672 || s.URLs[0].Path != "/" {
		t.Errorf("SSL_GET %+v", s)
	}
	m := rs.MiscCheck[0]
	if !reflect.DeepEqual(m.MiscPath.Argv, []string{"/usr/local/bin/check", "a b"}) || !m.MiscDynamic || m.User != "checker" ||
		m.MiscTimeout != sec(6) || m.Retry != 2 || m.ConnectPort != 0 || m.ConnectIP.IsValid() {
		t.Errorf("MISC_CHECK %+v", m)
	}
	a := rs.AMQPCheck[0]
	if a.User != "monitor" || a.Password.Reveal() != "hunter2" || a.VHost != "/prod" || a.Queue != "health" ||
		a.DelayLoop != sec(2) || a.ConnectPort != 5672 {
		t.Errorf("AMQP_CHECK %+v", a)
	}
	rs2 := &vs.RealServers[1]
	if rs2.Weight != 0 || rs2.InhibitOnFailure || rs2.LVSMethod != MethodNAT {
		t.Errorf("real_server 2 %+v", rs2)
	}
	if c := rs2.TCPCheck[0]; c.Retry != 9 || c.DelayLoop != sec(1) || c.ConnectTimeout != sec(4) || c.ConnectPort != 5672 {
		t.Errorf("inherited TCP_CHECK %+v", c)
	}
	requireNote(t, cfg, NoteDeprecated, "keepalived.conf:19:", "nb_get_retry is the old name of retry")
}

func TestVirtualServerDefaults(t *testing.T) {
	cfg := mustParse(t, `virtual_server 10.0.0.1 80 {
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
        HTTP_GET {
            url {
                path /
            }
        }
        MISC_CHECK {
            misc_path /bin/true
        }
    }
}`)
	vs := cfg.VirtualServers[0]
	if vs.DelayLoop != Duration(60*time.Second) || vs.LVSSched != "wlc" || vs.LVSMethod != MethodNAT || vs.Protocol != "TCP" || vs.PersistenceTimeout != 0 {
		t.Errorf("virtual_server defaults %+v", vs)
	}
	rs := vs.RealServers[0]
	if rs.Weight != 1 || rs.LVSMethod != MethodNAT {
		t.Errorf("real_server defaults %+v", rs)
	}
	if c := rs.TCPCheck[0]; c.ConnectTimeout != Duration(5*time.Second) || c.Retry != 1 || c.DelayBeforeRetry != Duration(time.Second) ||
		c.DelayLoop != Duration(60*time.Second) || c.ConnectPort != 80 || c.ConnectIP != rs.IP {
		t.Errorf("TCP_CHECK defaults %+v", c)
	}
	if c := rs.HTTPGet[0]; c.DelayBeforeRetry != Duration(3*time.Second) || c.Retry != 1 {
		t.Errorf("HTTP_GET defaults %+v", c)
	}
	if c := rs.MiscCheck[0]; c.Retry != 0 || c.MiscTimeout != Duration(60*time.Second) {
		t.Errorf("MISC_CHECK defaults %+v", c)
	}
	requireNote(t, cfg, NoteCompat, "keepalived.conf:1:", "no protocol set; vipd uses TCP, where keepalived 1.3.6 and later would use UDP")
}

func TestVirtualServerForms(t *testing.T) {
	cfg := mustParse(t, `virtual_server_group G {
    192.168.200.1-10 80
    192.168.200.250-192.168.201.10 80
    192.168.202.8/29
    2001:db8::1-ff 443
    fwmark 7
    fwmark 8 inet6
}
virtual_server group G {
    protocol TCP
    real_server 10.0.0.2 80 {
    }
}
virtual_server fwmark 1 {
    real_server 10.0.0.2 80 {
    }
}
virtual_server 10.0.0.1 {
    protocol UDP
    real_server 10.0.0.2 {
    }
}
virtual_server 10.0.0.5 80 {
    protocol TCP
    persistence_timeout
    lvs_sched sh
    lvs_method TUN ipip
    real_server 10.0.0.2 80 {
    }
}
virtual_server 10.0.0.6 80 {
    protocol TCP
}`)
	g := cfg.VirtualServerGroup("G")
	a := netip.MustParseAddr
	want := []VSGEntry{
		{First: a("192.168.200.1"), Last: a("192.168.200.10"), Port: 80},
		{First: a("192.168.200.250"), Last: a("192.168.201.10"), Port: 80},
		{First: a("192.168.202.8"), Last: a("192.168.202.15")},
		{First: a("2001:db8::1"), Last: a("2001:db8::ff"), Port: 443},
		{Fwmark: 7},
		{Fwmark: 8, Family: "inet6"},
	}
	if g == nil || !reflect.DeepEqual(g.Entries, want) {
		t.Fatalf("group %+v", g)
	}
	if n := len(cfg.VirtualServers); n != 4 {
		t.Fatalf("%d virtual servers, want 4 (the one without real servers is dropped)", n)
	}
	if vs := cfg.VirtualServers[0]; vs.Group != "G" {
		t.Errorf("group form %+v", vs)
	}
	if vs := cfg.VirtualServers[1]; vs.Fwmark != 1 {
		t.Errorf("fwmark form %+v", vs)
	}
	if vs := cfg.VirtualServers[2]; vs.Port != 0 || vs.PersistenceTimeout != Duration(360*time.Second) || vs.Protocol != "UDP" {
		t.Errorf("portless form %+v", vs)
	}
	if vs := cfg.VirtualServers[3]; vs.PersistenceTimeout != Duration(360*time.Second) || vs.LVSSched != "sh" || vs.LVSMethod != MethodTUN {
		t.Errorf("bare persistence_timeout %+v", vs)
	}
	requireNote(t, cfg, NoteCompat, "keepalived.conf:18:", "persistence_timeout is set to 360s")
	requireNote(t, cfg, NoteNoEffect, "keepalived.conf:31:", "has no real_server; it is ignored")
	if _, ok := findNote(cfg, "keepalived.conf:14:", "no protocol"); ok {
		t.Error("a fwmark service got a protocol note")
	}
}

func TestVirtualServerNotes(t *testing.T) {
	cfg := mustParse(t, `virtual_server 192.168.0.10 5672 {
    protocal TCP
    real_server 192.168.0.2 5672 {
        weight 1
        TCP_CHECK {
            warmup 5
        }
    }
}`)
	requireNote(t, cfg, NoteUnknown, "keepalived.conf:2:",
		`unknown keyword "protocal" in virtual_server 192.168.0.10 5672 (did you mean "protocol"?); ignored, protocol stays TCP, the default`)
	requireNote(t, cfg, NoteIgnored, "keepalived.conf:6:", "warmup: ignored; vipd starts each check at once")
}

// TestVirtualServerWeight: a virtual_server's weight is the default weight
// of its real servers, as in keepalived; a real server's own weight wins.
func TestVirtualServerWeight(t *testing.T) {
	cfg := mustParse(t, "virtual_server 10.0.0.1 80 {\n protocol TCP\n weight 5\n real_server 10.0.0.2 80 {\n }\n real_server 10.0.0.3 80 {\n weight 2\n }\n}\nvirtual_server 10.0.0.1 81 {\n protocol TCP\n real_server 10.0.0.2 81 {\n }\n}\n")
	if a, b, c := cfg.VirtualServers[0].RealServers[0].Weight, cfg.VirtualServers[0].RealServers[1].Weight, cfg.VirtualServers[1].RealServers[0].Weight; a != 5 || b != 2 || c != 1 {
		t.Errorf("weights %d %d %d, want 5 2 1", a, b, c)
	}
	list := errorList(t, "virtual_server 10.0.0.1 80 {\n weight 0\n real_server 10.0.0.2 80 {\n }\n}\n")
	if !strings.Contains(list.Error(), "keepalived.conf:2: weight: expected an integer 1..65535") {
		t.Errorf("errors %v", list)
	}
}

// TestAlphaInherited: a checker's alpha is its own, else its real
// server's, else its virtual server's, else off, as in keepalived.
func TestAlphaInherited(t *testing.T) {
	cfg := mustParse(t, `virtual_server 10.0.0.1 80 {
    protocol TCP
    alpha
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
        MISC_CHECK {
            misc_path /bin/true
            alpha off
        }
    }
    real_server 10.0.0.3 80 {
        alpha no
        HTTP_GET {
            url {
                path /
            }
        }
        AMQP_CHECK {
            alpha yes
        }
    }
}
virtual_server 10.0.0.1 81 {
    protocol TCP
    real_server 10.0.0.2 81 {
        TCP_CHECK {
        }
    }
}`)
	r0, r1 := cfg.VirtualServers[0].RealServers[0], cfg.VirtualServers[0].RealServers[1]
	got := []bool{r0.TCPCheck[0].Alpha, r0.MiscCheck[0].Alpha, r1.HTTPGet[0].Alpha, r1.AMQPCheck[0].Alpha, cfg.VirtualServers[1].RealServers[0].TCPCheck[0].Alpha}
	if want := []bool{true, false, false, true, false}; !reflect.DeepEqual(got, want) {
		t.Errorf("alpha %v, want %v", got, want)
	}
}
