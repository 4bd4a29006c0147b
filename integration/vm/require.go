package vm

import (
	"errors"
	"os"
	"os/exec"
	"testing"
)

// guestEnv is set to "1" by the guest's /init for everything it runs.
const guestEnv = "AMQPHA_VM"

// InGuest reports whether the calling program runs inside a VM started by
// [Run]. A test binary shipped into the guest uses it to tell its guest-side
// tests from its host-side ones.
func InGuest() bool { return os.Getenv(guestEnv) == "1" }

// Check reports what [Run] and [BuildStaticTestBinary] need and the host
// lacks: qemu-system-x86_64, a Debian kernel with its modules, a static
// busybox and the go command. The error is a join of [*MissingError]s; nil
// means all is there. Root is not needed: qemu runs without KVM and the
// initramfs is written as a file. Safe for concurrent use.
func Check() error {
	var errs []error
	if _, err := exec.LookPath(qemuBinary); err != nil {
		errs = append(errs, &MissingError{What: qemuBinary, Hint: "apt-get install --no-install-recommends qemu-system-x86"})
	}
	if k, err := FindKernel("", ""); err != nil {
		errs = append(errs, err)
	} else if _, err := loadModuleDB(k.ModulesDir); err != nil {
		errs = append(errs, err)
	}
	if static, err := isStatic(busyboxPath); err != nil || !static {
		errs = append(errs, &MissingError{What: "a static " + busyboxPath, Hint: "apt-get install busybox-static"})
	}
	if _, err := goTool(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Require skips t when [Check] finds something missing, naming it. When the
// environment variable CI is "true" it fails t instead: CI never skips.
func Require(t testing.TB) {
	t.Helper()
	err := Check()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v (CI=true: prerequisites must be present; run scripts/setup.sh)", err)
	}
	t.Skipf("%v (run scripts/setup.sh)", err)
}
