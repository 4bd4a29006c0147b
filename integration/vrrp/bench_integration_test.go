//go:build integration

package vrrp

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/amqpha/amqpha/integration/netns"
)

// TestTakeoverFigures measures what BENCHMARKS.md reports: the time from
// the master's death to the VIP answering from the backup, with vipd and
// with keepalived as the backup, on the same rig, for v2 (1 s adverts) and
// v3 (100 ms adverts); and vipd's memory and CPU while master. It is a
// measurement, not a test: it runs only with AMQPHA_VRRP_BENCH=rounds
// (./run.sh bench sets it).
//
// The master is killed right after it sent an advert (the client watches
// the adverts), so every round measures a whole Master_Down_Interval and
// the rounds are comparable.
func TestTakeoverFigures(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("AMQPHA_VRRP_BENCH"))
	if rounds <= 0 {
		t.Skip("a measurement: set AMQPHA_VRRP_BENCH=rounds (./run.sh bench does)")
	}
	var table strings.Builder
	fmt.Fprintf(&table, "| adverts | backup | Master_Down_Interval | median | min | max | rounds |\n|---|---|---|---|---|---|---|\n")
	for _, p := range []protocol{v2PASS, v3Fast} {
		medians := map[string]time.Duration{}
		for _, backup := range []string{"keepalived", "vipd"} {
			var took []time.Duration
			for i := 0; i < rounds; i++ {
				took = append(took, takeoverOnce(t, p, backup))
			}
			slices.Sort(took)
			med := took[len(took)/2]
			medians[backup] = med
			fmt.Fprintf(&table, "| %s | %s | %v | %v | %v | %v | %d |\n", p.name, backup,
				masterDown(p.version, p.every, 100).Round(time.Millisecond), med.Round(time.Millisecond),
				took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), rounds)
		}
		fmt.Fprintf(&table, "| %s | vipd ÷ keepalived | | %.3f | | | |\n", p.name, float64(medians["vipd"])/float64(medians["keepalived"]))
	}
	t.Logf("takeover, master killed → VIP answers from the backup (client probes every 10 ms):\n%s", table.String())
	t.Logf("resources while master:\n%s", resourcesWhileMaster(t))
}

// takeoverOnce builds a fresh rig with keepalived as master, kills it just
// after an advert, and returns how long the VIP took to answer from the
// backup.
func takeoverOnce(t *testing.T, p protocol, backupKind string) time.Duration {
	var took time.Duration
	t.Run(p.name+"/"+backupKind, func(t *testing.T) {
		r := newRig(t, false)
		mc, bc := p.pair(r, false)
		r.settle(t, p, "keepalived", backupKind, mc, bc)
		adverts := watchAdverts(t, r.client, netip.MustParseAddr("10.77.0.1"))
		select {
		case <-adverts:
		case <-time.After(5 * time.Second):
			t.Fatal("the client sees no advert from the master")
		}
		t0 := time.Now()
		if err := r.a.Crash(); err != nil {
			t.Fatal(err)
		}
		took = r.waitHolder(t, "b", t0, 10*time.Second).Sub(t0)
	})
	return took
}

// watchAdverts reports each VRRP advert from src that host h receives.
func watchAdverts(t *testing.T, h *netns.Host, src netip.Addr) <-chan time.Time {
	t.Helper()
	var conn net.PacketConn
	err := h.Do(func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName("eth0")
		if err == nil {
			err = ipv4.NewPacketConn(c).JoinGroup(ifi, &net.IPAddr{IP: net.IPv4(224, 0, 0, 18)})
		}
		if err != nil {
			c.Close()
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		t.Fatalf("watching adverts on %s: %v", h.Name(), err)
	}
	out := make(chan time.Time, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if a, ok := from.(*net.IPAddr); ok && a.IP.Equal(src.AsSlice()) {
				select {
				case out <- time.Now():
				default:
				}
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return out
}

// resourcesWhileMaster runs vipd and keepalived each as master with 100 ms
// adverts for 10 s and reports resident memory and CPU time.
func resourcesWhileMaster(t *testing.T) string {
	var b strings.Builder
	fmt.Fprintf(&b, "| daemon | adverts | RSS (all processes) | CPU over 10 s |\n|---|---|---|---|\n")
	for _, kind := range []string{"keepalived", "vipd"} {
		t.Run("resources/"+kind, func(t *testing.T) {
			r := newRig(t, false)
			mc, _ := v3Fast.pair(r, false)
			start := time.Now()
			d := startDirector(t, kind, r.a, mc.String())
			r.startProbe(t)
			r.waitHolder(t, "a", start, 15*time.Second)
			r.probe.Stop()
			pids, err := r.a.Pids()
			if err != nil {
				t.Fatal(err)
			}
			cpu0 := cpuTime(t, pids)
			time.Sleep(10 * time.Second) // the measurement window itself
			cpu := cpuTime(t, pids) - cpu0
			fmt.Fprintf(&b, "| %s | 100 ms (v3) | %.1f MiB | %v (%.2f %%) |\n", d.kind, float64(rss(t, pids))/(1<<20), cpu.Round(time.Millisecond), 100*cpu.Seconds()/10)
		})
	}
	return b.String()
}

func procField(t *testing.T, pid int, file string) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), file))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rss sums VmRSS of pids, in bytes.
func rss(t *testing.T, pids []int) int64 {
	var total int64
	for _, pid := range pids {
		for _, line := range strings.Split(procField(t, pid, "status"), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				total += kb << 10
			}
		}
	}
	return total
}

// cpuTime sums user and system time of pids (clock ticks of 10 ms).
func cpuTime(t *testing.T, pids []int) time.Duration {
	var ticks int64
	for _, pid := range pids {
		s := procField(t, pid, "stat")
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + k
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
