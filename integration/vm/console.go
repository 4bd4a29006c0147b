package vm

import (
	"bytes"
	"io"
	"strconv"
	"strings"
	"time"
)

// maxConsole bounds how much console output a run keeps; beyond it lines
// are counted, not stored.
const maxConsole = 32 << 20

// console collects the guest's serial console from qemu's standard output:
// it splits it into lines, drops the carriage returns the guest's tty adds,
// copies lines to an optional writer and watches for /init's markers. Its
// Write is called from the one goroutine os/exec copies on; the fields are
// read after cmd.Wait returns.
type console struct {
	token string
	tee   io.Writer
	now   func() time.Time

	partial []byte
	all     strings.Builder
	dropped int

	started   time.Time // when the start marker arrived
	inCommand bool      // between the start and the exit marker
	output    strings.Builder

	exited   bool
	exitCode int
	setupErr string
}

func newConsole(token string, tee io.Writer) *console {
	return &console{token: token, tee: tee, now: time.Now}
}

func (c *console) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = append(c.partial, p...)
			if len(c.partial) > 1<<20 { // a runaway line: cut it
				c.line(c.partial)
				c.partial = c.partial[:0]
			}
			break
		}
		c.partial = append(c.partial, p[:i]...)
		c.line(c.partial)
		c.partial = c.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

// flush handles a last line without a newline.
func (c *console) flush() {
	if len(c.partial) > 0 {
		c.line(c.partial)
		c.partial = nil
	}
}

func (c *console) line(b []byte) {
	s := strings.ReplaceAll(string(b), "\r", "")
	if c.all.Len()+len(s) < maxConsole {
		c.all.WriteString(s + "\n")
	} else {
		c.dropped++
	}
	if c.tee != nil {
		_, _ = io.WriteString(c.tee, s+"\n")
	}
	if c.exited {
		return
	}
	// A command that ends without a newline leaves the marker at the end
	// of its last line.
	if i := strings.Index(s, markExit+c.token+" "); i >= 0 {
		if c.inCommand && i > 0 {
			c.output.WriteString(s[:i] + "\n")
		}
		code, err := strconv.Atoi(strings.TrimSpace(s[i+len(markExit+c.token)+1:]))
		if err == nil {
			c.exited, c.exitCode, c.inCommand = true, code, false
		}
		return
	}
	if i := strings.Index(s, markError+c.token+" "); i >= 0 {
		c.setupErr = s[i+len(markError+c.token)+1:]
		return
	}
	if strings.Contains(s, markStart+c.token) {
		c.started, c.inCommand = c.now(), true
		return
	}
	if c.inCommand && c.output.Len()+len(s) < maxConsole {
		c.output.WriteString(s + "\n")
	}
}

// Console returns everything the guest printed.
func (c *console) Console() string {
	if c.dropped > 0 {
		return c.all.String() + "[" + strconv.Itoa(c.dropped) + " more lines dropped]\n"
	}
	return c.all.String()
}
