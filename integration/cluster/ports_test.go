package cluster

import (
	"os"
	"syscall"
	"testing"
)

func flockNB(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

func TestClaimPortsGivesDisjointBlocks(t *testing.T) {
	dir := t.TempDir()
	a, err := claimPorts(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.release()
	b, err := claimPorts(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.release()
	if a.base == b.base || a.contains(b.base) || b.contains(a.base) {
		t.Fatalf("blocks overlap: %v and %v", a, b)
	}
	if a.base < portRangeLow || a.base+portBlockSize > portRangeHigh || (a.base-portRangeLow)%portBlockSize != 0 {
		t.Fatalf("block %v is not an aligned block of the range", a)
	}
	// The last node's proxy port is still inside the block.
	if last := a.node(MaxNodes-1, portProxy); !a.contains(last) {
		t.Fatalf("port %d of node %d is outside %v", last, MaxNodes-1, a)
	}
	// A claimed block's lock is taken: claiming its file again must fail.
	f, err := os.OpenFile(a.lock.Name(), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := flockNB(f); err == nil {
		t.Fatal("a claimed block's lock could be taken twice")
	}
	a.release()
	a.release() // twice is fine
	if err := flockNB(f); err != nil {
		t.Fatalf("released block's lock still held: %v", err)
	}
}
