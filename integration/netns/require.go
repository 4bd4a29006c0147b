package netns

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// keepalivedPaths are tried when keepalived is not on PATH (PATH of a
// non-login shell often lacks /usr/sbin).
var keepalivedPaths = []string{"/usr/sbin/keepalived", "/usr/local/sbin/keepalived"}

// Require skips t unless network namespaces can be built here: Linux, root
// and the ip command of iproute2. When the environment variable CI is "true"
// a missing prerequisite fails t instead: CI never skips. [New] calls it.
func Require(t testing.TB) {
	t.Helper()
	switch {
	case runtime.GOOS != "linux":
		missing(t, "network namespaces need Linux")
	case os.Geteuid() != 0:
		missing(t, "network namespaces need root; run the tests as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing(t, "the ip command (iproute2) is not installed")
	}
}

// RequireKeepalived is [Require] plus an installed keepalived, whose path it
// returns. [StartKeepalived] calls it.
func RequireKeepalived(t testing.TB) string {
	t.Helper()
	Require(t)
	if path, err := exec.LookPath("keepalived"); err == nil {
		return path
	}
	for _, path := range keepalivedPaths {
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path
		}
	}
	missing(t, "keepalived is not installed (apt-get install keepalived)")
	return ""
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("netns: %s (CI=true: prerequisites must be present)", why)
	}
	t.Skipf("netns: %s", why)
}
