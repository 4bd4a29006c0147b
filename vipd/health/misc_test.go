package health

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
)

func TestMisc(t *testing.T) {
	sh := func(code string) script.Command {
		return script.Command{Argv: []string{"/bin/sh", "-c", code}, Timeout: 5 * time.Second}
	}
	cases := []struct {
		name      string
		c         Misc
		ok        bool
		weight    int
		weightSet bool
		kind      error
		errHas    string
	}{
		{name: "true", c: Misc{Command: script.Command{Argv: []string{"/bin/true"}}}, ok: true},
		{name: "false", c: Misc{Command: script.Command{Argv: []string{"/bin/false"}}}, kind: ErrExit, errHas: "exit status 1"},
		{name: "exit 7 without misc_dynamic fails", c: Misc{Command: sh("echo node is sick; exit 7")}, kind: ErrExit, errHas: "exit status 7: node is sick"},
		{name: "misc_dynamic exit 0 passes, weight unchanged", c: Misc{Command: sh("exit 0"), Dynamic: true}, ok: true},
		{name: "misc_dynamic exit 1 fails", c: Misc{Command: sh("exit 1"), Dynamic: true}, kind: ErrExit},
		{name: "misc_dynamic exit 2 is weight 0", c: Misc{Command: sh("exit 2"), Dynamic: true}, ok: true, weightSet: true},
		{name: "misc_dynamic exit 7 is weight 5", c: Misc{Command: sh("exit 7"), Dynamic: true}, ok: true, weight: 5, weightSet: true},
		{name: "misc_dynamic exit 255 is weight 253", c: Misc{Command: sh("exit 255"), Dynamic: true}, ok: true, weight: 253, weightSet: true},
		{name: "killed by a signal", c: Misc{Command: sh("kill -9 $$"), Dynamic: true}, errHas: "killed"},
		{name: "timeout kills it", c: Misc{Command: script.Command{Argv: []string{"/bin/sleep", "60"}, Timeout: 200 * time.Millisecond}},
			kind: ErrTimeout, errHas: "misc_timeout 200ms"},
		{name: "missing program", c: Misc{Command: script.Command{Argv: []string{"/nonexistent/check"}}}, errHas: "/nonexistent/check"},
		{name: "no program", c: Misc{}, errHas: "(no program)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.c.Check(context.Background())
			if r.OK != c.ok || r.Weight != c.weight || r.WeightSet != c.weightSet || (r.Err == nil) != c.ok {
				t.Fatalf("Check = %+v; want OK %v weight %d set %v", r, c.ok, c.weight, c.weightSet)
			}
			if c.kind != nil && !errors.Is(r.Err, c.kind) {
				t.Errorf("error %v is not %v", r.Err, c.kind)
			}
			if r.Err != nil && !strings.Contains(r.Err.Error(), c.errHas) {
				t.Errorf("error %q lacks %q", r.Err, c.errHas)
			}
			var ce *CheckError
			if r.Err != nil && (!errors.As(r.Err, &ce) || ce.Check != "MISC_CHECK") {
				t.Errorf("error %v is not a MISC_CHECK CheckError", r.Err)
			}
		})
	}
}

func TestMiscQuotesLittleOutput(t *testing.T) {
	c := Misc{Command: script.Command{Argv: []string{"/bin/sh", "-c", "printf '%0500d\\nsecond line\\n' 0; exit 3"}}}
	r := c.Check(context.Background())
	if r.OK || strings.Contains(r.Err.Error(), "second line") || len(r.Err.Error()) > maxQuoted+100 {
		t.Fatalf("error quotes too much: %q", r.Err)
	}
}
