//go:build integration

package examples

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/integration/cluster"
	"github.com/amqpha/amqpha/integration/clustertest"
)

var shared *cluster.Cluster

// binDir holds the examples built once for every test.
var (
	binDir   string
	buildErr error
	build    sync.Once
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "amqpha-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := clustertest.Main(m, cluster.Options{NetTicktime: 10 * time.Second}, &shared)
	os.RemoveAll(dir)
	os.Exit(code)
}

// goTool is the go command: on PATH, else the one this test was built with.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// binary returns the path of the example program name, building all of
// them the first time (with -race when the tests run with it).
func binary(t *testing.T, name string) string {
	t.Helper()
	build.Do(func() {
		args := []string{"build", "-o", binDir + "/"}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/amqpha/amqpha/examples/...")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, goTool(), args...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

// proc is an example program running as a child process, its stdout and
// stderr read line by line.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	lines <-chan string
	out   []string // the lines read so far
}

// start runs example name with args and env added to the test's
// environment. The process is killed when the test ends if it still runs.
// Every line it prints is logged and checked for a password.
func start(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t, name), args...)
	cmd.Env = append(os.Environ(), env...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatal(err)
	}
	w.Close() // the child holds the write end: EOF when it exits
	lines := make(chan string, 100)
	stop := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		defer close(lines)
		defer r.Close()
		s := bufio.NewScanner(r)
		for s.Scan() {
			l := s.Text()
			t.Logf("%s: %s", name, l)
			if strings.Contains(l, "guest:guest") {
				t.Errorf("%s printed a password: %s", name, l)
			}
			select {
			case lines <- l:
			case <-stop:
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		<-scanned
	})
	return &proc{t: t, name: name, cmd: cmd, lines: lines}
}

// waitLine reads output until a line contains substr and returns that line;
// it fails the test if the program ends or timeout passes first.
func (p *proc) waitLine(substr string, timeout time.Duration) string {
	p.t.Helper()
	got := clustertest.WaitLine(p.t, p.lines, substr, timeout)
	p.out = append(p.out, got...)
	return got[len(got)-1]
}

// finish reads the rest of the output, waits for the program to exit within
// timeout and fails the test unless it exited with status 0. It returns the
// whole output.
func (p *proc) finish(timeout time.Duration) string {
	p.t.Helper()
	deadline := time.After(timeout)
	for done := false; !done; {
		select {
		case l, ok := <-p.lines:
			if !ok {
				done = true
				break
			}
			p.out = append(p.out, l)
		case <-deadline:
			p.t.Fatalf("%s did not exit within %v:\n%s", p.name, timeout, strings.Join(p.out, "\n"))
		}
	}
	text := strings.Join(p.out, "\n")
	if err := p.cmd.Wait(); err != nil {
		p.t.Fatalf("%s exited with %v:\n%s", p.name, err, text)
	}
	return text
}

// signal sends sig to the program.
func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// nodeIn returns the node whose AMQP address (host:port through the
// harness's proxy) appears in line, failing the test if none does.
func nodeIn(t *testing.T, line string) *cluster.Node {
	t.Helper()
	for _, n := range shared.Nodes() {
		if strings.Contains(line, "@"+hostPort(t, n)+"/") {
			return n
		}
	}
	t.Fatalf("no node's address in %q", line)
	return nil
}

func hostPort(t *testing.T, n *cluster.Node) string {
	u, err := url.Parse(n.URI())
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// testQueue returns a queue name of the test's own and deletes the queue
// when the test ends.
func testQueue(t *testing.T) string {
	name := fmt.Sprintf("examples-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	t.Cleanup(func() {
		ch, closeConn := rawChannel(t)
		if ch == nil {
			return
		}
		defer closeConn()
		if _, err := ch.QueueDelete(name, false, false, false); err != nil {
			t.Logf("delete %s: %v", name, err)
		}
	})
	return name
}

// rawChannel opens a plain amqp091-go channel on a running node, or returns
// nil if none answers.
func rawChannel(t *testing.T) (*amqp.Channel, func()) {
	for _, n := range shared.Nodes() {
		if !n.Running() {
			continue
		}
		conn, err := amqp.DialConfig(n.DirectURI(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err != nil {
			continue
		}
		ch, err := conn.Channel()
		if err != nil {
			conn.Close()
			continue
		}
		return ch, func() { conn.Close() }
	}
	t.Logf("no node answers")
	return nil, func() {}
}

// messagesIn returns how many messages queue holds ready.
func messagesIn(t *testing.T, queue string) int {
	t.Helper()
	ch, closeConn := rawChannel(t)
	if ch == nil {
		t.Fatal("no node answers")
	}
	defer closeConn()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Messages
}
