package config

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// parseSrc parses src as keepalived.conf in a MapFS holding extra files.
func parseSrc(t *testing.T, src string, extra ...string) (*Config, error) {
	t.Helper()
	fsys := fstest.MapFS{"keepalived.conf": {Data: []byte(src)}}
	for i := 0; i+1 < len(extra); i += 2 {
		fsys[extra[i]] = &fstest.MapFile{Data: []byte(extra[i+1])}
	}
	cfg, err := ParseFS(fsys, "keepalived.conf")
	if cfg == nil {
		t.Fatalf("ParseFS returned a nil config (err %v)", err)
	}
	return cfg, err
}

// mustParse parses src and fails the test on any error.
func mustParse(t *testing.T, src string, extra ...string) *Config {
	t.Helper()
	cfg, err := parseSrc(t, src, extra...)
	if err != nil {
		t.Fatalf("unexpected error:\n%v\nsource:\n%s", err, src)
	}
	return cfg
}

// errorList parses src and returns its errors, failing when there are none.
func errorList(t *testing.T, src string, extra ...string) ErrorList {
	t.Helper()
	_, err := parseSrc(t, src, extra...)
	if err == nil {
		t.Fatalf("expected an error, got none; source:\n%s", src)
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, not an ErrorList: %v", err, err)
	}
	return list
}

// instanceHead is a minimal valid vrrp_instance without its closing brace;
// a body appended to it starts at line 7.
const instanceHead = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {
        192.168.1.10
    }
`

func instance(body string) string { return instanceHead + body + "\n}\n" }

// findNote returns the first note whose message contains all of subs.
func findNote(cfg *Config, subs ...string) (Note, bool) {
	for _, n := range cfg.Notes {
		ok := true
		for _, s := range subs {
			if !strings.Contains(n.String(), s) {
				ok = false
				break
			}
		}
		if ok {
			return n, true
		}
	}
	return Note{}, false
}

func requireNote(t *testing.T, cfg *Config, kind NoteKind, subs ...string) Note {
	t.Helper()
	n, ok := findNote(cfg, subs...)
	if !ok {
		t.Fatalf("no note containing %q; notes:\n%s", subs, notesText(cfg))
	}
	if kind != 0 && n.Kind != kind {
		t.Fatalf("note %q is of kind %v, want %v", n, n.Kind, kind)
	}
	return n
}

func notesText(cfg *Config) string {
	var b strings.Builder
	for _, n := range cfg.Notes {
		b.WriteString("  " + n.String() + "\n")
	}
	return b.String()
}
