// Package config reads vipd's configuration, written in the dialect of
// keepalived.conf(5), into plain structs that map one to one onto the file:
// [GlobalDefs] for global_defs, [VRRPScript] for vrrp_script,
// [VRRPInstance] for vrrp_instance, [VirtualServer] and [RealServer] for
// virtual_server and real_server, with their checkers ([TCPCheck],
// [HTTPCheck], [MiscCheck], and vipd's own [AMQPCheck]), and
// [VirtualServerGroup]. Json tags are the keywords, so a [Config]
// marshals (see [Config.JSON]) into the effective configuration that
// `vipd check -f FILE -dump` prints: defaults and inherited values filled in,
// durations as "1s" or "100ms", passwords as "<redacted>".
//
// [Load] reads a file and what it includes; [Parse] parses bytes;
// [ParseFS] reads from an fs.FS. All three return the [Config] with its
// [Note]s, and an [ErrorList] when the file has errors. The functions and
// the types' methods are safe for concurrent use on distinct values; a
// Config is not changed after it is returned.
//
// # Dialect
//
// The file is a sequence of keywords, each with its arguments on the same
// line and, for block keywords, a block in braces:
//
//	vrrp_instance VI_1 {
//	    state BACKUP
//	    virtual_ipaddress {
//	        192.168.1.120/24 dev eth0
//	    }
//	}
//
// Comments start with '#' or '!' and run to the end of the line, anywhere
// outside double quotes, even inside a word ("\#" and "\!" are literal).
// '{' and '}' stand on their own even when glued to a word
// ("vrrp_script chk{"); an opening brace may also be on the next line.
// Double quotes group words with blanks ("/usr/bin/check --fast"). A
// backslash at the end of a line continues it.
//
// Times are seconds with an optional fraction ("1", "0.5"). advert_int is
// whole seconds 1..255 in VRRP version 2 and 0.01..40.95 s in steps of
// 0.01 s in version 3; a fractional or sub-second advert_int in version 2
// is an error (keepalived rounds it), since version 2 adverts carry whole
// seconds. Booleans are on|off|true|false|yes|no; a boolean keyword alone
// means on.
//
// Scripts (vrrp_script script, notify, notify_master/backup/fault/stop,
// notify_up/down, misc_path) are split into arguments without a shell, as
// keepalived splits them, into [Script].Argv: quote the command line when
// it has arguments ("script \"/bin/check 'a b'\"": single and double quotes
// group inside it, and \n, \t, \xHH, \NNN escapes are decoded). After the
// quoted command of a notify keyword may come the user and group to run it
// as. For script and misc_path, as in keepalived, only the first word is
// the command and a note says so when more follow.
//
// Defaults are keepalived's: advert_int 1s, priority 100 (255 when the
// state is MASTER and no priority is given, as in keepalived 2.0 and
// later), state BACKUP (MASTER when the priority is 255), version 2 (3 for
// IPv6), garp_master_delay 5s, garp_master_repeat 5, garp_master_refresh 0
// (never), garp_master_refresh_repeat 1; vrrp_script interval 1s, timeout
// equal to the interval, rise and fall 1, weight 0; virtual_server
// delay_loop 60s, lvs_sched wlc, lvs_method NAT, persistence_timeout 360s
// when given without a value; real_server weight the virtual_server's
// weight, 1 without one; alpha off; virtualhost the url's, else the
// checker's, else the real server's, else the virtual server's; checkers
// connect_timeout 5s, retry 1 (0 for MISC_CHECK), delay_before_retry 1s
// (3s for HTTP_GET and SSL_GET), connect_ip and connect_port those of the
// real server. One default differs: a virtual_server without protocol is
// TCP in vipd, UDP in keepalived 1.3.6 and later; a note says so.
//
// # Includes
//
// "include PATTERN" reads the files matching the glob PATTERN, in lexical
// order, in place of the include line, at any level of the file. A
// relative pattern is taken from the directory of the file holding the
// include; with [ParseFS], an absolute one from the root of the fs.FS. A
// pattern matching nothing leaves a note (includem, includew and includea
// make it an error; includer and includeb act as include). Includes nest
// at most [MaxIncludeDepth] deep ([ErrIncludeDepth]); a file including
// itself, directly or not, is an error ([ErrIncludeCycle]). Each included
// file must have balanced braces.
//
// # Notes and errors
//
// An [Error] prints as "file:line: msg" and says what was expected and
// what was found:
//
//	keepalived.conf:12: virtual_router_id: expected an integer 1..255, got "300"
//
// Parsing goes on after an error, so one run reports them all, as an
// [ErrorList] in file order. A configuration with errors must not be run.
// [Config.Validate] checks the rules that span blocks: required keywords
// (interface, virtual_router_id, an address), ranges, one address family
// per instance, unicast peers and source addresses of that family, no two
// instances with one VRID on one interface and family (unless both use
// disjoint unicast peers, as keepalived allows), defined
// virtual_server_groups, unique names.
//
// A [Note] is a warning about a usable configuration, with its file, line,
// [NoteKind] and consequence. Nothing in the file is dropped without one:
// keepalived keywords that cannot change which router holds a virtual
// address, which address is served or which real server gets traffic
// (mail, SNMP, process tuning), references to nothing (a track_script
// naming no vrrp_script: the instance does not track it), old names
// (nb_get_retry, lb_algo and lb_kind are accepted; nb_get_retry with a
// note), settings without effect (nopreempt with state MASTER,
// authentication in version 3) and keepalived rules applied.
//
// Unknown and misspelt keywords are errors, with a "did you mean" or the
// block they belong in, and what the intended keyword stays at
// ("priorty 50": priority stays 100, the default). One exception keeps
// files that work as written working: a misspelling whose value is the
// one in effect anyway ("protocal TCP", as the seeds have it, where
// protocol is TCP by default) is a note.
//
// Secrets (auth_pass, the AMQP_CHECK password) are of type [Secret]: they
// never appear in errors, notes, logs or JSON.
//
// # What is not supported
//
// Every keyword keepalived 2.2.7 knows is implemented, warned about or
// refused; [Keywords] lists them with the reason or, for a refused one,
// what to do instead. A refused keyword is an error at its line: a
// checker vipd does not have (SMTP_CHECK, DNS_CHECK, UDP_CHECK,
// PING_CHECK, FILE_CHECK, BFD_CHECK), VMAC and IPVLAN, static addresses,
// routes and rules, track_file, vrrp_track_process (and a
// vrrp_sync_group's track_file, track_process, track_bfd), BFD, quorums,
// IPVS scheduler flags, connection thresholds, url regex, and the others
// listed in vipd's README. The AH auth_type is parsed, and accept mode
// settled (see [VRRPInstance].NoAccept); whether they are honoured is up
// to the daemon.
//
// # Strict mode
//
// vrrp_strict (or an instance's strict_mode) applies keepalived 2.2.7's
// rules, each with a note: the authentication block is dropped, state
// MASTER goes only with priority 255 (the state follows the priority
// otherwise), preempt_delay is reset to 0, accept mode is off for
// non-owners unless asked for in version 3; unicast_peer and
// no_virtual_ipaddress are errors, as keepalived refuses them.
//
// Errors: keepalived's conditional lines ("@id keyword ..."), parameter
// definitions ("$NAME=value"; "${NAME}" in a value stays as written) and
// sequences ("~SEQ"). Not supported either: brace expansion in include
// patterns ("{a,b}.conf"), and an included file that opens a block
// another file closes.
package config
