package vip_test

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/amqpha/amqpha/vipd/vip"
)

// The frame a new master broadcasts so that neighbours send the VIP's
// traffic to its MAC address.
func ExampleGratuitousARP() {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	f, err := vip.GratuitousARP(mac, netip.MustParseAddr("10.0.0.100"))
	fmt.Println(len(f), err)
	fmt.Printf("% x\n", f[:14]) // Ethernet: broadcast, from mac, ARP
	// Output:
	// 60 <nil>
	// ff ff ff ff ff ff 02 00 00 00 00 01 08 06
}
