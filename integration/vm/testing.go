package vm

import (
	"path/filepath"
	"strings"
	"testing"
)

// RunTest runs tests of package pkg inside a VM and fails t unless they
// pass. It builds pkg's test binary with [BuildStaticTestBinary] and the
// build tags tags, puts it at /bin/<name>.test in the guest and runs it with
// -test.run=pattern -test.v -test.count=1 and -test.timeout at three
// quarters of cfg.Timeout (so that a hung guest test panics with its
// goroutines on the console before qemu is killed), followed by cfg.Command
// as extra arguments (e.g. -test.short, or flags of the package's own).
// pkg is an import path or a directory such as "." (the package under
// test). On failure t shows the guest's output, or the console if the guest
// did not finish; on success the output is logged. The guest-side tests
// tell they are in the guest with [InGuest]. RunTest calls [Require] first,
// blocks until the VM is off and returns its result.
func RunTest(t testing.TB, pkg, pattern string, cfg Config, tags ...string) *Result {
	t.Helper()
	Require(t)
	c := cfg.withDefaults()
	name := pkg
	if strings.HasPrefix(pkg, ".") {
		if abs, err := filepath.Abs(pkg); err == nil {
			name = abs
		}
	}
	name = filepath.Base(name)
	if name == "." || name == "/" || name == "busybox" {
		name = "guest"
	}
	bin := filepath.Join(t.TempDir(), name+".test")
	if err := BuildStaticTestBinary(pkg, bin, tags...); err != nil {
		t.Fatal(err)
	}
	guestBin := "/bin/" + name + ".test"
	files := make(map[string]string, len(c.Files)+1)
	for g, h := range c.Files {
		files[g] = h
	}
	files[guestBin] = bin
	c.Files = files
	c.Command = append([]string{guestBin,
		"-test.run=" + pattern, "-test.v", "-test.count=1",
		"-test.timeout=" + (c.Timeout * 3 / 4).String(),
	}, c.Command...)

	res, err := Run(t.Context(), c)
	if err != nil {
		t.Fatalf("vm: %s in the guest: %v", pattern, err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("vm: %s failed in the guest (exit status %d, boot %v, total %v):\n%s",
			pattern, res.ExitCode, res.Boot.Round(1e7), res.Duration.Round(1e7), res.Output)
	}
	t.Logf("vm: %s passed in the guest (boot %v, total %v):\n%s",
		pattern, res.Boot.Round(1e7), res.Duration.Round(1e7), res.Output)
	return res
}
