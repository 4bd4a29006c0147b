package lvs_test

import (
	"net"
	"os"
	"testing"

	"github.com/amqpha/amqpha/vipd/lvs"
)

// TestKernel runs the reconciler against the kernel's IPVS through
// [lvs.Netlink]. It needs root and the ip_vs modules (with the scheduler
// modules loaded or loadable), so it runs only when VIPD_LVS_KERNEL=1: the
// qemu VM harness sets it and runs the test binary built with
// "go test -c ./vipd/lvs" as
//
//	VIPD_LVS_KERNEL=1 ./lvs.test -test.run '^TestKernel$' -test.v
//
// Asked to run, it fails (never skips) when IPVS is missing. It works in
// the caller's network namespace on documentation addresses (192.0.2.0/24,
// 198.51.100.0/24, 2001:db8::/32, fwmarks 7 and 8), leaves services of
// others alone, and removes what it added.
func TestKernel(t *testing.T) {
	if os.Getenv("VIPD_LVS_KERNEL") != "1" {
		t.Skip("set VIPD_LVS_KERNEL=1 to run against the kernel's IPVS (needs root and ip_vs; the VM harness does)")
	}
	k, err := lvs.NewNetlink("")
	if err != nil {
		t.Fatalf("NewNetlink: %v", err)
	}
	t.Cleanup(func() { k.Close() })

	lo, err := net.InterfaceByName("lo")
	kernelScenario(t, k, err == nil && lo.Flags&net.FlagUp != 0)
}
