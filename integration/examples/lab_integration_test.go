//go:build integration

package examples

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/clustertest"
)

// labTimeout bounds one run of examples/vipd/lab.sh -s, which takes about
// 30 s (most of it the start of its own RabbitMQ cluster).
const labTimeout = 3 * time.Minute

// The vipd lab (examples/vipd/lab.sh, short mode): two directors running
// vipd and HAProxy in network namespaces, a client publishing through the
// VIP, director 1 dying and coming back. The report must show the VIP
// moving from director 1 to director 2, messages confirmed and none lost;
// afterwards nothing of the lab may be left: no amqlab-* namespace, no
// amqlab* link, none of the processes it started, none of its directories.
//
// The lab starts its own cluster (it needs one listening on its bridge);
// the package's shared cluster is not used.
func TestVipdLab(t *testing.T) {
	requireLab(t)
	script, err := filepath.Abs("../../examples/vipd/lab.sh")
	if err != nil {
		t.Fatal(err)
	}
	if left := labLeftovers(t); len(left) > 0 {
		t.Fatalf("lab leftovers before the run (another lab running, or one killed; %s -c removes them): %s",
			script, strings.Join(left, ", "))
	}

	ctx, cancel := context.WithTimeout(context.Background(), labTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "-s")
	// On timeout the script gets SIGTERM, so that its trap still cleans up.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(goTool())+":"+os.Getenv("PATH"))
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	began := time.Now()
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	w.Close()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(r)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	var out []string
	deadline := time.After(labTimeout + 30*time.Second)
	for reading := true; reading; {
		select {
		case l, ok := <-lines:
			if !ok {
				reading = false
				break
			}
			t.Logf("lab: %s", l)
			out = append(out, l)
		case <-deadline:
			// Something the lab started still holds its output open.
			r.Close()
			for range lines {
			}
			t.Fatalf("the lab's output did not end within %v", labTimeout+30*time.Second)
		}
	}
	r.Close()
	waitErr := cmd.Wait()
	took := time.Since(began)
	text := strings.Join(out, "\n")

	var exit *exec.ExitError
	if errors.As(waitErr, &exit) && exit.ExitCode() == 3 && !clustertest.InCI() {
		t.Skipf("skipping: the lab lacks a prerequisite:\n%s", text)
	}
	if waitErr != nil {
		t.Errorf("lab.sh -s: %v (after %v)", waitErr, took.Round(time.Second))
	}
	t.Logf("lab.sh -s took %v", took.Round(100*time.Millisecond))

	report := func(label string) string {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(label) + `\s+(.*)$`).FindStringSubmatch(text)
		if m == nil {
			t.Errorf("the report lacks %q", label)
			return ""
		}
		return m[1]
	}
	number := func(label string) int {
		n, err := strconv.Atoi(report(label))
		if err != nil {
			t.Errorf("%s: %v", label, err)
			return -1
		}
		return n
	}
	if got := report("VIP before the kill:"); got != "amqlab-d1" {
		t.Errorf("VIP before the kill on %q, want amqlab-d1", got)
	}
	if got := report("VIP after the kill:"); !strings.HasPrefix(got, "amqlab-d2 ") {
		t.Errorf("VIP after the kill on %q, want amqlab-d2", got)
	}
	if n := number("confirmed:"); n <= 0 {
		t.Errorf("confirmed %d, want some", n)
	}
	if n := number("lost:"); n != 0 {
		t.Errorf("lost %d confirmed messages, want 0", n)
	}
	t.Logf("takeover: VIP %s; client outage %s", report("VIP after the kill:"), report("client outage on takeover:"))
	// The AMQP user's password (32 hex digits) is never printed.
	if pw := regexp.MustCompile(`\b[0-9a-f]{32}\b`).FindString(text); pw != "" {
		t.Errorf("the lab printed something like a password: %s", pw)
	}

	// Nothing of the lab is left.
	if left := labLeftovers(t); len(left) > 0 {
		t.Errorf("left behind: %s", strings.Join(left, ", "))
	}
	var dirs []string
	for _, re := range []string{`lab files in (\S+)`, `cluster data in ([^)\s]+)`} {
		m := regexp.MustCompile(re).FindStringSubmatch(text)
		if m == nil {
			t.Errorf("the lab did not print %q", re)
			continue
		}
		dirs = append(dirs, m[1])
		if _, err := os.Stat(m[1]); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists (stat: %v)", m[1], err)
		}
	}
	for _, m := range regexp.MustCompile(`\(pid (\d+)\)`).FindAllStringSubmatch(text, -1) {
		pid, _ := strconv.Atoi(m[1])
		if cmdline, ok := liveCmdline(pid); ok {
			t.Errorf("process %d the lab started still runs: %s", pid, cmdline)
		}
	}
	// RabbitMQ, epmd and the cluster's watchdog name the cluster's
	// directory on their command lines; the lab's own programs its.
	if len(dirs) > 0 {
		for _, p := range processesMentioning(t, dirs...) {
			t.Errorf("a process of the lab still runs: %s", p)
		}
	}
}

// requireLab skips the test (fails it under CI) unless the lab can run:
// root, and the commands it uses.
func requireLab(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, c := range []string{"bash", "ip", "haproxy", "ss", "flock", "sysctl", "timeout"} {
		if _, err := exec.LookPath(c); err != nil {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "the vipd lab needs " + strings.Join(missing, ", ") + " (scripts/setup.sh installs the packages)"
	if clustertest.InCI() {
		t.Fatal(msg)
	}
	t.Skip("skipping: " + msg)
}

// labLeftovers lists the lab's namespaces and links that exist now.
func labLeftovers(t *testing.T) []string {
	t.Helper()
	var left []string
	ns, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	for _, l := range strings.Split(string(ns), "\n") {
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(f[0], "amqlab") {
			left = append(left, "namespace "+f[0])
		}
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link show: %v", err)
	}
	for _, l := range strings.Split(string(links), "\n") {
		f := strings.SplitN(l, ": ", 3)
		if len(f) < 2 {
			continue
		}
		name, _, _ := strings.Cut(f[1], "@")
		if strings.HasPrefix(name, "amqlab") {
			left = append(left, "link "+name)
		}
	}
	return left
}

// liveCmdline returns the command line of process pid if it runs (and is
// not a zombie).
func liveCmdline(pid int) (string, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return "", false
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")), true
}

// processesMentioning lists the running processes whose command line
// contains one of words.
func processesMentioning(t *testing.T, words ...string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, ok := liveCmdline(pid)
		if !ok {
			continue
		}
		for _, w := range words {
			// The directory itself or a path under it, not a longer name.
			if c := cmdline + " "; strings.Contains(c, w+"/") || strings.Contains(c, w+" ") {
				found = append(found, fmt.Sprintf("%d %s", pid, cmdline))
				break
			}
		}
	}
	return found
}
