//go:build integration

package vrrp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/amqpha/amqpha/integration/netns"
)

// vconf is one director's vrrp_instance, written out as keepalived.conf
// text that vipd and keepalived both run.
type vconf struct {
	state   string // MASTER or BACKUP
	prio    int
	version int    // 2 or 3
	advert  string // advert_int as written, e.g. "1" or "0.1"
	vrid    int
	pass    string // v2 PASS password; empty for none
	src     string // unicast_src_ip; empty for multicast
	peers   []string
	vip     string
	extra   string // more lines inside vrrp_instance
	global  string // more lines inside global_defs
}

func (c vconf) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s_%d\n%s}\n", strings.ToLower(c.state), c.prio, c.global)
	fmt.Fprintf(&b, "vrrp_instance VI_1 {\n    state %s\n    interface eth0\n    virtual_router_id %d\n", c.state, c.vrid)
	fmt.Fprintf(&b, "    priority %d\n    advert_int %s\n    version %d\n", c.prio, c.advert, c.version)
	if c.pass != "" {
		fmt.Fprintf(&b, "    authentication {\n        auth_type PASS\n        auth_pass %s\n    }\n", c.pass)
	}
	if c.src != "" {
		fmt.Fprintf(&b, "    unicast_src_ip %s\n    unicast_peer {\n", c.src)
		for _, p := range c.peers {
			fmt.Fprintf(&b, "        %s\n", p)
		}
		b.WriteString("    }\n")
	}
	fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s\n    }\n", c.vip)
	b.WriteString(c.extra)
	b.WriteString("}\n")
	return b.String()
}

// masterDown is Master_Down_Interval of a backup with priority prio.
func masterDown(version int, advert time.Duration, prio int) time.Duration {
	skew := time.Duration(256-prio) * time.Second / 256
	if version == 3 {
		skew = time.Duration(256-prio) * advert / 256
	}
	return 3*advert + skew
}

// director is one VRRP speaker, vipd or keepalived, on a host.
type director struct {
	kind string // "vipd" or "keepalived"
	host *netns.Host
	proc *netns.Process
	ka   *netns.Keepalived
}

func startDirector(t *testing.T, kind string, h *netns.Host, conf string) *director {
	t.Helper()
	d := &director{kind: kind, host: h}
	switch kind {
	case "keepalived":
		d.ka = netns.StartKeepalived(t, h, conf)
		d.proc = d.ka.Process()
	case "vipd":
		path := filepath.Join(t.TempDir(), "keepalived.conf")
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		d.proc = h.Start(t, vipdBin, "run", "-f", path, "-status", statusAddr, "-log-level", "debug")
		if err := d.proc.WaitOutput("vipd started", 10*time.Second); err != nil {
			t.Fatalf("vipd on %s: %v", h.Name(), err)
		}
		t.Cleanup(func() {
			if out := d.proc.Output(); strings.Contains(out, "level=ERROR") {
				t.Errorf("vipd on %s logged errors:\n%s", h.Name(), out)
			}
		})
	default:
		t.Fatalf("unknown director kind %q", kind)
	}
	return d
}

const statusAddr = "127.0.0.1:9650"

func (d *director) String() string { return d.kind + "@" + d.host.Name() }

// status asks vipd for its status (vipd only).
func (d *director) status(t *testing.T) vipdStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := d.host.Exec(ctx, vipdBin, "status", "-status", statusAddr)
	if err != nil {
		t.Fatalf("vipd status on %s: %v\n%s", d.host.Name(), err, out)
	}
	var s vipdStatus
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("vipd status on %s: %v\n%s", d.host.Name(), err, out)
	}
	return s
}

type vipdStatus struct {
	Instances []struct {
		Name     string   `json:"name"`
		State    string   `json:"state"`
		Priority int      `json:"priority"`
		Master   string   `json:"master"`
		VIPs     []string `json:"virtual_ipaddress"`
		Excluded []string `json:"virtual_ipaddress_excluded"`
		Counters struct {
			AdvertsSent     uint64            `json:"adverts_sent"`
			AdvertsReceived uint64            `json:"adverts_received"`
			GARPs           uint64            `json:"garp_sent"`
			Drops           map[string]uint64 `json:"drops"`
			Transitions     map[string]uint64 `json:"transitions"`
		} `json:"counters"`
	} `json:"instances"`
}

// waitFor polls cond every 50 ms until it holds or timeout passes: for
// conditions no process announces (an address gone, a counter moved).
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// holds reports whether h has the address on eth0.
func holds(t *testing.T, h *netns.Host, vip netip.Addr) bool {
	t.Helper()
	has, err := h.HasAddr("eth0", vip)
	if err != nil {
		t.Fatalf("addresses of %s: %v", h.Name(), err)
	}
	return has
}

// rig is a segment with two directors, a and b, and a client probing the
// VIP. Both directors answer the probe's port with their name.
type rig struct {
	seg          *netns.Segment
	a, b, client *netns.Host
	vip          netip.Addr
	probe        *netns.Probe
}

const probePort = 7000

func newRig(t *testing.T, v6 bool) *rig {
	t.Helper()
	netns.RequireKeepalived(t)
	seg := netns.New(t)
	r := &rig{seg: seg}
	if v6 {
		r.a = seg.Host("a", netip.MustParsePrefix("fd00:77::1/64"))
		r.b = seg.Host("b", netip.MustParsePrefix("fd00:77::2/64"))
		r.client = seg.Host("client", netip.MustParsePrefix("fd00:77::9/64"))
		r.vip = netip.MustParseAddr("fd00:77::100")
	} else {
		r.a = seg.Host("a", netip.MustParsePrefix("10.77.0.1/24"))
		r.b = seg.Host("b", netip.MustParsePrefix("10.77.0.2/24"))
		r.client = seg.Host("client", netip.MustParsePrefix("10.77.0.9/24"))
		r.vip = netip.MustParseAddr("10.77.0.100")
	}
	r.a.ServeName(t, probePort)
	r.b.ServeName(t, probePort)
	return r
}

func (r *rig) startProbe(t *testing.T) {
	r.probe = r.client.StartProbe(t, netip.AddrPortFrom(r.vip, probePort), netns.ProbeConfig{})
}

// waitHolder waits until the VIP answers from host name (at or after
// since) and returns when that answer came.
func (r *rig) waitHolder(t *testing.T, name string, since time.Time, timeout time.Duration) time.Time {
	t.Helper()
	a, err := r.probe.WaitAnswer(name, since, timeout)
	if err != nil {
		t.Fatalf("VIP never answered from %s: %v\n%s", name, err, netns.Summarize(r.probe.Answers(), since))
	}
	return a.At
}
