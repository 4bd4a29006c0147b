package config

// VRRPSyncGroup is a vrrp_sync_group block: vrrp_instances that change
// state together, as in keepalived. When one member goes to FAULT every
// member does (and they come out of it together, once none is faulted);
// when one master becomes a backup the others give up their addresses
// too; a backup whose down timer runs out becomes master only once every
// member wants to, and then all do.
type VRRPSyncGroup struct {
	Pos  Pos    `json:"-"`
	Name string `json:"name"`
	// Group names the member vrrp_instances, each in one group at most.
	Group []string `json:"group"`
	// TrackInterface and TrackScript apply to every member, with their
	// weights (cleared when a member is an address owner, as keepalived
	// does).
	TrackInterface []TrackInterface `json:"track_interface,omitempty"`
	TrackScript    []TrackScript    `json:"track_script,omitempty"`
	// TrackingWeight is sync_group_tracking_weight (global_tracking is its
	// old name): the members keep the weights of their own track_script
	// and track_interface entries. Without it keepalived drops a member's
	// weighted track_script entries and tracks its weighted interfaces
	// without weight (down is FAULT), and so does vipd.
	TrackingWeight bool `json:"sync_group_tracking_weight,omitempty"`

	// The group's notify scripts run when the group as a whole changes
	// state; notify gets "GROUP", the name, the state and 0 appended.
	NotifyMaster *Script `json:"notify_master,omitempty"`
	NotifyBackup *Script `json:"notify_backup,omitempty"`
	NotifyFault  *Script `json:"notify_fault,omitempty"`
	NotifyStop   *Script `json:"notify_stop,omitempty"`
	Notify       *Script `json:"notify,omitempty"`

	meta *meta
}

// SyncGroupOf returns the vrrp_sync_group the instance called name belongs
// to, or nil.
func (c *Config) SyncGroupOf(name string) *VRRPSyncGroup {
	for i := range c.VRRPSyncGroups {
		for _, m := range c.VRRPSyncGroups[i].Group {
			if m == name {
				return &c.VRRPSyncGroups[i]
			}
		}
	}
	return nil
}

// KeywordPos returns where the group's keyword kw was given, or the
// position of the vrrp_sync_group line when it was not.
func (g *VRRPSyncGroup) KeywordPos(kw string) Pos { return g.meta.pos(kw, g.Pos) }

func (d *decoder) vrrpSyncGroup(s *stmt) (VRRPSyncGroup, bool) {
	g := VRRPSyncGroup{Pos: s.pos(), meta: newMeta()}
	if !d.nargs(s, 1, 1) {
		return g, false
	}
	g.Name = s.args[0].val
	d.walk("vrrp_sync_group", s, d.syncGroupKeywords(&g), g.meta, func() any { return &g })
	return g, true
}

func (d *decoder) syncGroupKeywords(g *VRRPSyncGroup) keywords {
	notify := func(p **Script) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.notifyArg(s); ok {
				*p = v
			}
		}
	}
	weight := func(s *stmt) {
		if s.kw.val == "global_tracking" {
			d.note(s, NoteDeprecated, "global_tracking is the old name of sync_group_tracking_weight; taken as it, as keepalived does")
		}
		if d.flag(s) {
			g.TrackingWeight = true
		}
	}
	return keywords{
		"group": block(func(s *stmt) {
			if len(s.args) > 0 {
				d.errorf(s, s.kw.line, "group: expected no argument before '{', got %d", len(s.args))
			}
			for _, e := range s.block {
				if e.hasBlock {
					d.errorf(e, e.kw.line, "group: a member line does not take a block")
					continue
				}
				g.Group = append(g.Group, e.kw.val)
				for _, a := range e.args {
					g.Group = append(g.Group, a.val)
				}
			}
		}),
		"track_interface": block(func(s *stmt) {
			g.TrackInterface = append(g.TrackInterface, d.trackInterfaceBlock(s)...)
		}),
		"track_script": block(func(s *stmt) {
			g.TrackScript = append(g.TrackScript, d.trackScriptBlock(s)...)
		}),
		"notify_master":              value(notify(&g.NotifyMaster)),
		"notify_backup":              value(notify(&g.NotifyBackup)),
		"notify_fault":               value(notify(&g.NotifyFault)),
		"notify_stop":                value(notify(&g.NotifyStop)),
		"notify":                     value(notify(&g.Notify)),
		"sync_group_tracking_weight": value(weight),
		"global_tracking":            value(weight),
	}
}

// finalizeSyncGroups checks the groups against the instances: every member
// must be a vrrp_instance, in one group only; a group without members is
// dropped with a note (keepalived drops it too); and
// members that are address owners cannot be mixed with others (keepalived
// says "this won't work" and runs it anyway; vipd refuses). It resolves
// the groups' track_script entries as the instances' are, marking the
// scripts used.
func (d *decoder) finalizeSyncGroups(cfg *Config, used map[string]bool) {
	names := map[string]Pos{}
	member := map[string]string{}
	kept := cfg.VRRPSyncGroups[:0]
	for gi := range cfg.VRRPSyncGroups {
		g := &cfg.VRRPSyncGroups[gi]
		if p, dup := names[g.Name]; dup {
			d.errPos(g.Pos, "vrrp_sync_group %s: defined again (first at %s)", g.Name, p)
			continue
		}
		names[g.Name] = g.Pos
		gp := g.KeywordPos("group")
		if len(g.Group) == 0 {
			d.notePos(g.Pos, NoteNoEffect, "vrrp_sync_group",
				"vrrp_sync_group %s has no member (they go inside group { ... }); the group is dropped and its instances run on their own, as keepalived does", g.Name)
			continue
		}
		kept = append(kept, *g)
		owners := 0
		for _, m := range g.Group {
			in := cfg.VRRPInstance(m)
			switch {
			case in == nil:
				d.errPos(gp, "vrrp_sync_group %s: no vrrp_instance %s (keepalived leaves it out of the group; vipd refuses)", g.Name, m)
				continue
			case member[m] != "":
				d.errPos(gp, "vrrp_sync_group %s: vrrp_instance %s is in vrrp_sync_group %s already; an instance belongs to one group at most", g.Name, m, member[m])
				continue
			}
			member[m] = g.Name
			if in.Priority == 255 {
				owners++
			}
		}
		if owners > 0 && owners < len(g.Group) {
			d.errPos(gp, "vrrp_sync_group %s: some members are address owners (priority 255) and some not; keepalived warns this won't work, vipd refuses: give every member a priority below 255", g.Name)
		}
		if len(g.Group) == 1 {
			d.notePos(gp, NoteNoEffect, "group", "vrrp_sync_group %s has one member only; it changes nothing, as in keepalived", g.Name)
		}
		kept[len(kept)-1].TrackScript = d.resolveTrackScripts(cfg, g.TrackScript, used, "vrrp_sync_group "+g.Name)
	}
	cfg.VRRPSyncGroups = kept
}
