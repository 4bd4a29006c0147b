//go:build integration

package failover

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/amqpha/amqpha/amqpha"
)

const (
	stallChildEnv = "AMQPHA_PAUSE_CHILD_NODES"
	stallQueueEnv = "AMQPHA_PAUSE_CHILD_QUEUE"
)

// TestClientPauseIsNotAHang: a client process that is itself stopped for
// longer than HangTimeout (SIGSTOP here; a GC pause, a container's CPU
// quota or a suspended VM in life) does not take its healthy node for
// hung when it runs again: no reconnect, no failed publish.
func TestClientPauseIsNotAHang(t *testing.T) {
	restore(t)
	q := quorumQueue(t, 0, nil)
	ctx := ctxFor(t, 2*time.Minute)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), stallChildEnv+"="+strings.Join(shared.URIs(), ","), stallQueueEnv+"="+q)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGCONT)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	next := func(prefix string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the client process ended before %q", prefix)
				}
				if strings.HasPrefix(l, prefix) {
					return l
				}
				t.Logf("client: %s", l)
			case <-ctx.Done():
				t.Fatalf("no %q from the client process", prefix)
			}
		}
	}
	next("ready")
	const pauses, pause = 5, time.Second
	for i := range pauses {
		time.Sleep(rand.N(300 * time.Millisecond)) // any phase of the probes
		if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pause) // the pause under test
		if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		t.Logf("pause %d: client stopped for %v", i+1, pause)
		time.Sleep(time.Second) // the client runs between pauses
	}
	stdin.Close()
	res := next("result")
	t.Logf("client after %d pauses of %v: %s", pauses, pause, res)
	var confirmed, failed, reconnects int
	if _, err := fmt.Sscanf(res, "result confirmed=%d failed=%d reconnects=%d", &confirmed, &failed, &reconnects); err != nil {
		t.Fatalf("%q: %v", res, err)
	}
	if reconnects != 0 || failed != 0 || confirmed == 0 {
		t.Errorf("a paused client: %d reconnects, %d failed publishes, %d confirmed; want 0, 0, some", reconnects, failed, confirmed)
	}
}

// stallChild is the client process of TestClientPauseIsNotAHang: it
// publishes a message every 200 ms until its stdin closes, printing its
// reconnects (with why) as they happen, then one result line.
func stallChild() int {
	ctx := context.Background()
	var reconnects atomic.Int64
	c, err := amqpha.Dial(ctx, amqpha.Config{
		Nodes: strings.Split(os.Getenv(stallChildEnv), ","),
		OnEvent: func(e amqpha.Event) {
			if e.Kind == amqpha.EventReconnecting {
				reconnects.Add(1)
				fmt.Printf("reconnecting %s from %s: %v\n", e.Connection, e.Node, e.Err)
			}
		},
	})
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer c.Close(ctx)
	pub, err := c.NewPublisher(amqpha.PublisherConfig{})
	if err != nil {
		fmt.Println("publisher:", err)
		return 1
	}
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	queue := os.Getenv(stallQueueEnv)
	confirmed, failed := 0, 0
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := pub.Publish(pctx, "", queue, amqp.Publishing{Body: []byte("x")})
		cancel()
		if err != nil {
			failed++
			fmt.Println("publish:", err)
		} else {
			confirmed++
		}
		if i == 0 {
			fmt.Println("ready")
		}
		select {
		case <-done:
			fmt.Printf("result confirmed=%d failed=%d reconnects=%d\n", confirmed, failed, reconnects.Load())
			return 0
		case <-tick.C:
		}
	}
}
