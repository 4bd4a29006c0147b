//go:build integration

package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/integration/cluster"
	"github.com/amqpha/amqpha/integration/clustertest"
)

var shared *cluster.Cluster

// orphanEnv makes the test binary act as the owner of a cluster that its
// parent kills (TestWatchdogTearsDownAfterOwnerDies).
const orphanEnv = "AMQPHA_TEST_ORPHAN_OWNER"

func TestMain(m *testing.M) {
	if os.Getenv(orphanEnv) != "" {
		os.Exit(orphanOwner())
	}
	os.Exit(clustertest.Main(m, cluster.Options{}, &shared))
}

// restore puts every node of the shared cluster back when the test ends.
func restore(t *testing.T) { clustertest.Restore(t, shared) }

// eventually polls cond until it returns nil, failing the test with cond's
// last error after timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dial opens an AMQP connection whose socket dial and handshake each must
// finish within d.
func dial(uri string, d time.Duration) (*amqp.Connection, error) {
	return amqp.DialConfig(uri, amqp.Config{
		Dial:      amqp.DefaultDial(d),
		Heartbeat: 10 * time.Second,
	})
}

// mustWork dials uri and declares a server-named queue on it.
func mustWork(t *testing.T, uri string) {
	t.Helper()
	conn, err := dial(uri, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", uri, err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatalf("declare: %v", err)
	}
}

func running(t *testing.T, ctx context.Context, via *cluster.Node) []string {
	t.Helper()
	got, err := via.RunningNodes(ctx)
	if err != nil {
		t.Fatalf("cluster_status on %s: %v", via.Name(), err)
	}
	return got
}

func TestClusterIsFormed(t *testing.T) {
	ctx := testCtx(t, time.Minute)
	var names []string
	for _, n := range shared.Nodes() {
		names = append(names, n.Name())
	}
	for _, n := range shared.Nodes() {
		st, err := n.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(st.RunningNodes)
		slices.Sort(st.DiskNodes)
		if !slices.Equal(st.RunningNodes, names) || !slices.Equal(st.DiskNodes, names) {
			t.Errorf("%s sees running %v, disc %v; want %v", n.Name(), st.RunningNodes, st.DiskNodes, names)
		}
		mustWork(t, n.URI())
		mustWork(t, n.DirectURI())

		req, _ := http.NewRequestWithContext(ctx, "GET", n.ManagementURL()+"/api/nodes", nil)
		req.SetBasicAuth("guest", "guest")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("management API of %s: %v", n.Name(), err)
		}
		var nodes []struct{ Name string }
		err = json.NewDecoder(resp.Body).Decode(&nodes)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || len(nodes) != len(names) {
			t.Errorf("management API of %s: status %d, %d nodes, err %v", n.Name(), resp.StatusCode, len(nodes), err)
		}
	}
}

func TestEveryPortIsOnLoopback(t *testing.T) {
	for _, n := range shared.Nodes() {
		for _, raw := range []string{n.URI(), n.DirectURI(), n.ManagementURL()} {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
				t.Errorf("%s is not on loopback", raw)
			}
		}
	}
}

// TestKillAndRejoin also checks QuorumEvents: a quorum queue led by the
// killed node gets a new leader on another node, which that node's log
// says after the kill.
func TestKillAndRejoin(t *testing.T) {
	restore(t)
	ctx := testCtx(t, 3*time.Minute)
	victim, observer := shared.Node(2), shared.Node(0)
	pid := victim.Pid()
	if pid == 0 {
		t.Fatal("running node has no pid")
	}
	queue := declareQuorumOn(t, ctx, victim)
	killed := time.Now()
	if err := victim.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	if victim.Running() || cluster.Alive(pid) {
		t.Fatalf("after Kill: Running=%v, process %d alive=%v", victim.Running(), pid, cluster.Alive(pid))
	}
	eventually(t, 30*time.Second, func() error {
		if got := running(t, ctx, observer); slices.Contains(got, victim.Name()) {
			return fmt.Errorf("killed node still in %s's view %v", observer.Name(), got)
		}
		return nil
	})
	if conn, err := dial(victim.URI(), 2*time.Second); err == nil {
		conn.Close()
		t.Fatal("dial to a killed node succeeded")
	}
	// The new leader's log line takes up to cluster.LogFlushDelay to reach
	// the file.
	eventually(t, 30*time.Second, func() error {
		for _, n := range shared.Nodes() {
			if n == victim {
				continue
			}
			evs, err := n.QuorumEvents(ctx, killed)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if ev.Queue == queue && ev.VHost == "/" && ev.Kind == cluster.BecameLeader && ev.Node == n.Name() {
					t.Logf("%s got a new leader on %s %v after the kill (term %d, from %s)",
						queue, ev.Node, ev.Time.Sub(killed), ev.Term, ev.From)
					return nil
				}
			}
		}
		return fmt.Errorf("no new leader of %s in the other nodes' logs since the kill", queue)
	})

	if err := victim.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(running(t, ctx, observer), victim.Name()) {
		t.Fatalf("restarted node not in %s's view", observer.Name())
	}
	if err := shared.WaitClustered(ctx); err != nil {
		t.Fatal(err)
	}
	mustWork(t, victim.URI())
}

// declareQuorumOn declares a fresh quorum queue through n, which makes n
// its leader, checks that it is, and deletes the queue through node 0 when
// the test ends.
func declareQuorumOn(t *testing.T, ctx context.Context, n *cluster.Node) string {
	t.Helper()
	queue := "qq-" + t.Name()
	if _, err := channelOn(t, n.DirectURI()).QueueDeclare(queue, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	deleter := channelOn(t, shared.Node(0).DirectURI())
	t.Cleanup(func() {
		if _, err := deleter.QueueDelete(queue, false, false, false); err != nil {
			t.Errorf("deleting %s: %v", queue, err)
		}
	})
	if got, err := n.QuorumLeader(ctx, queue); err != nil || got != n.Name() {
		t.Fatalf("%s led by %q (%v), want %s", queue, got, err, n.Name())
	}
	return queue
}

// channelOn opens a channel on a fresh connection to uri, which is closed
// when the test ends.
func channelOn(t *testing.T, uri string) *amqp.Channel {
	t.Helper()
	conn, err := dial(uri, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", uri, err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel on %s: %v", uri, err)
	}
	return ch
}

func TestGracefulRestart(t *testing.T) {
	restore(t)
	ctx := testCtx(t, 3*time.Minute)
	n := shared.Node(1)
	conn, err := dial(n.DirectURI(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-closed:
		// A graceful shutdown closes client connections with 320
		// CONNECTION_FORCED; a crash would just drop them.
		if e == nil || e.Code != amqp.ConnectionForced {
			t.Fatalf("connection closed with %v, want code %d", e, amqp.ConnectionForced)
		}
	case <-ctx.Done():
		t.Fatal("connection not closed by the stop")
	}
	if err := shared.WaitClustered(ctx); err != nil {
		t.Fatal(err)
	}
	mustWork(t, n.URI())
}

func TestPauseResume(t *testing.T) {
	restore(t)
	ctx := testCtx(t, 2*time.Minute)
	n := shared.Node(1)
	if err := n.Pause(); err != nil {
		t.Fatal(err)
	}
	if s := cluster.State(n.Pid()); s != 'T' {
		t.Fatalf("paused VM is in state %q, want T (stopped)", s)
	}
	// The kernel still accepts TCP for a hung node; only the handshake hangs.
	raw, err := net.DialTimeout("tcp", hostPort(t, n.DirectURI()), 2*time.Second)
	if err != nil {
		t.Fatalf("TCP connect to a paused node: %v (the kernel should accept)", err)
	}
	raw.Close()
	if conn, err := dial(n.DirectURI(), time.Second); err == nil {
		conn.Close()
		t.Fatal("AMQP handshake with a paused node succeeded")
	}

	if err := n.Resume(); err != nil {
		t.Fatal(err)
	}
	if s := cluster.State(n.Pid()); s == 'T' {
		t.Fatal("resumed VM is still stopped")
	}
	mustWork(t, n.URI())
	if err := shared.WaitClustered(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMemoryAlarmBlocksPublishers(t *testing.T) {
	restore(t)
	ctx := testCtx(t, time.Minute)
	// The alarm is raised on node 1; a publisher on node 0 is blocked too,
	// because RabbitMQ blocks publishers cluster-wide.
	conn, err := dial(shared.Node(0).URI(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))

	if err := shared.Node(1).SetAlarm(ctx); err != nil {
		t.Fatal(err)
	}
	if on, err := shared.Node(1).HasAlarm(ctx); err != nil || !on {
		t.Fatalf("HasAlarm after SetAlarm = %v, %v", on, err)
	}
	// RabbitMQ blocks a connection when it next publishes.
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.PublishWithContext(ctx, "", "nowhere", false, false, amqp.Publishing{Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-blocked:
		if !b.Active {
			t.Fatalf("got %+v, want a blocked notification", b)
		}
	case <-ctx.Done():
		t.Fatal("no connection.blocked while a memory alarm is on")
	}

	if err := shared.Node(1).ClearAlarm(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-blocked:
		if b.Active {
			t.Fatalf("got %+v, want an unblocked notification", b)
		}
	case <-ctx.Done():
		t.Fatal("no connection.unblocked after the alarm cleared")
	}
}

func TestDrainRevive(t *testing.T) {
	restore(t)
	ctx := testCtx(t, time.Minute)
	n := shared.Node(2)
	conn, err := dial(n.DirectURI(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))

	if err := n.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := n.UnderMaintenance(ctx); err != nil || !m {
		t.Fatalf("UnderMaintenance after Drain = %v, %v", m, err)
	}
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("drain did not close the node's client connections")
	}
	if c, err := dial(n.DirectURI(), 2*time.Second); err == nil {
		c.Close()
		t.Fatal("a drained node accepted an AMQP connection")
	}

	if err := n.Revive(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := n.UnderMaintenance(ctx); err != nil || m {
		t.Fatalf("UnderMaintenance after Revive = %v, %v", m, err)
	}
	mustWork(t, n.URI())
}

// TestWaitClusteredStartsAStoppedApp: a node whose Erlang VM runs but
// whose RabbitMQ application is stopped, with no partition reported (what
// RabbitMQ 3.10's autoheal left behind twice in CI, after a SIGSTOP), is
// restarted by WaitClustered instead of being waited for until the
// context ends.
func TestWaitClusteredStartsAStoppedApp(t *testing.T) {
	restore(t)
	ctx := testCtx(t, 3*time.Minute)
	n := shared.Node(2)
	if _, err := n.Ctl(ctx, "rabbitmqctl", "stop_app"); err != nil {
		t.Fatal(err)
	}
	if !n.Running() {
		t.Fatal("stop_app ended the node's VM")
	}
	// The heal comes after absentGrace (30 s): bound the wait well above.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := shared.WaitClustered(wctx); err != nil {
		t.Fatalf("WaitClustered with node 2's application stopped: %v", err)
	}
	running, err := shared.Node(0).RunningNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(running, n.Name()) {
		t.Fatalf("node 0 sees %v running, not %s", running, n.Name())
	}
	mustWork(t, n.URI())
}

func TestCutAndHeal(t *testing.T) {
	restore(t)
	n := shared.Node(0)
	conn, err := dial(n.URI(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}

	n.Cut()
	if !n.IsCut() {
		t.Fatal("IsCut is false after Cut")
	}
	done := make(chan error, 1)
	go func() {
		_, err := ch.QueueDeclare("", false, true, true, false, nil)
		done <- err
	}()
	// Nothing may come back while the link is cut. This waits for a
	// non-event, so it can only be bounded by a timer.
	select {
	case err := <-done:
		t.Fatalf("a request crossed a cut link (err %v)", err)
	case <-time.After(time.Second):
	}
	if c, err := dial(n.URI(), time.Second); err == nil {
		c.Close()
		t.Fatal("a new connection crossed a cut link")
	}
	// The node itself is still there.
	mustWork(t, n.DirectURI())

	n.Heal()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("request held across the cut failed after Heal: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("request held across the cut did not complete after Heal")
	}
	mustWork(t, n.URI())
}

func TestResetConnections(t *testing.T) {
	restore(t)
	n := shared.Node(1)
	conn, err := dial(n.URI(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if got := n.ProxyConnections(); got != 1 {
		t.Fatalf("ProxyConnections = %d, want 1", got)
	}
	if got := n.ResetConnections(); got < 1 {
		t.Fatalf("ResetConnections closed %d", got)
	}
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("client did not see its connection reset")
	}
	mustWork(t, n.URI())
}

func TestTwoClustersDoNotCollide(t *testing.T) {
	other := clustertest.Start(t, cluster.Options{Nodes: 1})
	ctx := testCtx(t, time.Minute)
	mine := map[string]bool{}
	for _, n := range shared.Nodes() {
		mine[n.Name()] = true
		for _, u := range []string{n.URI(), n.DirectURI(), n.ManagementURL()} {
			mine[hostPort(t, u)] = true
		}
	}
	o := other.Node(0)
	for _, u := range []string{o.Name(), hostPort(t, o.URI()), hostPort(t, o.DirectURI()), hostPort(t, o.ManagementURL())} {
		if mine[u] {
			t.Errorf("second cluster reuses %s", u)
		}
	}
	if got := running(t, ctx, o); !slices.Equal(got, []string{o.Name()}) {
		t.Errorf("second cluster sees %v, want only itself", got)
	}
	mustWork(t, o.URI())
	mustWork(t, shared.Node(0).URI())

	cookieA, _ := os.ReadFile(shared.Dir() + "/home/.erlang.cookie")
	cookieB, _ := os.ReadFile(other.Dir() + "/home/.erlang.cookie")
	if len(cookieA) == 0 || string(cookieA) == string(cookieB) {
		t.Error("the two clusters share an Erlang cookie")
	}

	pids, dir := other.Pids(), other.Dir()
	if len(pids) < 4 {
		t.Fatalf("Pids = %v, want epmd, watchdog, script and VM", pids)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := clustertest.CheckGone(pids, dir); err != nil {
		t.Fatal(err)
	}
	if c, err := dial(o.DirectURI(), time.Second); err == nil {
		c.Close()
		t.Fatal("node of a closed cluster still answers")
	}
	mustWork(t, shared.Node(0).URI())
}

// orphanReport is what the orphaned owner tells its parent.
type orphanReport struct {
	Pids []int
	Dir  string
}

// orphanOwner starts a one-node cluster, reports it on stdout and waits to be
// killed.
func orphanOwner() int {
	ctx, cancel := context.WithTimeout(context.Background(), clustertest.StartTimeout)
	defer cancel()
	c, err := cluster.Start(ctx, cluster.Options{Nodes: 1})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(orphanReport{Pids: c.Pids(), Dir: c.Dir()})
	time.Sleep(5 * time.Minute) // the parent kills this process long before
	c.Close()
	return 1
}

func TestWatchdogTearsDownAfterOwnerDies(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), orphanEnv+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		if s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	var rep orphanReport
	select {
	case line, ok := <-lines:
		if !ok || json.Unmarshal([]byte(line), &rep) != nil {
			t.Fatalf("owner process reported %q", line)
		}
	case <-time.After(clustertest.StartTimeout):
		t.Fatal("owner process did not start its cluster")
	}
	for _, pid := range rep.Pids {
		if !cluster.Alive(pid) {
			t.Fatalf("process %d of the orphan's cluster is not running before the kill", pid)
		}
	}

	// The owner dies without a chance to clean up.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	eventually(t, 30*time.Second, func() error {
		return clustertest.CheckGone(rep.Pids, rep.Dir)
	})
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := strconv.Atoi(u.Port()); err != nil {
		t.Fatalf("%s has no port", raw)
	}
	return u.Host
}
