//go:build !linux

package lvs

import (
	"context"
	"errors"
)

// Netlink is the kernel's IPVS; it exists on Linux only. Elsewhere
// [NewNetlink] and every method fail with [errors.ErrUnsupported].
type Netlink struct{}

var _ Kernel = (*Netlink)(nil)

// NewNetlink fails with [errors.ErrUnsupported]: IPVS is Linux only.
func NewNetlink(netnsPath string) (*Netlink, error) { return nil, errors.ErrUnsupported }

// Close does nothing.
func (*Netlink) Close() error { return nil }

// Services fails with [errors.ErrUnsupported].
func (*Netlink) Services(context.Context) ([]Service, error) { return nil, errors.ErrUnsupported }

// Destinations fails with [errors.ErrUnsupported].
func (*Netlink) Destinations(context.Context, Service) ([]Destination, error) {
	return nil, errors.ErrUnsupported
}

// AddService fails with [errors.ErrUnsupported].
func (*Netlink) AddService(context.Context, Service) error { return errors.ErrUnsupported }

// UpdateService fails with [errors.ErrUnsupported].
func (*Netlink) UpdateService(context.Context, Service) error { return errors.ErrUnsupported }

// DeleteService fails with [errors.ErrUnsupported].
func (*Netlink) DeleteService(context.Context, Service) error { return errors.ErrUnsupported }

// AddDestination fails with [errors.ErrUnsupported].
func (*Netlink) AddDestination(context.Context, Service, Destination) error {
	return errors.ErrUnsupported
}

// UpdateDestination fails with [errors.ErrUnsupported].
func (*Netlink) UpdateDestination(context.Context, Service, Destination) error {
	return errors.ErrUnsupported
}

// DeleteDestination fails with [errors.ErrUnsupported].
func (*Netlink) DeleteDestination(context.Context, Service, Destination) error {
	return errors.ErrUnsupported
}
