package config

import (
	"net/netip"
	"strings"
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
	VRRPCheckUnicastSrc bool     `json:"vrrp_check_unicast_src"`
	VRRPStartupDelay    Duration `json:"vrrp_startup_delay"`

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

const mailReason = "vipd sends no mail"

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
		"vrrp_startup_delay": value(func(s *stmt) {
			if v, ok := d.secondsArg(s, 0, time.Hour); ok {
				g.VRRPStartupDelay = v
			}
		}),
	}
}

// Keywords keepalived knows that vipd ignores, by block, with the reason.
var ignoredKeywords = map[string]map[string]string{
	"global_defs": words(mailReason,
		"smtp_helo_name smtp_alert smtp_alert_vrrp smtp_alert_checker no_email_faults no_checker_emails"),
	"vrrp_instance":   words(mailReason, "smtp_alert"),
	"vrrp_sync_group": words(mailReason, "smtp_alert"),
	"virtual_server":  words(mailReason, "smtp_alert"),
	"real_server":     words(mailReason, "smtp_alert"),
}

// Keywords keepalived knows that vipd accepts without implementing them,
// by block, with the consequence when it is worth saying.
var notImplemented = map[string]map[string]string{
	"top level": words("", "static_ipaddress static_routes static_rules track_group linkbeat_interfaces track_file vrrp_track_file "+
		"vrrp_track_process bfd_instance garp_group interface_up_down_delays net_namespace net_namespace_ipvs "+
		"namespace_with_ipsets instance use_pid_dir linkbeat_use_polling child_wait_time"),
	"vrrp_sync_group": words("", "track_file track_process track_bfd notify_priority_changes"),
	"global_defs": words("", "tmp_config_directory config_save_dir process_names process_name vrrp_process_name "+
		"checker_process_name lvs_process_name bfd_process_name use_symlink_paths set_supplementary_groups "+
		"startup_script startup_script_timeout shutdown_script shutdown_script_timeout max_auto_priority "+
		"min_auto_priority_delay checker_log_all_failures dynamic_interfaces default_interface disable_local_igmp "+
		"lvs_timeouts lvs_flush lvs_flush_on_stop lvs_flush_onstop lvs_sync_daemon vrrp_garp_lower_prio_delay "+
		"vrrp_garp_lower_prio_repeat vrrp_down_timer_adverts vrrp_garp_extra_if vrrp_vmac_garp_intvl "+
		"vrrp_lower_prio_no_advert vrrp_higher_prio_send_advert vrrp_iptables vrrp_ipsets nftables nftables_priority "+
		"nftables_ifindex nftables_counters nftables_ipvs nftables_ipvs_priority nftables_ipvs_start_fwmark "+
		"vrrp_priority vrrp_no_swap vrrp_rt_priority vrrp_cpu_affinity vrrp_rlimit_rttime vrrp_rlimit_rtime "+
		"checker_priority checker_no_swap checker_rt_priority checker_cpu_affinity checker_rlimit_rttime "+
		"checker_rlimit_rtime bfd_priority bfd_no_swap bfd_rt_priority bfd_cpu_affinity bfd_rlimit_rttime "+
		"bfd_rlimit_rtime notify_fifo notify_fifo_script vrrp_notify_fifo vrrp_notify_fifo_script "+
		"vrrp_notify_priority_changes fifo_write_vrrp_states_on_reload lvs_notify_fifo lvs_notify_fifo_script "+
		"snmp_socket enable_traps enable_snmp_vrrp enable_snmp_keepalived enable_snmp_rfc enable_snmp_rfcv2 "+
		"enable_snmp_rfcv3 enable_snmp_checker snmp_vs_stats_update_interval snmp_rs_stats_update_interval "+
		"enable_dbus dbus_service_name dbus_no_interface_name vrrp_netlink_cmd_rcv_bufs "+
		"vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs vrrp_netlink_monitor_rcv_bufs_force "+
		"process_monitor_rcv_bufs process_monitor_rcv_bufs_force lvs_netlink_cmd_rcv_bufs "+
		"lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs lvs_netlink_monitor_rcv_bufs_force "+
		"rs_init_notifies vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier vrrp_delay_after_boot log_unknown_vrids "+
		"vrrp_owner_ignore_adverts vmac_prefix vmac_addr_prefix umask random_seed reload_check_config "+
		"reload_time_file reload_repeat reload_file include_check data_use_instance json_version iproute_usr_dir "+
		"iproute_etc_dir state_dump_file stats_dump_file json_dump_file linkbeat_use_polling net_namespace "+
		"net_namespace_ipvs namespace_with_ipsets instance use_pid_dir child_wait_time"),
	"vrrp_instance": merge(
		words("", "use_vmac use_vmac_addr vmac_xmit_base use_ipvlan vrf track_file track_process track_bfd "+
			"track_src_ip unicast_fault_no_peer unicast_ttl old_unicast_checksum "+
			"garp_lower_prio_delay garp_lower_prio_repeat garp_extra_if vmac_garp_intvl down_timer_adverts "+
			"timer_expired_backup thread_timer_expired lower_prio_no_advert higher_prio_send_advert "+
			"owner_ignore_adverts kernel_rx_buf_size virtual_routes virtual_rules "+
			"skip_check_adv_addr debug notify_deleted notify_master_rx_lower_pri "+
			"notify_priority_changes lvs_sync_daemon_interface linkbeat_use_polling promote_secondaries"),
		map[string]string{
			"auth_hmac":   "adverts carry no HMAC trailer, so peers in enforce mode drop them",
			"native_ipv6": "the address family comes from the virtual_ipaddress entries",
		},
	),
	"virtual_server": words("", "ip_family warmup hashed ops flag-1 flag-2 flag-3 sh-port sh-fallback mh-port "+
		"mh-fallback persistence_engine ha_suspend virtualhost snmp_name alpha omega quorum hysteresis quorum_up "+
		"quorum_down sorry_server_inhibit sorry_server_lvs_method weight"),
	"real_server": merge(
		words("", "uthreshold lthreshold virtualhost snmp_name alpha warmup"),
		words("no such check runs", "SMTP_CHECK DNS_CHECK BFD_CHECK UDP_CHECK PING_CHECK FILE_CHECK"),
	),
	"TCP_CHECK":  words("", "bind_if bind_port fwmark alpha warmup log_all_failures"),
	"AMQP_CHECK": words("", "bind_if bind_port fwmark alpha warmup log_all_failures"),
	"HTTP_GET": words("", "bind_if bind_port fwmark alpha warmup log_all_failures http_protocol fast_recovery "+
		"enable_sni sni_name tls_compliant"),
	"url":        words("", "regex regex_no_match regex_options regex_min_offset regex_max_offset regex_stack tls_compliant"),
	"MISC_CHECK": words("", "alpha warmup log_all_failures"),
}

func words(v, list string) map[string]string {
	m := map[string]string{}
	for _, w := range strings.Fields(list) {
		m[w] = v
	}
	return m
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
