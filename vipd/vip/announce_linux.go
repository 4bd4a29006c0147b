package vip

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/mdlayher/packet"
)

// Announcer sends gratuitous ARP and unsolicited neighbour advertisements on
// one interface. Announce may be called from several goroutines.
type Announcer struct {
	ifi  *net.Interface
	conn *packet.Conn
}

// NewAnnouncer opens a raw packet socket on the interface called name. It
// needs CAP_NET_RAW.
func NewAnnouncer(name string) (*Announcer, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("vip: interface %q: %w", name, err)
	}
	// Protocol 0: a socket that only sends receives nothing.
	c, err := packet.Listen(ifi, packet.Raw, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("vip: packet socket on %s: %w", name, err)
	}
	return &Announcer{ifi: ifi, conn: c}, nil
}

// Announce sends one announcement for each address: a gratuitous ARP for
// IPv4, an unsolicited neighbour advertisement for IPv6 (with the router
// flag when the host forwards IPv6 on this interface). It returns the number
// of frames sent and the first error.
func (a *Announcer) Announce(addrs []netip.Addr) (int, error) {
	sent := 0
	var first error
	for _, ip := range addrs {
		var f []byte
		var err error
		if ip.Is4() {
			f, err = GratuitousARP(a.ifi.HardwareAddr, ip)
		} else {
			f, err = UnsolicitedNA(a.ifi.HardwareAddr, ip, a.forwardsIPv6())
		}
		if err == nil {
			dst := broadcastMAC
			if ip.Is6() {
				dst = allNodesMAC
			}
			_, err = a.conn.WriteTo(f, &packet.Addr{HardwareAddr: dst})
		}
		if err != nil {
			if first == nil {
				first = fmt.Errorf("vip: announce %s on %s: %w", ip, a.ifi.Name, err)
			}
			continue
		}
		sent++
	}
	return sent, first
}

func (a *Announcer) forwardsIPv6() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + a.ifi.Name + "/forwarding")
	return err == nil && strings.TrimSpace(string(b)) == "1"
}

// Close closes the socket.
func (a *Announcer) Close() error { return a.conn.Close() }
