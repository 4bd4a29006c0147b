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

// A version 2 advert with a simple password, as keepalived sends it with
// auth_type PASS; and one that version 2 cannot carry.
func ExampleMarshal() {
	src := netip.MustParseAddr("192.0.2.1")
	a := &vrrp.Advert{
		Version:   2,
		VRID:      51,
		Priority:  100,
		Interval:  time.Second,
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")},
		AuthType:  vrrp.AuthPass,
	}
	copy(a.AuthData[:], "s3cr3t") // only the first 8 bytes go on the wire
	b, err := vrrp.Marshal(a, src, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", b)

	a.Interval = 500 * time.Millisecond
	_, err = vrrp.Marshal(a, src, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
	fmt.Println(errors.Is(err, vrrp.ErrInvalidAdvert))
	fmt.Println(err)
	// Output:
	// 21 33 64 01 01 01 ad 4b c0 00 02 64 73 33 63 72 33 74 00 00
	// true
	// vrrp: invalid advertisement: version 2 interval 500ms is not whole seconds from 1s to 255s
}

// Routers disagree on the checksum of VRRPv3 over IPv4. Parse accepts every
// style and says which one the peer used, so the instance can be set to
// answer in kind (keepalived's v3_checksum_as_v2).
func ExampleParse() {
	src := netip.MustParseAddr("192.0.2.2")
	a := &vrrp.Advert{Version: 3, VRID: 51, Priority: 150, Interval: time.Second,
		Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.100")}}
	for _, peer := range []vrrp.ChecksumMode{vrrp.ChecksumPseudoHeader, vrrp.ChecksumMessageOnly} {
		b, err := vrrp.Marshal(a, src, vrrp.GroupIPv4, peer)
		if err != nil {
			fmt.Println(err)
			return
		}
		_, mode, err := vrrp.Parse(b, src, vrrp.GroupIPv4)
		fmt.Println(mode, err)
	}
	// Output:
	// pseudo-header <nil>
	// message-only <nil>
}

// Check a configuration before making a machine of it; the error says which
// field is wrong.
func ExampleConfig_Validate() {
	cfg := vrrp.DefaultConfig()
	cfg.VRID = 51
	cfg.PrimaryIP = netip.MustParseAddr("192.0.2.1")
	cfg.Interval = 500 * time.Millisecond // sub-second needs version 3
	err := cfg.Validate()
	var ce *vrrp.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(ce.Field, "|", ce.Reason)
	}

	cfg.Version = 3
	fmt.Println(cfg.Validate())
	// Output:
	// Interval | 500ms: version 2 needs whole seconds from 1s to 255s
	// <nil>
}

// newMaster returns a machine of priority 150 that became master at t0,
// when no other router spoke up, for the examples below.
func newMaster(t0 time.Time) *vrrp.Machine {
	cfg := vrrp.DefaultConfig()
	cfg.VRID = 51
	cfg.Priority = 150
	cfg.PrimaryIP = netip.MustParseAddr("192.0.2.1")
	cfg.Addresses = []netip.Addr{netip.MustParseAddr("192.0.2.100")}
	m, err := vrrp.NewMachine(cfg)
	if err != nil {
		panic(err)
	}
	m.Start(t0.Add(-m.Status().MasterDown))
	m.Timer(t0)
	return m
}

// A tracked interface goes down: the master resigns with a priority 0
// advert, so that a backup takes over at once, and releases the addresses.
// When the interface is back, the instance starts over as backup.
func ExampleMachine_SetFault() {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newMaster(t0)
	for _, a := range m.SetFault(t0.Add(time.Second), true) {
		fmt.Println(a)
	}
	fmt.Println(m.State(), "timer running:", !m.Deadline().IsZero())
	for _, a := range m.SetFault(t0.Add(time.Minute), false) {
		fmt.Println(a)
	}
	// Output:
	// SendAdvert priority=0 interval=1s
	// RemoveAddresses
	// Transition MASTER->FAULT (fault)
	// FAULT timer running: false
	// Transition FAULT->BACKUP (fault cleared)
}

// A tracked script with weight -20 fails: the priority drops by 20, and the
// master's next advert carries it, so a backup of higher priority can take
// over.
func ExampleMachine_SetPriority() {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newMaster(t0)
	base := int(m.Config().Priority)
	for _, a := range m.SetPriority(t0.Add(time.Second/2), base-20) {
		fmt.Println(a)
	}
	for _, a := range m.Timer(m.Deadline()) {
		fmt.Println(a)
	}
	st := m.Status()
	fmt.Println(st.State, st.Priority, st.BasePriority)
	// Output:
	// SendAdvert priority=130 interval=1s
	// MASTER 130 150
}

// On shutdown a master resigns, so that a backup takes over after
// Skew_Time instead of Master_Down_Interval.
func ExampleMachine_Shutdown() {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	m := newMaster(t0)
	for _, a := range m.Shutdown(t0.Add(time.Second)) {
		fmt.Println(a)
	}
	fmt.Println(m.State())
	// Output:
	// SendAdvert priority=0 interval=1s
	// RemoveAddresses
	// Transition MASTER->STOP (shutdown)
	// STOP
}
