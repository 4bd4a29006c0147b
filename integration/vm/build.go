package vm

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// BuildStaticTestBinary compiles the tests of package pkg (an import path or
// a directory such as ".") into the executable out, statically linked
// (CGO_ENABLED=0, linux/amd64, symbols stripped) so that it runs in the
// guest, which has no C library. tags are build tags, e.g. "integration".
// Run the result in the guest with -test.run and -test.v as any test binary.
// It blocks for the build; builds are cached by the go command. Safe for
// concurrent use with distinct out paths.
func BuildStaticTestBinary(pkg, out string, tags ...string) error {
	return goBuild([]string{"test", "-c"}, pkg, out, tags)
}

// BuildStaticBinary compiles the main package pkg into the executable out,
// statically linked like [BuildStaticTestBinary]; for example vipd itself
// for [Config.Files].
func BuildStaticBinary(pkg, out string, tags ...string) error {
	return goBuild([]string{"build"}, pkg, out, tags)
}

func goBuild(verb []string, pkg, out string, tags []string) error {
	goCmd, err := goTool()
	if err != nil {
		return err
	}
	args := append(verb, "-o", out, "-trimpath", "-ldflags=-s -w")
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	// No "--" before pkg: go test takes what follows it as the test
	// binary's arguments and would build the current directory instead.
	if pkg == "" || strings.HasPrefix(pkg, "-") {
		return fmt.Errorf("vm: %q is not a package", pkg)
	}
	args = append(args, pkg)
	cmd := exec.Command(goCmd, args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("vm: go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	static, err := isStatic(out)
	if err != nil {
		return fmt.Errorf("vm: %s: %w", out, err)
	}
	if !static {
		return fmt.Errorf("vm: %s is dynamically linked; the guest has no C library", out)
	}
	return nil
}

// goTool finds the go command: on PATH (go test puts its own GOROOT/bin
// first), else in /usr/local/go where scripts/setup.sh expects it.
func goTool() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	const fallback = "/usr/local/go/bin/go"
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", &MissingError{What: "the go command", Hint: "install Go in /usr/local/go"}
}
