package script

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

func TestCheckSecure(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to make root-owned files (CI runs as root)")
		}
		t.Skip("needs root to make root-owned files")
	}
	// /run is root's and 0755, unlike /tmp, so a directory made there can be
	// made secure or not at will.
	dir := filepath.Join("/run", "amqpha-script-test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	write := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask aside
			t.Fatal(err)
		}
		return p
	}
	good := write("good.sh", 0o755)
	worldWritable := write("ww.sh", 0o777)
	notExec := write("noexec.sh", 0o644)
	foreign := write("foreign.sh", 0o755)
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// inDir makes a safe script in a directory of the given mode.
	inDir := func(name string, mode os.FileMode) string {
		d := filepath.Join(dir, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(d, "x.sh")
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inOpenDir := inDir("open", 0o777)
	linkToForeign := filepath.Join(dir, "link.sh")
	if err := os.Symlink(foreign, linkToForeign); err != nil {
		t.Fatal(err)
	}
	// keepalived's rule: /tmp is world-writable but sticky, so others
	// cannot replace root's file in root's 0700 directory there.
	tmpScript := filepath.Join(t.TempDir(), "tmp.sh")
	if err := os.WriteFile(tmpScript, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rootGroupWritable := write("rootgw.sh", 0o775) // group root: allowed
	otherGroupWritable := write("othergw.sh", 0o775)
	if err := os.Chown(otherGroupWritable, 0, 65534); err != nil {
		t.Fatal(err)
	}
	inStickyDir := inDir("sticky", 0o777|os.ModeSticky)

	cases := []struct {
		path string
		ok   bool
	}{
		{good, true},
		{"/bin/true", true}, // through the /bin → usr/bin link on merged-/usr systems
		{worldWritable, false},
		{notExec, true}, // safe; Resolve refuses it for not being executable
		{foreign, false},
		{inOpenDir, false},
		{linkToForeign, false},
		{tmpScript, true},
		{rootGroupWritable, true},
		{otherGroupWritable, false},
		{inStickyDir, true},
		{"relative.sh", false},
		{filepath.Join(dir, "missing.sh"), false},
	}
	for _, c := range cases {
		err := CheckSecure(c.path)
		if (err == nil) != c.ok {
			t.Errorf("CheckSecure(%s) = %v, want ok=%v", c.path, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrInsecure) {
			t.Errorf("CheckSecure(%s) error %v does not wrap ErrInsecure", c.path, err)
		}
	}
}

// TestResolve: a bare command name is looked up in PATH and then checked
// like any other path, as keepalived does; what cannot run is refused.
func TestResolve(t *testing.T) {
	dir := t.TempDir()
	noExec := filepath.Join(dir, "noexec.sh")
	if err := os.WriteFile(noExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ww := filepath.Join(dir, "ww.sh")
	if err := os.WriteFile(ww, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(ww, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "/nonexistent:"+dir+":/usr/bin:/bin")
	truePath, err := exec.LookPath("true")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		argv     []string
		security bool
		want     string // Argv[0] after; empty: refused
		err      error
	}{
		{[]string{"true", "-x"}, true, truePath, nil},
		{[]string{"true"}, false, truePath, nil},
		{[]string{"/bin/true"}, true, "/bin/true", nil},
		{[]string{"</dev/tcp/127.0.0.1/80"}, true, "</dev/tcp/127.0.0.1/80", nil},
		{[]string{"no-such-program-here"}, false, "", ErrNotFound},
		{[]string{"/nonexistent/x"}, false, "", ErrNotFound},
		{[]string{noExec}, false, "", ErrNotFound},
		{[]string{"noexec.sh"}, false, "", ErrNotFound},
		{[]string{ww}, false, ww, nil},
		{[]string{"ww.sh"}, false, ww, nil},
		{[]string{""}, false, "", ErrNotFound},
	}
	if os.Geteuid() == 0 {
		cases = append(cases, struct {
			argv     []string
			security bool
			want     string
			err      error
		}{[]string{"ww.sh"}, true, "", ErrInsecure})
	}
	for _, c := range cases {
		got, err := Resolve(Command{Argv: c.argv}, c.security)
		switch {
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("Resolve(%q, %v) = %v, want %v", c.argv, c.security, err, c.err)
		case c.err == nil && (err != nil || got.Argv[0] != c.want || len(got.Argv) != len(c.argv)):
			t.Errorf("Resolve(%q, %v) = %q, %v; want %s", c.argv, c.security, got.Argv, err, c.want)
		}
	}
}

// TestRunThroughTheShell: what keepalived hands to /bin/sh runs there: a
// redirection only, and a script without a #! line.
func TestRunThroughTheShell(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	if err := os.WriteFile(exists, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	noShebang := filepath.Join(dir, "check")
	if err := os.WriteFile(noShebang, []byte("echo \"args: $*\"\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		argv  []string
		extra []string
		code  int
		out   string
	}{
		{[]string{"<" + exists}, nil, 0, ""},
		{[]string{"< " + exists}, nil, 0, ""},
		{[]string{"<" + filepath.Join(dir, "missing")}, nil, 2, ""},
		{[]string{noShebang, "it's", "$HOME"}, []string{"MASTER"}, 3, "args: it's $HOME MASTER\n"},
	} {
		r, err := Run(context.Background(), Command{Argv: c.argv}, c.extra...)
		if err != nil || r.ExitCode != c.code || (c.out != "" && string(r.Output) != c.out) {
			t.Errorf("%q: exit %d output %q err %v; want exit %d output %q", c.argv, r.ExitCode, r.Output, err, c.code, c.out)
		}
	}
	if line := ShellLine([]string{"</dev/tcp/127.0.0.1/80", "a b", "it's"}); line != `</dev/tcp/127.0.0.1/80 'a b' 'it'\''s'` {
		t.Errorf("ShellLine = %s", line)
	}
}
