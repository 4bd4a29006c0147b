//go:build integration

package health_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/integration/cluster"
	"github.com/amqpha/amqpha/integration/clustertest"
	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/health"
	"github.com/amqpha/amqpha/vipd/lvs"
)

var shared *cluster.Cluster

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m, cluster.Options{}, &shared)) }

// Short timings, as a director watching a RabbitMQ cluster closely would
// use them.
const (
	delayLoop        = 500 * time.Millisecond
	retry            = 1
	delayBeforeRetry = 200 * time.Millisecond
	connectTimeout   = time.Second
	// slack is added to a check's worst-case detection time to wait on a
	// loaded 2-core machine (CLI calls, Erlang VMs, the race detector).
	slack = 10 * time.Second
)

// rounds is how many times each fault is repeated: 1 by default, more
// by hand for BENCHMARKS.md (AMQPHA_HEALTH_ROUNDS=5).
func rounds(t *testing.T) int {
	if s := os.Getenv("AMQPHA_HEALTH_ROUNDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("AMQPHA_HEALTH_ROUNDS=%q: want a positive integer", s)
		}
		return n
	}
	return 1
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func hostPort(t *testing.T, raw string) netip.AddrPort {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	ap, err := netip.ParseAddrPort(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// change is a status change seen by OnChange, and when.
type change struct {
	at time.Time
	st health.Status
}

// watched is one check of one node under its own Monitor, so that each
// kind of check is timed apart.
type watched struct {
	kind    string
	check   health.Check
	mon     *health.Monitor
	changes chan change
}

// watch starts a TCP_CHECK (on the AMQP port), an AMQP_CHECK and an
// HTTP_GET of the management health endpoints on node n, and waits until
// each has passed once.
func watch(t *testing.T, n *cluster.Node) []*watched {
	t.Helper()
	amqpAddr := hostPort(t, n.DirectURI())
	mgmtAddr := hostPort(t, n.ManagementURL())
	checkers := []struct {
		kind string
		c    health.Checker
	}{
		{"TCP_CHECK", &health.TCP{Addr: amqpAddr, Timeout: connectTimeout}},
		{"AMQP_CHECK", &health.AMQP{Addr: amqpAddr, Timeout: connectTimeout, User: "guest", Password: "guest"}},
		{"HTTP_GET", &health.HTTP{Addr: mgmtAddr, Timeout: connectTimeout, User: "guest", Password: "guest",
			URLs: []config.URL{
				{Path: "/api/health/checks/local-alarms"},
				{Path: "/api/health/checks/alarms"},
				{Path: "/api/health/checks/node-is-quorum-critical"},
			}}},
	}
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	var ws []*watched
	for _, c := range checkers {
		w := &watched{kind: c.kind, changes: make(chan change, 100)}
		w.check = health.Check{Name: c.kind + " " + n.Name(), Checker: c.c, DelayLoop: delayLoop, Retry: retry, DelayBeforeRetry: delayBeforeRetry}
		m, err := health.NewMonitor(health.MonitorConfig{
			Checks: []health.Check{w.check},
			OnChange: func(s health.Status) {
				select {
				case w.changes <- change{time.Now(), s}:
				default: // never hold up Close; a test reading this far behind fails anyway
				}
			},
			Logger: log,
		})
		if err != nil {
			t.Fatal(err)
		}
		w.mon = m
		t.Cleanup(m.Close)
		ws = append(ws, w)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, w := range ws {
		for {
			st := w.mon.Status()
			if st.State == lvs.Up && st.Checks[0].Runs > 0 && st.Checks[0].Last.OK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never passed on a healthy node: %+v", w.kind, st.Checks[0])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return ws
}

// await waits for w's next change and fails unless its state is one of
// want. It returns when the change came.
func (w *watched) await(t *testing.T, timeout time.Duration, want ...lvs.State) (time.Time, health.Status) {
	t.Helper()
	select {
	case c := <-w.changes:
		for _, s := range want {
			if c.st.State == s {
				return c.at, c.st
			}
		}
		t.Fatalf("%s went %v, want %v (last: %v)", w.kind, c.st.State, want, c.st.Checks[0].Last.Err)
	case <-time.After(timeout):
		t.Fatalf("%s did not go %v within %v; it is %v (last: %+v)", w.kind, want, timeout, w.mon.Status().State, w.mon.Status().Checks[0].Last)
	}
	panic("unreachable")
}

// quiet fails if w changed state since the last await.
func (w *watched) quiet(t *testing.T) {
	t.Helper()
	select {
	case c := <-w.changes:
		t.Fatalf("%s unexpectedly went %v: %v", w.kind, c.st.State, c.st.Checks[0].Last.Err)
	default:
	}
}

// settle discards w's changes so far, logging them: on a loaded machine a
// management API call may outlast its 1 s timeout twice in a row, and such
// a flap on a healthy node must not pass for the reaction to the next
// fault.
func (w *watched) settle(t *testing.T) {
	t.Helper()
	for {
		select {
		case c := <-w.changes:
			t.Logf("%s flapped to %v on a healthy node: %v", w.kind, c.st.State, c.st.Checks[0].Last.Err)
		default:
			return
		}
	}
}

func settle(t *testing.T, ws []*watched) {
	for _, w := range ws {
		w.settle(t)
	}
}

// dephase waits a random part of delay_loop, so that faults fall at any
// point of the checks' schedule (right after a check passed, a fault is
// noticed at the latest; the tests would always hit that case, since
// they act as soon as a check reported). It is not a wait for anything to
// settle.
func dephase() { time.Sleep(rand.N(delayLoop)) }

// timing collects detection and recovery times for the summary.
type timing struct {
	fault string
	keys  []string // check and event, in first-seen order
	times map[string][]time.Duration
}

// add records that w reported event at, d after the fault (or the
// recovery) took effect.
func (tm *timing) add(t *testing.T, w *watched, event string, fault, at time.Time, extra string) {
	t.Helper()
	d := at.Sub(fault)
	k := fmt.Sprintf("%-10s %-5s", w.kind, event)
	if tm.times == nil {
		tm.times = map[string][]time.Duration{}
	}
	if _, ok := tm.times[k]; !ok {
		tm.keys = append(tm.keys, k)
	}
	tm.times[k] = append(tm.times[k], d)
	t.Logf("%-6s %s %7.3fs %s", tm.fault, k, d.Seconds(), extra)
}

// expect waits until each of ws reports one of states, within its bound
// plus extra, and records the time from since with note's text.
func (tm *timing) expect(t *testing.T, ws []*watched, extra time.Duration, since time.Time, note func(health.Status) string, states ...lvs.State) {
	t.Helper()
	for _, w := range ws {
		at, st := w.await(t, w.bound(connectTimeout)+extra, states...)
		tm.add(t, w, st.State.String(), since, at, note(st))
	}
}

// report logs min, mean and max of each check's times.
func (tm *timing) report(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: seconds from the fault (or the recovery) taking effect to the Monitor's report\n", tm.fault)
	fmt.Fprintf(&b, "%-16s %3s %7s %7s %7s\n", "check event", "n", "min", "mean", "max")
	for _, k := range tm.keys {
		ds := tm.times[k]
		lo, hi, sum := ds[0], ds[0], time.Duration(0)
		for _, d := range ds {
			lo, hi, sum = min(lo, d), max(hi, d), sum+d
		}
		fmt.Fprintf(&b, "%-16s %3d %7.3f %7.3f %7.3f\n", k, len(ds), lo.Seconds(), (sum / time.Duration(len(ds))).Seconds(), hi.Seconds())
	}
	t.Log(b.String())
}

// bound is the longest w may take to report a failure whose attempts each
// take attempt, plus slack.
func (w *watched) bound(attempt time.Duration) time.Duration {
	return w.check.WorstDetection(attempt) + slack
}

// TestHealthKill: a crashed node refuses connections at once; every check
// reports it down within one delay_loop plus the retries, and up once the
// node runs again.
func TestHealthKill(t *testing.T) {
	clustertest.Restore(t, shared)
	n := shared.Node(2)
	ws := watch(t, n)
	tm := &timing{fault: "kill"}
	defer tm.report(t)
	for round := range rounds(t) {
		ctx := ctxFor(t, 5*time.Minute)
		settle(t, ws)
		dephase()
		if err := n.Kill(ctx); err != nil {
			t.Fatal(err)
		}
		fault := time.Now()
		tm.expect(t, ws, 0, fault, func(st health.Status) string { return fmt.Sprintf("round %d: %v", round, st.Checks[0].Last.Err) }, lvs.Down)
		began := time.Now()
		if err := n.Start(ctx); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		t.Logf("restart took %v", started.Sub(began).Round(time.Millisecond))
		tm.expect(t, ws, 0, started, func(health.Status) string {
			return fmt.Sprintf("round %d (node ready at 0; negative: up before rabbitmqctl wait returned)", round)
		}, lvs.Up)
		if err := shared.WaitClustered(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHealthPause: a hung (SIGSTOPped) node still completes TCP
// handshakes, so TCP_CHECK keeps passing (the reason vipd has
// AMQP_CHECK); AMQP_CHECK and HTTP_GET time out and report it down, and
// up again once it resumes.
func TestHealthPause(t *testing.T) {
	clustertest.Restore(t, shared)
	n := shared.Node(1)
	ws := watch(t, n)
	tcp, others := ws[0], ws[1:]
	tm := &timing{fault: "pause"}
	defer tm.report(t)
	for round := range rounds(t) {
		settle(t, ws)
		dephase()
		runsBefore := tcp.mon.Status().Checks[0].Runs
		if err := n.Pause(); err != nil {
			t.Fatal(err)
		}
		fault := time.Now()
		tm.expect(t, others, 0, fault, func(st health.Status) string { return fmt.Sprintf("round %d: %v", round, st.Checks[0].Last.Err) }, lvs.Down)
		// The kernel still accepts for the stopped node: TCP_CHECK passed
		// every time it ran during the pause.
		if r := (&health.TCP{Addr: hostPort(t, n.DirectURI()), Timeout: connectTimeout}).Check(context.Background()); !r.OK {
			t.Errorf("TCP_CHECK failed on a paused node: %v", r.Err)
		}
		st := tcp.mon.Status()
		if st.State != lvs.Up || !st.Checks[0].Last.OK || st.Checks[0].Runs-runsBefore < 2 {
			t.Errorf("TCP_CHECK during the pause: %v, %d runs, last %+v; want up after 2 runs or more", st.State, st.Checks[0].Runs-runsBefore, st.Checks[0].Last)
		}
		tcp.quiet(t)
		t.Logf("TCP_CHECK ran %d times during the pause, all passed", st.Checks[0].Runs-runsBefore)

		dephase()
		if err := n.Resume(); err != nil {
			t.Fatal(err)
		}
		resumed := time.Now()
		tm.expect(t, others, 0, resumed, func(health.Status) string { return fmt.Sprintf("round %d", round) }, lvs.Up)
	}
}

// TestHealthDrain: RabbitMQ 3.10's maintenance mode suspends the AMQP and
// management listeners, so every check fails with a refused connection
// and reports the node down (a checker that could tell maintenance apart
// would report drain; none can on 3.10), then up after revive.
func TestHealthDrain(t *testing.T) {
	clustertest.Restore(t, shared)
	n := shared.Node(2)
	ws := watch(t, n)
	tm := &timing{fault: "drain"}
	defer tm.report(t)
	for round := range rounds(t) {
		ctx := ctxFor(t, 2*time.Minute)
		settle(t, ws)
		dephase()
		began := time.Now()
		if err := drain(t, ctx, n); err != nil {
			t.Fatal(err)
		}
		fault := time.Now()
		t.Logf("rabbitmq-upgrade drain took %v", fault.Sub(began).Round(time.Millisecond))
		tm.expect(t, ws, fault.Sub(began), fault, func(st health.Status) string {
			return fmt.Sprintf("round %d (drain began %.3fs before): %v", round, fault.Sub(began).Seconds(), st.Checks[0].Last.Err)
		}, lvs.Down, lvs.Drain)
		if on, err := n.UnderMaintenance(ctx); err != nil || !on {
			t.Fatalf("UnderMaintenance = %v, %v after drain", on, err)
		}
		dephase()
		began = time.Now()
		if err := n.Revive(ctx); err != nil {
			t.Fatal(err)
		}
		revived := time.Now()
		t.Logf("rabbitmq-upgrade revive took %v", revived.Sub(began).Round(time.Millisecond))
		tm.expect(t, ws, revived.Sub(began), revived, func(health.Status) string { return fmt.Sprintf("round %d", round) }, lvs.Up)
	}
}

// drain puts n into maintenance mode. RabbitMQ 3.10's drain closes every
// client connection with a call to its process and fails (exit 69,
// noproc) when one of them exits by itself meanwhile, as the AMQP_CHECK's
// short-lived connections do every delay_loop; the node is left in
// maintenance mode with its listeners suspended, and running drain again
// finishes the job. Operators draining a node that vipd checks see the
// same.
func drain(t *testing.T, ctx context.Context, n *cluster.Node) error {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		if err = n.Drain(ctx); err == nil || !strings.Contains(err.Error(), "noproc") {
			return err
		}
		t.Logf("rabbitmq-upgrade drain, attempt %d, raced a closing client connection (noproc); again", attempt)
	}
	return err
}

// TestHealthAMQPWrongPassword: a node that refuses the login is down for
// AMQP_CHECK, and the password is nowhere in the error.
func TestHealthAMQPWrongPassword(t *testing.T) {
	const secret = "not-the-password-4711"
	c := &health.AMQP{Addr: hostPort(t, shared.Node(0).DirectURI()), Timeout: 5 * time.Second, User: "guest", Password: secret}
	r := c.Check(context.Background())
	if r.OK || r.Err == nil {
		t.Fatalf("AMQP_CHECK with a wrong password passed: %+v", r)
	}
	if strings.Contains(r.Err.Error(), secret) {
		t.Errorf("error shows the password: %v", r.Err)
	}
	t.Logf("wrong password: %v", r.Err)
}

// TestHealthAMQPQueue: with queue set, AMQP_CHECK passes while the queue
// exists and fails once it is gone.
func TestHealthAMQPQueue(t *testing.T) {
	n := shared.Node(0)
	conn, err := amqp.DialConfig(n.DirectURI(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("health-%d", time.Now().UnixNano())
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	c := &health.AMQP{Addr: hostPort(t, n.DirectURI()), Timeout: 5 * time.Second, Queue: name}
	if r := c.Check(context.Background()); !r.OK {
		t.Fatalf("AMQP_CHECK of an existing queue: %v", r.Err)
	}
	if _, err := ch.QueueDelete(name, false, false, false); err != nil {
		t.Fatal(err)
	}
	r := c.Check(context.Background())
	if r.OK || !strings.Contains(r.Err.Error(), "404") {
		t.Fatalf("AMQP_CHECK of a deleted queue: %+v", r)
	}
	t.Logf("deleted queue: %v", r.Err)
}

// TestHealthHTTPGetConfigAuth: HTTP_GET written in the configuration with
// vipd's user and password keywords reaches the management API's health
// endpoint on a real node: it passes with the right credentials, fails
// (401) with wrong ones, and the password is nowhere in the error.
func TestHealthHTTPGetConfigAuth(t *testing.T) {
	const secret = "not-the-password-4711"
	n := shared.Node(0)
	amqpAddr, mgmtAddr := hostPort(t, n.DirectURI()), hostPort(t, n.ManagementURL())
	rs := func(password string) string {
		return fmt.Sprintf(`    real_server %s %d {
        HTTP_GET {
            connect_port %d
            connect_timeout 5
            user guest
            password %s
            url {
                path /api/health/checks/alarms
                status_code 200
            }
        }
    }
`, amqpAddr.Addr(), amqpAddr.Port(), mgmtAddr.Port(), password)
	}
	text := fmt.Sprintf("virtual_server 10.0.0.100 %d {\n%s}\nvirtual_server 10.0.0.101 %d {\n%s}\n",
		amqpAddr.Port(), rs("guest"), amqpAddr.Port(), rs(secret))
	cfg, err := config.Parse("auth.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	result := func(vs int) health.Result {
		t.Helper()
		checks, err := health.FromConfig(&cfg.VirtualServers[vs].RealServers[0], health.Options{})
		if err != nil || len(checks) != 1 {
			t.Fatalf("FromConfig: %v, %d checks", err, len(checks))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return checks[0].Checker.Check(ctx)
	}
	if r := result(0); !r.OK {
		t.Fatalf("HTTP_GET with the right credentials failed: %v", r.Err)
	}
	r := result(1)
	if r.OK || r.Err == nil || !strings.Contains(r.Err.Error(), "401") {
		t.Fatalf("HTTP_GET with a wrong password: %+v, want a failure naming 401", r)
	}
	if strings.Contains(r.Err.Error(), secret) {
		t.Errorf("error shows the password: %v", r.Err)
	}
	t.Logf("wrong password: %v", r.Err)
}
