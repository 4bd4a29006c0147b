package main

import (
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/vipd/script"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

// TestSyncGroupQuietUntilScriptsReport: a sync group whose member tracks a
// weight-0 vrrp_script that has not reported yet starts as keepalived
// starts it: every member in FAULT without notify_fault, the group
// reported BACKUP; when the script's first result is a failure, the
// failing member's notify and the group's say FAULT (the other member,
// in FAULT already, is not notified again, as in keepalived's
// vrrp_sync_fault).
func TestSyncGroupQuietUntilScriptsReport(t *testing.T) {
	dir := t.TempDir()
	logFile, gate := filepath.Join(dir, "notify.log"), filepath.Join(dir, "gate")
	notifyCmd := script.Command{Argv: []string{"/bin/sh", "-c", `echo "$@" >> ` + logFile, "notify"}, Timeout: script.NoTimeout}
	// The check fails once the gate exists; until then it has no result.
	chk := scriptSpec{Name: "chk", Interval: time.Hour, Fall: 1, Rise: 1,
		Command: script.Command{Argv: []string{"/bin/sh", "-c", "while [ ! -e " + gate + " ]; do sleep 0.05; done; exit 1"}, Timeout: time.Minute}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tr, err := newTracking([]scriptSpec{chk}, false, log)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.close()
	n := newNotifier(log)
	defer n.close(time.Second)

	member := func(name string, vrid uint8, tracks bool) *instance {
		spec := instanceSpec{Name: name, VRID: vrid, Priority: 100, Notify: &notifyCmd}
		if tracks {
			spec.TrackScripts = []trackScript{{Name: "chk"}}
		}
		m, err := vrrp.NewMachine(vrrp.Config{VRID: vrid, Version: 3, Priority: 100, Interval: time.Second, InitialState: vrrp.Backup,
			PrimaryIP: netip.MustParseAddr("127.0.0.1"), Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.10")}})
		if err != nil {
			t.Fatal(err)
		}
		return &instance{spec: spec, log: log, met: newInstanceMetrics(), notify: n, m: m, warned: map[string]bool{}}
	}
	g := &groupSpec{Name: "G", Members: []string{"VI_1", "VI_2"},
		Notify: instanceSpec{Name: "G", group: true, Notify: &notifyCmd}}
	r := &runner{group: g, log: log, track: tr, notify: n, members: []*instance{member("VI_1", 1, true), member("VI_2", 2, false)}}

	lines := func() []string {
		b, _ := os.ReadFile(logFile)
		return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
	}
	// As the runner's loop starts its members.
	r.retrack(false)
	for _, i := range r.members {
		i.apply(i.m.Start(time.Now()))
	}
	r.retrack(true)
	for _, i := range r.members {
		if i.m.State() != vrrp.Fault {
			t.Fatalf("%s is %v at start, want FAULT (held by chk)", i.spec.Name, i.m.State())
		}
	}
	waitUntil(t, "the group's BACKUP notification", func() bool { return slices.Contains(lines(), "GROUP_G_BACKUP_0") })
	if l := lines(); len(l) != 1 {
		t.Fatalf("notifications at start %q, want only the group's BACKUP", l)
	}

	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the script's first result", func() bool { known, _, _ := tr.scripts["chk"].state(); return known })
	r.retrack(true)
	want := []string{"GROUP_G_BACKUP_0", "GROUP_G_FAULT_0", "INSTANCE_VI_1_FAULT_100"}
	waitUntil(t, "the FAULT notifications", func() bool { l := lines(); slices.Sort(l); return slices.Equal(l, want) })
	n.close(time.Second) // every started script has ended: nothing more comes
	if l := lines(); len(l) != len(want) {
		t.Fatalf("notifications %q, want %q", l, want)
	}
}
