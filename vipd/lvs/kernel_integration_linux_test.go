//go:build integration

package lvs_test

import (
	"net"
	"os"
	"testing"

	"github.com/amqpha/amqpha/vipd/lvs"
)

// TestKernel runs the reconciler against the kernel's IPVS through
// [lvs.Netlink]. It needs root and the ip_vs modules (with the scheduler
// modules loaded or loadable), which this project's hosts do not have, so
// it runs inside the qemu VM: integration/ipvs TestLVSKernelInVM builds
// this package's test binary with the integration tag and runs it there as
//
//	VIPD_LVS_KERNEL=1 ./lvs.test -test.run '^TestKernel$' -test.v
//
// and requires its PASS line. Asked to run, it fails (never skips) when
// IPVS is missing; outside the VM it skips, and under CI=true it fails
// instead, as a skipped kernel test is a kernel path nobody checked. It
// works in the caller's network namespace on documentation addresses
// (192.0.2.0/24, 198.51.100.0/24, 2001:db8::/32, fwmarks 7 and 8), leaves
// services of others alone, and removes what it added.
func TestKernel(t *testing.T) {
	if os.Getenv("VIPD_LVS_KERNEL") != "1" {
		const why = "runs against the kernel's IPVS with VIPD_LVS_KERNEL=1 (needs root and ip_vs; integration/ipvs TestLVSKernelInVM runs it in the VM)"
		if os.Getenv("CI") == "true" {
			t.Fatal(why + "; CI=true: a skipped kernel test is a failure")
		}
		t.Skip(why)
	}
	k, err := lvs.NewNetlink("")
	if err != nil {
		t.Fatalf("NewNetlink: %v", err)
	}
	t.Cleanup(func() { k.Close() })

	lo, err := net.InterfaceByName("lo")
	kernelScenario(t, k, err == nil && lo.Flags&net.FlagUp != 0)
}
