package vrrp_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

// A backup that hears no master takes over after Master_Down_Interval,
// advertises, and yields when a router of higher priority appears. A
// daemon's loop does the same with a real clock: it sleeps until
// Deadline or until an advert arrives, and carries out the actions in
// order.
func ExampleMachine() {
	cfg := vrrp.DefaultConfig()
	cfg.VRID = 51
	cfg.Priority = 100
	cfg.PrimaryIP = netip.MustParseAddr("192.0.2.1")
	cfg.Addresses = []netip.Addr{netip.MustParseAddr("192.0.2.100")}
	m, err := vrrp.NewMachine(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}

	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	show := func(now time.Time, acts []vrrp.Action) {
		for _, a := range acts {
			fmt.Printf("%-10v %v\n", now.Sub(t0), a)
		}
	}

	show(t0, m.Start(t0))
	fmt.Println("master down interval:", m.Status().MasterDown)

	// Nobody advertises: the timer fires twice.
	for range 2 {
		now := m.Deadline()
		show(now, m.Timer(now))
	}

	// A router of higher priority speaks up.
	now := t0.Add(5 * time.Second)
	peer := netip.MustParseAddr("192.0.2.2")
	show(now, m.Receive(now, peer, &vrrp.Advert{
		Version: 2, VRID: 51, Priority: 200, Interval: time.Second, Addresses: cfg.Addresses,
	}))
	fmt.Println("next timer in:", m.Deadline().Sub(now))

	// Output:
	// 0s         Transition INIT->BACKUP (start)
	// master down interval: 3.609375s
	// 3.609375s  SendAdvert priority=100 interval=1s
	// 3.609375s  AddAddresses
	// 3.609375s  Announce
	// 3.609375s  Transition BACKUP->MASTER (master down timer expired)
	// 4.609375s  SendAdvert priority=100 interval=1s
	// 5s         RemoveAddresses
	// 5s         Transition MASTER->BACKUP (higher priority advert from 192.0.2.2 (200 > 100))
	// next timer in: 3.609375s
}
