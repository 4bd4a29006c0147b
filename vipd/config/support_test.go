package config

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
)

// kindTemplates places a keyword line ("@KW@") in each kind of block of an
// otherwise valid file; the int is the line it lands on.
var kindTemplates = map[string]struct {
	src  string
	line string
}{
	"top level":       {"@KW@\n" + instance(""), ":1:"},
	"global_defs":     {"global_defs {\n@KW@\n}\n", ":2:"},
	"vrrp_instance":   {instance("@KW@"), ":7:"},
	"vrrp_sync_group": {"vrrp_sync_group G {\n group {\n VI_1\n }\n@KW@\n}\n" + instance(""), ":5:"},
	"virtual_server":  {"virtual_server 10.0.0.1 80 {\n@KW@\n real_server 10.0.0.2 80 {\n }\n}\n", ":2:"},
	"real_server":     {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n@KW@\n }\n}\n", ":3:"},
	"TCP_CHECK":       {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n@KW@\n  }\n }\n}\n", ":4:"},
	"AMQP_CHECK":      {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  AMQP_CHECK {\n@KW@\n  }\n }\n}\n", ":4:"},
	"MISC_CHECK":      {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  MISC_CHECK {\n@KW@\n misc_path /bin/true\n  }\n }\n}\n", ":4:"},
	"HTTP_GET":        {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n@KW@\n url {\n path /\n }\n  }\n }\n}\n", ":4:"},
	"url":             {"virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n url {\n@KW@\n path /\n }\n  }\n }\n}\n", ":5:"},
}

// eachKeyword calls f with a file holding the keyword (and an argument)
// in its kind of block, and the ":line:" it lands on, for every keyword of
// table.
func eachKeyword(t *testing.T, table map[string]map[string]string, f func(src, line, kw, why string)) int {
	n := 0
	for kind, kws := range table {
		tpl, ok := kindTemplates[kind]
		if !ok {
			t.Errorf("no template for block kind %q", kind)
			continue
		}
		for kw, why := range kws {
			n++
			f(strings.Replace(tpl.src, "@KW@", kw+" 1", 1), tpl.line, kw, why)
		}
	}
	return n
}

// TestRefusedKeywords: every keyword of the refused table fails the parse
// with an error at its line that says what to do.
func TestRefusedKeywords(t *testing.T) {
	n := eachKeyword(t, refusedKeywords, func(src, line, kw, why string) {
		list := errorList(t, src)
		if len(list) != 1 || !strings.Contains(list[0].Error(), "keepalived.conf"+line+" "+kw+": not supported by vipd: "+why) {
			t.Errorf("%s: errors\n%v", kw, list)
		}
	})
	if n < 100 {
		t.Errorf("only %d refused keywords", n)
	}
}

// TestWarnedKeywords: every keyword of the warned table is accepted with
// a note at its line giving the reason.
func TestWarnedKeywords(t *testing.T) {
	eachKeyword(t, warnedKeywords, func(src, line, kw, why string) {
		requireNote(t, mustParse(t, src), NoteIgnored, "keepalived.conf"+line+" "+kw+": ignored; "+why)
	})
}

func TestUnknownKeywordIsAnError(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"misspelt", instance("priorty 50"),
			`keepalived.conf:7: unknown keyword "priorty" in vrrp_instance VI_1: did you mean "priority"? (priority stays 100, the default)`},
		{"misspelt but set", instance("priority 50\npriorty 60"),
			`keepalived.conf:8: unknown keyword "priorty" in vrrp_instance VI_1: did you mean "priority"? (priority is set at keepalived.conf:7)`},
		{"misspelt block", "virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  tcp_check {\n  }\n }\n}\n",
			`keepalived.conf:3: unknown keyword "tcp_check" in real_server 10.0.0.2 80: did you mean "TCP_CHECK"?`},
		{"wrong block", instance("real_server 1.2.3.4 80 {\n}"),
			`keepalived.conf:7: unknown keyword "real_server" in vrrp_instance VI_1: it belongs in virtual_server`},
		{"refused elsewhere", instance("quorum 3"),
			`keepalived.conf:7: unknown keyword "quorum" in vrrp_instance VI_1: it belongs in virtual_server`},
		{"unknown top level", "frobnicate {\n x\n}\n" + instance(""),
			`keepalived.conf:1: unknown keyword "frobnicate" at the top level: no such keyword; remove it or fix its spelling`},
		{"maybe a secret", instance("authentication {\n auth_type PASS\n auth_pass x\n Sup3rS3cret\n}"),
			`keepalived.conf:10: unknown keyword in authentication (not shown: it may be a secret); remove it or fix its spelling`},
		{"misspelt with another value", "virtual_server 10.0.0.1 80 {\n protocal UDP\n real_server 10.0.0.2 80 {\n }\n}\n",
			`keepalived.conf:2: unknown keyword "protocal" in virtual_server 10.0.0.1 80: did you mean "protocol"? (protocol stays TCP, the default)`},
		{"address option", instance("virtual_ipaddress {\n 10.0.0.1 lable x\n}"),
			`keepalived.conf:8: virtual_ipaddress: unknown option "lable" after 10.0.0.1: did you mean "label"?`},
		{"refused address option", instance("virtual_ipaddress {\n 10.0.0.1 peer 10.0.0.2\n}"),
			`keepalived.conf:8: virtual_ipaddress: 10.0.0.1: option peer: not supported by vipd: vipd adds no point-to-point addresses`},
		{"tunnel options", "virtual_server 10.0.0.1 80 {\n lvs_method TUN gue port 6080\n real_server 10.0.0.2 80 {\n }\n}\n",
			`keepalived.conf:2: lvs_method: TUN: tunnel options: not supported by vipd: its tunnels are ipip`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			list := errorList(t, tt.src)
			if len(list) != 1 || !strings.Contains(list[0].Error(), tt.want) {
				t.Errorf("errors\n%v\nwant one containing\n%s", list, tt.want)
			}
			if strings.Contains(list.Error(), "Sup3rS3cret") {
				t.Error("the error shows a word that may be a secret")
			}
		})
	}
}

// keepalivedKinds maps the block paths of testdata/keepalived-2.2.7-keywords.txt
// to vipd's kinds of block; "" marks a block refused as a whole
// (its own keyword is classified where it stands).
var keepalivedKinds = map[string]string{
	"top": "top level", "global_defs": "global_defs", "vrrp_instance": "vrrp_instance",
	"vrrp_instance/authentication": "authentication", "vrrp_script": "vrrp_script", "SSL": "SSL",
	"vrrp_sync_group": "vrrp_sync_group",
	"virtual_server":  "virtual_server", "virtual_server/real_server": "real_server",
	"virtual_server/real_server/TCP_CHECK": "TCP_CHECK", "virtual_server/real_server/MISC_CHECK": "MISC_CHECK",
	"virtual_server/real_server/HTTP_GET": "HTTP_GET", "virtual_server/real_server/SSL_GET": "HTTP_GET",
	"virtual_server/real_server/HTTP_GET/url": "url", "virtual_server/real_server/SSL_GET/url": "url",
}

// TestKeepalivedKeywordsClassified: every keyword keepalived 2.2.7's
// parser knows is implemented, warned about or refused where it stands,
// or stands in a block that is refused as a whole; and no
// keyword is in two classes.
func TestKeepalivedKeywordsClassified(t *testing.T) {
	f, err := os.Open("testdata/keepalived-2.2.7-keywords.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	class := map[[2]string][]Support{}
	for _, k := range Keywords() {
		key := [2]string{k.Block, k.Keyword}
		class[key] = append(class[key], k.Support)
	}
	for key, sup := range class {
		if len(sup) > 1 {
			t.Errorf("%s %s is classified %d times: %v", key[0], key[1], len(sup), sup)
		}
	}
	wholeBlock := func(path string) bool {
		top, _, _ := strings.Cut(path, "/")
		if _, ok := refusedKeywords["top level"][top]; ok {
			return true
		}
		for _, chk := range []string{"SMTP_CHECK", "DNS_CHECK", "UDP_CHECK", "PING_CHECK", "FILE_CHECK", "BFD_CHECK"} {
			if strings.HasPrefix(path, "virtual_server/real_server/"+chk) {
				return true
			}
		}
		return false
	}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		path, kw, _ := strings.Cut(line, " ")
		n++
		kind, ok := keepalivedKinds[path]
		if !ok {
			if !wholeBlock(path) {
				t.Errorf("%s %s: its block is neither read by vipd nor refused", path, kw)
			}
			continue
		}
		if len(class[[2]string{kind, kw}]) == 0 {
			t.Errorf("keepalived's %s %s is not classified (implement it, or add it to warnedKeywords or refusedKeywords)", path, kw)
		}
	}
	if n < 450 {
		t.Errorf("only %d keywords read", n)
	}
}

func TestKeywordsListsEveryTable(t *testing.T) {
	all := Keywords()
	has := func(block, kw string, s Support) bool {
		return slices.ContainsFunc(all, func(k KeywordSupport) bool { return k.Block == block && k.Keyword == kw && k.Support == s })
	}
	for _, c := range []struct {
		block, kw string
		s         Support
	}{
		{"vrrp_instance", "priority", Implemented}, {"real_server", "SMTP_CHECK", Refused},
		{"global_defs", "enable_snmp_vrrp", Warned}, {"virtual_ipaddress", "peer", Refused},
		{"virtual_ipaddress", "no_track", Implemented}, {"virtual_ipaddress", "home", Warned}, {"HTTP_GET", "virtualhost", Implemented},
		{"real_server", "virtualhost", Implemented}, {"virtual_server", "virtualhost", Implemented},
		{"global_defs", "smtp_server", Warned}, {"global_defs", "router_id", Implemented},
		{"top level", "vrrp_sync_group", Implemented}, {"vrrp_instance", "dont_track_primary", Implemented},
		{"vrrp_sync_group", "sync_group_tracking_weight", Implemented}, {"vrrp_sync_group", "track_file", Refused},
		{"vrrp_sync_group", "smtp_alert", Warned}, {"global_defs", "vrrp_garp_interval", Implemented},
		{"global_defs", "vrrp_startup_delay", Implemented}, {"virtual_ipaddress", "brd", Implemented},
	} {
		if !has(c.block, c.kw, c.s) {
			t.Errorf("Keywords() lacks %s %s %v", c.block, c.kw, c.s)
		}
	}
}
