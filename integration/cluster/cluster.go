package cluster

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultBinDir is where Debian's rabbitmq-server package keeps the scripts
// the harness runs. Debian's /usr/sbin wrappers drop the environment, so the
// harness calls these directly.
const DefaultBinDir = "/usr/lib/rabbitmq/bin"

// ErrNotInstalled reports that RabbitMQ or Erlang is missing. The project's
// scripts/setup.sh installs them.
var ErrNotInstalled = errors.New("cluster: RabbitMQ is not installed (run scripts/setup.sh)")

// ErrNotRunning is returned by operations on a node that is stopped.
var ErrNotRunning = errors.New("cluster: node is not running")

// ErrClosed is returned by operations on a cluster after Close.
var ErrClosed = errors.New("cluster: closed")

// ErrRemoved is returned by Start on a node that RemoveNode took out of the
// cluster.
var ErrRemoved = errors.New("cluster: node was removed from the cluster")

// ErrFull is returned by AddNode when the cluster already has MaxNodes
// nodes.
var ErrFull = fmt.Errorf("cluster: the cluster already has %d nodes, the most one can hold", MaxNodes)

//go:embed watchdog.sh
var watchdogScript string

// Options configures a cluster. The zero value starts three nodes with
// RabbitMQ's defaults under os.TempDir().
type Options struct {
	// Nodes is the number of nodes, 1 to MaxNodes; 0 means 3.
	Nodes int
	// NetTicktime sets Erlang's net_ticktime (whole seconds): how long the
	// other nodes take to declare a hung node down. 0 keeps RabbitMQ's
	// default of 60 s.
	NetTicktime time.Duration
	// Config holds extra lines in rabbitmq.conf syntax added to every node's
	// configuration.
	Config string
	// ExtraIP, if set, is an address of this host on which every node
	// accepts AMQP connections too, on the same port as on 127.0.0.1
	// (the port of [Node.DirectURI]; the cut-able proxy stays on
	// loopback). The address must exist when the cluster starts. RabbitMQ
	// lets guest log in from loopback only: clients that come through
	// ExtraIP need a user of their own ([Cluster.AddUser]).
	ExtraIP string
	// Dir is the parent of the cluster's own directory; "" means
	// os.TempDir().
	Dir string
	// BinDir holds rabbitmq-server and the CLI tools; "" means
	// DefaultBinDir.
	BinDir string
	// MaxLifetime bounds how long the cluster may outlive a dead owner's
	// watchdog check: after it the watchdog tears the cluster down even if
	// the owner still runs. 0 means 48 hours.
	MaxLifetime time.Duration
	// TLS gives every node TLS listeners besides the plain ones: AMQP
	// ([Node.TLSURI]) and the management API ([Node.ManagementTLSURL]),
	// with certificates made at Start ([Cluster.TLS]): a CA, a server
	// certificate per node for localhost and 127.0.0.1, and a client
	// certificate. Clients may log in with that certificate (SASL
	// EXTERNAL, the rabbitmq_auth_mechanism_ssl plugin, the user named
	// after its common name, [TLSClientName]) or with a password.
	TLS bool
	// Logger receives what the harness does; nil discards it.
	Logger *slog.Logger
}

// Validate reports whether the options can start a cluster.
func (o Options) Validate() error {
	if o.Nodes < 0 || o.Nodes > MaxNodes {
		return fmt.Errorf("cluster: Nodes = %d, want 1..%d", o.Nodes, MaxNodes)
	}
	if o.NetTicktime < 0 || o.NetTicktime%time.Second != 0 {
		return fmt.Errorf("cluster: NetTicktime = %v, want whole seconds", o.NetTicktime)
	}
	if o.MaxLifetime < 0 {
		return fmt.Errorf("cluster: MaxLifetime = %v, want >= 0", o.MaxLifetime)
	}
	if o.ExtraIP != "" && net.ParseIP(o.ExtraIP) == nil {
		return fmt.Errorf("cluster: ExtraIP = %q, want an IP address", o.ExtraIP)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Dir == "" {
		o.Dir = os.TempDir()
	}
	if o.BinDir == "" {
		o.BinDir = DefaultBinDir
	}
	if o.MaxLifetime == 0 {
		o.MaxLifetime = 48 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Cluster is a RabbitMQ cluster of real nodes on loopback, started by Start
// and torn down by Close. Its methods are safe for concurrent use; each node
// operation waits until it has taken effect.
type Cluster struct {
	opts  Options
	id    string
	dir   string
	home  string
	ports *portBlock
	log   *slog.Logger

	// nodesMu guards nodes, the current members in Index order, and
	// orders AddNode against Close.
	nodesMu sync.Mutex
	nodes   []*Node

	epmd     *process
	watchdog *process

	pgMu sync.Mutex // serialises appends to dir/pgids

	pki *pki // with Options.TLS

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// process is a child process and the channel closed when it exits.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Start starts a cluster and returns once every node runs and all of them
// see each other as running members. On error nothing of it is left behind.
// ctx bounds the start; the cluster itself lives until Close.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := checkInstalled(opts.BinDir); err != nil {
		return nil, err
	}
	began := time.Now()
	c := &Cluster{opts: opts, id: randomHex(3), log: opts.Logger, closed: make(chan struct{})}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()

	if c.ports, err = claimPorts(filepath.Join(os.TempDir(), "amqpha-ports")); err != nil {
		return nil, err
	}
	if c.dir, err = os.MkdirTemp(opts.Dir, "amqpha-cluster-"); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	c.log = c.log.With("cluster", c.id)
	if err := c.writeHome(); err != nil {
		return nil, err
	}
	if err := c.startWatchdog(); err != nil {
		return nil, err
	}
	if err := c.startEPMD(ctx); err != nil {
		return nil, err
	}
	if opts.TLS {
		if c.pki, err = newPKI(filepath.Join(c.dir, "tls")); err != nil {
			return nil, err
		}
	}
	// The first node forms the cluster; the others find it through
	// classic_config peer discovery and join it, all at once.
	for range opts.Nodes {
		if _, err := c.register(c.nodeName(0)); err != nil {
			return nil, err
		}
	}
	if err := c.Node(0).Start(ctx); err != nil {
		return nil, err
	}
	if err := c.StartAll(ctx); err != nil {
		return nil, err
	}
	if opts.TLS {
		if err := c.addTLSUser(ctx); err != nil {
			return nil, err
		}
	}
	c.log.Info("cluster ready", "nodes", opts.Nodes, "dir", c.dir, "took", time.Since(began).Round(time.Millisecond))
	return c, nil
}

// checkInstalled reports ErrNotInstalled unless rabbitmq-server, the CLI and
// epmd are present.
func checkInstalled(binDir string) error {
	for _, f := range []string{"rabbitmq-server", "rabbitmqctl", "rabbitmq-diagnostics", "rabbitmq-upgrade"} {
		if _, err := os.Stat(filepath.Join(binDir, f)); err != nil {
			return fmt.Errorf("%w: %s missing", ErrNotInstalled, filepath.Join(binDir, f))
		}
	}
	if _, err := exec.LookPath("epmd"); err != nil {
		return fmt.Errorf("%w: epmd not in PATH", ErrNotInstalled)
	}
	return nil
}

// writeHome creates the HOME every node and CLI call shares, holding the
// cluster's own Erlang cookie.
func (c *Cluster) writeHome() error {
	c.home = filepath.Join(c.dir, "home")
	if err := os.MkdirAll(c.home, 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cookie := filepath.Join(c.home, ".erlang.cookie")
	if err := os.WriteFile(cookie, []byte(strings.ToUpper(randomHex(20))), 0o400); err != nil {
		return fmt.Errorf("cluster: cookie: %w", err)
	}
	// An empty env file keeps /etc/rabbitmq/rabbitmq-env.conf out.
	if err := os.WriteFile(c.confEnvFile(), nil, 0o644); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

func (c *Cluster) confEnvFile() string { return filepath.Join(c.dir, "rabbitmq-env.conf") }

// baseEnv is the environment shared by nodes and CLI calls: nothing of the
// caller's environment but PATH, so a developer's RABBITMQ_* variables do not
// leak in.
func (c *Cluster) baseEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	return []string{
		"PATH=" + path,
		"HOME=" + c.home,
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT=" + strconv.Itoa(c.ports.epmd()),
		"RABBITMQ_CONF_ENV_FILE=" + c.confEnvFile(),
		"RABBITMQ_CTL_DIST_PORT_MIN=" + strconv.Itoa(c.ports.ctlMin()),
		"RABBITMQ_CTL_DIST_PORT_MAX=" + strconv.Itoa(c.ports.ctlMin()+ctlPortsCount-1),
	}
}

// startWatchdog starts the process that tears the cluster down if this
// process dies without calling Close (a test timeout, SIGKILL, a panic).
func (c *Cluster) startWatchdog() error {
	limit := strconv.Itoa(int(c.opts.MaxLifetime / time.Second))
	cmd := exec.Command("/bin/bash", "-c", watchdogScript, "watchdog", strconv.Itoa(os.Getpid()), c.dir, limit)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("cluster: watchdog: %w", err)
	}
	c.watchdog = p
	return nil
}

// startEPMD starts the cluster's own Erlang port mapper, so that clusters on
// one machine do not share the one on 4369, and waits until it listens.
func (c *Cluster) startEPMD(ctx context.Context) error {
	port := strconv.Itoa(c.ports.epmd())
	cmd := exec.Command("epmd", "-port", port, "-address", "127.0.0.1")
	cmd.Env = c.baseEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("cluster: epmd: %w", err)
	}
	c.epmd = p
	if err := c.recordPgid(cmd.Process.Pid); err != nil {
		return err
	}
	return poll(ctx, 20*time.Millisecond, func() (bool, error) {
		if p.exited() {
			return false, &fatalError{fmt.Errorf("cluster: epmd on port %s exited at start", port)}
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), time.Second)
		if err != nil {
			return false, nil
		}
		conn.Close()
		return true, nil
	})
}

// recordPgid notes a process group for the watchdog.
func (c *Cluster) recordPgid(pgid int) error {
	c.pgMu.Lock()
	defer c.pgMu.Unlock()
	f, err := os.OpenFile(filepath.Join(c.dir, "pgids"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	_, err = fmt.Fprintln(f, pgid)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// startProcess starts cmd and closes the returned process's done channel
// when it exits.
func startProcess(cmd *exec.Cmd) (*process, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// StartAll starts every stopped node at once and waits until all of them
// run and see each other. Nodes that were all stopped come back together
// this way (a node that stopped last waits for its peers).
func (c *Cluster) StartAll(ctx context.Context) error {
	var wg sync.WaitGroup
	nodes := c.Nodes()
	errs := make([]error, len(nodes))
	for i, n := range nodes {
		if n.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.startBooting(ctx, n)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return c.WaitClustered(ctx)
}

// startBooting starts n while others boot too. RabbitMQ 3.10 sometimes
// fails such a boot while syncing feature flags with a peer that is itself
// still booting (incompatible_feature_flags, a badmap in
// rabbit_feature_flags); starting the node again then works, so it is
// tried up to three times.
func (c *Cluster) startBooting(ctx context.Context, n *Node) error {
	for attempt := 1; ; attempt++ {
		err := n.Start(ctx)
		if err == nil || attempt == 3 || !strings.Contains(err.Error(), "incompatible_feature_flags") {
			return err
		}
		c.log.Warn("node failed to boot beside booting peers (RabbitMQ 3.10 feature flag race); starting it again", "node", n.index, "attempt", attempt)
		if n.Running() {
			if kerr := n.Kill(ctx); kerr != nil {
				return errors.Join(err, kerr)
			}
		}
	}
}

// WaitClustered waits until every running node lists every running node as
// a running member of the cluster. A partition that RabbitMQ's autoheal has
// not healed within partitionGrace (seen after a node hung past
// net_ticktime) is healed as an operator would: RabbitMQ is restarted
// inside the nodes that the others lost.
func (c *Cluster) WaitClustered(ctx context.Context) error {
	var partitionedSince, absentSince time.Time
	healed := map[string]bool{}
	return poll(ctx, 200*time.Millisecond, func() (bool, error) {
		nodes := c.Nodes()
		var want []string
		for _, n := range nodes {
			if n.Running() {
				want = append(want, n.Name())
			}
		}
		lost := map[string]int{}    // in a reported partition: by how many nodes
		reporting := 0              // nodes that gave their status
		absent := map[string]bool{} // running, but not in the cluster: no status, or missing from a member's view
		ok := true
		var lastErr error
		for _, n := range nodes {
			if !n.Running() {
				continue
			}
			st, err := n.Status(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return false, err
				}
				absent[n.Name()], ok, lastErr = true, false, err
				continue
			}
			reporting++
			seen := map[string]bool{}
			for _, others := range st.Partitions {
				for _, o := range others {
					if !seen[o] {
						seen[o] = true
						lost[o]++
					}
				}
			}
			for _, w := range want {
				if !slices.Contains(st.RunningNodes, w) {
					absent[w] = true
				}
			}
			ok = ok && sameSet(st.RunningNodes, want) && len(st.Partitions) == 0
		}
		if ok {
			return true, nil
		}
		// RabbitMQ heals partitions by itself (autoheal), usually within
		// partitionGrace. But 3.10's autoheal can stop the application of
		// the losing node and never start it again (seen after SIGSTOP of a
		// node: its log ends with "Successfully stopped RabbitMQ", the
		// winner keeps "sending winner notification again", and no
		// partition is reported): a node whose process runs but which no
		// member lists as running is restarted too, after absentGrace.
		partitionedSince = since(partitionedSince, len(lost) > 0)
		absentSince = since(absentSince, len(absent) > 0)
		heal := map[string]bool{}
		if len(lost) > 0 && time.Since(partitionedSince) >= partitionGrace {
			// Each side of a partition reports the other: restart only
			// the nodes a majority of the reporting nodes lost (the
			// minority side), so that the healthy majority keeps its
			// queues' leaders; all of them when no side has a majority.
			for name, n := range lost {
				if 2*n > reporting {
					heal[name] = true
				}
			}
			if len(heal) == 0 {
				for name := range lost {
					heal[name] = true
				}
			}
		}
		if len(absent) > 0 && time.Since(absentSince) >= absentGrace {
			maps.Copy(heal, absent)
		}
		for _, n := range nodes {
			if heal[n.Name()] && n.Running() && !n.Paused() && !healed[n.Name()] {
				healed[n.Name()] = true
				c.log.Warn("node left out of the cluster: restarting its application", "node", n.index,
					"partitioned", lost[n.Name()] > 0, "absent", absent[n.Name()])
				if err := n.heal(ctx); err != nil {
					return false, err
				}
			}
		}
		return false, lastErr
	})
}

// heal restarts the node's application, or, if that does not finish
// within appRestartBound (autoheal can leave the application stuck in its
// own stop: seen with "Stopping application 'rabbit'" as the last word of
// the node's log for minutes), kills the node and starts it again.
func (n *Node) heal(ctx context.Context) error {
	actx, cancel := context.WithTimeout(ctx, appRestartBound)
	err := n.restartApp(actx)
	cancel()
	if err == nil || ctx.Err() != nil {
		return err
	}
	n.c.log.Warn("node application did not restart: killing and starting the node", "node", n.index, "err", err)
	if err := n.Kill(ctx); err != nil {
		return err
	}
	return n.Start(ctx)
}

// appRestartBound bounds rabbitmqctl stop_app + start_app in heal.
const appRestartBound = 30 * time.Second

// since returns when a condition started holding: start if it already
// held, now if it just began, zero if it does not hold.
func since(start time.Time, holds bool) time.Time {
	switch {
	case !holds:
		return time.Time{}
	case start.IsZero():
		return time.Now()
	}
	return start
}

// partitionGrace is how long WaitClustered lets RabbitMQ heal a partition
// by itself; absentGrace how long a running node may stay out of the
// cluster with no partition reported (rejoining after a restart or a
// pause takes seconds) before its application is restarted.
const (
	partitionGrace = 15 * time.Second
	absentGrace    = 30 * time.Second
)

// Nodes returns the cluster's nodes, in the order of their Index: those
// Start started and those AddNode added, but not those RemoveNode removed.
func (c *Cluster) Nodes() []*Node {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	return append([]*Node(nil), c.nodes...)
}

// Node returns the node whose Index is i. It panics if there is none (never
// added, or removed), as indexing a slice out of range does.
func (c *Cluster) Node(i int) *Node {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	for _, n := range c.nodes {
		if n.index == i {
			return n
		}
	}
	panic(fmt.Sprintf("cluster: no node %d (the cluster has %d)", i, len(c.nodes)))
}

// URIs returns every node's AMQP URI through its proxy (see Node.URI), in
// the order of Nodes.
func (c *Cluster) URIs() []string {
	var uris []string
	for _, n := range c.Nodes() {
		uris = append(uris, n.URI())
	}
	return uris
}

// Dir is the directory holding the cluster's data, logs and cookie. Close
// removes it.
func (c *Cluster) Dir() string { return c.dir }

// Close kills every node, stops epmd, the proxies and the watchdog, removes
// the cluster's directory and gives back its ports. It is safe to call twice
// and from several goroutines; later calls return the first call's result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		// AddNode registers nodes only while closed is open, under
		// nodesMu: the snapshot below holds every node it registered.
		close(c.closed)
		var errs []error
		for _, n := range c.Nodes() {
			errs = append(errs, n.teardown())
		}
		if c.epmd != nil {
			errs = append(errs, killAndWait(c.epmd))
		}
		if c.dir != "" {
			errs = append(errs, os.RemoveAll(c.dir))
		}
		if c.watchdog != nil {
			errs = append(errs, killAndWait(c.watchdog))
		}
		c.ports.release()
		c.closeErr = errors.Join(errs...)
		c.log.Info("cluster closed", "err", c.closeErr)
	})
	return c.closeErr
}

// killAndWait SIGKILLs p's process group and waits for p to exit.
func killAndWait(p *process) error {
	pid := p.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGKILL)
	syscall.Kill(pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("cluster: process %d did not exit after SIGKILL", pid)
	}
}

// poll calls cond every interval until it reports true, returns an error,
// or ctx ends. On ctx's end it returns ctx's error, joined with the last
// error cond saw.
func poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return fatal.err
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// fatalError stops poll at once.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := make(map[string]int, len(a))
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s] == 0 {
			return false
		}
		seen[s]--
	}
	return true
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// tail returns at most the last n bytes of the file at path.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// Pids lists the processes of the cluster that run now: the Erlang VM and
// start script of each running node, epmd and the watchdog.
func (c *Cluster) Pids() []int {
	var pids []int
	add := func(p *process) {
		if p != nil && !p.exited() {
			pids = append(pids, p.cmd.Process.Pid)
		}
	}
	add(c.epmd)
	add(c.watchdog)
	for _, n := range c.Nodes() {
		n.mu.Lock()
		if n.proc != nil && !n.proc.exited() {
			pids = append(pids, n.proc.cmd.Process.Pid)
			if n.proc.beam != 0 {
				pids = append(pids, n.proc.beam)
			}
		}
		n.mu.Unlock()
	}
	return pids
}

// Alive reports whether process pid exists and is not a zombie.
func Alive(pid int) bool {
	s := State(pid)
	return s != 0 && s != 'Z'
}

// State returns the state letter of process pid from /proc (R, S, T for
// stopped, Z, …), or 0 if it does not exist.
func State(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}
