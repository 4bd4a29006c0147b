//go:build !linux

package vip

import (
	"errors"
	"net"
	"net/netip"
)

// Link is one network interface whose addresses vipd manages (Linux only).
type Link struct{}

// OpenLink returns errors.ErrUnsupported outside Linux.
func OpenLink(string) (*Link, error) { return nil, errors.ErrUnsupported }

func (l *Link) Name() string                        { return "" }
func (l *Link) Index() int                          { return 0 }
func (l *Link) MAC() net.HardwareAddr               { return nil }
func (l *Link) Up() (bool, error)                   { return false, errors.ErrUnsupported }
func (l *Link) Add(netip.Prefix, AddrOptions) error { return errors.ErrUnsupported }
func (l *Link) Remove(netip.Prefix) error           { return errors.ErrUnsupported }
func (l *Link) Has(netip.Addr) (bool, error)        { return false, errors.ErrUnsupported }
func (l *Link) Addrs(bool) ([]netip.Prefix, error)  { return nil, errors.ErrUnsupported }

// Announcer sends gratuitous ARP and unsolicited NA (Linux only).
type Announcer struct{}

// NewAnnouncer returns errors.ErrUnsupported outside Linux.
func NewAnnouncer(string) (*Announcer, error)           { return nil, errors.ErrUnsupported }
func (a *Announcer) Announce([]netip.Addr) (int, error) { return 0, errors.ErrUnsupported }
func (a *Announcer) Close() error                       { return nil }
