package lvs_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/lvs/lvstest"
)

func Example() {
	cfg, err := config.Parse("keepalived.conf", []byte(`
virtual_server 192.168.0.10 5672 {
    lb_algo wrr
    lb_kind DR
    persistence_timeout 50
    protocol TCP
    real_server 192.168.0.2 5672 {
        weight 1
    }
    real_server 192.168.0.3 5672 {
        weight 1
        inhibit_on_failure
    }
}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// The checkers say 192.168.0.3 is down.
	health := func(vs *config.VirtualServer, rs *config.RealServer) lvs.Status {
		if rs.IP == netip.MustParseAddr("192.168.0.3") {
			return lvs.Status{State: lvs.Down}
		}
		return lvs.Status{State: lvs.Up}
	}
	want, errs := lvs.FromConfig(cfg, health)
	if len(errs) > 0 {
		fmt.Println(errs)
		return
	}

	// On a director: k, err := lvs.NewNetlink("")
	k := lvstest.New()
	r := lvs.NewReconciler(k, nil)
	ctx := context.Background()
	cs, err := r.Apply(ctx, want)
	fmt.Print(cs)
	fmt.Println(err)

	// Someone raises a weight with ipvsadm; the next Apply puts it back.
	svc := want.Keys()[0]
	_ = k.UpdateDestination(ctx, want[svc].Service, lvs.Destination{Addr: netip.MustParseAddr("192.168.0.2"), Port: 5672, Weight: 9, Forward: lvs.Route})
	cs, err = r.Apply(ctx, want)
	fmt.Print(cs)
	fmt.Println(err)
	// Output:
	// add service TCP 192.168.0.10:5672 wrr persistent 50
	// add destination 192.168.0.2:5672 Route 1 to TCP 192.168.0.10:5672
	// add destination 192.168.0.3:5672 Route 0 to TCP 192.168.0.10:5672
	// <nil>
	// update destination 192.168.0.2:5672 Route 1 of TCP 192.168.0.10:5672 (was Route 9) [drift]
	// <nil>
}

func ExampleTable_Add() {
	t := lvs.Table{}.
		Add(lvs.Service{Addr: netip.MustParseAddr("2001:db8::10"), Port: 5672, Protocol: lvs.TCP, Scheduler: "rr"},
			lvs.Destination{Addr: netip.MustParseAddr("2001:db8::2"), Port: 5672, Weight: 2, Forward: lvs.Masq}).
		Add(lvs.Service{FWMark: 7, Scheduler: "sh", Flags: lvs.FlagSHPort},
			lvs.Destination{Addr: netip.MustParseAddr("10.0.0.2"), Weight: 1, Forward: lvs.Route},
			lvs.Destination{Addr: netip.MustParseAddr("10.0.0.3"), Weight: 1, Forward: lvs.Route})
	fmt.Print(t)
	fmt.Println(t.Validate())
	// Output:
	// FWM 7 IPv4 sh flags sched2
	//   -> 10.0.0.2:0 Route 1
	//   -> 10.0.0.3:0 Route 1
	// TCP [2001:db8::10]:5672 rr
	//   -> [2001:db8::2]:5672 Masq 2
	// <nil>
}
