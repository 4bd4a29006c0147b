package config

import (
	"slices"
	"strings"
)

// Support says what vipd does with a keyword keepalived knows.
type Support int

// How vipd treats a keepalived keyword.
const (
	// Implemented: the keyword does what it does in keepalived.
	Implemented Support = iota + 1
	// Warned: the keyword cannot change which router holds a virtual
	// address, which address is served or which real server gets traffic
	// (mail, SNMP, process tuning); it is accepted with a [Note] and has no
	// effect.
	Warned
	// Refused: vipd does not do what the keyword asks, and it would change
	// one of those; the file is refused with an [Error] at the keyword's
	// line saying what to do instead.
	Refused
)

func (s Support) String() string {
	switch s {
	case Implemented:
		return "implemented"
	case Warned:
		return "warning"
	case Refused:
		return "refused"
	}
	return "Support(?)"
}

// KeywordSupport is one keyword of one kind of block and what vipd does
// with it. Block is the kind of block it stands in ("top level",
// "global_defs", "vrrp_instance", "real_server", "HTTP_GET" for HTTP_GET
// and SSL_GET, ...). Why is the warning's reason or, for a refused
// keyword, what to do instead; empty for implemented keywords.
type KeywordSupport struct {
	Block   string
	Keyword string
	Support Support
	Why     string
}

// Keywords returns every keyword vipd reads or knows from keepalived, by
// kind of block, with what vipd does with it, sorted by block and
// keyword. Keywords of blocks vipd refuses as a whole (SMTP_CHECK,
// vrrp_track_process, ...) are not listed: the block's own keyword is.
// vipd's own keywords (AMQP_CHECK, HTTP_GET user and password) are listed
// as implemented.
func Keywords() []KeywordSupport {
	var out []KeywordSupport
	d := &decoder{}
	for kind, build := range blockKinds() {
		for kw := range build(d) {
			if why, ok := readButWarned[kind][kw]; ok {
				out = append(out, KeywordSupport{Block: kind, Keyword: kw, Support: Warned, Why: why})
				continue
			}
			out = append(out, KeywordSupport{Block: kind, Keyword: kw, Support: Implemented})
		}
		for kw, why := range warnedKeywords[kind] {
			out = append(out, KeywordSupport{Block: kind, Keyword: kw, Support: Warned, Why: why})
		}
		for kw, why := range refusedKeywords[kind] {
			out = append(out, KeywordSupport{Block: kind, Keyword: kw, Support: Refused, Why: why})
		}
	}
	for _, kw := range []string{"dev", "label", "brd", "broadcast", "scope", "no_track"} {
		out = append(out, KeywordSupport{Block: "virtual_ipaddress", Keyword: kw, Support: Implemented})
	}
	for _, o := range vipOptions {
		out = append(out, KeywordSupport{Block: "virtual_ipaddress", Keyword: o.name, Support: o.support, Why: o.why})
	}
	slices.SortFunc(out, func(a, b KeywordSupport) int {
		if c := strings.Compare(blockOrder(a.Block), blockOrder(b.Block)); c != 0 {
			return c
		}
		return strings.Compare(a.Keyword, b.Keyword)
	})
	return out
}

// blockOrder sorts the kinds of block as they nest in a file.
func blockOrder(kind string) string {
	order := []string{"top level", "global_defs", "vrrp_script", "vrrp_instance", "authentication", "vrrp_sync_group",
		"virtual_ipaddress", "SSL", "virtual_server", "real_server", "TCP_CHECK", "HTTP_GET", "url", "MISC_CHECK", "AMQP_CHECK"}
	if i := slices.Index(order, kind); i >= 0 {
		return string(rune('a'+i)) + kind
	}
	return "z" + kind
}

// Why keywords are only warned about.
const (
	mailReason    = "vipd sends no mail"
	snmpReason    = "vipd has no SNMP or D-Bus interface; its status is at /status and /metrics"
	tuningReason  = "process, scheduling and buffer tuning of keepalived's processes; vipd is one process"
	fifoReason    = "vipd writes no notify FIFO; use the notify scripts"
	reloadReason  = "keepalived's own reload and configuration handling; vipd reloads on SIGHUP"
	logReason     = "logging only"
	warmupReason  = "vipd starts each check at once; it changes only when the first check runs"
	pollingReason = "vipd learns of link changes from netlink; polling changes only how"
	firewallWhy   = "vipd installs no firewall rules; they only matter with no_accept, which vipd refuses"
)

// warnedKeywords are the keepalived keywords that cannot change failover,
// by kind of block, with the reason. They are accepted with a note.
var warnedKeywords = map[string]map[string]string{
	"top level": merge(
		words(pollingReason, "linkbeat_use_polling linkbeat_interfaces"),
		words(tuningReason, "use_pid_dir instance child_wait_time"),
	),
	"global_defs": merge(
		words(mailReason, "smtp_helo_name smtp_alert smtp_alert_vrrp smtp_alert_checker no_email_faults no_checker_emails"),
		words(tuningReason, "process_names process_name vrrp_process_name checker_process_name lvs_process_name "+
			"bfd_process_name max_auto_priority min_auto_priority_delay vrrp_priority vrrp_no_swap vrrp_rt_priority "+
			"vrrp_cpu_affinity vrrp_rlimit_rttime vrrp_rlimit_rtime checker_priority checker_no_swap "+
			"checker_rt_priority checker_cpu_affinity checker_rlimit_rttime checker_rlimit_rtime bfd_priority "+
			"bfd_no_swap bfd_rt_priority bfd_cpu_affinity bfd_rlimit_rttime bfd_rlimit_rtime "+
			"vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs "+
			"vrrp_netlink_monitor_rcv_bufs_force process_monitor_rcv_bufs process_monitor_rcv_bufs_force "+
			"lvs_netlink_cmd_rcv_bufs lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs "+
			"lvs_netlink_monitor_rcv_bufs_force vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier umask random_seed "+
			"use_symlink_paths linkbeat_use_polling instance use_pid_dir child_wait_time"),
		words(fifoReason, "notify_fifo notify_fifo_script vrrp_notify_fifo vrrp_notify_fifo_script "+
			"vrrp_notify_priority_changes fifo_write_vrrp_states_on_reload lvs_notify_fifo lvs_notify_fifo_script"),
		words(snmpReason, "snmp_socket enable_traps enable_snmp_vrrp enable_snmp_keepalived enable_snmp_rfc "+
			"enable_snmp_rfcv2 enable_snmp_rfcv3 enable_snmp_checker snmp_vs_stats_update_interval "+
			"snmp_rs_stats_update_interval enable_dbus dbus_service_name dbus_no_interface_name"),
		words(reloadReason, "tmp_config_directory config_save_dir reload_check_config reload_time_file "+
			"reload_repeat reload_file include_check data_use_instance json_version iproute_usr_dir "+
			"iproute_etc_dir state_dump_file stats_dump_file json_dump_file"),
		words(logReason, "checker_log_all_failures log_unknown_vrids"),
		words(firewallWhy, "vrrp_iptables vrrp_ipsets nftables nftables_priority nftables_ifindex nftables_counters"),
		words("only used with use_vmac, which vipd refuses", "vmac_prefix vmac_addr_prefix"),
		words("it only stops the kernel's IGMP reports for 224.0.0.0/24; set net.ipv4.igmp_link_local_mcast_reports=0 with sysctl if wanted", "disable_local_igmp"),
	),
	"vrrp_instance": merge(
		words(mailReason, "smtp_alert"),
		words(logReason, "debug"),
		words(pollingReason, "linkbeat_use_polling"),
		words(tuningReason, "kernel_rx_buf_size"),
		words(fifoReason, "notify_priority_changes"),
		words("it only changes the state notify scripts are told when a reload removes an instance", "notify_deleted"),
		words("vipd runs no script when, as master, it hears a lower-priority advert; the election is the same", "notify_master_rx_lower_pri"),
		words("vipd never drops an advert for its address list (it counts the mismatch), so there is nothing to skip", "skip_check_adv_addr"),
	),
	"vrrp_sync_group": merge(
		words(mailReason, "smtp_alert"),
		words(fifoReason, "notify_priority_changes"),
	),
	"virtual_server": merge(
		words(mailReason, "smtp_alert"),
		words(snmpReason, "snmp_name"),
		words(warmupReason, "warmup"),
		words("vipd keeps checking the real servers while it does not hold the address, so their states are current when it takes over", "ha_suspend"),
	),
	"real_server": merge(
		words(mailReason, "smtp_alert"),
		words(snmpReason, "snmp_name"),
		words(warmupReason, "warmup"),
	),
	"TCP_CHECK":  merge(words(warmupReason, "warmup"), words(logReason, "log_all_failures")),
	"AMQP_CHECK": merge(words(warmupReason, "warmup"), words(logReason, "log_all_failures")),
	"MISC_CHECK": merge(words(warmupReason, "warmup"), words(logReason, "log_all_failures")),
	"HTTP_GET": merge(
		words(warmupReason, "warmup"),
		words(logReason, "log_all_failures"),
		words("vipd speaks HTTP/1.1 with a Host header and closes each connection", "http_protocol"),
		words("vipd always closes TLS connections cleanly", "tls_compliant"),
	),
	"url": words("vipd always closes TLS connections cleanly", "tls_compliant"),
}

// Refused keywords: what to do instead.
const (
	useScript   = "track it with a vrrp_script whose script checks it, in track_script"
	checkerBind = "vipd connects from the address the routing table picks; remove it, or use bindto"
	noVMAC      = "vipd holds the virtual addresses on the interface itself with its own MAC address; remove it on both routers"
	noIPVSFlag  = "vipd does not set IPVS scheduler flags; remove it (and use lvs_sched as it is)"
	noQuorum    = "vipd has no quorum for a virtual server; remove it, or use sorry_server for a pool with no real server up"
	noRegex     = "vipd has no regex match of the body; use digest or status_code, or a MISC_CHECK script"
	netConfig   = "vipd adds only virtual addresses; configure these with the system's network configuration"
	noNamespace = "run vipd in the namespace instead (ip netns exec NAME vipd run ...)"
	noTiming    = "vipd uses keepalived's default for it; remove it on both routers"
)

// refusedKeywords are the keepalived keywords vipd does not implement and
// that can change who holds a virtual address, which address is served or
// which real server gets traffic, by kind of block, with what to do. A
// file using one is refused.
var refusedKeywords = map[string]map[string]string{
	"top level": merge(
		words(netConfig, "static_ipaddress static_routes static_rules"),
		words(noNamespace, "net_namespace net_namespace_ipvs namespace_with_ipsets"),
		words("vipd has no track groups; remove track_group from the addresses and the block", "track_group"),
		words("vipd paces gratuitous ARPs with global_defs vrrp_garp_interval and vrrp_gna_interval; use those", "garp_group"),
		words(useScript, "vrrp_track_process track_file vrrp_track_file"),
		words("vipd has no BFD; track the peer with a vrrp_script", "bfd_instance"),
		words("vipd acts on a link change at once; remove it", "interface_up_down_delays"),
	),
	"global_defs": merge(
		words(noNamespace, "net_namespace net_namespace_ipvs namespace_with_ipsets"),
		words("vipd runs no start or stop script; run it from the service manager (ExecStartPre=/ExecStopPost= in the systemd unit)",
			"startup_script startup_script_timeout shutdown_script shutdown_script_timeout"),
		words("vipd needs each instance's interface to exist when it starts; remove it", "dynamic_interfaces"),
		words("vipd has no default interface; give each vrrp_instance its interface and each address its dev", "default_interface"),
		words("vipd does not set IPVS timeouts; set them with ipvsadm --set before vipd starts", "lvs_timeouts"),
		words("vipd changes only the IPVS services of its configuration; remove it (flush with ipvsadm -C if needed)",
			"lvs_flush lvs_flush_on_stop lvs_flush_onstop"),
		words("vipd runs no IPVS connection-sync daemon; run it with ipvsadm --start-daemon", "lvs_sync_daemon"),
		words(noTiming, "vrrp_garp_lower_prio_delay vrrp_garp_lower_prio_repeat vrrp_down_timer_adverts "+
			"vrrp_higher_prio_send_advert vrrp_delay_after_boot vrrp_owner_ignore_adverts"),
		words(noVMAC, "vrrp_garp_extra_if vrrp_vmac_garp_intvl"),
		words("vipd marks no IPVS traffic with nftables; remove it, and mark traffic with your own firewall for fwmark services",
			"nftables_ipvs nftables_ipvs_priority nftables_ipvs_start_fwmark"),
		words("vipd runs scripts with the groups of their user only; remove it", "set_supplementary_groups"),
	),
	"vrrp_instance": merge(
		words(noVMAC, "use_vmac use_vmac_addr vmac_xmit_base use_ipvlan garp_extra_if vmac_garp_intvl"),
		words("an instance without unicast_peer sends multicast in vipd, it never goes to FAULT for it; give its peers or remove it", "unicast_fault_no_peer"),
		words("vipd checksums unicast adverts as current keepalived does; remove it, and upgrade the peer that needs the old checksum", "old_unicast_checksum"),
		words("vipd runs in the default VRF; remove it", "vrf"),
		words(useScript, "track_file track_process track_bfd"),
		words("vipd does not go to FAULT when the source address goes away; track it with a vrrp_script", "track_src_ip"),
		words("vipd sends unicast adverts with TTL 255; remove it (peers' min_ttl/max_ttl see 255)", "unicast_ttl"),
		words("set net.ipv4.conf.IFACE.promote_secondaries=1 with sysctl instead", "promote_secondaries"),
		words(netConfig+" (routes and rules that follow the state: use notify scripts)", "virtual_routes virtual_rules"),
		words("vipd runs no IPVS connection-sync daemon; run it with ipvsadm --start-daemon", "lvs_sync_daemon_interface"),
		words(noTiming, "garp_lower_prio_delay garp_lower_prio_repeat down_timer_adverts "+
			"higher_prio_send_advert timer_expired_backup thread_timer_expired owner_ignore_adverts"),
		words("vipd sends adverts without an HMAC; remove it on both routers", "auth_hmac"),
	),
	"vrrp_sync_group": words(useScript, "track_file track_process track_bfd"),
	"virtual_server": merge(
		words(noIPVSFlag, "hashed ops flag-1 flag-2 flag-3 sh-port sh-fallback mh-port mh-fallback"),
		words("vipd has no persistence engine (SIP); remove it", "persistence_engine"),
		words(noQuorum, "omega quorum quorum_up quorum_down hysteresis"),
		words("vipd adds the sorry_server with the service's lvs_method and only when no real server is up; remove it",
			"sorry_server_inhibit sorry_server_lvs_method"),
	),
	"real_server": merge(
		words("vipd sets no connection limits; remove it", "uthreshold lthreshold"),
		words("vipd has no SMTP check; use TCP_CHECK on the SMTP port, or MISC_CHECK with a script that speaks SMTP", "SMTP_CHECK"),
		words("vipd has no DNS check; use MISC_CHECK with a script that queries the server (e.g. dig)", "DNS_CHECK"),
		words("vipd has no UDP check; use MISC_CHECK with a script that probes the service", "UDP_CHECK"),
		words("vipd has no ICMP check; use TCP_CHECK on the service's port, or MISC_CHECK with ping", "PING_CHECK"),
		words("vipd has no file check; use MISC_CHECK with a script that reads the file", "FILE_CHECK"),
		words("vipd has no BFD; use TCP_CHECK or MISC_CHECK", "BFD_CHECK"),
	),
	"TCP_CHECK":  words(checkerBind, "bind_port bind_if fwmark"),
	"AMQP_CHECK": words(checkerBind, "bind_port bind_if fwmark"),
	"HTTP_GET": merge(
		words(checkerBind, "bind_port bind_if fwmark"),
		words("vipd checks again after delay_loop, as keepalived does without it; remove it", "fast_recovery"),
	),
	"url": words(noRegex, "regex regex_no_match regex_options regex_min_offset regex_max_offset regex_stack"),
}

// readButWarned are keywords vipd reads (and shows in check -dump) but
// that have no effect, with a warning: the mail settings.
var readButWarned = map[string]map[string]string{
	"global_defs": words(mailReason, "notification_email notification_email_from smtp_server smtp_connect_timeout"),
}

// vipOption is an option of a virtual_ipaddress line other than dev,
// label, brd, broadcast and scope.
type vipOption struct {
	name    string
	arg     bool // takes a value
	support Support
	why     string
}

var vipOptions = []vipOption{
	{"home", false, Warned, "a Mobile IPv6 flag; it does not change which address is served"},
	{"mngtmpaddr", false, Warned, "it only lets the kernel make temporary addresses from the prefix"},
	{"preferred_lft", true, Warned, "vipd's addresses are always preferred; it changes only source address selection"},
	{"-nodad", false, Refused, "vipd adds IPv6 addresses without duplicate address detection, as keepalived does without -nodad; remove it"},
	{"noprefixroute", false, Refused, "vipd adds the prefix route of each address; remove it"},
	{"autojoin", false, Refused, "vipd joins no multicast group for an address; remove it"},
	{"peer", true, Refused, "vipd adds no point-to-point addresses; give the address with its prefix"},
	{"use_vmac", false, Refused, noVMAC},
	{"track_group", true, Refused, "vipd has no track groups; remove it"},
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
