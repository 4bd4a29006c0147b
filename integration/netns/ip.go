package netns

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// ipTimeout bounds every ip command; they take milliseconds.
const ipTimeout = 10 * time.Second

// run runs a command and returns its standard output; on failure the error
// is a *CmdError carrying what the command printed.
func run(ctx context.Context, stdin string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &CmdError{
			Args:   append([]string{name}, args...),
			Output: stdout.String() + stderr.String(),
			Err:    err,
		}
	}
	return stdout.Bytes(), nil
}

// ip runs the ip command with a bounded time.
func ip(args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	return run(ctx, "", "ip", args...)
}

// ipBatch runs several ip commands, one per line, inside namespace ns with a
// single ip process.
func ipBatch(ns string, lines ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	_, err := run(ctx, strings.Join(lines, "\n")+"\n", "ip", "-n", ns, "-batch", "-")
	return err
}

// jsonAddrs is the part of `ip -j addr show` this package reads.
type jsonAddrs []struct {
	Ifname   string `json:"ifname"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
	} `json:"addr_info"`
}

// parseAddrs turns the output of `ip -j addr show` into prefixes, in the
// order ip printed them.
func parseAddrs(out []byte) ([]netip.Prefix, error) {
	var links jsonAddrs
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("netns: parse ip -j addr: %w", err)
	}
	var prefixes []netip.Prefix
	for _, l := range links {
		for _, a := range l.AddrInfo {
			addr, err := netip.ParseAddr(a.Local)
			if err != nil {
				return nil, fmt.Errorf("netns: parse ip -j addr: %w", err)
			}
			// Keep the host bits: each prefix names an address.
			p := netip.PrefixFrom(addr.WithZone(""), a.Prefixlen)
			if !p.IsValid() {
				return nil, fmt.Errorf("netns: parse ip -j addr: bad prefix length %d for %s", a.Prefixlen, addr)
			}
			prefixes = append(prefixes, p)
		}
	}
	return prefixes, nil
}

// jsonLinks is the part of `ip -j link show` and `ip -j neigh show` this
// package reads.
type jsonLinks []struct {
	Ifname    string   `json:"ifname"`
	Address   string   `json:"address"`
	Operstate string   `json:"operstate"`
	Flags     []string `json:"flags"`
	Lladdr    string   `json:"lladdr"`
	State     []string `json:"state"`
}

// parseMAC reads the first entry's link-layer address: "address" for links,
// "lladdr" for neighbours.
func parseMAC(out []byte) (net.HardwareAddr, error) {
	var links jsonLinks
	if err := json.Unmarshal(out, &links); err != nil {
		return nil, fmt.Errorf("netns: parse ip -j output: %w", err)
	}
	for _, l := range links {
		s := l.Address
		if s == "" {
			s = l.Lladdr
		}
		if s == "" {
			continue
		}
		mac, err := net.ParseMAC(s)
		if err != nil {
			return nil, fmt.Errorf("netns: parse ip -j output: %w", err)
		}
		return mac, nil
	}
	return nil, ErrNotFound
}

// nsPids lists the processes inside namespace ns.
func nsPids(ns string) ([]int, error) {
	out, err := ip("netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
