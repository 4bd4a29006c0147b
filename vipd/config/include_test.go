package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
)

const scriptA = "vrrp_script a {\n script /bin/a\n}\n"

func TestIncludeGlobRelative(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/keepalived/keepalived.conf":  {Data: []byte("include conf.d/*.conf\n" + instance("track_script {\n a\n b\n}"))},
		"etc/keepalived/conf.d/10-a.conf": {Data: []byte(scriptA)},
		"etc/keepalived/conf.d/20-b.conf": {Data: []byte("include ../shared/b.inc\n")},
		"etc/keepalived/conf.d/30.txt":    {Data: []byte("garbage {")},
		"etc/keepalived/shared/b.inc":     {Data: []byte("vrrp_script b {\n script /bin/b\n}\n")},
	}
	cfg, err := ParseFS(fsys, "etc/keepalived/keepalived.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.VRRPScripts) != 2 || cfg.VRRPScripts[0].Name != "a" || cfg.VRRPScripts[1].Name != "b" {
		t.Fatalf("scripts %+v", cfg.VRRPScripts)
	}
	if p := cfg.VRRPScripts[1].Pos; p != (Pos{"etc/keepalived/shared/b.inc", 1}) {
		t.Errorf("script b at %v", p)
	}
	want := []string{"etc/keepalived/keepalived.conf", "etc/keepalived/conf.d/10-a.conf",
		"etc/keepalived/conf.d/20-b.conf", "etc/keepalived/shared/b.inc"}
	if !reflect.DeepEqual(cfg.Files, want) {
		t.Errorf("files %q", cfg.Files)
	}
}

func TestIncludeInsideBlock(t *testing.T) {
	cfg := mustParse(t, instance("include vips.inc"), "vips.inc", "virtual_ipaddress {\n 192.168.1.11\n}\nsmtp_alert\n")
	if n := len(cfg.VRRPInstances[0].VirtualIPAddress); n != 2 {
		t.Errorf("%d addresses", n)
	}
	requireNote(t, cfg, NoteIgnored, "vips.inc:4:", "smtp_alert")
	list := errorList(t, instance("include vips.inc"), "vips.inc", "priorty 3\n")
	if len(list) != 1 || !strings.Contains(list[0].Error(), `vips.inc:1: unknown keyword "priorty"`) {
		t.Errorf("errors %v", list)
	}
}

func TestIncludeAbsoluteInFS(t *testing.T) {
	cfg := mustParse(t, "include /etc/ka/*.conf\n", "etc/ka/x.conf", instance(""))
	if len(cfg.VRRPInstances) != 1 {
		t.Errorf("%d instances", len(cfg.VRRPInstances))
	}
}

func TestIncludeCycle(t *testing.T) {
	list := errorList(t, "include a.conf\n", "a.conf", "include b.conf\n", "b.conf", "include a.conf\n")
	if !errors.Is(list, ErrIncludeCycle) {
		t.Fatalf("not ErrIncludeCycle: %v", list)
	}
	if got := list[0].Error(); got != `b.conf:1: include "a.conf": include cycle: a.conf -> b.conf -> a.conf` {
		t.Errorf("got %s", got)
	}
	list = errorList(t, "include keepalived.conf\n")
	if !errors.Is(list, ErrIncludeCycle) || list[0].Line != 1 {
		t.Errorf("self include: %v", list)
	}
}

func TestIncludeDepth(t *testing.T) {
	var extra []string
	for i := 0; i < MaxIncludeDepth+2; i++ {
		extra = append(extra, "d"+string(rune('a'+i))+".conf", "include d"+string(rune('a'+i+1))+".conf\n")
	}
	list := errorList(t, "include da.conf\n", extra...)
	if !errors.Is(list, ErrIncludeDepth) {
		t.Fatalf("not ErrIncludeDepth: %v", list)
	}
}

func TestIncludeNoMatch(t *testing.T) {
	cfg := mustParse(t, "include missing/*.conf\n")
	requireNote(t, cfg, NoteNoEffect, "keepalived.conf:1:", `include "missing/*.conf": no file matches; nothing is included`)
	list := errorList(t, "includea missing.conf\n")
	if !errors.Is(list, os.ErrNotExist) {
		t.Errorf("includea: %v", list)
	}
	list = errorList(t, "include a b\n")
	if !strings.Contains(list.Error(), "include: expected one file name or pattern, got 2 arguments") {
		t.Errorf("two arguments: %v", list)
	}
	list = errorList(t, "include [\n")
	if !strings.Contains(list.Error(), "bad pattern") {
		t.Errorf("bad pattern: %v", list)
	}
}

func TestIncludeDirectorySkipped(t *testing.T) {
	cfg := mustParse(t, "include d/*\n", "d/sub/x.conf", "garbage", "d/a.conf", scriptA)
	requireNote(t, cfg, NoteNoEffect, "d/sub is a directory; skipped")
	if len(cfg.VRRPScripts) != 1 {
		t.Errorf("%d scripts", len(cfg.VRRPScripts))
	}
}

func TestLoadFollowsIncludes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("keepalived.conf", "include conf.d/*.conf\ninclude "+filepath.Join(dir, "abs.inc")+"\n")
	write("conf.d/vrrp.conf", instance("track_script {\n a\n}"))
	write("abs.inc", scriptA)
	cfg, err := Load(filepath.Join(dir, "keepalived.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.VRRPInstances) != 1 || len(cfg.VRRPInstances[0].TrackScript) != 1 || len(cfg.Files) != 3 {
		t.Errorf("instances %+v files %q", cfg.VRRPInstances, cfg.Files)
	}
	// Parse resolves includes next to the name it is given.
	cfg, err = Parse(filepath.Join(dir, "other.conf"), []byte("include conf.d/vrrp.conf\n"))
	if err != nil || len(cfg.VRRPInstances) != 1 {
		t.Errorf("Parse: %v, %d instances", err, len(cfg.VRRPInstances))
	}
	if _, err := Load(filepath.Join(dir, "nope.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
	if _, err := ParseFS(fstest.MapFS{}, "nope.conf"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ParseFS of a missing file: %v", err)
	}
}

func TestIncludeBudget(t *testing.T) {
	// Every file includes the next one twice: without a budget the work
	// would double at each level.
	var extra []string
	for i := 0; i < MaxIncludeDepth; i++ {
		next := "include f" + string(rune('a'+i+1)) + ".conf\n"
		extra = append(extra, "f"+string(rune('a'+i))+".conf", next+next+next+next)
	}
	_, err := parseSrc(t, "include fa.conf\ninclude fa.conf\ninclude fa.conf\ninclude fa.conf\n", extra...)
	if !errors.Is(err, ErrIncludeDepth) || !strings.Contains(err.Error(), "included files in all") {
		t.Errorf("got %v", err)
	}
}

// failFS fails to open one file that its directory lists.
type failFS struct{ m fstest.MapFS }

func (f failFS) Open(name string) (fs.File, error) {
	if name == "bad.conf" {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
	}
	return f.m.Open(name)
}

func TestIncludeReadError(t *testing.T) {
	fsys := failFS{fstest.MapFS{"keepalived.conf": {Data: []byte("include b*.conf\n")}, "bad.conf": {Data: []byte("x")}}}
	_, err := ParseFS(fsys, "keepalived.conf")
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), `keepalived.conf:1: include "b*.conf": bad.conf: permission denied`) {
		t.Errorf("got %v", err)
	}
}
