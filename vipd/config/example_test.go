package config_test

import (
	"fmt"

	"github.com/amqpha/amqpha/vipd/config"
)

func ExampleParse() {
	const conf = `
vrrp_script chk_rabbit{
    script "/usr/local/bin/check-rabbit --port 5672"
    weight -20
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 90
    version 3
    advert_int 0.5
    virtual_ipaddress {
        10.0.0.100/24 dev eth0
    }
    track_script {
        chk_rabbit
        chk_missing
    }
}
virtual_server 10.0.0.100 5672 {
    lb_algo wrr
    lb_kind DR
    protocal TCP
    real_server 10.0.0.11 5672 {
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`
	cfg, err := config.Parse("keepalived.conf", []byte(conf))
	if err != nil {
		fmt.Println(err)
		return
	}
	in := cfg.VRRPInstance("VI_1")
	fmt.Println(in.Name, "version", in.EffectiveVersion(), "every", in.Interval(), "master:", in.InitialMaster())
	fmt.Println("VIPs:", in.VIPs())
	fmt.Println("tracks", in.TrackScript[0].Name, "with weight", in.TrackScript[0].Weight,
		"running", cfg.VRRPScript("chk_rabbit").Script.Argv)
	rs := cfg.VirtualServers[0].RealServers[0]
	fmt.Println("check", rs.IP, "port", rs.TCPCheck[0].ConnectPort, "every", rs.TCPCheck[0].DelayLoop)
	for _, n := range cfg.Notes {
		fmt.Println(n)
	}
	// Output:
	// VI_1 version 3 every 500ms master: false
	// VIPs: [10.0.0.100/24]
	// tracks chk_rabbit with weight -20 running [/usr/local/bin/check-rabbit --port 5672]
	// check 10.0.0.11 port 5672 every 1m0s
	// keepalived.conf:18: track_script "chk_missing": no vrrp_script chk_missing is defined; vrrp_instance VI_1 does not track it
	// keepalived.conf:21: virtual_server 10.0.0.100 5672: no protocol set; vipd uses TCP, where keepalived 1.3.6 and later would use UDP
	// keepalived.conf:24: unknown keyword "protocal" in virtual_server 10.0.0.100 5672 (did you mean "protocol"?); ignored, protocol stays TCP, the default
}
