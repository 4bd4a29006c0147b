package lvs

import (
	"fmt"
	"strings"
)

// Op is a kind of kernel operation.
type Op uint8

// Kernel operations.
const (
	OpAddService Op = iota + 1
	OpUpdateService
	OpDeleteService
	OpAddDestination
	OpUpdateDestination
	OpDeleteDestination
)

func (o Op) String() string {
	switch o {
	case OpAddService:
		return "add service"
	case OpUpdateService:
		return "update service"
	case OpDeleteService:
		return "delete service"
	case OpAddDestination:
		return "add destination"
	case OpUpdateDestination:
		return "update destination"
	case OpDeleteDestination:
		return "delete destination"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Change is one kernel operation that [Reconciler.Apply] or
// [Reconciler.Remove] performed.
type Change struct {
	Op Op
	// Service is the service as it is after the change (as it was, for a
	// deletion).
	Service Service
	// Dest is the destination of destination operations, as it is after
	// the change (as it was, for a deletion).
	Dest Destination
	// OldService and OldDest are the kernel's values before an update.
	OldService Service
	OldDest    Destination
	// Drift is true when the change repairs the kernel: it differed from
	// what the previous Apply left there (someone used ipvsadm), rather
	// than the wanted table having changed.
	Drift bool
}

func (c Change) String() string {
	var b strings.Builder
	b.WriteString(c.Op.String())
	switch c.Op {
	case OpAddService, OpDeleteService:
		fmt.Fprintf(&b, " %s", c.Service)
	case OpUpdateService:
		fmt.Fprintf(&b, " %s (was %s)", c.Service, c.OldService)
	case OpAddDestination:
		fmt.Fprintf(&b, " %s to %s", c.Dest, c.Service.Key())
	case OpDeleteDestination:
		fmt.Fprintf(&b, " %s from %s", c.Dest, c.Service.Key())
	case OpUpdateDestination:
		fmt.Fprintf(&b, " %s of %s (was %s %d)", c.Dest, c.Service.Key(), c.OldDest.Forward, c.OldDest.Weight)
	}
	if c.Drift {
		b.WriteString(" [drift]")
	}
	return b.String()
}

// Changes are the operations of one Apply or Remove, in the order done.
type Changes []Change

// Count returns how many changes are of kind op.
func (cs Changes) Count(op Op) int {
	n := 0
	for _, c := range cs {
		if c.Op == op {
			n++
		}
	}
	return n
}

// Drifts returns how many changes repaired drift.
func (cs Changes) Drifts() int {
	n := 0
	for _, c := range cs {
		if c.Drift {
			n++
		}
	}
	return n
}

// String prints one change a line.
func (cs Changes) String() string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}
