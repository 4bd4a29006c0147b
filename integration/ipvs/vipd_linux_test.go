package ipvs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemon is a vipd process in the director's (root) namespace.
type daemon struct {
	cmd    *exec.Cmd
	log    *syncBuffer
	exited chan struct{}
	err    error // of Wait, once exited is closed
}

// startVipd starts `vipd args...`. In t.Cleanup a vipd still running is
// killed (and waited for), and its log is shown if t failed.
func startVipd(t *testing.T, args ...string) *daemon {
	t.Helper()
	d := &daemon{log: &syncBuffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(guestVipd, args...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
		if t.Failed() {
			t.Logf("vipd %s log:\n%s", strings.Join(args, " "), d.log.String())
		}
	})
	return d
}

func (d *daemon) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to vipd: %v", sig, err)
	}
}

// running fails t if vipd has exited.
func (d *daemon) running(t *testing.T) {
	t.Helper()
	select {
	case <-d.exited:
		t.Fatalf("vipd exited: %v", d.err)
	default:
	}
}

// wait waits up to timeout for vipd to exit and returns how it ended.
func (d *daemon) wait(timeout time.Duration) error {
	select {
	case <-d.exited:
		return d.err
	case <-time.After(timeout):
		return fmt.Errorf("vipd still running after %v", timeout)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// writeFile writes text to path through a rename, so that a reload never
// reads half of it.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// readKernel reads the kernel's IPVS table.
func readKernel() (table, error) {
	b, err := os.ReadFile("/proc/net/ip_vs")
	if err != nil {
		return nil, err
	}
	return parseTable(string(b))
}

// waitTable polls the kernel's table every interval until cond holds and
// returns the table and how long it took; after timeout it fails t with
// the last table read.
func waitTable(t *testing.T, what string, interval, timeout time.Duration, cond func(table) bool) (table, time.Duration) {
	t.Helper()
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var (
		last table
		err  error
	)
	for {
		if last, err = readKernel(); err == nil && cond(last) {
			return last, time.Since(start)
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("%s: not within %v (last error %v); IPVS table:\n%s", what, timeout, err, last)
		}
	}
}

// vipdStatus is what the test reads of `vipd status`.
type vipdStatus struct {
	Instances []struct {
		Name  string   `json:"name"`
		State string   `json:"state"`
		VIPs  []string `json:"virtual_ipaddress"`
	} `json:"instances"`
	IPVS *struct {
		Applied        time.Time `json:"applied"`
		Error          string    `json:"error"`
		Changes        uint64    `json:"changes"`
		Drifts         uint64    `json:"drifts_repaired"`
		VirtualServers []struct {
			Service     string `json:"service"`
			Scheduler   string `json:"scheduler"`
			RealServers []struct {
				Address  string `json:"address"`
				State    string `json:"state"`
				Weight   int    `json:"weight"`
				InTable  bool   `json:"in_table"`
				Active   int    `json:"active_connections"`
				Inactive int    `json:"inactive_connections"`
				Total    uint64 `json:"connections_total"`
				Checks   []struct {
					Name  string `json:"name"`
					State string `json:"state"`
					Error string `json:"error"`
				} `json:"checks"`
			} `json:"real_servers"`
		} `json:"virtual_servers"`
	} `json:"ipvs"`
}

// realServers gives each real server's line of the status, by service and
// address, e.g. "10.30.0.100:5672 10.20.1.2:5672" -> "down weight 1 in_table false".
func (s *vipdStatus) realServers() map[string]string {
	out := map[string]string{}
	if s.IPVS == nil {
		return out
	}
	for _, vs := range s.IPVS.VirtualServers {
		for _, rs := range vs.RealServers {
			out[vs.Service+" "+rs.Address] = fmt.Sprintf("%s weight %d in_table %t", rs.State, rs.Weight, rs.InTable)
		}
	}
	return out
}

// fetchStatus runs `vipd status` against addr and decodes its answer.
func fetchStatus(t *testing.T, addr string) (*vipdStatus, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, guestVipd, "status", "-status", addr).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("vipd status: %v: %s", err, stderr)
	}
	var s vipdStatus
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("vipd status: %v:\n%s", err, out)
	}
	return &s, string(out)
}

// ipvsadm runs ipvsadm with args and fails t unless it succeeds.
func ipvsadm(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ipvsadm", args...).CombinedOutput(); err != nil {
		t.Fatalf("ipvsadm %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
