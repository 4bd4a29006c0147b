//go:build integration

package ipvs_test

import (
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/vm"
)

// TestLVSKernelInVM runs vipd/lvs's TestKernel (every kind of service:
// TCP, UDP, fwmark, IPv6, schedulers, drift, foreign services) against the
// IPVS of Debian's kernel in the VM: the host has no ip_vs, and without
// this the kernel scenario would only ever meet the fake kernel.
func TestLVSKernelInVM(t *testing.T) {
	vm.Require(t)
	res := vm.RunTest(t, "github.com/amqpha/amqpha/vipd/lvs", "^TestKernel$", vm.Config{
		OnDemand: true, // the kernel loads ip_vs and its schedulers on demand
		Env:      []string{"VIPD_LVS_KERNEL=1"},
		Timeout:  3 * time.Minute, // a bound for a hung guest; a run takes seconds
	}, "integration")
	t.Logf("VM boot %v, guest run %v", res.Boot.Round(time.Millisecond), res.Duration.Round(time.Millisecond))
}
