package lvs_test

import (
	"context"
	"testing"

	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/lvs/lvstest"
)

// FuzzFromConfig checks, for any configuration the parser accepts, that
// FromConfig's table validates and is the same each time, and that
// applying it works and a second Apply changes nothing.
func FuzzFromConfig(f *testing.F) {
	f.Add(healthConf)
	f.Add(`virtual_server_group G {
    10.0.0.1-3 80
    fwmark 9 inet6
    2001:db8::1 443
}
virtual_server group G {
    protocol UDP
    persistence_granularity 64
    real_server 10.1.0.1 80 { weight 2 }
    real_server 2001:db8::5 80 { weight 3 }
    sorry_server 10.1.0.9 80
}
virtual_server fwmark 7 {
    lb_kind TUN
    real_server 2001:db8::8 { }
}`)
	f.Add("virtual_server 10.0.0.1 {\n persistence_granularity 255.255.0.0\n real_server 10.0.0.2 { weight 65536 }\n}\n")
	f.Fuzz(func(t *testing.T, src string) {
		cfg, err := config.Parse("keepalived.conf", []byte(src))
		if err != nil {
			return
		}
		n := 0
		for _, vs := range cfg.VirtualServers {
			n += len(vs.RealServers)
		}
		// A health that varies with the address: up, down, drain, dynamic.
		health := func(vs *config.VirtualServer, rs *config.RealServer) lvs.Status {
			b := rs.IP.AsSlice()
			switch b[len(b)-1] % 4 {
			case 1:
				return lvs.Status{State: lvs.Down}
			case 2:
				return lvs.Status{State: lvs.Drain}
			case 3:
				return lvs.WithWeight(int(b[len(b)-1]))
			}
			return lvs.Status{}
		}
		tab, _ := lvs.FromConfig(cfg, health)
		if len(tab) > 2000 || n > 2000 {
			return
		}
		if err := tab.Validate(); err != nil {
			t.Fatalf("table does not validate: %v\n%s", err, tab)
		}
		again, _ := lvs.FromConfig(cfg, health)
		if !again.Equal(tab) || again.String() != tab.String() {
			t.Fatalf("FromConfig not deterministic:\n%s\n%s", tab, again)
		}
		ctx := context.Background()
		r := lvs.NewReconciler(lvstest.New(), nil)
		if _, err := r.Apply(ctx, tab); err != nil {
			t.Fatalf("Apply: %v\n%s", err, tab)
		}
		if cs, err := r.Apply(ctx, tab); err != nil || len(cs) != 0 {
			t.Fatalf("second Apply: %v\n%s", err, cs)
		}
	})
}
