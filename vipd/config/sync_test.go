package config

import (
	"strings"
	"testing"
)

func syncInstance(name string, prio string) string {
	return "vrrp_instance " + name + " {\n interface eth0\n virtual_router_id " + map[string]string{"VI_1": "51", "VI_2": "52", "VI_3": "53"}[name] +
		"\n priority " + prio + "\n virtual_ipaddress {\n 10.0.0." + name[3:] + "\n }\n}\n"
}

// TestSyncGroupParse: a vrrp_sync_group's keywords.
func TestSyncGroupParse(t *testing.T) {
	text := `vrrp_script chk {
    script "/bin/true"
    weight -10
}
vrrp_sync_group G {
    group {
        VI_1 VI_2
    }
    track_script {
        chk
    }
    track_interface {
        eth1 weight -5 reverse
    }
    notify_backup "/bin/echo b"
    notify "/bin/echo n"
    sync_group_tracking_weight
    smtp_alert
}
` + syncInstance("VI_1", "100") + syncInstance("VI_2", "100")
	cfg, err := Parse("keepalived.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.SyncGroupOf("VI_2")
	if g == nil || g.Name != "G" || strings.Join(g.Group, ",") != "VI_1,VI_2" || !g.TrackingWeight ||
		len(g.TrackScript) != 1 || g.TrackScript[0].Weight != -10 || len(g.TrackInterface) != 1 || !g.TrackInterface[0].Reverse ||
		g.NotifyBackup == nil || g.Notify == nil {
		t.Fatalf("group %+v", g)
	}
	if cfg.SyncGroupOf("VI_3") != nil {
		t.Fatal("VI_3 in a group")
	}
	for _, n := range cfg.Notes {
		if strings.Contains(n.Msg, "is not tracked by any") {
			t.Errorf("a script tracked by the group is reported unused: %v", n)
		}
	}
	if len(cfg.NotesOf(NoteIgnored)) != 1 {
		t.Errorf("smtp_alert not noted as ignored: %v", cfg.Notes)
	}
}

// TestSyncGroupErrors: what vipd refuses, with file:line.
func TestSyncGroupErrors(t *testing.T) {
	two := syncInstance("VI_1", "100") + syncInstance("VI_2", "100")
	for _, c := range []struct{ name, text, want string }{
		{"unknown member", "vrrp_sync_group G {\n group {\n VI_1\n VI_9\n }\n}\n" + two, "keepalived.conf:2: vrrp_sync_group G: no vrrp_instance VI_9"},
		{"member twice", "vrrp_sync_group G {\n group {\n VI_1\n }\n}\nvrrp_sync_group H {\n group {\n VI_1\n VI_2\n }\n}\n" + two,
			"keepalived.conf:7: vrrp_sync_group H: vrrp_instance VI_1 is in vrrp_sync_group G already"},
		{"same name", "vrrp_sync_group G {\n group {\n VI_1\n }\n}\nvrrp_sync_group G {\n group {\n VI_2\n }\n}\n" + two, "keepalived.conf:6: vrrp_sync_group G: defined again"},
		{"owners mixed", "vrrp_sync_group G {\n group {\n VI_1\n VI_2\n }\n}\n" + syncInstance("VI_1", "255") + syncInstance("VI_2", "100"),
			"keepalived.conf:2: vrrp_sync_group G: some members are address owners"},
		{"no name", "vrrp_sync_group {\n group {\n VI_1\n }\n}\n" + two, "keepalived.conf:1: vrrp_sync_group: expected one argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("keepalived.conf", []byte(c.text))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v; want %q", err, c.want)
			}
		})
	}
}

// TestSyncGroupWithoutMembers: a group without group { } is dropped with
// a note, as keepalived drops it, and its instances run on their own.
// Members written outside group { } (as in keepalived's lvs_syncd sample)
// are unknown keywords, which vipd refuses at their line (keepalived logs
// them and drops the group).
func TestSyncGroupWithoutMembers(t *testing.T) {
	two := syncInstance("VI_1", "100") + syncInstance("VI_2", "100")
	if _, err := Parse("keepalived.conf", []byte("vrrp_sync_group G {\n VI_1\n VI_2\n}\n"+two)); err == nil ||
		!strings.Contains(err.Error(), `keepalived.conf:2: unknown keyword "VI_1" in vrrp_sync_group G`) {
		t.Fatalf("members outside group { }: error %v", err)
	}
	cfg, err := Parse("keepalived.conf", []byte("vrrp_sync_group G {\n}\n"+two))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.VRRPSyncGroups) != 0 || cfg.SyncGroupOf("VI_1") != nil {
		t.Fatalf("groups %+v", cfg.VRRPSyncGroups)
	}
	var found bool
	for _, n := range cfg.NotesOf(NoteNoEffect) {
		found = found || strings.Contains(n.String(), "keepalived.conf:1:") && strings.Contains(n.Msg, "vrrp_sync_group G has no member")
	}
	if !found {
		t.Fatalf("no note about the empty group: %v", cfg.Notes)
	}
}
