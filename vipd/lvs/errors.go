package lvs

import (
	"errors"
	"fmt"
	"net/netip"
)

// Sentinel errors. Errors returned by this package and by [Kernel]
// implementations wrap them; test with errors.Is.
var (
	// ErrInvalid: a wanted [Table], [Service] or [Destination] breaks a
	// rule the kernel or this package imposes. Apply changes nothing then.
	ErrInvalid = errors.New("lvs: invalid table")
	// ErrExist: the kernel already has the service or destination being
	// added (EEXIST).
	ErrExist = errors.New("lvs: already exists")
	// ErrNotFound: the service or destination being changed or deleted is
	// not in the kernel (ESRCH, ENOENT).
	ErrNotFound = errors.New("lvs: not found")
	// ErrNoScheduler: the kernel has no scheduler module of that name
	// (ENOENT on adding or updating a service).
	ErrNoScheduler = errors.New("lvs: scheduler module not found")
	// ErrNoIPVS: the kernel's IPVS cannot be reached (module not loaded, no
	// permission, no generic netlink family "IPVS").
	ErrNoIPVS = errors.New("lvs: kernel IPVS not available")
)

// OpError is a kernel operation that failed during [Reconciler.Apply] or
// [Reconciler.Remove]. Err is the [Kernel]'s error.
type OpError struct {
	Op      Op
	Service ServiceKey
	// Dest is the destination of destination operations; the zero value
	// for service operations.
	Dest netip.AddrPort
	Err  error
}

func (e *OpError) Error() string {
	if e.Dest.IsValid() {
		return fmt.Sprintf("lvs: %s %s of %s: %v", e.Op, e.Dest, e.Service, e.Err)
	}
	return fmt.Sprintf("lvs: %s %s: %v", e.Op, e.Service, e.Err)
}

// Unwrap returns the kernel's error.
func (e *OpError) Unwrap() error { return e.Err }

// invalidf returns an error that prints as the message alone and wraps
// [ErrInvalid].
func invalidf(format string, args ...any) error {
	return &invalidError{fmt.Sprintf(format, args...)}
}

type invalidError struct{ msg string }

func (e *invalidError) Error() string        { return e.msg }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }
