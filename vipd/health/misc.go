package health

import (
	"bytes"
	"context"
	"strconv"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
)

// Misc is a MISC_CHECK: a program whose exit status is the verdict. It
// runs as package script runs every script (a shell only where keepalived
// uses one), in its own process group, killed with its children
// when Command.Timeout (misc_timeout) passes; see package
// [github.com/amqpha/amqpha/vipd/script].
//
// Exit status 0 passes. Without Dynamic every other status, a timeout and
// a death by signal fail. With Dynamic (misc_dynamic), as in keepalived,
// 1 fails and 2..255 pass and set the real server's weight to status-2
// (0..253); 0 passes and leaves the weight as it was.
//
// Check may be called from several goroutines at once.
type Misc struct {
	Command script.Command
	Dynamic bool
}

var _ Checker = (*Misc)(nil)

// maxQuoted is how much of a failing program's output goes into its error.
const maxQuoted = 200

// Check runs the program once and waits for it, its timeout or ctx.
func (c *Misc) Check(ctx context.Context) Result {
	start := time.Now()
	target := "(no program)"
	if len(c.Command.Argv) > 0 {
		target = c.Command.Argv[0]
	}
	failed := func(err error) Result {
		return fail(start, &CheckError{Check: "MISC_CHECK", Target: target, Err: err})
	}
	r, err := script.Run(ctx, c.Command)
	switch {
	case r.TimedOut:
		return failed(timeoutf(err, "killed after misc_timeout %v", timeoutOr(c.Command.Timeout, script.DefaultTimeout)))
	case err != nil:
		return failed(err)
	case r.ExitCode == 0:
		return pass(start)
	case c.Dynamic && r.ExitCode >= 2 && r.ExitCode <= 255:
		res := pass(start)
		res.Weight, res.WeightSet = r.ExitCode-2, true
		return res
	}
	return failed(&kindError{msg: exitMessage(r), kind: ErrExit})
}

// exitMessage describes a failing exit, with the first line of the
// program's output.
func exitMessage(r script.Result) string {
	msg := "exit status " + strconv.Itoa(r.ExitCode)
	line, _, _ := bytes.Cut(bytes.TrimSpace(r.Output), []byte("\n"))
	if len(line) > maxQuoted {
		line = append(line[:maxQuoted:maxQuoted], "…"...)
	}
	if len(line) > 0 {
		msg += ": " + string(line)
	}
	return msg
}
