package vrrp_test

import (
	"errors"
	"fmt"
	"log"
	"net/netip"
	"time"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

// Watch the adverts on a segment: which router speaks for which VRID, with
// what priority and checksum style. Listen needs CAP_NET_RAW.
func ExampleListen() {
	t, err := vrrp.Listen(vrrp.TransportConfig{Interface: "eth0", Source: netip.MustParseAddr("192.0.2.1")})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	buf := make([]byte, 1500)
	for range 10 {
		p, err := t.Recv(buf)
		if err != nil {
			log.Fatal(err)
		}
		a, mode, err := vrrp.Parse(p.Data, p.Src, p.Dst)
		var pe *vrrp.ParseError
		if errors.As(err, &pe) {
			log.Printf("%s: dropped (%s): %s", p.Src, pe.Reason, pe.Detail)
			continue
		}
		fmt.Printf("%s: VRID %d priority %d every %v, checksum %s, TTL %d\n", p.Src, a.VRID, a.Priority, a.Interval, mode, p.TTL)
	}
}

// Send one advert to each unicast peer, as a master does every interval.
// The version 3 checksum covers the destination, so each peer gets its own
// encoding.
func ExampleTransport_Send() {
	t, err := vrrp.Listen(vrrp.TransportConfig{
		Interface: "eth0",
		Source:    netip.MustParseAddr("192.0.2.1"),
		Peers:     []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer t.Close()
	a := &vrrp.Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second,
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	for _, dst := range t.Destinations() {
		b, err := vrrp.Marshal(a, t.Source(), dst, vrrp.ChecksumPseudoHeader)
		if err != nil {
			log.Fatal(err)
		}
		if err := t.Send(b, dst); err != nil {
			log.Print(err)
		}
	}
}
