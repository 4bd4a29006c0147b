package config

import (
	"cmp"
	"fmt"
	"net/netip"
	"time"
)

// finalize settles what depends on more than one block: versions, initial
// state and priority, values inherited from global_defs and from virtual
// and real servers, and references between blocks. It runs once, after
// decoding, and leaves the checks to the validator.
func (d *decoder) finalize(cfg *Config) {
	g := &cfg.GlobalDefs
	if g.VRRPMinGarp {
		if !g.meta.has("vrrp_garp_master_repeat") {
			g.VRRPGarpMasterRepeat = 1
		}
		if !g.meta.has("vrrp_garp_master_delay") {
			g.VRRPGarpMasterDelay = 0
		}
	}
	used := map[string]bool{}
	for i := range cfg.VRRPInstances {
		d.finalizeInstance(cfg, &cfg.VRRPInstances[i], used)
	}
	d.finalizeSyncGroups(cfg, used)
	for i := range cfg.VRRPScripts {
		sc := &cfg.VRRPScripts[i]
		if !used[sc.Name] {
			d.notePos(sc.Pos, NoteNoEffect, "vrrp_script",
				"vrrp_script %s is not tracked by any vrrp_instance; it does not run", sc.Name)
		}
	}
	kept := cfg.VirtualServers[:0]
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		if len(vs.RealServers) == 0 {
			d.notePos(vs.Pos, NoteNoEffect, "virtual_server",
				"%s has no real_server; it is ignored, as keepalived does", vsLabel(vs))
			continue
		}
		d.finalizeVS(vs)
		kept = append(kept, *vs)
	}
	cfg.VirtualServers = kept
}

func (d *decoder) finalizeInstance(cfg *Config, in *VRRPInstance, used map[string]bool) {
	g, m := &cfg.GlobalDefs, in.meta
	if !m.has("version") {
		in.Version = g.VRRPVersion
	}
	if in.IPv6() && in.Version == 2 {
		if m.has("version") {
			d.notePos(m.pos("version", in.Pos), NoteCompat, "version",
				"vrrp_instance %s: version 2 cannot carry IPv6 addresses; the instance runs version 3, as keepalived does", in.Name)
		}
		in.Version = 3
	}
	if !m.has("priority") && !m.isBad("priority") && in.State == StateMaster {
		in.Priority = 255
		d.notePos(m.pos("state", in.Pos), NoteCompat, "priority",
			"vrrp_instance %s: state MASTER and no priority: the priority is 255 (address owner), as in keepalived 2.0 and later; set a priority to change it", in.Name)
	}
	if in.State == "" && !m.isBad("state") {
		in.State = StateBackup
		if in.Priority == 255 {
			in.State = StateMaster
		}
	}
	if !m.has("strict_mode") {
		in.StrictMode = g.VRRPStrict
	}
	if in.StrictMode {
		d.strict(g, in)
	}
	d.acceptMode(in)
	if in.Unicast() {
		if m.has("mcast_dst_ip") && in.McastDstIP.IsValid() {
			d.notePos(m.pos("mcast_dst_ip", in.Pos), NoteNoEffect, "mcast_dst_ip",
				"vrrp_instance %s: mcast_dst_ip has no effect with unicast_peer; adverts go to the peers, as in keepalived", in.Name)
		}
		in.McastDstIP = netip.Addr{}
		in.CheckUnicastSrc = in.CheckUnicastSrc || in.peerTTL || g.VRRPCheckUnicastSrc
	} else {
		if in.CheckUnicastSrc {
			d.notePos(m.pos("check_unicast_src", in.Pos), NoteNoEffect, "check_unicast_src",
				"vrrp_instance %s: check_unicast_src has no effect without unicast_peer (multicast adverts must come to the group with TTL 255), as in keepalived", in.Name)
			in.CheckUnicastSrc = false
		}
		if !in.McastDstIP.IsValid() {
			in.McastDstIP = g.VRRPMcastGroup4
			if in.IPv6() {
				in.McastDstIP = g.VRRPMcastGroup6
			}
		}
	}
	if !m.has("garp_master_delay") {
		in.GarpMasterDelay = g.VRRPGarpMasterDelay
	}
	if !m.has("garp_master_refresh") {
		in.GarpMasterRefresh = g.VRRPGarpMasterRefresh
	}
	if !m.has("garp_master_repeat") {
		in.GarpMasterRepeat = g.VRRPGarpMasterRepeat
	}
	if !m.has("garp_master_refresh_repeat") {
		in.GarpMasterRefreshRepeat = g.VRRPGarpMasterRefreshRepeat
	}
	if !m.has("v3_checksum_as_v2") {
		in.V3ChecksumAsV2 = g.V3ChecksumAsV2
	}
	if !m.has("lower_prio_no_advert") {
		in.LowerPrioNoAdvert = g.VRRPLowerPrioNoAdvert
	}
	if in.Authentication != nil && in.Version == 3 {
		d.notePos(m.pos("authentication", in.Pos), NoteNoEffect, "authentication",
			"vrrp_instance %s: version 3 has no authentication; the authentication block is ignored, as keepalived does", in.Name)
		in.Authentication = nil
	}
	if in.Nopreempt && in.State == StateMaster {
		d.notePos(m.pos("nopreempt", in.Pos), NoteNoEffect, "nopreempt",
			"vrrp_instance %s: nopreempt has no effect with state MASTER (as in keepalived); use state BACKUP on every router", in.Name)
	}
	if in.PreemptDelay > 0 {
		switch {
		case in.Nopreempt:
			d.notePos(m.pos("preempt_delay", in.Pos), NoteNoEffect, "preempt_delay",
				"vrrp_instance %s: preempt_delay has no effect with nopreempt; it is reset to 0, as keepalived does", in.Name)
			in.PreemptDelay = 0
		case in.State == StateMaster:
			d.notePos(m.pos("preempt_delay", in.Pos), NoteNoEffect, "preempt_delay",
				"vrrp_instance %s: preempt_delay has no effect with state MASTER (as in keepalived)", in.Name)
		}
	}
	in.TrackScript = d.resolveTrackScripts(cfg, in.TrackScript, used, "vrrp_instance "+in.Name)
}

// strict applies keepalived's strict mode (vrrp_strict, strict_mode) to an
// instance whose state and priority are settled: what keepalived changes it
// changes too, with a note; what keepalived refuses the validator refuses.
func (d *decoder) strict(g *GlobalDefs, in *VRRPInstance) {
	m := in.meta
	why := "strict mode (vrrp_strict at " + g.KeywordPos("vrrp_strict").String() + ")"
	if m.has("strict_mode") {
		why = "strict_mode"
	}
	if (in.State == StateMaster) != (in.Priority == 255) && m.has("state") {
		want := StateBackup
		if in.Priority == 255 {
			want = StateMaster
		}
		d.notePos(m.pos("state", in.Pos), NoteCompat, "state",
			"vrrp_instance %s: %s: state %s goes only with priority 255 (the address owner), and the priority is %d; the instance starts as %s, as keepalived does",
			in.Name, why, in.State, in.Priority, want)
		in.State = want
	}
	if in.Authentication != nil {
		d.notePos(m.pos("authentication", in.Pos), NoteCompat, "authentication",
			"vrrp_instance %s: %s allows no authentication; it is ignored, as keepalived does: adverts go without it and adverts carrying it are dropped", in.Name, why)
		in.Authentication = nil
	}
	if !in.LowerPrioNoAdvert && m.has("lower_prio_no_advert") {
		d.notePos(m.pos("lower_prio_no_advert", in.Pos), NoteCompat, "lower_prio_no_advert",
			"vrrp_instance %s: %s: a master never answers a lower priority advert; lower_prio_no_advert off is turned on, as keepalived does", in.Name, why)
	}
	in.LowerPrioNoAdvert = true
	if in.PreemptDelay > 0 && in.State != StateMaster && !in.Nopreempt {
		d.notePos(m.pos("preempt_delay", in.Pos), NoteCompat, "preempt_delay",
			"vrrp_instance %s: %s allows no preempt_delay; it is reset to 0, as keepalived does", in.Name, why)
		in.PreemptDelay = 0
	}
}

// acceptMode settles accept mode as keepalived does: unset, on for the
// address owner and off for others in strict mode, on otherwise; strict
// mode turns it off for version 2 non-owners even when asked for.
func (d *decoder) acceptMode(in *VRRPInstance) {
	m := in.meta
	set := m.has("accept") || m.has("no_accept")
	if !set {
		in.NoAccept = in.Priority != 255 && in.StrictMode
	}
	if !in.NoAccept && in.Priority != 255 && in.StrictMode && in.Version == 2 {
		if set {
			d.notePos(m.pos("accept", in.Pos), NoteCompat, "accept",
				"vrrp_instance %s: accept does not comply with RFC 3768 in strict mode; it is turned off, as keepalived does", in.Name)
		}
		in.NoAccept = true
	}
}

func vsLabel(vs *VirtualServer) string {
	switch {
	case vs.Group != "":
		return "virtual_server group " + vs.Group
	case vs.Fwmark != 0:
		return fmt.Sprintf("virtual_server fwmark %d", vs.Fwmark)
	case vs.Port != 0:
		return fmt.Sprintf("virtual_server %s %d", vs.IP, vs.Port)
	}
	return fmt.Sprintf("virtual_server %s", vs.IP)
}

func (d *decoder) finalizeVS(vs *VirtualServer) {
	m := vs.meta
	if !m.has("protocol") && !m.isBad("protocol") && vs.Fwmark == 0 {
		d.notePos(vs.Pos, NoteCompat, "protocol",
			"%s: no protocol set; vipd uses TCP, where keepalived 1.3.6 and later would use UDP", vsLabel(vs))
	}
	if vs.IP.IsValid() && vs.Port == 0 && vs.PersistenceTimeout == 0 {
		d.notePos(vs.Pos, NoteCompat, "persistence_timeout",
			"%s: no port: only a persistent service may do without one; persistence_timeout is set to 360s, as keepalived does", vsLabel(vs))
		vs.PersistenceTimeout = Duration(DefaultPersistenceTimeout)
	}
	if vs.PersistenceGranularity != "" && vs.PersistenceTimeout == 0 {
		vs.PersistenceTimeout = Duration(DefaultPersistenceTimeout)
	}
	for i := range vs.RealServers {
		rs := &vs.RealServers[i]
		if rs.LVSMethod == "" {
			rs.LVSMethod = vs.LVSMethod
		}
		if !rs.meta.has("weight") && vs.Weight > 0 {
			rs.Weight = vs.Weight
		}
		if !rs.meta.has("inhibit_on_failure") {
			rs.InhibitOnFailure = vs.InhibitOnFailure
		}
		inherit := func(c *CheckCommon, retry int, delay time.Duration) {
			if !c.ConnectIP.IsValid() {
				c.ConnectIP = rs.IP
			}
			if c.ConnectPort == 0 {
				c.ConnectPort = rs.Port
			}
			c.ConnectTimeout = pick(c.meta, rs.meta, vs.meta, "connect_timeout",
				c.ConnectTimeout, rs.ConnectTimeout, vs.ConnectTimeout, Duration(DefaultConnectTimeout))
			c.Retry = pick(c.meta, rs.meta, vs.meta, "retry", c.Retry, rs.Retry, vs.Retry, retry)
			c.DelayBeforeRetry = pick(c.meta, rs.meta, vs.meta, "delay_before_retry",
				c.DelayBeforeRetry, rs.DelayBeforeRetry, vs.DelayBeforeRetry, Duration(delay))
			c.DelayLoop = pick(c.meta, rs.meta, nil, "delay_loop", c.DelayLoop, rs.DelayLoop, 0, vs.DelayLoop)
			c.Alpha = pick(c.meta, rs.meta, vs.meta, "alpha", c.Alpha, rs.Alpha, vs.Alpha, false)
		}
		for j := range rs.TCPCheck {
			inherit(&rs.TCPCheck[j].CheckCommon, 1, time.Second)
		}
		for _, list := range [][]HTTPCheck{rs.HTTPGet, rs.SSLGet} {
			for j := range list {
				c := &list[j]
				inherit(&c.CheckCommon, 1, 3*time.Second)
				c.Virtualhost = cmp.Or(c.Virtualhost, rs.Virtualhost, vs.Virtualhost)
			}
		}
		for j := range rs.AMQPCheck {
			inherit(&rs.AMQPCheck[j].CheckCommon, 1, time.Second)
		}
		for j := range rs.MiscCheck {
			c := &rs.MiscCheck[j]
			inherit(&c.CheckCommon, 0, time.Second)
			c.ConnectIP, c.ConnectPort = netip.Addr{}, 0 // MISC_CHECK connects nowhere
			if c.MiscTimeout == 0 {
				c.MiscTimeout = c.DelayLoop
			}
		}
	}
}

// pick returns the value of kw from the first block that sets it: the
// checker, the real server, the virtual server; def when none does.
func pick[T any](cm, rm, vm *meta, kw string, c, r, v, def T) T {
	switch {
	case cm.has(kw):
		return c
	case rm.has(kw):
		return r
	case vm.has(kw):
		return v
	}
	return def
}

// resolveTrackScripts drops (with a note) the track_script entries naming
// no vrrp_script, gives the others the script's weight and direction
// where the entry sets none, and marks the scripts used. who names the
// block, for the note.
func (d *decoder) resolveTrackScripts(cfg *Config, list []TrackScript, used map[string]bool, who string) []TrackScript {
	tracked := list[:0]
	for _, ts := range list {
		sc := cfg.VRRPScript(ts.Name)
		if sc == nil {
			d.notePos(ts.pos, NoteUndefined, "track_script",
				"track_script %q: no vrrp_script %s is defined; %s does not track it", ts.Name, ts.Name, who)
			continue
		}
		used[ts.Name] = true
		if !ts.weightSet {
			ts.Weight = sc.Weight
		}
		if !ts.reverseSet {
			ts.Reverse = sc.Reverse
		}
		tracked = append(tracked, ts)
	}
	if len(tracked) == 0 {
		return nil
	}
	return tracked
}
