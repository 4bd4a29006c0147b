//go:build integration

package ipvs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/vm"
)

// TestVipdIPVSInVM boots Debian's kernel with qemu and runs the guest-side
// tests of this package in it, with a static vipd at /bin/vipd and the
// host's ipvsadm.
func TestVipdIPVSInVM(t *testing.T) {
	vm.Require(t)
	ipvsadm := hostProgram(t, "ipvsadm")
	start := time.Now()
	vipd := filepath.Join(t.TempDir(), "vipd")
	if err := vm.BuildStaticBinary("github.com/amqpha/amqpha/vipd", vipd); err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	res := vm.RunTest(t, ".", "^TestGuest", vm.Config{
		OnDemand: true, // vipd's modprobe loads IPVS, the kernel its schedulers
		Files:    map[string]string{guestVipd: vipd},
		Binaries: []string{ipvsadm},
		Timeout:  5 * time.Minute, // a bound for a hung guest; a run takes 15-20 s
	})
	t.Logf("vipd built in %v; VM boot %v, guest run %v", built.Round(time.Millisecond),
		res.Boot.Round(time.Millisecond), res.Duration.Round(time.Millisecond))
}

// hostProgram finds a host program for vm.Config.Binaries. A missing one
// skips the test, naming its Debian package, or fails it when CI=true.
func hostProgram(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	const hint = " is not installed (apt-get install ipvsadm; scripts/setup.sh installs it)"
	if os.Getenv("CI") == "true" {
		t.Fatal(name + hint + "; CI=true: prerequisites must be present")
	}
	t.Skip(name + hint)
	return ""
}
