package vm

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
//
// Exit status 0 alone is not a pass: the tests pattern selects are listed
// from the binary first (-test.list, run on the host, which shares the
// guest's architecture), a pattern that selects none fails, and the guest
// must print "--- PASS" for each of them and nothing skipped (a skip
// inside the guest means the scenario did not run) nor "no tests to run".
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
	want, err := listTests(t.Context(), bin, pattern)
	if err != nil {
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
	if err := checkGuestRun(want, res.Output); err != nil {
		t.Fatalf("vm: %s in the guest: %v (boot %v, total %v):\n%s",
			pattern, err, res.Boot.Round(1e7), res.Duration.Round(1e7), res.Output)
	}
	t.Logf("vm: %s passed in the guest (boot %v, total %v):\n%s",
		pattern, res.Boot.Round(1e7), res.Duration.Round(1e7), res.Output)
	return res
}

// listTests asks the test binary bin which top-level tests pattern selects.
// None is an error: a pattern that matches nothing would pass unseen.
func listTests(ctx context.Context, bin, pattern string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-test.list", pattern).Output()
	if err != nil {
		return nil, fmt.Errorf("vm: listing the tests %s selects in %s: %w", pattern, filepath.Base(bin), err)
	}
	var names []string
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "Test") && !strings.ContainsAny(line, " \t") {
			names = append(names, line)
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("vm: %s selects no test in %s", pattern, filepath.Base(bin))
	}
	return names, nil
}

// resultRE matches go test -v's verdict lines, subtests' included.
var resultRE = regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): (\S+)`)

// checkGuestRun checks the guest's go test -v output against the top-level
// tests that should have run: each passed, none (nor any subtest) skipped,
// and the binary did not report that nothing ran.
func checkGuestRun(want []string, output string) error {
	passed := make(map[string]bool, len(want))
	var errs []error
	for line := range strings.Lines(output) {
		line = strings.TrimRight(line, "\r\n")
		if strings.Contains(line, "no tests to run") {
			errs = append(errs, errors.New("the guest binary ran no test"))
		}
		m := resultRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		switch m[1] {
		case "PASS":
			passed[m[2]] = true
		case "SKIP":
			errs = append(errs, fmt.Errorf("%s skipped in the guest", m[2]))
		case "FAIL":
			errs = append(errs, fmt.Errorf("%s failed in the guest", m[2]))
		}
	}
	for _, name := range want {
		if !passed[name] {
			errs = append(errs, fmt.Errorf("no PASS line for %s", name))
		}
	}
	return errors.Join(errs...)
}
