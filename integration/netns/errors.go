package netns

import (
	"errors"
	"strings"
)

var (
	// ErrTimeout reports that something awaited did not happen in time.
	ErrTimeout = errors.New("netns: timed out")

	// ErrExited reports that a process exited while a caller was waiting
	// for it to log something.
	ErrExited = errors.New("netns: process exited")

	// ErrNotFound reports that an address, a neighbour entry or an
	// interface asked for does not exist.
	ErrNotFound = errors.New("netns: not found")

	// ErrClosed reports the use of a [Segment] after [Segment.Close].
	ErrClosed = errors.New("netns: segment closed")
)

// CmdError is a command (usually ip) that failed, with what it printed.
type CmdError struct {
	Args   []string // the command line
	Output string   // its combined standard output and error
	Err    error    // usually an *exec.ExitError
}

func (e *CmdError) Error() string {
	msg := "netns: " + strings.Join(e.Args, " ") + ": " + e.Err.Error()
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += ": " + out
	}
	return msg
}

func (e *CmdError) Unwrap() error { return e.Err }
