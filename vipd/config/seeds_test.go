package config

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/amqpha/amqpha/internal/testenv"
)

func loadSeed(t *testing.T, name string) *Config {
	t.Helper()
	cfg, err := Load(filepath.Join(seedDir(t), name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

func TestSeed000Master(t *testing.T) {
	cfg := loadSeed(t, "seed000-master.conf")
	if cfg.GlobalDefs.RouterID != "NodeA" || len(cfg.VRRPInstances) != 1 || len(cfg.VirtualServers) != 2 {
		t.Fatalf("router_id %q, %d instances, %d virtual servers", cfg.GlobalDefs.RouterID, len(cfg.VRRPInstances), len(cfg.VirtualServers))
	}
	in := &cfg.VRRPInstances[0]
	if !in.InitialMaster() || in.Interface != "eth0" || in.VirtualRouterID != 1 || in.Priority != 100 ||
		in.Interval() != time.Second || in.EffectiveVersion() != 2 || in.Authentication == nil || len(in.TrackScript) != 0 ||
		len(in.VIPs()) != 1 || in.VIPs()[0] != netip.MustParsePrefix("192.168.0.10/32") {
		t.Errorf("instance %+v", in)
	}
	for i, port := range []int{5672, 15672} {
		vs := &cfg.VirtualServers[i]
		if vs.Port != port || vs.Protocol != "TCP" || vs.LVSSched != "wrr" || vs.LVSMethod != MethodDR ||
			vs.PersistenceTimeout != Duration(50*time.Second) || vs.DelayLoop != Duration(6*time.Second) || len(vs.RealServers) != 3 {
			t.Errorf("virtual_server %d: %+v", i, vs)
			continue
		}
		for _, rs := range vs.RealServers {
			c := rs.TCPCheck[0]
			if rs.Weight != 1 || c.ConnectPort != port || c.Retry != 3 || c.ConnectTimeout != Duration(3*time.Second) ||
				c.DelayBeforeRetry != Duration(3*time.Second) {
				t.Errorf("real_server %+v", rs)
			}
		}
	}
	requireNote(t, cfg, NoteUndefined, "seed000-master.conf:16:", `track_script "chk_haproxy": no vrrp_script chk_haproxy is defined`)
	for _, line := range []string{":30:", ":66:"} {
		requireNote(t, cfg, NoteUnknown, "seed000-master.conf"+line,
			`unknown keyword "protocal"`, `(did you mean "protocol"?); ignored, protocol stays TCP, the default`)
	}
	if n := len(cfg.NotesOf(NoteDeprecated)); n != 6 {
		t.Errorf("%d nb_get_retry notes, want 6", n)
	}
}

func TestSeed001Pair(t *testing.T) {
	for name, want := range map[string]struct {
		master   bool
		priority int
		router   string
	}{
		"seed001-master.conf": {true, 100, "NodeA"},
		"seed001-backup.conf": {false, 90, "NodeB"},
	} {
		cfg := loadSeed(t, name)
		in := &cfg.VRRPInstances[0]
		if cfg.GlobalDefs.RouterID != want.router || in.InitialMaster() != want.master || in.Priority != want.priority ||
			in.VirtualRouterID != 51 || in.Authentication.AuthType != "PASS" ||
			in.VIPs()[0] != netip.MustParsePrefix("192.168.8.100/24") {
			t.Errorf("%s: %+v", name, in)
		}
		if len(cfg.Notes) != 0 {
			t.Errorf("%s: unexpected notes:\n%s", name, notesText(cfg))
		}
	}
}

func TestSeed002Backup(t *testing.T) {
	cfg := loadSeed(t, "seed002-backup.conf")
	sc := cfg.VRRPScript("monitor_nginx")
	if sc == nil || sc.Weight != -15 || sc.Interval != Duration(time.Second) || len(sc.Script.Argv) != 1 {
		t.Fatalf("vrrp_script %+v", sc)
	}
	in := &cfg.VRRPInstances[0]
	if in.InitialMaster() || in.Priority != 80 || in.Interface != "eno16777736" ||
		len(in.TrackScript) != 1 || in.TrackScript[0].Weight != -15 {
		t.Errorf("instance %+v", in)
	}
	vs := &cfg.VirtualServers[0]
	if vs.Protocol != "TCP" || len(vs.RealServers) != 2 || vs.RealServers[0].Weight != 1 || vs.RealServers[1].Weight != 5 {
		t.Errorf("virtual_server %+v", vs)
	}
	for _, kw := range []string{":3: notification_email:", ":6: notification_email_from:", ":7: smtp_server:", ":8: smtp_connect_timeout:"} {
		requireNote(t, cfg, NoteIgnored, "seed002-backup.conf"+kw, "ignored; vipd sends no mail")
	}
	if n := len(cfg.NotesOf(NoteUnknown)) + len(cfg.NotesOf(NoteUndefined)); n != 0 {
		t.Errorf("unexpected notes:\n%s", notesText(cfg))
	}
}

// seedDir is where the seeds' keepalived.conf files are.
func seedDir(t testing.TB) string { return testenv.SeedDir(t) }
