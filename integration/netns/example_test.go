package netns_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/netns"
)

// A takeover measured against real keepalived: the master's keepalived is
// killed and the master cut off; the client sees the VIP answer from the
// backup Master_Down_Interval later.
func ExampleStartKeepalived() {
	var t *testing.T // the test's

	const conf = `vrrp_instance VI_1 {
	state %s
	interface eth0
	virtual_router_id 51
	priority %d
	advert_int 1
	virtual_ipaddress {
		192.168.0.10/24
	}
}
`
	vip := netip.MustParseAddr("192.168.0.10")
	seg := netns.New(t)
	master := seg.Host("master", netip.MustParsePrefix("192.168.0.2/24"))
	backup := seg.Host("backup", netip.MustParsePrefix("192.168.0.3/24"))
	client := seg.Host("client", netip.MustParsePrefix("192.168.0.100/24"))
	master.ServeName(t, 5672)
	backup.ServeName(t, 5672)

	k := netns.StartKeepalived(t, master, fmt.Sprintf(conf, "MASTER", 150))
	if err := k.WaitState("MASTER", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	netns.StartKeepalived(t, backup, fmt.Sprintf(conf, "BACKUP", 100))

	probe := client.StartProbe(t, netip.AddrPortFrom(vip, 5672), netns.ProbeConfig{})
	if _, err := probe.WaitAnswer("master", time.Time{}, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	_ = k.Kill()     // the VIP stays on master's eth0
	_ = master.Cut() // and the box goes silent
	a, err := probe.WaitAnswer("backup", t0, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("takeover: %v", a.At.Sub(t0))
}
