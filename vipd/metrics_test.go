package main

import (
	"strings"
	"testing"

	"github.com/amqpha/amqpha/vipd/vrrp"
)

func TestPrometheusOutput(t *testing.T) {
	m := newInstanceMetrics()
	m.advertsSent.Add(3)
	m.drop("auth")
	m.drop("auth")
	m.drop("ttl")
	m.transition(vrrp.Master)
	s := instanceStatus{Name: "VI_1", State: "MASTER", Priority: 150, Counters: m.counters()}
	var b strings.Builder
	writeProm(&b, []instanceStatus{s})
	out := b.String()
	for _, line := range []string{
		`# TYPE vipd_vrrp_adverts_sent_total counter`,
		`vipd_vrrp_adverts_sent_total{instance="VI_1"} 3`,
		`vipd_vrrp_drops_total{instance="VI_1",reason="auth"} 2`,
		`vipd_vrrp_drops_total{instance="VI_1",reason="ttl"} 1`,
		`vipd_vrrp_transitions_total{instance="VI_1",state="MASTER"} 1`,
		`vipd_vrrp_state{instance="VI_1",state="MASTER"} 1`,
		`vipd_vrrp_state{instance="VI_1",state="BACKUP"} 0`,
		`vipd_vrrp_priority{instance="VI_1"} 150`,
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("missing %q in:\n%s", line, out)
		}
	}
}
