package script_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
)

// A notify script gets its arguments appended, runs without a shell (so
// "$HOME" stays as written) and is killed with its children if it outlives
// its timeout.
func ExampleRun() {
	c := script.Command{Argv: []string{"/bin/echo", "state of $HOME:"}, Timeout: 2 * time.Second}
	r, err := script.Run(context.Background(), c, "MASTER")
	fmt.Printf("%q exit=%d err=%v\n", r.Output, r.ExitCode, err)
	// Output: "state of $HOME: MASTER\n" exit=0 err=<nil>
}

// A vrrp_script check: exit status 0 is success, any other status a failed
// check, which is not an error of Run's.
func ExampleResult_OK() {
	check := script.Command{Argv: []string{"/bin/sh", "-c", "test -e /nonexistent/rabbitmq.pid"}, Timeout: time.Second}
	r, err := script.Run(context.Background(), check)
	fmt.Println(r.OK(), r.ExitCode, err)
	// Output: false 1 <nil>
}

// A check that hangs, here with a child in the background, is killed with
// its whole process group when its timeout passes.
func ExampleCommand() {
	hang := script.Command{Argv: []string{"/bin/sh", "-c", "sleep 30 & sleep 30"}, Timeout: 100 * time.Millisecond}
	r, err := script.Run(context.Background(), hang)
	fmt.Println(r.TimedOut, r.ExitCode, errors.Is(err, context.DeadlineExceeded))
	// Output: true -1 true
}

// keepalived's enable_script_security: a script run as root must not be
// replaceable by anyone else. A relative path is refused, and so is a script
// everyone may write to.
func ExampleCheckSecure() {
	fmt.Println(script.CheckSecure("check_rabbit.sh"))

	f, err := os.CreateTemp("/tmp", "check_rabbit-*.sh")
	if err != nil {
		fmt.Println(err)
		return
	}
	f.Close()
	defer os.Remove(f.Name())
	if err := os.Chmod(f.Name(), 0o777); err != nil {
		fmt.Println(err)
		return
	}
	err = script.CheckSecure(f.Name())
	fmt.Println(errors.Is(err, script.ErrInsecure))
	// Output:
	// script: unsafe script path: "check_rabbit.sh" is not an absolute path
	// true
}

// keepalived's vrrp.localcheck sample checks a port with a redirection
// only: it runs through /bin/sh, which opens the file and exits 0 if it
// could. Resolve leaves it as written; a bare command name is looked up in
// PATH and checked like any path.
func ExampleResolve() {
	c, err := script.Resolve(script.Command{Argv: []string{"</etc/hostname"}}, true)
	fmt.Println(c.Argv, err, script.ShellOnly(c.Argv[0]))
	r, err := script.Run(context.Background(), c)
	fmt.Println(r.OK(), err)
	_, err = script.Resolve(script.Command{Argv: []string{"no-such-program-here"}}, true)
	fmt.Println(errors.Is(err, script.ErrNotFound))
	// Output:
	// [</etc/hostname] <nil> true
	// true <nil>
	// true
}

// Notify scripts are started and left to run: a slow one delays nothing.
func ExampleStart() {
	p, err := script.Start(context.Background(), script.Command{Argv: []string{"/bin/echo"}, Timeout: script.NoTimeout}, "INSTANCE", "VI_1", "MASTER", "100")
	if err != nil {
		fmt.Println(err)
		return
	}
	// ... start others ...
	r, err := p.Wait()
	fmt.Printf("%q %v\n", r.Output, err)
	// Output: "INSTANCE VI_1 MASTER 100\n" <nil>
}
