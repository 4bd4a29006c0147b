package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"

	"github.com/amqpha/amqpha/vipd/realserver"
)

// cmdRealserver is `vipd realserver --vip ADDR start|stop|status`: what
// the source documents' realserver.sh does on a DR real server, undone
// exactly. status exits 0 when the server is ready and 3 when it is not
// (as an LSB init script's status does).
func cmdRealserver(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vipd realserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vipFlag := fs.String("vip", "", "the virtual `address` the director forwards to this host")
	stateDir := fs.String("state-dir", realserver.DefaultStateDir, "where start records what it changed, for stop")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	vip, err := netip.ParseAddr(*vipFlag)
	if err != nil || fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: vipd realserver --vip ADDR [--state-dir DIR] start|stop|status")
		return 2
	}
	c := realserver.Config{StateDir: *stateDir}
	switch fs.Arg(0) {
	case "start":
		err = realserver.Start(c, vip)
	case "stop":
		err = realserver.Stop(c, vip)
		if errors.Is(err, realserver.ErrNotStarted) {
			fmt.Fprintf(stderr, "vipd realserver: %s: nothing to undo (not started)\n", vip)
			return 0
		}
	case "status":
		s, err := realserver.GetStatus(c, vip)
		if err != nil {
			fmt.Fprintf(stderr, "vipd realserver: %v\n", err)
			return 1
		}
		b, _ := json.Marshal(s)
		fmt.Fprintln(stdout, string(b))
		if !s.Ready() {
			return 3
		}
		return 0
	default:
		fmt.Fprintf(stderr, "vipd realserver: unknown action %q (start, stop or status)\n", fs.Arg(0))
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "vipd realserver: %v\n", err)
		return 1
	}
	return 0
}
