package script

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzShellLine: the shell reads back exactly the words ShellLine quoted,
// whatever they hold, so a notify script's arguments reach it intact when
// keepalived's rule sends it through /bin/sh.
func FuzzShellLine(f *testing.F) {
	for _, s := range [][2]string{{"a", "b"}, {"it's", "$HOME"}, {"", "'"}, {"a b", "`id`"}, {"\\", "\n\t"}, {"'\\''", "*"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.ContainsRune(a+b, 0) || strings.HasPrefix(a, "<") || strings.HasPrefix(a, ">") {
			t.Skip("NUL cannot be an argument; a leading < or > is a redirection by design")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		line := ShellLine([]string{"printf", "%s\\0", a, b})
		out, err := exec.CommandContext(ctx, "/bin/sh", "-c", line).Output()
		if err != nil {
			t.Fatalf("sh -c %q: %v", line, err)
		}
		want := []byte(a + "\x00" + b + "\x00")
		if !bytes.Equal(out, want) {
			t.Fatalf("sh -c %q printed %q, want %q", line, out, want)
		}
	})
}

// FuzzResolve: whatever a configuration names as a program, Resolve
// either refuses it with ErrNotFound or ErrInsecure or returns an absolute
// path (or a redirection left to the shell), keeping the arguments.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"true", "/bin/true", "</dev/null", "no-such", "../x", "/", ".", "", "/bin/../bin/true", "/etc/passwd"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, prog string, security bool) {
		c, err := Resolve(Command{Argv: []string{prog, "arg"}}, security)
		switch {
		case err != nil:
			if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInsecure) {
				t.Fatalf("Resolve(%q): %v wraps neither ErrNotFound nor ErrInsecure", prog, err)
			}
		case len(c.Argv) != 2 || c.Argv[1] != "arg":
			t.Fatalf("Resolve(%q) lost the arguments: %q", prog, c.Argv)
		case !filepath.IsAbs(c.Argv[0]) && !ShellOnly(c.Argv[0]):
			t.Fatalf("Resolve(%q) = %q: neither absolute nor a redirection", prog, c.Argv[0])
		}
	})
}
