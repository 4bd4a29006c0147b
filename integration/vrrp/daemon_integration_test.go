//go:build integration

package vrrp

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/netns"
	"github.com/vishvananda/netlink"
)

// TestTrackScriptHandsOver: a failing vrrp_script lowers vipd's priority
// below keepalived's, keepalived preempts; the script recovers, vipd
// preempts back. Notify scripts see each transition, in order, with
// keepalived's arguments.
func TestTrackScriptHandsOver(t *testing.T) {
	r := newRig(t, false)
	dir := t.TempDir()
	flag := filepath.Join(dir, "healthy")
	events := filepath.Join(dir, "events")
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mc, bc := v2PASS.pair(r, false)
	mc.extra = fmt.Sprintf("    track_script {\n        healthy\n    }\n    notify \"/bin/sh -c 'echo \\\"$*\\\" >> %s' notify\"\n", events)
	conf := fmt.Sprintf("vrrp_script healthy {\n    script \"/usr/bin/test -e %s\"\n    interval 1\n    weight -60\n}\n", flag) + mc.String()
	start := time.Now()
	ma := startDirector(t, "vipd", r.a, conf)
	r.startProbe(t)
	r.waitHolder(t, "a", start, 15*time.Second)
	startDirector(t, "keepalived", r.b, bc.String())

	t0 := time.Now()
	if err := os.Remove(flag); err != nil {
		t.Fatal(err)
	}
	r.waitHolder(t, "b", t0, 15*time.Second)
	waitFor(t, "vipd to step down", 10*time.Second, func() bool {
		s := ma.status(t).Instances[0]
		return s.State == "BACKUP" && s.Priority == 90
	})

	t1 := time.Now()
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.waitHolder(t, "a", t1, 15*time.Second)
	waitFor(t, "keepalived to release the VIP", 10*time.Second, func() bool { return !holds(t, r.b, r.vip) })

	want := []string{"INSTANCE VI_1 BACKUP 150", "INSTANCE VI_1 MASTER 150", "INSTANCE VI_1 BACKUP 90", "INSTANCE VI_1 MASTER 150"}
	waitFor(t, "the notify script's lines", 10*time.Second, func() bool {
		b, _ := os.ReadFile(events)
		return strings.Count(string(b), "\n") >= len(want)
	})
	b, _ := os.ReadFile(events)
	if got := strings.Split(strings.TrimSpace(string(b)), "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("notify saw:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReloadKeepsTheVIP: SIGHUP with an unchanged instance (and a new one
// added) keeps the VIP answering without a single failed probe; a changed
// instance keeps its state too.
func TestReloadKeepsTheVIP(t *testing.T) {
	r := newRig(t, false)
	mc, _ := v2PASS.pair(r, false)
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(mc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := r.startVipdMaster(t, path)
	proc := d.proc
	removed := watchRemovals(t, r.a)

	second := mc
	second.vrid, second.vip = 61, "10.77.0.101/24"
	text := "# reloaded\n" + mc.String() + strings.Replace(second.String(), "VI_1", "VI_2", 1)
	text = strings.Replace(text, "global_defs {\n    router_id master_150\n}\n", "", 1) // one global_defs only
	if err := os.WriteFile(path, []byte("global_defs {\n    router_id master_150\n}\n"+text), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := proc.WaitOutput("configuration reloaded", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new instance VI_2 to hold its VIP", 15*time.Second, func() bool {
		s := d.status(t)
		return len(s.Instances) == 2 && s.Instances[1].State == "MASTER"
	})
	// Every probe that got an answer got it from a. A probe that timed
	// out (100 ms) is no evidence of a gap on a loaded machine: whether
	// the VIP ever left a's interface is checked at the end, from the
	// kernel's own address events.
	for _, a := range r.probe.Answers() {
		if !a.Sent.Before(t0) && a.Err == nil && a.From != "a" {
			t.Fatalf("the VIP answered from %s during the reload, at %v", a.From, a.Sent.Sub(t0))
		}
	}
	r.waitHolder(t, "a", time.Now(), 10*time.Second)
	if s := d.status(t).Instances[0]; s.Name != "VI_1" || s.State != "MASTER" {
		t.Fatalf("VI_1 after reload: %+v", s)
	}
	if !strings.Contains(proc.Output(), "kept=[VI_1]") {
		t.Errorf("VI_1 was not kept as it was:\n%s", proc.Output())
	}

	// A priority change keeps the instance's state, as keepalived does: it
	// stays master and advertises the new priority.
	changed := strings.Replace(text, "priority 150", "priority 140", 1)
	if err := os.WriteFile(path, []byte("global_defs {\n    router_id master_150\n}\n"+changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := proc.WaitOutput(`kept="[VI_1 VI_2]"`, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "VI_1 master at priority 140", 15*time.Second, func() bool {
		s := d.status(t).Instances[0]
		return s.State == "MASTER" && s.Priority == 140
	})

	// A VIP added, then removed again: the master puts it on and takes it
	// off, and never leaves MASTER.
	vip2 := netip.MustParseAddr("10.77.0.102")
	for k, edit := range []string{strings.Replace(changed, "10.77.0.100/24\n", "10.77.0.100/24\n        10.77.0.102/24\n", 1), changed} {
		if err := os.WriteFile(path, []byte("global_defs {\n    router_id master_150\n}\n"+edit), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := proc.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("10.77.0.102 held: %v", k == 0), 10*time.Second, func() bool { return holds(t, r.a, vip2) == (k == 0) })
		if !holds(t, r.a, r.vip) {
			t.Fatalf("edit %d: VI_1's first VIP is gone", k)
		}
	}
	if s := d.status(t).Instances[0]; s.State != "MASTER" || s.Counters.Transitions["MASTER"] != 1 {
		t.Fatalf("VI_1 after four reloads: %s, entered MASTER %d times; want once", s.State, s.Counters.Transitions["MASTER"])
	}
	// The kernel reports address removals in order: once 10.77.0.102's
	// (the last edit) is seen, every earlier one is too.
	waitFor(t, "the kernel's report of 10.77.0.102's removal", 10*time.Second, func() bool { return slices.Contains(removed(), vip2) })
	if got := removed(); slices.Contains(got, r.vip) {
		t.Fatalf("VI_1's VIP %v left the interface during the reloads (removals seen: %v)", r.vip, got)
	}
}

// watchRemovals records, from inside h, every address removed from one of
// h's interfaces (the kernel's RTM_DELADDR) until the test ends; the
// function returned lists them so far.
func watchRemovals(t *testing.T, h *netns.Host) func() []netip.Addr {
	t.Helper()
	ch := make(chan netlink.AddrUpdate, 256)
	done := make(chan struct{})
	var (
		mu      sync.Mutex
		removed []netip.Addr
		subErr  error
	)
	opts := netlink.AddrSubscribeOptions{ErrorCallback: func(err error) {
		mu.Lock()
		subErr = err
		mu.Unlock()
	}}
	if err := h.Do(func() error { return netlink.AddrSubscribeWithOptions(ch, done, opts) }); err != nil {
		t.Fatalf("address events of %s: %v", h.Name(), err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for u := range ch {
			if a, ok := netip.AddrFromSlice(u.LinkAddress.IP); ok && !u.NewAddr {
				mu.Lock()
				removed = append(removed, a.Unmap())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		wg.Wait()
	})
	return func() []netip.Addr {
		mu.Lock()
		defer mu.Unlock()
		if subErr != nil {
			t.Fatalf("address events of %s: %v", h.Name(), subErr)
		}
		return slices.Clone(removed)
	}
}

// TestRunsWithOnlyNetCapabilities: vipd as an unprivileged user holding
// only CAP_NET_ADMIN and CAP_NET_RAW (what vipd.service grants) becomes
// master, holds the VIP, and removes it on SIGTERM.
func TestRunsWithOnlyNetCapabilities(t *testing.T) {
	r := newRig(t, false)
	mc, _ := v2PASS.pair(r, false)
	// t.TempDir's parent is private to root: the unprivileged vipd could
	// not read the file there.
	dir, err := os.MkdirTemp("", "vipd-caps-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(mc.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	const caps = "-all,+net_admin,+net_raw"
	proc := r.a.Start(t, "setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
		"--inh-caps", caps, "--ambient-caps", caps, "--bounding-set", caps,
		vipdBin, "run", "-f", path, "-status", statusAddr)
	if err := proc.WaitOutput("state MASTER", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/" + strconv.Itoa(vipdPid(t, proc.Pid())) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Uid:\t65534", "CapEff:\t0000000000003000"} {
		if !strings.Contains(string(status), want) {
			t.Fatalf("vipd does not run with %q:\n%s", want, status)
		}
	}
	waitFor(t, "the VIP on a", 10*time.Second, func() bool { return holds(t, r.a, r.vip) })
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(10 * time.Second); err != nil {
		t.Fatalf("vipd did not exit on SIGTERM: %v\n%s", err, proc.Output())
	}
	if holds(t, r.a, r.vip) {
		t.Fatal("vipd left the VIP behind")
	}
	if strings.Contains(proc.Output(), "level=ERROR") {
		t.Errorf("errors while running with capabilities only:\n%s", proc.Output())
	}
}

// vipdPid is the pid of the process setpriv became (setpriv execs, so the
// pid is the same).
func vipdPid(t *testing.T, pid int) int {
	t.Helper()
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil || filepath.Base(exe) != "vipd" {
		t.Fatalf("pid %d is %q (%v), not vipd", pid, exe, err)
	}
	return pid
}

// TestIPv6VRRPv3: vipd and keepalived over IPv6 (VRRPv3, link-local
// sources, a link-local first VIP): failover both ways.
func TestIPv6VRRPv3(t *testing.T) {
	for _, kinds := range [][2]string{{"keepalived", "vipd"}, {"vipd", "keepalived"}} {
		t.Run(kinds[0]+"-master/"+kinds[1]+"-backup", func(t *testing.T) {
			r := newRig(t, true)
			mc := vconf{state: "MASTER", prio: 150, version: 3, advert: "0.1", vrid: 51,
				vip: "fe80::1:100/64\n        " + r.vip.String() + "/64"}
			bc := mc
			bc.state, bc.prio = "BACKUP", 100
			failoverAndBack(t, r, v3Fast, kinds[0], kinds[1], mc, bc)
		})
	}
}

// startVipdMaster runs vipd on host a with the file at path (status on
// statusAddr), starts the rig's probe and waits until a holds the VIP.
func (r *rig) startVipdMaster(t *testing.T, path string) *director {
	t.Helper()
	start := time.Now()
	proc := r.a.Start(t, vipdBin, "run", "-f", path, "-status", statusAddr)
	if err := proc.WaitOutput("vipd started", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	r.startProbe(t)
	r.waitHolder(t, "a", start, 15*time.Second)
	return &director{kind: "vipd", host: r.a, proc: proc}
}
