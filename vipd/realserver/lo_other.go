//go:build !linux

package realserver

import (
	"errors"
	"net/netip"
)

func hasLoopbackAddr(netip.Addr) (bool, error) { return false, errors.ErrUnsupported }
func addLoopbackAddr(netip.Addr) error         { return errors.ErrUnsupported }
func removeLoopbackAddr(netip.Addr) error      { return errors.ErrUnsupported }
