package vm_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/vm"
)

// Run a shell command in the VM and read its output and exit status.
func ExampleRun() {
	res, err := vm.Run(context.Background(), vm.Config{
		Command: []string{"sh", "-c", "cat /proc/net/ip_vs; exit 3"},
		Timeout: time.Minute,
	})
	if err != nil {
		fmt.Println(err) // a *vm.GuestError carries the console
		return
	}
	fmt.Printf("exit %d after %v of boot:\n%s", res.ExitCode, res.Boot, res.Output)
}

// Run the guest half of a package's tests in the VM: a host-side test boots
// it, the guest-side test skips everywhere else.
func ExampleRunTest() {
	var t *testing.T // the host-side test's

	vm.RunTest(t, ".", "^TestGuestIPVS$", vm.Config{
		OnDemand: true,                          // modprobe loads IPVS in the guest
		Binaries: []string{"/usr/sbin/ipvsadm"}, // with its shared libraries
	})
}

// Ship vipd and its configuration into the VM and run it there.
func ExampleBuildStaticBinary() {
	var t *testing.T // the host-side test's

	bin := filepath.Join(t.TempDir(), "vipd")
	if err := vm.BuildStaticBinary("github.com/amqpha/amqpha/vipd", bin); err != nil {
		t.Fatal(err)
	}
	res, err := vm.Run(t.Context(), vm.Config{
		Files:   map[string]string{"/bin/vipd": bin, "/etc/vipd/vipd.conf": "testdata/vipd.conf"},
		Command: []string{"vipd", "check", "-f", "/etc/vipd/vipd.conf"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("vipd failed in the VM:\n%s", res.Output)
	}
}
