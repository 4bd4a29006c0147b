package cluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Ports come in aligned blocks so that two clusters on one machine, in one
// process or in two, never pick overlapping ports: each block is claimed by
// an exclusive flock on a file named after it, held until the cluster
// closes (the kernel drops the lock if the process dies). The range stays
// below Linux's default ephemeral range (32768–60999), so outgoing
// connections do not take a node's port while it is down.
const (
	portRangeLow  = 20000
	portRangeHigh = 32000
	portBlockSize = 64

	// Layout of a block: epmd, then the CLI tools' distribution ports,
	// then six ports per node.
	epmdOffset     = 0
	ctlPortsOffset = 1
	ctlPortsCount  = 11 // RABBITMQ_CTL_DIST_PORT_MIN .. MIN+10
	nodePortsStart = ctlPortsOffset + ctlPortsCount
	portsPerNode   = 6 // AMQP, distribution, management, proxy, AMQPS, management over TLS

	// MaxNodes is the largest cluster one port block holds.
	MaxNodes = (portBlockSize - nodePortsStart) / portsPerNode
)

// portBlock is a claimed block of loopback ports.
type portBlock struct {
	base int
	lock *os.File
}

func (b *portBlock) epmd() int              { return b.base + epmdOffset }
func (b *portBlock) ctlMin() int            { return b.base + ctlPortsOffset }
func (b *portBlock) node(i, which int) int  { return b.base + nodePortsStart + i*portsPerNode + which }
func (b *portBlock) String() string         { return fmt.Sprintf("%d-%d", b.base, b.base+portBlockSize-1) }
func (b *portBlock) contains(port int) bool { return port >= b.base && port < b.base+portBlockSize }

const (
	portAMQP = iota
	portDist
	portMgmt
	portProxy
	portAMQPS
	portMgmtTLS
)

// claimPorts finds a block whose lock is free and whose ports are all free
// on 127.0.0.1, and claims it. lockDir holds the lock files.
func claimPorts(lockDir string) (*portBlock, error) {
	if err := os.MkdirAll(lockDir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: port locks: %w", err)
	}
	blocks := (portRangeHigh - portRangeLow) / portBlockSize
	for _, k := range rand.Perm(blocks) {
		base := portRangeLow + k*portBlockSize
		f, err := os.OpenFile(filepath.Join(lockDir, strconv.Itoa(base)+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			return nil, fmt.Errorf("cluster: port locks: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		b := &portBlock{base: base, lock: f}
		if portsFree(base, portBlockSize) {
			return b, nil
		}
		b.release()
	}
	return nil, errors.New("cluster: no free block of loopback ports between 20000 and 32000")
}

// release gives the block back. Safe to call on a nil block.
func (b *portBlock) release() {
	if b == nil || b.lock == nil {
		return
	}
	syscall.Flock(int(b.lock.Fd()), syscall.LOCK_UN)
	b.lock.Close()
	b.lock = nil
}

// portsFree reports whether every port in [base, base+n) can be bound on
// 127.0.0.1 right now.
func portsFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		if !portFree(p) {
			return false
		}
	}
	return true
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}
