package netns

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
)

// Do runs fn on the calling goroutine, with its OS thread locked and switched
// into h's network namespace, and switches the thread back afterwards (also
// when fn panics). Sockets that fn creates belong to h's namespace and stay
// there; they may be used from any goroutine afterwards. Goroutines that fn
// starts run elsewhere: they are not inside the namespace. Do blocks for as
// long as fn; calls may nest and run concurrently.
//
// Should switching back fail, the thread stays locked to the goroutine and
// is discarded when the goroutine ends, so that no other goroutine ever runs
// in the wrong namespace.
func (h *Host) Do(fn func() error) error {
	return doIn(h.nsPath(), fn)
}

func doIn(path string, fn func() error) (err error) {
	runtime.LockOSThread()
	restore, err := enterNetns(path)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer func() {
		if rerr := restore(); rerr != nil {
			if err == nil {
				err = rerr
			}
			return // leave the thread locked: it is tainted
		}
		runtime.UnlockOSThread()
	}()
	return fn()
}

// DialTCP opens a TCP connection from inside h's namespace. It blocks until
// the connection is up, ctx ends or the dial fails. A link-local IPv6
// address needs its zone ("eth0").
func (h *Host) DialTCP(ctx context.Context, addr netip.AddrPort) (*net.TCPConn, error) {
	var conn *net.TCPConn
	err := h.Do(func() error {
		ip, err := zoneIndex(addr.Addr())
		if err != nil {
			return err
		}
		var d net.Dialer
		conn, err = d.DialTCP(ctx, "tcp", netip.AddrPort{}, netip.AddrPortFrom(ip, addr.Port()))
		return err
	})
	return conn, err
}

// ListenTCP listens on addr inside h's namespace. The unspecified IPv6
// address ([::]) listens on IPv4 and IPv6 alike; port 0 picks a free port.
// The caller closes the listener.
func (h *Host) ListenTCP(addr netip.AddrPort) (*net.TCPListener, error) {
	var ln *net.TCPListener
	err := h.Do(func() error {
		ip, err := zoneIndex(addr.Addr())
		if err != nil {
			return err
		}
		ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, addr.Port())))
		return err
	})
	return ln, err
}

// zoneIndex replaces an interface name in addr's zone by the interface's
// index, looked up in the current thread's namespace. The net package caches
// interface names process-wide, which would mix up namespaces.
func zoneIndex(addr netip.Addr) (netip.Addr, error) {
	zone := addr.Zone()
	if zone == "" {
		return addr, nil
	}
	if _, err := strconv.Atoi(zone); err == nil {
		return addr, nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return addr, fmt.Errorf("netns: zone of %s: %w", addr, err)
	}
	return addr.WithZone(strconv.Itoa(ifi.Index)), nil
}
