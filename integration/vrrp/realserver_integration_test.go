//go:build integration

package vrrp

import (
	"context"
	"errors"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestRealserverCommand runs `vipd realserver` as an operator would on a
// DR real server (a fresh namespace stands in for the host): start puts
// the VIP on lo and sets the ARP sysctls, status says ready (exit 0), stop
// puts everything back as it was, status says not ready (exit 3).
func TestRealserverCommand(t *testing.T) {
	r := newRig(t, false)
	h := r.b
	state := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vipd := func(action string) (string, int) {
		out, err := h.Exec(ctx, vipdBin, "realserver", "--vip", "10.77.0.100", "--state-dir", state, action)
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return string(out), exit.ExitCode()
		}
		if err != nil {
			t.Fatalf("vipd realserver %s: %v\n%s", action, err, out)
		}
		return string(out), 0
	}
	sysctl := func(key string) string {
		out, err := h.Exec(ctx, "cat", "/proc/sys/net/ipv4/conf/"+key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return strings.TrimSpace(string(out))
	}
	keys := []string{"lo/arp_ignore", "lo/arp_announce", "all/arp_ignore", "all/arp_announce"}
	before := map[string]string{}
	for _, k := range keys {
		before[k] = sysctl(k)
	}
	vip := netip.MustParseAddr("10.77.0.100")

	if out, code := vipd("status"); code != 3 {
		t.Fatalf("status before start: exit %d, want 3\n%s", code, out)
	}
	if out, code := vipd("start"); code != 0 {
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	if has, err := h.HasAddr("lo", vip); err != nil || !has {
		t.Fatalf("the VIP is not on lo after start (%v)", err)
	}
	if has, _ := h.HasAddr("eth0", vip); has {
		t.Fatal("start put the VIP on eth0")
	}
	for k, want := range map[string]string{"lo/arp_ignore": "1", "lo/arp_announce": "2", "all/arp_ignore": "1", "all/arp_announce": "2"} {
		if got := sysctl(k); got != want {
			t.Errorf("after start %s = %s, want %s", k, got, want)
		}
	}
	if out, code := vipd("status"); code != 0 || !strings.Contains(out, `"arp_ready":true`) {
		t.Fatalf("status after start: exit %d\n%s", code, out)
	}
	if out, code := vipd("stop"); code != 0 {
		t.Fatalf("stop: exit %d\n%s", code, out)
	}
	if has, _ := h.HasAddr("lo", vip); has {
		t.Fatal("the VIP is still on lo after stop")
	}
	for _, k := range keys {
		if got := sysctl(k); got != before[k] {
			t.Errorf("after stop %s = %s, was %s before start", k, got, before[k])
		}
	}
	if out, code := vipd("status"); code != 3 {
		t.Fatalf("status after stop: exit %d, want 3\n%s", code, out)
	}
}
