package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		instance("state MASTER\npriority 150\nadvert_int 0.5\nversion 3\nnopreempt\npreempt_delay 3"),
		instance("authentication {\n auth_type PASS\n auth_pass x\n}\ntrack_script {\n s weight 3 reverse\n}\nnotify_master \"/bin/x 'a b' \\x41\" u g"),
		"global_defs {\n router_id x\n notification_email {\n a@b\n }\n}\nvrrp_script s{\n script \"/bin/x\"\n}\n",
		"virtual_server 10.0.0.1 80 {\n lb_algo wrr\n protocal TCP\n real_server 10.0.0.2 80 {\n TCP_CHECK {\n nb_get_retry 3\n }\n HTTP_GET {\n url {\n path /\n status_code 200-299\n }\n }\n }\n}\n",
		"virtual_server_group g {\n 10.0.0.1-9 80\n fwmark 3 inet\n}\nvirtual_server group g {\n real_server ::1 80 {\n }\n}\n",
		"global_defs {\n vrrp_strict\n vrrp_mcast_group4 224.0.0.100\n vrrp_mcast_group6 ff02::100\n vrrp_check_unicast_src\n}\n" +
			instance("strict_mode off\nno_accept\naccept\nmcast_dst_ip 239.0.0.1\ncheck_unicast_src\nunicast_peer {\n 10.0.0.2 min_ttl 250 max_ttl 255\n}\nvirtual_ipaddress_excluded {\n 2001:db8::1/64 dev eth1\n}"),
		"global_defs {\n vrrp_garp_interval 0.002\n vrrp_gna_interval 0.01\n vrrp_startup_delay 5\n}\nvrrp_sync_group G {\n group {\n VI_1 VI_2\n }\n track_interface {\n eth1 weight -2\n }\n notify \"/bin/n\"\n global_tracking\n}\n" +
			instance("dont_track_primary\nvirtual_ipaddress {\n 10.0.0.1/24 brd + scope link\n 10.0.0.2/30 broadcast 10.0.0.3\n}"),
		"virtual_server 10.0.0.1 443 {\n virtualhost a.example\n lvs_method TUN ipip\n quorum 2\n real_server 10.0.0.2 443 {\n virtualhost b.example:8443\n SMTP_CHECK {\n }\n SSL_GET {\n enable_sni\n sni_name c.example\n url {\n path /\n virtualhost d\n regex x\n }\n }\n }\n}\n",
		instance("lower_prio_no_advert off\nuse_vmac\nvirtual_ipaddress {\n 10.0.0.9 dev eth1 no_track home preferred_lft 0 peer 10.0.0.8 lable x\n}"),
		"include inc.conf\n",
		"include *\n{ } } \" \\\n@x $y=z ~q # !",
	} {
		f.Add([]byte(s))
	}
	if dir, err := os.Getwd(); err == nil {
		seeds, _ := filepath.Glob(filepath.Join(dir, "..", "..", "..", "shared", "seeds", "configs", "*.conf"))
		for _, p := range seeds {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"keepalived.conf": {Data: data}, "inc.conf": {Data: data}}
		cfg, err := ParseFS(fsys, "keepalived.conf")
		if cfg == nil {
			t.Fatalf("nil config, error %v", err)
		}
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			for _, e := range list {
				if e.Line < 1 || e.File == "" {
					t.Fatalf("error without position: %#v", e)
				}
			}
		}
		for _, n := range cfg.Notes {
			if n.Line < 1 || n.File == "" || n.Kind == 0 {
				t.Fatalf("note without position or kind: %#v", n)
			}
		}
		if _, err := cfg.JSON(); err != nil {
			t.Fatalf("JSON: %v", err)
		}
		_ = cfg.Validate()
	})
}
