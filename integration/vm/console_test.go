package vm

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func feed(c *console, data string, chunk int) {
	for len(data) > 0 {
		n := min(chunk, len(data))
		c.Write([]byte(data[:n]))
		data = data[n:]
	}
	c.flush()
}

func TestConsole(t *testing.T) {
	const tok = "abc123"
	tests := []struct {
		name     string
		in       string
		output   string
		exited   bool
		code     int
		setupErr string
	}{
		{
			name:   "normal",
			in:     "[    0.1] kernel\r\nAMQPHA-VM-START-abc123\r\nline 1\r\nline 2\r\nAMQPHA-VM-EXIT-abc123 0\r\n[    5.0] reboot: Power down\r\n",
			output: "line 1\nline 2\n", exited: true,
		},
		{
			name:   "no newline before the exit marker",
			in:     "AMQPHA-VM-START-abc123\nno newlineAMQPHA-VM-EXIT-abc123 7\n",
			output: "no newline\n", exited: true, code: 7,
		},
		{
			name:   "markers of another token are output",
			in:     "AMQPHA-VM-START-abc123\nAMQPHA-VM-EXIT-zzz 1\nAMQPHA-VM-EXIT-abc123 2\nAMQPHA-VM-EXIT-abc123 3\n",
			output: "AMQPHA-VM-EXIT-zzz 1\n", exited: true, code: 2,
		},
		{
			name:     "setup failure",
			in:       "AMQPHA-VM-ERROR-abc123 insmod /lib/modules/x/ip_vs.ko: No such device\nAMQPHA-VM-EXIT-abc123 125\n",
			exited:   true,
			code:     125,
			setupErr: "insmod /lib/modules/x/ip_vs.ko: No such device",
		},
		{name: "kernel panic", in: "Kernel panic - not syncing: Attempted to kill init!\n"},
		{name: "bad exit code", in: "AMQPHA-VM-START-abc123\nAMQPHA-VM-EXIT-abc123 x\n", output: ""},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, 1 << 20} {
			var tee bytes.Buffer
			c := newConsole(tok, &tee)
			c.now = func() time.Time { return time.Unix(1, 0) }
			feed(c, tt.in, chunk)
			if got := c.output.String(); got != tt.output {
				t.Errorf("%s/%d: output %q, want %q", tt.name, chunk, got, tt.output)
			}
			if c.exited != tt.exited || c.exitCode != tt.code || c.setupErr != tt.setupErr {
				t.Errorf("%s/%d: exited %v code %d setup %q; want %v %d %q", tt.name, chunk, c.exited, c.exitCode, c.setupErr, tt.exited, tt.code, tt.setupErr)
			}
			want := strings.ReplaceAll(tt.in, "\r", "")
			if c.Console() != want || tee.String() != want {
				t.Errorf("%s/%d: console %q, tee %q; want %q", tt.name, chunk, c.Console(), tee.String(), want)
			}
		}
	}
}

func FuzzConsole(f *testing.F) {
	f.Add("AMQPHA-VM-START-t\nx\nAMQPHA-VM-EXIT-t 3\n", 2)
	f.Add("AMQPHA-VM-ERROR-t boom\r\nAMQPHA-VM-EXIT-t 125", 5)
	f.Fuzz(func(t *testing.T, in string, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		whole, split := newConsole("t", nil), newConsole("t", nil)
		feed(whole, in, len(in)+1)
		feed(split, in, chunk)
		if whole.output.String() != split.output.String() || whole.exited != split.exited ||
			whole.exitCode != split.exitCode || whole.Console() != split.Console() {
			t.Fatalf("feeding in chunks of %d changes the result", chunk)
		}
	})
}
