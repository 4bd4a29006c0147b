package config

import (
	"net/netip"
	"time"
)

// GlobalDefs is the global_defs block. Keywords vipd implements have a
// field; the mail keywords are kept for display but vipd sends no mail;
// other keepalived keywords are accepted with a note and ignored.
type GlobalDefs struct {
	Pos Pos `json:"-"`

	RouterID             string `json:"router_id,omitempty"`
	EnableScriptSecurity bool   `json:"enable_script_security"`
	// ScriptUser and ScriptGroup: "script_user USER [GROUP]", who scripts
	// run as unless they name their own user.
	ScriptUser  string `json:"script_user,omitempty"`
	ScriptGroup string `json:"script_group,omitempty"`

	// Mail notification: parsed and ignored (a note says so).
	NotificationEmail     []string `json:"notification_email,omitempty"`
	NotificationEmailFrom string   `json:"notification_email_from,omitempty"`
	SMTPServer            string   `json:"smtp_server,omitempty"`
	SMTPConnectTimeout    Duration `json:"smtp_connect_timeout,omitzero"`

	// VRRPVersion is the default version of the vrrp_instances (2).
	VRRPVersion int `json:"vrrp_version"`
	// Defaults of the instances' garp_master_* keywords.
	VRRPGarpMasterDelay         Duration `json:"vrrp_garp_master_delay"`
	VRRPGarpMasterRepeat        int      `json:"vrrp_garp_master_repeat"`
	VRRPGarpMasterRefresh       Duration `json:"vrrp_garp_master_refresh"`
	VRRPGarpMasterRefreshRepeat int      `json:"vrrp_garp_master_refresh_repeat"`
	// VRRPGarpInterval and VRRPGnaInterval: the pause between gratuitous
	// ARPs and between unsolicited neighbour advertisements.
	VRRPGarpInterval Duration `json:"vrrp_garp_interval"`
	VRRPGnaInterval  Duration `json:"vrrp_gna_interval"`
	// VRRPMinGarp: one gratuitous ARP / NA and no second round, unless the
	// garp keywords say otherwise.
	VRRPMinGarp bool `json:"vrrp_min_garp"`
	// Multicast groups of VRRP adverts (224.0.0.18, ff02::12): the default
	// of the instances' mcast_dst_ip. An IPv4 group must be IPv4
	// multicast, an IPv6 one IPv6 multicast.
	VRRPMcastGroup4 netip.Addr `json:"vrrp_mcast_group4"`
	VRRPMcastGroup6 netip.Addr `json:"vrrp_mcast_group6"`
	// V3ChecksumAsV2 is the default of the instances' v3_checksum_as_v2.
	V3ChecksumAsV2 bool `json:"v3_checksum_as_v2"`
	// VRRPStrict is the default of the instances' strict_mode.
	VRRPStrict           bool `json:"vrrp_strict"`
	VRRPSkipCheckAdvAddr bool `json:"vrrp_skip_check_adv_addr"`
	// VRRPCheckUnicastSrc turns check_unicast_src on for every instance.
	VRRPCheckUnicastSrc bool `json:"vrrp_check_unicast_src"`
	// VRRPLowerPrioNoAdvert is the default of the instances'
	// lower_prio_no_advert.
	VRRPLowerPrioNoAdvert bool `json:"vrrp_lower_prio_no_advert"`
	// VRRPStartupDelay holds every instance from taking over for this
	// long after vipd starts (not after a reload).
	VRRPStartupDelay Duration `json:"vrrp_startup_delay"`
	// RSInitNotifies: at start, run the notify_up of every real server
	// that starts up (no check with alpha).
	RSInitNotifies bool `json:"rs_init_notifies"`

	meta *meta
}

// Keepalived's defaults.
const (
	DefaultAdvertInt          = time.Second
	DefaultPriority           = 100
	DefaultVersion            = 2
	DefaultGarpMasterDelay    = 5 * time.Second
	DefaultGarpMasterRepeat   = 5
	DefaultGarpRefreshRepeat  = 1
	DefaultScriptInterval     = time.Second
	DefaultDelayLoop          = 60 * time.Second
	DefaultConnectTimeout     = 5 * time.Second
	DefaultPersistenceTimeout = 360 * time.Second
	DefaultScheduler          = "wlc"
)

// DefaultGlobalDefs returns a fresh global_defs holding keepalived's
// defaults.
func DefaultGlobalDefs() GlobalDefs {
	return GlobalDefs{
		VRRPVersion:                 DefaultVersion,
		VRRPGarpMasterDelay:         Duration(DefaultGarpMasterDelay),
		VRRPGarpMasterRepeat:        DefaultGarpMasterRepeat,
		VRRPGarpMasterRefreshRepeat: DefaultGarpRefreshRepeat,
		VRRPMcastGroup4:             netip.MustParseAddr("224.0.0.18"),
		VRRPMcastGroup6:             netip.MustParseAddr("ff02::12"),
	}
}

// KeywordPos returns where the keyword kw was given in global_defs, or the
// position of the block when it was not (the zero Pos without a block).
func (g *GlobalDefs) KeywordPos(kw string) Pos { return g.meta.pos(kw, g.Pos) }

func (d *decoder) globalDefs(g *GlobalDefs, s *stmt) {
	if g.meta == nil {
		g.meta = newMeta()
		g.Pos = s.pos()
	}
	d.walk("global_defs", s, d.globalKeywords(g), g.meta, func() any { return g })
}

func (d *decoder) globalKeywords(g *GlobalDefs) keywords {
	mail := func(s *stmt) { d.note(s, NoteIgnored, "%s: ignored; %s", s.kw.val, mailReason) }
	routerID := func(s *stmt) {
		if s.kw.val == "lvs_id" {
			d.note(s, NoteDeprecated, "lvs_id is the old name of router_id; taken as router_id")
		}
		if v, ok := d.strArg(s); ok {
			g.RouterID = v
		}
	}
	garpSecs := func(p *Duration) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.wholeSecondsArg(s, 0, 86400); ok {
				*p = v
			}
		}
	}
	repeat := func(p *int) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.intArg(s, 1, 1000); ok {
				*p = v
			}
		}
	}
	interval := func(p *Duration) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.secondsArg(s, 0, time.Second); ok {
				*p = v
			}
		}
	}
	flag := func(p *bool) func(*stmt) {
		return func(s *stmt) {
			if d.flag(s) {
				*p = true
			}
		}
	}
	boolean := func(p *bool) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.boolArg(s); ok {
				*p = v
			}
		}
	}
	group := func(p *netip.Addr, v6 bool) func(*stmt) {
		return func(s *stmt) {
			a, ok := d.addrArg(s)
			if !ok {
				return
			}
			if !a.IsMulticast() || a.Is6() != v6 {
				fam := "IPv4"
				if v6 {
					fam = "IPv6"
				}
				d.errorf(s, s.args[0].line, "%s: expected an %s multicast address, got %q", s.kw.val, fam, s.args[0].val)
				return
			}
			if v6 && !a.IsLinkLocalMulticast() {
				d.note(s, NoteCompat, "%s: %s is not a link-local multicast address (ff02::/16); adverts reach only routers joined to it, as in keepalived", s.kw.val, a)
			}
			*p = a
		}
	}
	return keywords{
		"router_id":              value(routerID),
		"lvs_id":                 value(routerID),
		"enable_script_security": value(flag(&g.EnableScriptSecurity)),
		"script_user": value(func(s *stmt) {
			if !d.nargs(s, 1, 2) {
				return
			}
			g.ScriptUser = s.args[0].val
			if len(s.args) == 2 {
				g.ScriptGroup = d.group(s, s.args[1].val)
			}
		}),
		"notification_email": block(func(s *stmt) {
			if len(s.args) > 0 {
				d.errorf(s, s.kw.line, "notification_email: expected no argument before '{', got %d", len(s.args))
			}
			for _, e := range s.block {
				g.NotificationEmail = append(g.NotificationEmail, e.kw.val)
				for _, a := range e.args {
					g.NotificationEmail = append(g.NotificationEmail, a.val)
				}
			}
			mail(s)
		}),
		"notification_email_from": value(func(s *stmt) {
			if v, ok := d.strArg(s); ok {
				g.NotificationEmailFrom = v
			}
			mail(s)
		}),
		"smtp_server": value(func(s *stmt) {
			if d.nargs(s, 1, 2) {
				g.SMTPServer = s.args[0].val
				if len(s.args) == 2 {
					g.SMTPServer += " " + s.args[1].val
				}
			}
			mail(s)
		}),
		"smtp_connect_timeout": value(func(s *stmt) {
			if v, ok := d.wholeSecondsArg(s, 0, 86400); ok {
				g.SMTPConnectTimeout = v
			}
			mail(s)
		}),
		"vrrp_version": value(func(s *stmt) {
			if v, ok := d.intArg(s, 2, 3); ok {
				g.VRRPVersion = v
			}
		}),
		"vrrp_garp_master_delay":          value(garpSecs(&g.VRRPGarpMasterDelay)),
		"vrrp_garp_master_repeat":         value(repeat(&g.VRRPGarpMasterRepeat)),
		"vrrp_garp_master_refresh":        value(garpSecs(&g.VRRPGarpMasterRefresh)),
		"vrrp_garp_master_refresh_repeat": value(repeat(&g.VRRPGarpMasterRefreshRepeat)),
		"vrrp_garp_interval":              value(interval(&g.VRRPGarpInterval)),
		"vrrp_gna_interval":               value(interval(&g.VRRPGnaInterval)),
		"vrrp_min_garp":                   value(boolean(&g.VRRPMinGarp)),
		"vrrp_mcast_group4":               value(group(&g.VRRPMcastGroup4, false)),
		"vrrp_mcast_group6":               value(group(&g.VRRPMcastGroup6, true)),
		"v3_checksum_as_v2":               value(boolean(&g.V3ChecksumAsV2)),
		"vrrp_strict":                     value(flag(&g.VRRPStrict)),
		"vrrp_skip_check_adv_addr":        value(flag(&g.VRRPSkipCheckAdvAddr)),
		"vrrp_check_unicast_src":          value(flag(&g.VRRPCheckUnicastSrc)),
		"vrrp_lower_prio_no_advert":       value(boolean(&g.VRRPLowerPrioNoAdvert)),
		"rs_init_notifies":                value(flag(&g.RSInitNotifies)),
		"vrrp_startup_delay": value(func(s *stmt) {
			if v, ok := d.secondsArg(s, 0, time.Hour); ok {
				g.VRRPStartupDelay = v
			}
		}),
	}
}
