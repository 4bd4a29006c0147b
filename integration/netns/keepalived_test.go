package netns

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// vrrpConf is a keepalived.conf for one VRRP instance on eth0.
func vrrpConf(name, state string, priority, version int, advert string, vip netip.Addr) string {
	auth := ""
	if version == 2 {
		auth = "\tauthentication {\n\t\tauth_type PASS\n\t\tauth_pass secret12\n\t}\n"
	}
	return fmt.Sprintf(`global_defs {
	router_id %s
}
vrrp_instance VI_1 {
	version %d
	state %s
	interface eth0
	virtual_router_id 51
	priority %d
	advert_int %s
%s	virtual_ipaddress {
		%s/24
	}
}
`, name, version, state, priority, advert, auth, vip)
}

func TestKeepalivedTakeover(t *testing.T) {
	tests := []struct {
		name    string
		version int
		advert  string
	}{
		{"v2 advert 1s", 2, "1"},
		{"v3 advert 0.1s", 3, "0.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			RequireKeepalived(t)
			const port = 7000
			vip := netip.MustParseAddr("10.78.0.100")
			s := New(t)
			master := s.Host("master", netip.MustParsePrefix("10.78.0.1/24"))
			backup := s.Host("backup", netip.MustParsePrefix("10.78.0.2/24"))
			client := s.Host("client", netip.MustParsePrefix("10.78.0.10/24"))
			master.ServeName(t, port)
			backup.ServeName(t, port)

			// The master first, so that the election has one outcome.
			km := StartKeepalived(t, master, vrrpConf("master", "MASTER", 150, tc.version, tc.advert, vip))
			if err := km.WaitState("MASTER", 15*time.Second); err != nil {
				t.Fatal(err)
			}
			kb := StartKeepalived(t, backup, vrrpConf("backup", "BACKUP", 100, tc.version, tc.advert, vip))
			if err := kb.WaitState("BACKUP", 5*time.Second); err != nil {
				t.Fatal(err)
			}

			probe := client.StartProbe(t, netip.AddrPortFrom(vip, port), ProbeConfig{})
			if _, err := probe.WaitAnswer("master", time.Time{}, 5*time.Second); err != nil {
				t.Fatal(err)
			}

			// The master dies: keepalived is killed outright, then the box
			// goes silent. SIGKILL gives keepalived no chance to remove
			// the VIP, so it stays on the dead master's eth0; with the
			// master still on the segment both boxes would hold the VIP and
			// answer ARP for it. Cutting the master off models a dead box.
			t0 := time.Now()
			if err := km.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := km.Process().Wait(5 * time.Second); err == nil {
				t.Fatal("keepalived survived SIGKILL")
			}
			if ok, err := master.HasAddr(Iface, vip); err != nil || !ok {
				t.Errorf("VIP gone from the master after SIGKILL of keepalived (%v, %v); want it left behind", ok, err)
			}
			if err := master.Cut(); err != nil {
				t.Fatal(err)
			}

			answer, err := probe.WaitAnswer("backup", t0, 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			takeover := answer.At.Sub(t0)
			if err := kb.WaitState("MASTER", time.Second); err != nil {
				t.Errorf("backup answers for the VIP but is not MASTER: %v", err)
			}
			// The gratuitous ARP moved the client's entry for the VIP,
			// with arp_accept at its default 0.
			if out, err := client.Exec(t.Context(), "cat", "/proc/sys/net/ipv4/conf/eth0/arp_accept"); err != nil || strings.TrimSpace(string(out)) != "0" {
				t.Errorf("client's arp_accept = %q, %v; want 0", out, err)
			}
			mac, err := client.Neighbor(vip)
			if err != nil || mac.String() != backup.MAC().String() {
				t.Errorf("client's neighbour entry for the VIP: %v, %v; want the backup's %v", mac, err, backup.MAC())
			}
			t.Logf("VRRPv%d advert_int %s: VIP answered from the backup %v after SIGKILL of the master (probes since: %s)",
				tc.version, tc.advert, takeover.Round(time.Millisecond), Summarize(probe.Answers(), t0))
			if t.Failed() {
				t.Logf("backup keepalived log:\n%s", tail(kb.Log(), 40))
			}
		})
	}
}

func TestKeepalivedStartFailure(t *testing.T) {
	RequireKeepalived(t)
	s := New(t)
	h := s.Host("h", netip.MustParsePrefix("10.79.0.1/24"))
	// keepalived exits at once when its interface does not exist;
	// StartKeepalived must fail with keepalived's log rather than wait.
	ft := &fakeT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer ft.runCleanups()
		StartKeepalived(ft, h, strings.ReplaceAll(vrrpConf("h", "BACKUP", 100, 2, "1", netip.MustParseAddr("10.79.0.100")), "eth0", "eth9"))
	}()
	<-done
	if !ft.Failed() {
		t.Fatal("StartKeepalived with a missing interface did not fail")
	}
	if !strings.Contains(ft.msg, "eth9") || !strings.Contains(ft.msg, "ended") {
		t.Errorf("failure message lacks keepalived's exit and log:\n%s", ft.msg)
	}
}
