package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The stall mode runs the hand-written loop in a process of its own, as a
// service using it would be: sharing the bench's Go runtime with amqpha,
// the two clients' goroutines would queue behind each other on its two
// cores (which of the two reads its socket's EOF first, when a node dies,
// decided up to 1.4 ms). The bench starts itself again with these
// variables set; the child publishes as stallLoop does and writes to its
// stdout, one line each:
//
//	node <i>                 the node it is connected to, -1 while none (on change)
//	ok <message-id> <ns>     a confirm, at that wall-clock time in ns since the epoch
//	err <text>               a publish that failed
//	fail <text>              it could not start
//
// It stops when its stdin ends. The URIs travel in the environment, not
// on the command line, where ps would show their passwords.
const (
	envLoopChild   = "AMQPHA_BENCH_LOOP"
	envLoopURIs    = "AMQPHA_BENCH_LOOP_URIS" // newline-separated
	envLoopFirst   = "AMQPHA_BENCH_LOOP_FIRST"
	envLoopQueue   = "AMQPHA_BENCH_LOOP_QUEUE"
	envLoopVerbose = "AMQPHA_BENCH_LOOP_VERBOSE"

	loopFlushEvery = 2 * time.Millisecond // how often the child writes what it has
)

// loopChild is the child's main: it returns the exit code.
func loopChild() int {
	out := &lineWriter{w: bufio.NewWriter(os.Stdout)}
	defer out.flush()
	first, err := strconv.Atoi(os.Getenv(envLoopFirst))
	uris := strings.Split(os.Getenv(envLoopURIs), "\n")
	queue := os.Getenv(envLoopQueue)
	if err != nil || first < 0 || first >= len(uris) || queue == "" {
		out.printf("fail bad environment: first %q, %d URIs, queue %q", os.Getenv(envLoopFirst), len(uris), queue)
		return 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	say := func(string, ...any) {}
	if os.Getenv(envLoopVerbose) == "1" {
		say = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s loop: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
		}
	}
	lp := newStallLoop(uris, first, queue, say)
	defer lp.close()
	if err := lp.connect(ctx); err != nil {
		out.printf("fail %s", oneLine(err))
		return 1
	}
	last := -2
	report := func() {
		if n := lp.node(); n != last {
			last = n
			out.printf("node %d", n)
		}
		out.flush()
	}
	report()
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(loopFlushEvery)
		defer t.Stop()
		for {
			select {
			case <-stopped:
				return
			case <-t.C:
				report()
			}
		}
	})
	publishEach(ctx, "loop", lp.publish,
		func(c stallConfirm) { out.printf("ok %s %d", c.id, c.at.UnixNano()) },
		func(err error) { out.printf("err %s", oneLine(err)) })
	close(stopped)
	wg.Wait()
	lp.close()
	report()
	return 0
}

// lineWriter writes lines from several goroutines into one buffer.
type lineWriter struct {
	mu sync.Mutex
	w  *bufio.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	fmt.Fprintf(l.w, format+"\n", args...)
	l.mu.Unlock()
}

func (l *lineWriter) flush() {
	l.mu.Lock()
	l.w.Flush()
	l.mu.Unlock()
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }

// loopProc is the parent's side of a loop child: its confirms arrive in a
// stallDriver, as the in-process drivers' do.
type loopProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	cur   atomic.Int64 // the child's node, -1 while none
	d     *stallDriver // written by read until d.done is closed
	ready chan struct{}
	once  sync.Once
	fail  atomic.Pointer[string]
	stop  func() // ends the child's publishing; safe twice
}

// startLoopProc starts a loop child publishing into queue, connected first
// to node first of uris, and waits until it is connected.
func startLoopProc(ctx context.Context, uris []string, first int, queue string, verbose bool) (*loopProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	v := "0"
	if verbose {
		v = "1"
	}
	cmd.Env = append(os.Environ(), envLoopChild+"=1", envLoopURIs+"="+strings.Join(uris, "\n"),
		envLoopFirst+"="+strconv.Itoa(first), envLoopQueue+"="+queue, envLoopVerbose+"="+v)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &loopProc{cmd: cmd, stdin: stdin, d: &stallDriver{done: make(chan struct{})}, ready: make(chan struct{})}
	p.stop = sync.OnceFunc(func() { stdin.Close() })
	p.cur.Store(-1)
	go p.read(stdout)
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case <-p.ready:
	case <-t.C:
	case <-ctx.Done():
	}
	if p.node() < 0 {
		err := errors.New("the loop's process did not connect in a minute")
		if f := p.fail.Load(); f != nil {
			err = fmt.Errorf("the loop's process: %s", *f)
		} else if ctx.Err() != nil {
			err = ctx.Err()
		}
		p.close()
		return nil, err
	}
	return p, nil
}

// read takes the child's lines until its stdout ends.
func (p *loopProc) read(r io.Reader) {
	defer close(p.d.done)
	defer p.once.Do(func() { close(p.ready) })
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		kind, rest, _ := strings.Cut(sc.Text(), " ")
		switch kind {
		case "node":
			if n, err := strconv.Atoi(rest); err == nil {
				p.cur.Store(int64(n))
				if n >= 0 {
					p.once.Do(func() { close(p.ready) })
				}
			}
		case "ok":
			id, ns, _ := strings.Cut(rest, " ")
			n, err := strconv.ParseInt(ns, 10, 64)
			if err != nil {
				continue
			}
			p.d.confirmed(stallConfirm{id: id, at: time.Unix(0, n)})
		case "err":
			p.d.failed(errors.New(rest))
		case "fail":
			p.fail.Store(&rest)
		}
	}
	io.Copy(io.Discard, r)
}

// node is the index of the node the child is connected to, -1 while none
// (as of its last report, at most loopFlushEvery old).
func (p *loopProc) node() int { return int(p.cur.Load()) }

// close stops the child and waits for it: 10 s for it to close its
// connection and exit, then it is killed. Safe twice.
func (p *loopProc) close() {
	p.stop()
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case <-p.d.done:
	case <-t.C:
		p.cmd.Process.Kill()
		<-p.d.done
	}
	p.cmd.Wait()
}
