package script

import (
	"errors"
	"os"
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
	openDir := filepath.Join(dir, "open")
	if err := os.Mkdir(openDir, 0o755); err != nil {
		t.Fatal(err)
	}
	inOpenDir := filepath.Join(openDir, "x.sh")
	if err := os.WriteFile(inOpenDir, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openDir, 0o777); err != nil {
		t.Fatal(err)
	}
	linkToForeign := filepath.Join(dir, "link.sh")
	if err := os.Symlink(foreign, linkToForeign); err != nil {
		t.Fatal(err)
	}
	tmpScript := filepath.Join(t.TempDir(), "tmp.sh")
	if err := os.WriteFile(tmpScript, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		path string
		ok   bool
	}{
		{good, true},
		{"/bin/true", true}, // through the /bin → usr/bin link on merged-/usr systems
		{worldWritable, false},
		{notExec, false},
		{foreign, false},
		{inOpenDir, false},
		{linkToForeign, false},
		{tmpScript, false}, // /tmp is writable by everyone
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
