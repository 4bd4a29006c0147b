package cluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Node is one RabbitMQ node of a Cluster. Its fault operations (Kill, Stop,
// Pause, Cut, Drain, SetAlarm, …) return once the fault is in effect. They
// are safe for concurrent use, but two operations on one node at once have
// no defined order.
type Node struct {
	c     *Cluster
	index int
	name  string // Erlang node name
	seed  string // the member a fresh node joins (classic_config peer discovery)
	dir   string
	proxy *proxy
	tls   string // the TLS part of its rabbitmq.conf, with Options.TLS

	mu      sync.Mutex
	proc    *nodeProc // nil while stopped
	paused  bool
	removed bool // by RemoveNode; Start refuses
}

// nodeProc is one run of a node, from start to exit.
type nodeProc struct {
	*process
	beam int // pid of beam.smp once the node is ready
}

// newNode prepares node i, which joins seed when it first starts: its
// directory, configuration and proxy. A directory left by an earlier node
// i goes.
func newNode(c *Cluster, i int, seed string) (*Node, error) {
	n := &Node{
		c:     c,
		index: i,
		name:  c.nodeName(i),
		seed:  seed,
		dir:   filepath.Join(c.dir, "nodes", strconv.Itoa(i)),
	}
	if err := os.RemoveAll(n.dir); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	plugins := "[rabbitmq_management].\n"
	if c.pki != nil {
		var err error
		if n.tls, err = n.tlsConfig(); err != nil {
			return nil, err
		}
		plugins = "[rabbitmq_management,rabbitmq_auth_mechanism_ssl].\n"
	}
	if err := os.WriteFile(filepath.Join(n.dir, "rabbitmq.conf"), []byte(n.config()), 0o644); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "enabled_plugins"), []byte(plugins), 0o644); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	ln, err := net.Listen("tcp", n.addr(portProxy))
	if err != nil {
		return nil, fmt.Errorf("cluster: proxy for node %d: %w", i, err)
	}
	n.proxy = newProxy(ln, n.addr(portAMQP))
	return n, nil
}

func (n *Node) port(which int) int { return n.c.ports.node(n.index, which) }
func (n *Node) addr(which int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port(which)))
}
func (n *Node) pidFile() string    { return filepath.Join(n.dir, "rabbitmq.pid") }
func (n *Node) consoleLog() string { return filepath.Join(n.dir, "console.log") }
func (n *Node) logFile() string    { return filepath.Join(n.dir, "log", n.name+".log") }
func (n *Node) String() string     { return fmt.Sprintf("node %d (%s)", n.index, n.name) }
func (n *Node) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listeners.tcp.1 = %s\n", n.addr(portAMQP))
	if ip := n.c.opts.ExtraIP; ip != "" {
		// rabbitmq.conf writes IPv6 listeners without brackets.
		fmt.Fprintf(&b, "listeners.tcp.2 = %s:%d\n", ip, n.port(portAMQP))
	}
	fmt.Fprintf(&b, "management.tcp.ip = 127.0.0.1\n")
	fmt.Fprintf(&b, "management.tcp.port = %d\n", n.port(portMgmt))
	fmt.Fprintf(&b, "cluster_formation.peer_discovery_backend = classic_config\n")
	fmt.Fprintf(&b, "cluster_formation.classic_config.nodes.1 = %s\n", n.seed)
	// A node paused for longer than net_ticktime comes back to a
	// partitioned cluster; RabbitMQ's default ("ignore") would leave it so.
	fmt.Fprintf(&b, "cluster_partition_handling = autoheal\n")
	fmt.Fprintf(&b, "log.file.level = info\n")
	b.WriteString(n.tls)
	if extra := strings.TrimSpace(n.c.opts.Config); extra != "" {
		b.WriteString(extra + "\n")
	}
	return b.String()
}

// Index is the node's position in the cluster, from 0.
func (n *Node) Index() int { return n.index }

// Name is the node's Erlang node name, as RabbitMQ reports it.
func (n *Node) Name() string { return n.name }

// URI is the node's AMQP URI through the harness's proxy, which Cut can
// sever. Programs under test should use it.
func (n *Node) URI() string { return amqpURI(n.proxy.addr()) }

// DirectURI is the node's AMQP URI without the proxy.
func (n *Node) DirectURI() string { return amqpURI(n.addr(portAMQP)) }

// ManagementURL is the base URL of the node's management HTTP API
// (user guest, password guest).
func (n *Node) ManagementURL() string { return "http://" + n.addr(portMgmt) }

func amqpURI(hostport string) string {
	u := url.URL{Scheme: "amqp", User: url.UserPassword("guest", "guest"), Host: hostport, Path: "/"}
	return u.String()
}

// Running reports whether the node's process is up (it may be paused).
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc != nil && !n.proc.exited()
}

// Paused reports whether the node is stopped by Pause.
func (n *Node) Paused() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.paused && n.proc != nil && !n.proc.exited()
}

// Pid is the pid of the node's Erlang VM, 0 while stopped.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || n.proc.exited() {
		return 0
	}
	return n.proc.beam
}

// env is the environment of the node's rabbitmq-server script.
func (n *Node) env() []string {
	erlArgs := "-kernel inet_dist_use_interface {127,0,0,1}"
	if t := n.c.opts.NetTicktime; t > 0 {
		erlArgs += fmt.Sprintf(" -kernel net_ticktime %d", int(t/time.Second))
	}
	return append(n.c.baseEnv(),
		"RABBITMQ_NODENAME="+n.name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT="+strconv.Itoa(n.port(portAMQP)),
		"RABBITMQ_DIST_PORT="+strconv.Itoa(n.port(portDist)),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(n.dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(n.dir, "log"),
		"RABBITMQ_PID_FILE="+n.pidFile(),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(n.dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(n.dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(n.dir, "enabled_plugins"),
		"RABBITMQ_PLUGINS_EXPAND_DIR="+filepath.Join(n.dir, "plugins-expand"),
		"RABBITMQ_SCHEDULER_BUSY_WAIT_THRESHOLD=none",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+erlArgs,
	)
}

// Start starts a stopped node and waits until RabbitMQ and its plugins run
// on it. A node that was part of the cluster rejoins it.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	// Checked under mu: Close marks the cluster closed before teardown
	// takes mu, so a process started here is one teardown kills.
	select {
	case <-n.c.closed:
		n.mu.Unlock()
		return ErrClosed
	default:
	}
	if n.removed {
		n.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrRemoved, n)
	}
	if n.proc != nil && !n.proc.exited() {
		n.mu.Unlock()
		return fmt.Errorf("cluster: %v is already running", n)
	}
	os.Remove(n.pidFile()) // a pid file left by a kill would mislead "wait"
	console, err := os.OpenFile(n.consoleLog(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		n.mu.Unlock()
		return fmt.Errorf("cluster: %w", err)
	}
	cmd := exec.Command(filepath.Join(n.c.opts.BinDir, "rabbitmq-server"))
	cmd.Env = n.env()
	cmd.Dir = n.dir
	cmd.Stdout = console
	cmd.Stderr = console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p, err := startProcess(cmd)
	console.Close() // the child holds its own copy
	if err != nil {
		n.mu.Unlock()
		return fmt.Errorf("cluster: start %v: %w", n, err)
	}
	proc := &nodeProc{process: p}
	n.proc, n.paused = proc, false
	n.mu.Unlock()

	if err := n.c.recordPgid(cmd.Process.Pid); err != nil {
		return err
	}
	n.c.log.Info("node starting", "node", n.index)
	began := time.Now()
	if err := n.waitReady(ctx, proc); err != nil {
		return err
	}
	n.c.log.Info("node running", "node", n.index, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// waitReady waits until the node's applications run, and notes its pid.
func (n *Node) waitReady(ctx context.Context, proc *nodeProc) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-proc.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	timeout := 120
	if d, ok := ctx.Deadline(); ok {
		timeout = max(1, int(time.Until(d)/time.Second))
	}
	_, err := n.Ctl(ctx, "rabbitmqctl", "wait", n.pidFile(), "--timeout", strconv.Itoa(timeout))
	if proc.exited() {
		return fmt.Errorf("cluster: %v exited while starting; its console said:\n%s", n, tail(n.consoleLog(), 2048))
	}
	if err != nil {
		return fmt.Errorf("cluster: %v did not start: %w\nits log ends with:\n%s", n, err, tail(n.logFile(), 3000))
	}
	b, err := os.ReadFile(n.pidFile())
	if err != nil {
		return fmt.Errorf("cluster: %v: %w", n, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("cluster: %v: bad pid file: %w", n, err)
	}
	n.mu.Lock()
	proc.beam = pid
	n.mu.Unlock()
	return nil
}

// running returns the node's current run, or ErrNotRunning.
func (n *Node) running() (*nodeProc, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil || n.proc.exited() {
		return nil, fmt.Errorf("%w: %v", ErrNotRunning, n)
	}
	return n.proc, nil
}

// signal sends sig to the node's Erlang VM, or to its whole process group
// while the VM's pid is not known yet.
func (n *Node) signal(p *nodeProc, sig syscall.Signal) error {
	n.mu.Lock()
	pid := p.beam
	n.mu.Unlock()
	if pid == 0 {
		pid = -p.cmd.Process.Pid
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("cluster: signal %v to %v: %w", sig, n, err)
	}
	return nil
}

// Kill crashes the node: SIGKILL to its Erlang VM, as a power loss or the
// OOM killer would. It returns once the process is gone. The other nodes
// notice at once (the distribution links break).
func (n *Node) Kill(ctx context.Context) error {
	p, err := n.running()
	if err != nil {
		return err
	}
	n.c.log.Info("node kill", "node", n.index)
	n.signal(p, syscall.SIGKILL)
	return n.waitExit(ctx, p)
}

// Stop shuts the node down gracefully (SIGTERM: RabbitMQ closes its client
// connections with connection.close 320 and leaves the cluster cleanly) and
// waits until it has exited. If ctx ends first the node is killed.
func (n *Node) Stop(ctx context.Context) error {
	p, err := n.running()
	if err != nil {
		return err
	}
	n.c.log.Info("node stop", "node", n.index)
	n.signal(p, syscall.SIGCONT)
	if err := n.signal(p, syscall.SIGTERM); err != nil {
		return err
	}
	if err := n.waitExit(ctx, p); err != nil {
		n.signal(p, syscall.SIGKILL)
		n.waitExit(context.Background(), p)
		return err
	}
	return nil
}

// Restart stops the node gracefully and starts it again.
func (n *Node) Restart(ctx context.Context) error {
	if err := n.Stop(ctx); err != nil {
		return err
	}
	return n.Start(ctx)
}

// Pause freezes the node's Erlang VM with SIGSTOP: a hung node. The kernel
// still completes TCP handshakes on its ports, but nothing answers. It
// returns once the kernel reports the VM stopped.
func (n *Node) Pause() error {
	return n.setPaused(true)
}

// Resume lets a paused node run again (SIGCONT) and returns once the kernel
// reports the VM no longer stopped.
func (n *Node) Resume() error {
	return n.setPaused(false)
}

func (n *Node) setPaused(pause bool) error {
	p, err := n.running()
	if err != nil {
		return err
	}
	n.c.log.Info("node pause", "node", n.index, "paused", pause)
	sig := syscall.SIGCONT
	if pause {
		sig = syscall.SIGSTOP
	}
	if err := n.signal(p, sig); err != nil {
		return err
	}
	n.mu.Lock()
	n.paused = pause
	pid := p.beam
	n.mu.Unlock()
	// Signals are delivered asynchronously; wait until /proc agrees.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return poll(ctx, 5*time.Millisecond, func() (bool, error) {
		s := State(pid)
		return s == 0 || (s == 'T') == pause, nil
	})
}

// waitExit waits until run p of the node has exited, then clears it.
func (n *Node) waitExit(ctx context.Context, p *nodeProc) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		return fmt.Errorf("cluster: %v did not exit: %w", n, ctx.Err())
	}
	// Helpers the VM started in its process group go with it.
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	n.mu.Lock()
	if n.proc == p {
		n.proc, n.paused = nil, false
	}
	n.mu.Unlock()
	return nil
}

// Cut cuts the node off the network as its clients see it: traffic through
// its proxy (URI) stops in both directions without FIN or RST, and new
// connections hang. The node stays up and clustered.
func (n *Node) Cut() {
	n.c.log.Info("node cut", "node", n.index)
	n.proxy.setCut(true)
}

// Heal undoes Cut; held traffic flows again.
func (n *Node) Heal() {
	n.c.log.Info("node heal", "node", n.index)
	n.proxy.setCut(false)
}

// IsCut reports whether the node is cut off by Cut.
func (n *Node) IsCut() bool { return n.proxy.isCut() }

// ResetConnections closes every client connection through the node's proxy
// with an RST and reports how many it closed. New connections still work.
func (n *Node) ResetConnections() int {
	n.c.log.Info("node reset connections", "node", n.index)
	return n.proxy.reset()
}

// ProxyConnections is the number of client connections open through the
// node's proxy.
func (n *Node) ProxyConnections() int { return n.proxy.count() }

// teardown kills the node and closes its proxy, for Cluster.Close.
func (n *Node) teardown() error {
	n.proxy.close()
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil || p.exited() {
		return nil
	}
	n.signal(p, syscall.SIGCONT)
	n.signal(p, syscall.SIGKILL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return n.waitExit(ctx, p)
}
