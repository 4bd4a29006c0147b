package vm

import (
	"errors"
	"strings"
)

var (
	// ErrMissing is what every [*MissingError] unwraps to: something the VM
	// needs (qemu, the Debian kernel, static busybox, the go command) is
	// not installed. scripts/setup.sh installs all of it.
	ErrMissing = errors.New("vm: prerequisite missing")

	// ErrTimeout reports that the guest did not finish within
	// [Config.Timeout]; qemu was killed.
	ErrTimeout = errors.New("vm: timed out")

	// ErrNoExit reports that qemu ended without the guest's /init having
	// reported the command's exit status: a kernel panic, an /init that
	// could not run, qemu failing to start.
	ErrNoExit = errors.New("vm: guest stopped without reporting an exit status")

	// ErrSetup reports that the guest's /init failed before it could run
	// the command, e.g. a required kernel module did not load.
	ErrSetup = errors.New("vm: guest setup failed")
)

// MissingError names a missing prerequisite and how to install it.
type MissingError struct {
	What string // what is missing, e.g. "qemu-system-x86_64"
	Hint string // how to get it, e.g. "apt-get install --no-install-recommends qemu-system-x86"
	Err  error  // the underlying failure, if any
}

func (e *MissingError) Error() string {
	msg := "vm: missing " + e.What
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrMissing and the underlying error.
func (e *MissingError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrMissing}
	}
	return []error{ErrMissing, e.Err}
}

// GuestError is a run whose guest did not report an exit status. It wraps
// [ErrTimeout], [ErrNoExit], [ErrSetup] or the caller's context error, and
// carries the end of the serial console so that a failing test shows what
// the guest printed.
type GuestError struct {
	Err     error  // why the run failed
	Detail  string // what /init or qemu said about it, if anything
	Console string // the whole serial console, carriage returns removed
}

// consoleTail is how many console lines GuestError.Error shows.
const consoleTail = 60

func (e *GuestError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	lines := strings.Split(strings.TrimRight(e.Console, "\n"), "\n")
	if len(lines) > consoleTail {
		b.WriteString("\n--- last console lines ---")
		lines = lines[len(lines)-consoleTail:]
	} else {
		b.WriteString("\n--- console ---")
	}
	for _, l := range lines {
		b.WriteString("\n" + l)
	}
	return b.String()
}

func (e *GuestError) Unwrap() error { return e.Err }
