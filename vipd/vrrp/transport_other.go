//go:build !linux

package vrrp

import (
	"errors"
	"net/netip"
)

// TransportConfig says where a Transport sends and receives (Linux only).
type TransportConfig struct {
	Interface string
	Source    netip.Addr
	Peers     []netip.Addr
	Group     netip.Addr
}

// Transport is a raw VRRP socket (Linux only).
type Transport struct{}

// Packet is one received VRRP message.
type Packet struct {
	Data     []byte
	Src, Dst netip.Addr
	TTL      int
}

// Listen returns errors.ErrUnsupported outside Linux.
func Listen(TransportConfig) (*Transport, error) { return nil, errors.ErrUnsupported }

func (t *Transport) Destinations() []netip.Addr    { return nil }
func (t *Transport) Source() netip.Addr            { return netip.Addr{} }
func (t *Transport) Group() netip.Addr             { return netip.Addr{} }
func (t *Transport) Send([]byte, netip.Addr) error { return errors.ErrUnsupported }
func (t *Transport) Recv([]byte) (Packet, error)   { return Packet{}, errors.ErrUnsupported }
func (t *Transport) Close() error                  { return nil }
