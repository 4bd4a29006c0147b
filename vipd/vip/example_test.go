package vip_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"time"

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

// The IPv6 counterpart: an unsolicited neighbour advertisement to all nodes,
// with the override flag set so that neighbours replace the MAC they hold.
func ExampleUnsolicitedNA() {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	f, err := vip.UnsolicitedNA(mac, netip.MustParseAddr("2001:db8::100"), false)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(f))
	// Ethernet: to the all-nodes multicast MAC, from mac, IPv6.
	fmt.Printf("% x\n", f[:14])
	// Flags: router 0x80, solicited 0x40, override 0x20.
	fmt.Printf("hop limit %d, ICMPv6 type %d, flags %#x\n", f[21], f[54], f[58])

	_, err = vip.UnsolicitedNA(mac, netip.MustParseAddr("10.0.0.100"), false)
	fmt.Println(err)
	// Output:
	// 86
	// 33 33 00 00 00 01 02 00 00 00 00 01 86 dd
	// hop limit 255, ICMPv6 type 136, flags 0x20
	// vip: need a 6-byte MAC and an address of the right family
}

// Take over a virtual address, as a new master does: put it on the
// interface, then tell the segment. Releasing it takes it off again.
func ExampleOpenLink() {
	link, err := vip.OpenLink("eth0")
	if errors.Is(err, errors.ErrUnsupported) {
		log.Fatal("vip works on Linux only")
	}
	if err != nil {
		log.Fatal(err) // no such interface
	}
	if up, err := link.Up(); err != nil || !up {
		log.Fatalf("%s is down: %v", link.Name(), err) // keepalived would go to FAULT
	}
	vipAddr := netip.MustParsePrefix("10.0.0.100/24")
	if err := link.Add(vipAddr, vip.AddrOptions{Label: "eth0:vip"}); err != nil { // needs CAP_NET_ADMIN
		log.Fatal(err)
	}
	ann, err := vip.NewAnnouncer(link.Name()) // needs CAP_NET_RAW
	if err != nil {
		log.Fatal(err)
	}
	defer ann.Close()
	if _, err := ann.Announce([]netip.Addr{vipAddr.Addr()}); err != nil {
		log.Print(err)
	}

	// Later, as backup again:
	if err := link.Remove(vipAddr); err != nil {
		log.Print(err)
	}
}

// keepalived's garp_master_repeat 5 and garp_master_delay 5: five
// announcements at once, five more five seconds later, for the switches
// that missed the first round.
func ExampleAnnouncer_Announce() {
	ann, err := vip.NewAnnouncer("eth0")
	if err != nil {
		log.Fatal(err)
	}
	defer ann.Close()
	vips := []netip.Addr{netip.MustParseAddr("10.0.0.100"), netip.MustParseAddr("2001:db8::100")}
	for round := range 2 {
		if round > 0 {
			time.Sleep(5 * time.Second)
		}
		for range 5 {
			if n, err := ann.Announce(vips); err != nil {
				log.Printf("sent %d of %d: %v", n, len(vips), err)
			}
		}
	}
}
