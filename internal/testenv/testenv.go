// Package testenv holds what several packages' tests need from the machine
// they run on: the repository's root, the source documents' configurations,
// a fresh network namespace. Under CI (CI=true) a missing prerequisite fails
// the test; elsewhere the test is skipped with a message naming it.
package testenv

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// InCI reports whether the tests run in CI, where nothing may be skipped.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing reports a prerequisite the test lacks: it fails t under CI and
// skips it elsewhere. The message should name what is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// RepoRoot is the nearest directory above the test's that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = up
	}
}

// SeedDir is where the source documents' keepalived.conf files are:
// <repo root>/../shared/seeds/configs.
func SeedDir(t testing.TB) string {
	t.Helper()
	seeds := filepath.Join(RepoRoot(t), "..", "shared", "seeds", "configs")
	if fi, err := os.Stat(seeds); err != nil || !fi.IsDir() {
		Missing(t, "the seeds' configurations are missing at %s: %v", seeds, err)
	}
	return seeds
}

// InFreshNetns runs fn on a locked thread inside a new network namespace
// with lo up: addresses, links and /proc/sys/net that fn touches are the
// namespace's own, and vanish with it when fn returns. It needs root.
func InFreshNetns(t *testing.T, fn func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root to create a network namespace (CI runs as root)")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The thread stays locked unless the namespace is restored: the
		// runtime then ends it with the goroutine instead of reusing it.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Error(err)
			return
		}
		defer orig.Close()
		fresh, err := netns.New()
		if err != nil {
			t.Error(err)
			return
		}
		defer fresh.Close()
		defer func() {
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
		}()
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			t.Error(err)
			return
		}
		fn()
	}()
	<-done
}
