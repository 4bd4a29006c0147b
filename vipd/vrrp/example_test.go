package vrrp_test

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

// A VRRPv3 advertisement over IPv4 as keepalived sends it by default, and
// what a receiver makes of it and of a corrupted copy.
func Example() {
	src := netip.MustParseAddr("192.0.2.1")
	a := &vrrp.Advert{
		Version:   3,
		VRID:      52,
		Priority:  200,
		Interval:  100 * time.Millisecond,
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.110")},
	}
	b, err := vrrp.Marshal(a, src, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", b)

	got, mode, err := vrrp.Parse(b, src, vrrp.GroupIPv4)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(got.VRID, got.Priority, got.Interval, got.Addresses, mode)

	b[2] = 255 // a bit flipped on the way
	_, _, err = vrrp.Parse(b, src, vrrp.GroupIPv4)
	var pe *vrrp.ParseError
	if errors.As(err, &pe) {
		fmt.Println("drop:", pe.Reason)
	}
	// Output:
	// 31 34 c8 01 00 0a a1 c0 c0 00 02 6e
	// 52 200 100ms [192.0.2.110] pseudo-header
	// drop: checksum
}
