package netns

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const (
	// Prefix starts the name of every namespace this package creates:
	// Prefix + owner pid + "-" + random suffix + "-" + host name, e.g.
	// "aqh-4711-3fa9c2-master". [Sweep] relies on it.
	Prefix = "aqh-"

	// Bridge is the name of the bridge in a segment's switch namespace.
	Bridge = "br0"

	// netnsDir is where ip netns binds named namespaces.
	netnsDir = "/var/run/netns"
)

// Segment is one Ethernet segment: a switch namespace holding a Linux bridge,
// and the hosts plugged into it. Create it with [New]; add hosts with
// [Segment.Host]. Its methods are safe for concurrent use, but those taking
// no testing.TB report failures through the t given to New, so call them from
// the test's goroutine.
type Segment struct {
	t  testing.TB
	id string // Prefix + pid + "-" + suffix
	sw string // switch namespace

	mu     sync.Mutex
	hosts  []*Host
	closed bool
}

// New creates a segment for t and registers its removal with t.Cleanup, so
// that its namespaces, their interfaces and the processes inside them go away
// however the test ends (the segment can also be closed earlier with
// [Segment.Close]). It first removes leftovers of dead earlier runs
// ([Sweep]). New skips t, or fails it under CI=true, when namespaces cannot
// be built here ([Require]). It blocks for some tens of milliseconds.
//
// Nothing is created in the caller's own network namespace: the switch, the
// hosts and the veth pairs that join them live in new namespaces only.
func New(t testing.TB) *Segment {
	t.Helper()
	Require(t)
	if removed, err := Sweep(); err != nil {
		t.Logf("netns: sweeping leftovers: %v", err)
	} else if len(removed) > 0 {
		t.Logf("netns: removed leftovers of dead runs: %s", strings.Join(removed, " "))
	}

	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	s := &Segment{t: t, id: fmt.Sprintf("%s%d-%s", Prefix, os.Getpid(), hex.EncodeToString(suffix[:]))}
	s.sw = s.id + "-sw"
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("netns: removing segment %s: %v", s.id, err)
		}
	})

	if _, err := ip("netns", "add", s.sw); err != nil {
		t.Fatalf("netns: creating the switch: %v", err)
	}
	// The switch has no addresses of its own: no IPv6 on its ports either,
	// so that it sends nothing onto the segment.
	if err := writeSysctls(s.sw, map[string]string{
		"net/ipv6/conf/all/disable_ipv6":     "1",
		"net/ipv6/conf/default/disable_ipv6": "1",
	}); err != nil {
		t.Fatalf("netns: configuring the switch: %v", err)
	}
	// No STP (ports forward at once) and no multicast snooping (VRRP
	// adverts, IPv6 neighbour discovery and any group reach every port).
	if err := ipBatch(s.sw,
		"link add "+Bridge+" type bridge stp_state 0 forward_delay 0 mcast_snooping 0",
		"link set "+Bridge+" up",
	); err != nil {
		t.Fatalf("netns: creating the bridge: %v", err)
	}
	return s
}

// Name returns the segment's name, the common start of all its namespace
// names.
func (s *Segment) Name() string { return s.id }

// SwitchNamespace returns the name of the namespace that holds the bridge
// ([Bridge]), e.g. for `ip netns exec NAME tcpdump -i br0`.
func (s *Segment) SwitchNamespace() string { return s.sw }

// Hosts returns the segment's hosts in the order they were added.
func (s *Segment) Hosts() []*Host {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Host(nil), s.hosts...)
}

// Close kills every process left in the segment's namespaces (SIGKILL, by
// pid) and deletes the namespaces, which removes their interfaces with them.
// Processes started with [Host.Start] are normally stopped before, by their
// own cleanup. Close is safe to call more than once; later calls return nil.
func (s *Segment) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	names := make([]string, 0, len(s.hosts)+1)
	for _, h := range s.hosts {
		names = append(names, h.ns)
	}
	names = append(names, s.sw)
	s.mu.Unlock()

	var errs []error
	for _, ns := range names {
		if err := removeNamespace(ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeNamespace kills what runs inside ns and deletes it. A namespace that
// does not exist is no error.
func removeNamespace(ns string) error {
	if _, err := os.Stat(filepath.Join(netnsDir, ns)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	pids, err := nsPids(ns)
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := killPid(pid); err != nil {
			return fmt.Errorf("netns: kill %d in %s: %w", pid, ns, err)
		}
	}
	_, err = ip("netns", "delete", ns)
	return err
}

// Sweep deletes the namespaces that earlier runs left behind: those whose
// name starts with [Prefix] and whose owner process (the pid in the name) is
// gone, after killing the processes inside them. It returns the names it
// removed. [New] calls it; namespaces of live processes, including other test
// binaries running at the same time, are left alone.
func Sweep() (removed []string, err error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range entries {
		pid, ok := ownerPid(e.Name())
		if !ok || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := removeNamespace(e.Name()); err != nil {
			// Another process may be sweeping the same leftovers.
			if _, serr := os.Stat(filepath.Join(netnsDir, e.Name())); serr == nil {
				errs = append(errs, err)
			}
			continue
		}
		removed = append(removed, e.Name())
	}
	return removed, errors.Join(errs...)
}

// ownerPid reads the pid out of a namespace name made by this package.
func ownerPid(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, Prefix)
	if !ok {
		return 0, false
	}
	digits, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(digits)
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// writeSysctls sets /proc/sys entries inside namespace ns; keys are paths
// below /proc/sys. Writing from a thread switched into ns reaches that
// namespace's copy of the net.* settings.
func writeSysctls(ns string, kv map[string]string) error {
	return doIn(filepath.Join(netnsDir, ns), func() error {
		for k, v := range kv {
			if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0); err != nil {
				return fmt.Errorf("netns: sysctl %s in %s: %w", k, ns, err)
			}
		}
		return nil
	})
}
