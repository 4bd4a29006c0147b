package vm

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWriteOverlay(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "probe")
	if err := os.WriteFile(host, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Command: []string{"/bin/probe", "-v"},
		Env:     []string{"A=1"},
		Files:   map[string]string{"/bin/probe": host},
	}
	var buf bytes.Buffer
	if err := writeOverlay(&buf, cfg, "tok"); err != nil {
		t.Fatal(err)
	}
	files, err := readNewc(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpioFile{}
	for _, f := range files {
		got[f.name] = f
		if f.ino < overlayIno {
			t.Errorf("%s: inode %d below the overlay's range", f.name, f.ino)
		}
	}
	if f := got["amqpha/config"]; f.data != "TOKEN=tok\nLOAD_MODULES=1\n" {
		t.Errorf("config %q", f.data)
	}
	if f := got["amqpha/run.sh"]; f.data != "export 'A=1'\nexec '/bin/probe' '-v'\n" {
		t.Errorf("run.sh %q", f.data)
	}
	if f := got["bin/probe"]; f.data != "#!/bin/sh\n" || f.mode != modeRegular|0o755 {
		t.Errorf("bin/probe %+v", f)
	}

	cfg.OnDemand = true
	cfg.Files["/x"] = filepath.Join(dir, "missing")
	if err := writeOverlay(&bytes.Buffer{}, cfg, "tok"); err == nil {
		t.Error("a missing host file: no error")
	}
}

// The base archive of the installed kernel is built once and then found in
// the cache. Skips where the VM's prerequisites are missing.
func TestBaseInitramfsCache(t *testing.T) {
	Require(t)
	k, err := FindKernel("", "")
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	mods := []string{"ip_vs_rr", "veth"}
	p1, err := baseInitramfs(cache, k, mods)
	if err != nil {
		t.Fatal(err)
	}
	fi1, err := os.Stat(p1)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := baseInitramfs(cache, k, mods)
	if err != nil || p2 != p1 {
		t.Fatalf("second build: %s, %v; want the cached %s", p2, err, p1)
	}
	if fi2, _ := os.Stat(p2); !fi2.ModTime().Equal(fi1.ModTime()) {
		t.Error("the cached archive was rewritten")
	}
	if p3, err := baseInitramfs(cache, k, []string{"veth"}); err != nil || p3 == p1 {
		t.Errorf("another module list: %s, %v; want another archive", p3, err)
	}

	b, err := os.ReadFile(p1)
	if err != nil {
		t.Fatal(err)
	}
	files, err := readNewc(b)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]cpioFile{}
	for _, f := range files {
		got[f.name] = f
	}
	for _, name := range []string{"init", "bin/busybox", "dev/console", "etc/passwd", "amqpha/modules",
		"lib/modules/" + k.Version + "/modules.dep", "lib/modules/" + k.Version + "/modules.alias"} {
		if _, ok := got[name]; !ok {
			t.Errorf("%s missing from the base archive", name)
		}
	}
	if got["dev/console"].mode != modeCharDev|0o600 || got["dev/console"].rdev != [2]uint32{5, 1} {
		t.Errorf("dev/console = %+v", got["dev/console"])
	}
	list := got["amqpha/modules"].data
	for _, m := range []string{"/ip_vs.ko", "/ip_vs_rr.ko", "/nf_conntrack.ko", "/veth.ko"} {
		if !strings.Contains(list, m+"\n") {
			t.Errorf("module list lacks %s:\n%s", m, list)
		}
	}
	if strings.Index(list, "/ip_vs.ko") > strings.Index(list, "/ip_vs_rr.ko") {
		t.Errorf("ip_vs_rr loads before ip_vs:\n%s", list)
	}
}

// The vmlinux extracted from the installed kernel boots through PVH.
func TestCachedVmlinux(t *testing.T) {
	Require(t)
	if testing.Short() {
		t.Skip("decompresses the kernel (seconds)")
	}
	k, err := FindKernel("", "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p, err := cachedVmlinux(defaultCacheDir(), k)
	if err != nil {
		t.Fatalf("no PVH vmlinux from %s: %v", k.Image, err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !hasPVHNote(b) {
		t.Errorf("%s has no PVH note", p)
	}
	t.Logf("%s (%d MB) in %v", p, len(b)>>20, time.Since(start))
}
