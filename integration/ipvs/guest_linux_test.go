package ipvs_test

// The guest side of TestVipdIPVSInVM: these tests run inside the VM, as
// root, on the Debian kernel with IPVS, and skip anywhere else.

import (
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/vm"
)

func requireGuest(t *testing.T) {
	t.Helper()
	if !vm.InGuest() {
		t.Skip("runs inside the VM that TestVipdIPVSInVM boots (go test -tags integration)")
	}
}

const (
	amqpPort   = 5672  // NAT, rr, TCP_CHECK
	mgmtPort   = 15672 // DR, wrr 1:3, TCP_CHECK, inhibit_on_failure on rs1
	stickyPort = 5671  // NAT, rr, persistence_timeout 50, no checks
	statusAddr = "127.0.0.1:9650"

	// Under emulation a poll of the table takes milliseconds; the bounds
	// are for a loaded 2-core host, not expectations.
	poll        = 50 * time.Millisecond
	healthBound = 30 * time.Second
	driftBound  = 30 * time.Second
)

// checkBlock is the TCP_CHECK of every checked real server: short, as
// emulation is slow. A refused connection is noticed after the retry:
// about delay_before_retry later.
const checkBlock = `        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 0.2
        }
`

// rs1Notify are the notify_up and notify_down of rs1's AMQP real server:
// each appends a line to rs1NotifyLog.
const (
	rs1NotifyLog = "/tmp/rs1-notify"
	rs1Notify    = `        notify_up "/bin/busybox sh -c 'echo up >> ` + rs1NotifyLog + `'"
        notify_down "/bin/busybox sh -c 'echo down >> ` + rs1NotifyLog + `'"
`
)

// lastNotify is the last line rs1's notify scripts wrote.
func lastNotify() string {
	b, _ := os.ReadFile(rs1NotifyLog)
	lines := strings.Fields(string(b))
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

// config is the director's keepalived.conf: the seeds' shape (one VRRP
// instance, an AMQP and a management virtual server) with the lab's
// addresses, plus a persistent service.
func (l *lab) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, `global_defs {
    router_id director1
}
vrrp_instance VI_1 {
    state MASTER
    interface %s
    virtual_router_id 51
    priority 150
    advert_int 1
    virtual_ipaddress {
        %s
    }
}
`, bridgeName, vipAddr)
	fmt.Fprintf(&b, "virtual_server %s %d {\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n", vipAddr, amqpPort)
	for i, s := range l.servers {
		notify := ""
		if i == 0 {
			notify = rs1Notify
		}
		fmt.Fprintf(&b, "    real_server %s %d {\n        weight 1\n%s%s    }\n", s.nat, amqpPort, notify, checkBlock)
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, "virtual_server %s %d {\n    delay_loop 1\n    lb_algo wrr\n    lb_kind DR\n    protocol TCP\n", vipAddr, mgmtPort)
	fmt.Fprintf(&b, "    real_server %s %d {\n        weight 1\n        inhibit_on_failure\n%s    }\n", l.servers[0].lan, mgmtPort, checkBlock)
	fmt.Fprintf(&b, "    real_server %s %d {\n        weight 3\n%s    }\n", l.servers[1].lan, mgmtPort, checkBlock)
	b.WriteString("}\n")
	fmt.Fprintf(&b, "virtual_server %s %d {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    persistence_timeout 50\n", vipAddr, stickyPort)
	for _, s := range l.servers {
		fmt.Fprintf(&b, "    real_server %s %d {\n        weight 1\n    }\n", s.nat, amqpPort)
	}
	b.WriteString("}\n")
	return b.String()
}

func svcKey(port int) string { return fmt.Sprintf("TCP %s:%d", vipAddr, port) }

func hostPort(a fmt.Stringer, port int) string {
	return net.JoinHostPort(a.String(), strconv.Itoa(port))
}

// wanted is the table vipd must program while every real server is up.
func (l *lab) wanted() table {
	amqp := map[string]dest{}
	sticky := map[string]dest{}
	for _, s := range l.servers {
		amqp[hostPort(s.nat, amqpPort)] = dest{"Masq", 1}
		sticky[hostPort(s.nat, amqpPort)] = dest{"Masq", 1}
	}
	return table{
		svcKey(amqpPort): {Sched: "rr", Dests: amqp},
		svcKey(mgmtPort): {Sched: "wrr", Dests: map[string]dest{
			hostPort(l.servers[0].lan, mgmtPort): {"Route", 1},
			hostPort(l.servers[1].lan, mgmtPort): {"Route", 3},
		}},
		svcKey(stickyPort): {Sched: "rr", Persistent: true, Dests: sticky},
	}
}

// holds reports whether the kernel's services at the VIP are exactly
// those of want.
func holds(k, want table) bool {
	for key, s := range k {
		if strings.HasPrefix(key, "TCP "+vipAddr+":") {
			if w, ok := want[key]; !ok || !w.equal(s) {
				return false
			}
		}
	}
	for key := range want {
		if _, ok := k[key]; !ok {
			return false
		}
	}
	return true
}

func (t table) clone() table {
	c := table{}
	for k, s := range t {
		s.Dests = maps.Clone(s.Dests)
		c[k] = s
	}
	return c
}

// spread fails t unless the answers are the names in want, each counted
// within tol of its wanted count.
func spread(t *testing.T, what string, seen, want map[string]int, tol int) {
	t.Helper()
	for name, n := range seen {
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: %d answers from %s, which should get none; answers %v", what, n, name, seen)
		} else if n < w-tol || n > w+tol {
			t.Errorf("%s: %s answered %d times, want %d±%d; answers %v", what, name, n, w, tol, seen)
		}
	}
	for name, w := range want {
		if w > 0 && seen[name] == 0 {
			t.Errorf("%s: %s never answered; answers %v", what, name, seen)
		}
	}
}

// TestGuestVipd runs `vipd run -f` on a seeds-shaped configuration and
// follows the kernel's IPVS table and real traffic through the VIP as real
// servers fail and come back, the table is changed by hand, and vipd
// stops. The steps depend on each other: the first failure ends the test.
func TestGuestVipd(t *testing.T) {
	requireGuest(t)
	l := newLab(t, 3, amqpPort, mgmtPort)
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	writeFile(t, conf, l.config())
	t.Cleanup(func() { _ = exec.Command("ipvsadm", "-C").Run() })

	want := l.wanted()
	d := startVipd(t, "run", "-f", conf, "-status", statusAddr)
	rs1 := l.servers[0]
	amqpAddr := net.JoinHostPort(vipAddr, strconv.Itoa(amqpPort))
	mgmtAddr := net.JoinHostPort(vipAddr, strconv.Itoa(mgmtPort))
	foreignKey := "TCP 10.99.0.1:80"
	foreign := service{Sched: "rr", Dests: map[string]dest{"10.99.0.2:80": {"Masq", 2}}}

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"programmed", func(t *testing.T) {
			start := time.Now()
			k, took := waitTable(t, "vipd's services in the kernel", poll, time.Minute, func(k table) bool { return holds(k, want) })
			d.running(t)
			for range 200 { // 20 s at most
				if ok, err := hasVIP(); err != nil {
					t.Fatal(err)
				} else if ok {
					break
				}
				time.Sleep(100 * time.Millisecond) // polling the interface: nothing to wait on
			}
			if ok, _ := hasVIP(); !ok {
				t.Fatalf("the VIP %s is not on %s 20 s after the table was complete", vipAddr, bridgeName)
			}
			t.Logf("IPVS table complete %v after vipd started, VIP up after %v:\n%s",
				took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), k)
		}},
		{"spread", func(t *testing.T) {
			const n = 12
			seen := l.askN(t, amqpAddr, n)
			spread(t, "rr over 3 (NAT)", seen, map[string]int{"rs1:5672": n / 3, "rs2:5672": n / 3, "rs3:5672": n / 3}, 1)
			t.Logf("%s, rr, NAT: %v", amqpAddr, seen)
			seen = l.askN(t, mgmtAddr, n)
			spread(t, "wrr 1:3 (DR)", seen, map[string]int{"rs1:15672": n / 4, "rs2:15672": 3 * n / 4}, 1)
			t.Logf("%s, wrr 1:3, DR: %v", mgmtAddr, seen)
		}},
		{"persistence", func(t *testing.T) {
			addr := net.JoinHostPort(vipAddr, strconv.Itoa(stickyPort))
			seen := l.askN(t, addr, 8)
			if len(seen) != 1 {
				t.Fatalf("persistence_timeout 50: one client reached several real servers: %v", seen)
			}
			t.Logf("%s, rr with persistence_timeout 50: %v", addr, seen)
		}},
		{"failover", func(t *testing.T) {
			down := want.clone()
			delete(down[svcKey(amqpPort)].Dests, hostPort(rs1.nat, amqpPort))
			down[svcKey(mgmtPort)].Dests[hostPort(rs1.lan, mgmtPort)] = dest{"Route", 0}
			rs1.stop(amqpPort)
			rs1.stop(mgmtPort)
			_, took := waitTable(t, "rs1 out (NAT) and at weight 0 (DR, inhibit_on_failure)", poll, healthBound,
				func(k table) bool { return holds(k, down) })
			t.Logf("rs1's listeners closed: out of %d and at weight 0 in %d after %v", amqpPort, mgmtPort, took.Round(time.Millisecond))
			waitNotify := func(want string) {
				t.Helper()
				for deadline := time.Now().Add(healthBound); lastNotify() != want; time.Sleep(poll) {
					if time.Now().After(deadline) {
						b, _ := os.ReadFile(rs1NotifyLog)
						t.Fatalf("rs1's notify scripts wrote %q, want %s last", b, want)
					}
				}
			}
			waitNotify("down")

			st, _ := fetchStatus(t, statusAddr)
			rss := st.realServers()
			for key, w := range map[string]string{
				fmt.Sprintf("%s:%d %s", vipAddr, amqpPort, hostPort(rs1.nat, amqpPort)):          "down weight 1 in_table false",
				fmt.Sprintf("%s:%d %s", vipAddr, mgmtPort, hostPort(rs1.lan, mgmtPort)):          "down weight 0 in_table true",
				fmt.Sprintf("%s:%d %s", vipAddr, amqpPort, hostPort(l.servers[1].nat, amqpPort)): "up weight 1 in_table true",
			} {
				if rss[key] != w {
					t.Errorf("vipd status: %s is %q, want %q", key, rss[key], w)
				}
			}

			seen := l.askN(t, amqpAddr, 6)
			spread(t, "rr over the 2 left", seen, map[string]int{"rs2:5672": 3, "rs3:5672": 3}, 1)
			seen2 := l.askN(t, mgmtAddr, 4)
			spread(t, "wrr with rs1 at 0", seen2, map[string]int{"rs2:15672": 4}, 0)
			t.Logf("with rs1 down: %s %v, %s %v", amqpAddr, seen, mgmtAddr, seen2)

			rs1.listen(t, amqpPort)
			rs1.listen(t, mgmtPort)
			_, took = waitTable(t, "rs1 back", poll, healthBound, func(k table) bool { return holds(k, want) })
			t.Logf("rs1's listeners back: in the table again after %v", took.Round(time.Millisecond))
			waitNotify("up")
			seen = l.askN(t, amqpAddr, 6)
			spread(t, "rr over 3 again", seen, map[string]int{"rs1:5672": 2, "rs2:5672": 2, "rs3:5672": 2}, 1)
		}},
		{"drift", func(t *testing.T) {
			// The foreign service first: the pass that repairs the
			// drift below sees it too, and must leave it alone.
			ipvsadm(t, "-A", "-t", "10.99.0.1:80", "-s", "rr")
			ipvsadm(t, "-a", "-t", "10.99.0.1:80", "-r", "10.99.0.2:80", "-m", "-w", "2")
			start := time.Now()
			ipvsadm(t, "-a", "-t", amqpAddr, "-r", "10.20.9.9:5672", "-m", "-w", "1")
			ipvsadm(t, "-e", "-t", mgmtAddr, "-r", hostPort(l.servers[1].lan, mgmtPort), "-g", "-w", "7")
			k, _ := waitTable(t, "hand-made changes repaired, the foreign service kept", poll, driftBound,
				func(k table) bool { return holds(k, want) && k[foreignKey].equal(foreign) })
			t.Logf("a bogus real server and a changed weight repaired %v after ipvsadm made them (reconcile interval 5 s):\n%s",
				time.Since(start).Round(time.Millisecond), k)
			st, _ := fetchStatus(t, statusAddr)
			if st.IPVS == nil || st.IPVS.Drifts < 2 {
				t.Fatalf("vipd status counts %+v drifts repaired, want at least 2", st.IPVS)
			}
		}},
		{"status", func(t *testing.T) {
			st, raw := fetchStatus(t, statusAddr)
			if len(st.Instances) != 1 || st.Instances[0].State != "MASTER" {
				t.Errorf("instances: %+v, want VI_1 MASTER", st.Instances)
			}
			if st.IPVS == nil {
				t.Fatalf("no ipvs section:\n%s", raw)
			}
			if st.IPVS.Error != "" || st.IPVS.Changes == 0 || st.IPVS.Applied.IsZero() {
				t.Errorf("ipvs: error %q, %d changes, applied %v", st.IPVS.Error, st.IPVS.Changes, st.IPVS.Applied)
			}
			var services []string
			for _, vs := range st.IPVS.VirtualServers {
				services = append(services, vs.Service+" "+vs.Scheduler)
			}
			wantSvcs := fmt.Sprintf("[%[1]s:%[2]d wrr %[1]s:%[3]d rr %[1]s:%[4]d rr]", vipAddr, mgmtPort, stickyPort, amqpPort)
			if fmt.Sprint(services) != wantSvcs {
				t.Errorf("virtual servers %v, want %s", services, wantSvcs)
			}
			for key, line := range st.realServers() {
				if !strings.HasPrefix(line, "up ") || !strings.HasSuffix(line, "in_table true") {
					t.Errorf("%s: %s, want up and in the table", key, line)
				}
			}
			for _, vs := range st.IPVS.VirtualServers {
				for _, rs := range vs.RealServers {
					port, _ := strconv.Atoi(vs.Service[strings.LastIndexByte(vs.Service, ':')+1:])
					if wantChecks := port != stickyPort; wantChecks != (len(rs.Checks) == 1 && rs.Checks[0].State == "up") {
						t.Errorf("%s %s: checks %+v", vs.Service, rs.Address, rs.Checks)
					}
				}
			}
			t.Logf("vipd status:\n%s", raw)
		}},
		{"connections", func(t *testing.T) {
			// The status shows IPVS's connection counts per real server:
			// a connection held open is active on the real server that
			// answered it; every connection counts once in the totals.
			amqpServers := func(st *vipdStatus) (active, total map[string]uint64) {
				active, total = map[string]uint64{}, map[string]uint64{}
				for _, vs := range st.IPVS.VirtualServers {
					if vs.Service != amqpAddr {
						continue
					}
					for _, rs := range vs.RealServers {
						active[rs.Address], total[rs.Address] = uint64(rs.Active), rs.Total
					}
				}
				return active, total
			}
			before, _ := fetchStatus(t, statusAddr)
			_, total0 := amqpServers(before)
			c, name, err := l.open(amqpAddr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			held := ""
			for _, b := range l.servers {
				if name == fmt.Sprintf("%s:%d", b.name, amqpPort) {
					held = hostPort(b.nat, amqpPort)
				}
			}
			if held == "" {
				t.Fatalf("the held connection was answered by %q, not a real server of %s", name, amqpAddr)
			}
			l.askN(t, amqpAddr, 3)
			var active, total map[string]uint64
			var raw string
			for range 100 { // 10 s at most: closing connections leave the established state in a moment
				var st *vipdStatus
				st, raw = fetchStatus(t, statusAddr)
				active, total = amqpServers(st)
				var sumActive, added uint64
				for a := range total {
					sumActive += active[a]
					added += total[a] - total0[a]
				}
				if active[held] == 1 && sumActive == 1 && added == 4 {
					t.Logf("held connection active on %s; connections scheduled per real server %v (before %v)", held, total, total0)
					return
				}
				time.Sleep(100 * time.Millisecond) // polling the kernel's counters: nothing to wait on
			}
			t.Fatalf("want 1 active connection on %s and 4 more connections in all; active %v, total %v (before %v)\n%s", held, active, total, total0, raw)
		}},
		{"shutdown", func(t *testing.T) {
			start := time.Now()
			d.signal(t, syscall.SIGTERM)
			if err := d.wait(30 * time.Second); err != nil {
				t.Fatalf("vipd after SIGTERM: %v", err)
			}
			took := time.Since(start)
			k, err := readKernel()
			if err != nil {
				t.Fatal(err)
			}
			if !holds(k, table{}) || len(k) != 1 || !k[foreignKey].equal(foreign) {
				t.Errorf("after SIGTERM the table holds more or less than the foreign service:\n%s", k)
			}
			if ok, err := hasVIP(); err != nil || ok {
				t.Errorf("after SIGTERM the VIP is still on %s (%v)", bridgeName, err)
			}
			t.Logf("vipd exited %v after SIGTERM, its services and the VIP removed; left:\n%s", took.Round(time.Millisecond), k)
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			t.FailNow()
		}
	}
}

// scaleConfig has n virtual servers of m real servers each, no checks
// (always up), all at weight 1 but real server j of virtual server i at
// weight w.
func scaleConfig(n, m, i, j, w int) string {
	var b strings.Builder
	b.WriteString("global_defs {\n    router_id scale\n}\n")
	for v := range n {
		fmt.Fprintf(&b, "virtual_server 10.50.%d.%d 5672 {\n    lb_algo wrr\n    lb_kind NAT\n    protocol TCP\n", v/200, v%200+1)
		for r := range m {
			weight := 1
			if v == i && r == j {
				weight = w
			}
			fmt.Fprintf(&b, "    real_server 10.60.%d.%d 5672 {\n        weight %d\n    }\n", v, r+1, weight)
		}
		b.WriteString("}\n")
	}
	return b.String()
}

// TestGuestVipdScale measures (and logs, for BENCHMARKS.md; no
// thresholds) how long vipd takes to program 100 virtual servers × 10
// real servers from `vipd run` to the complete table, to apply one changed
// weight after SIGHUP, and to remove everything on SIGTERM. The VM
// emulates its CPU (TCG): the figures are many times a real host's.
func TestGuestVipdScale(t *testing.T) {
	requireGuest(t)
	const n, m = 100, 10
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	writeFile(t, conf, scaleConfig(n, m, -1, -1, 1))
	t.Cleanup(func() { _ = exec.Command("ipvsadm", "-C").Run() })

	start := time.Now()
	d := startVipd(t, "run", "-f", conf, "-status", "", "-log-level", "warn")
	waitTable(t, "100 × 10 programmed", 20*time.Millisecond, 2*time.Minute, func(k table) bool {
		s, ds := k.count("TCP 10.50.")
		return s == n && ds == n*m
	})
	apply := time.Since(start)
	d.running(t)

	const vi, rj, w = 50, 5, 7
	svc := fmt.Sprintf("TCP 10.50.%d.%d:5672", vi/200, vi%200+1)
	rs := fmt.Sprintf("10.60.%d.%d:5672", vi, rj+1)
	writeFile(t, conf, scaleConfig(n, m, vi, rj, w))
	start = time.Now()
	d.signal(t, syscall.SIGHUP)
	waitTable(t, "the changed weight", 20*time.Millisecond, time.Minute, func(k table) bool {
		return k[svc].Dests[rs].Weight == w
	})
	reload := time.Since(start)

	start = time.Now()
	d.signal(t, syscall.SIGTERM)
	if err := d.wait(time.Minute); err != nil {
		t.Fatalf("vipd after SIGTERM: %v", err)
	}
	stop := time.Since(start)
	k, err := readKernel()
	if err != nil {
		t.Fatal(err)
	}
	if s, ds := k.count("TCP 10.50."); s != 0 {
		t.Errorf("after SIGTERM %d services with %d destinations are left", s, ds)
	}
	t.Logf("%d virtual servers × %d real servers, no checks, in the VM (TCG): table complete %v after `vipd run` started; "+
		"one weight changed + SIGHUP: visible after %v; SIGTERM: exited with the table removed after %v",
		n, m, apply.Round(time.Millisecond), reload.Round(time.Millisecond), stop.Round(time.Millisecond))
}
