package config

import (
	"reflect"
	"testing"
)

func TestLex(t *testing.T) {
	type tok struct {
		kind tokKind
		val  string
		line int
	}
	W := func(v string, line int) tok { return tok{tWord, v, line} }
	O := func(line int) tok { return tok{tOpen, "{", line} }
	C := func(line int) tok { return tok{tClose, "}", line} }
	E := func(line int) tok { return tok{tEOL, "", line} }
	tests := []struct {
		name string
		src  string
		want []tok
	}{
		{"words", "a b\tc\n", []tok{W("a", 1), W("b", 1), W("c", 1), E(1)}},
		{"glued braces", "vrrp_script x{\n}y", []tok{W("vrrp_script", 1), W("x", 1), O(1), E(1), C(2), W("y", 2), E(2)}},
		{"hash comment", "a # b c\nd", []tok{W("a", 1), E(1), W("d", 2), E(2)}},
		{"bang comment", "! whole line\na", []tok{W("a", 2), E(2)}},
		{"comment inside word", "pass ab#cd", []tok{W("pass", 1), W("ab", 1), E(1)}},
		{"escaped comment chars", `pass a\#b\!c`, []tok{W("pass", 1), W("a#b!c", 1), E(1)}},
		{"quoted", `script "/bin/x a # b {c}"`, []tok{W("script", 1), W("/bin/x a # b {c}", 1), E(1)}},
		{"quote joins", `a"b c"d`, []tok{W("ab cd", 1), E(1)}},
		{"escaped quote kept", `s "a \"b\" c"`, []tok{W("s", 1), W(`a \"b\" c`, 1), E(1)}},
		{"empty quoted", `p ""`, []tok{W("p", 1), W("", 1), E(1)}},
		{"continuation", "a \\\n b\nc", []tok{W("a", 1), W("b", 2), E(2), W("c", 3), E(3)}},
		{"crlf", "a\r\nb\r\n", []tok{W("a", 1), E(1), W("b", 2), E(2)}},
		{"single quotes literal", "a 'b c'", []tok{W("a", 1), W("'b", 1), W("c'", 1), E(1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			toks, errs := lex("f", []byte(tt.src))
			if len(errs) > 0 {
				t.Fatalf("errors %v", errs)
			}
			var got []tok
			for _, x := range toks {
				got = append(got, tok{x.kind, x.val, x.line})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestLexErrors(t *testing.T) {
	for _, src := range []string{"a \"b\nc", "a \"b"} {
		_, errs := lex("f", []byte(src))
		if len(errs) != 1 || errs[0].Line != 1 {
			t.Errorf("%q: errors %v", src, errs)
		}
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in      string
		escapes bool
		want    []string
		err     bool
	}{
		{"/bin/x a  b", true, []string{"/bin/x", "a", "b"}, false},
		{`/bin/x 'a b' "c d"`, true, []string{"/bin/x", "a b", "c d"}, false},
		{`x a'b c'd`, true, []string{"x", "ab cd"}, false},
		{`x '' ""`, true, []string{"x", "", ""}, false},
		{`x \x41\101\n\t\cA\E\q`, true, []string{"x", "AA\n\t\x01\x1bq"}, false},
		{`x '\x69'`, true, []string{"x", "i"}, false},
		{`x a\ b`, true, []string{"x", "a b"}, false},
		{`x a\ b`, false, []string{"x", `a\ b`}, false},
		{`"x 'a b'" user group`, false, []string{"x 'a b'", "user", "group"}, false},
		{"x \\\n y", false, []string{"x", "y"}, false},
		{`x 'a`, true, nil, true},
		{`x \`, true, nil, true},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in, tt.escapes)
		if (err != nil) != tt.err || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitWords(%q, %v) = %q, %v; want %q (error %v)", tt.in, tt.escapes, got, err, tt.want, tt.err)
		}
	}
}

// The example of keepalived.conf(5): a quoted command with escapes, a
// single-quoted argument holding double quotes, then user and group.
func TestNotifyLikeManPage(t *testing.T) {
	cfg := mustParse(t, instance(`notify_master "/etc/keepalived/notify_event.sh ' spaces\\x20f\x69le ' '\"s p a c e \"' SG1.low master" user group`))
	n := cfg.VRRPInstances[0].NotifyMaster
	want := []string{"/etc/keepalived/notify_event.sh", ` spaces\x20file `, `"s p a c e "`, "SG1.low", "master"}
	if n == nil || !reflect.DeepEqual(n.Argv, want) || n.User != "user" || n.Group != "group" {
		t.Errorf("got %+v\nwant argv %q", n, want)
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"protocol", "priority", "persistence_timeout", "TCP_CHECK", "state"}
	for in, want := range map[string]string{
		"protocal":            "protocol",
		"prority":             "priority",
		"persistance_timeout": "persistence_timeout",
		"tcp_check":           "TCP_CHECK",
		"stat":                "state",
		"xyzzy":               "",
		"weight":              "",
	} {
		if got := suggest(in, cands); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
