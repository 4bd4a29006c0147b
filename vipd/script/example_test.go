package script_test

import (
	"context"
	"fmt"
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
