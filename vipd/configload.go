package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/amqpha/amqpha/vipd/config"
	"github.com/amqpha/amqpha/vipd/health"
	"github.com/amqpha/amqpha/vipd/lvs"
	"github.com/amqpha/amqpha/vipd/script"
	"github.com/amqpha/amqpha/vipd/vrrp"
)

// loadConfig reads the configuration file and turns it into what the
// daemon runs. Notes go to the log as warnings; errors (with file:line)
// refuse the whole file.
func loadConfig(path string, log *slog.Logger) (*loadedConfig, error) {
	cfg, err := config.Load(path)
	if cfg != nil {
		for _, n := range cfg.Notes {
			log.Warn(n.String())
		}
	}
	if err != nil {
		return nil, err
	}
	lc, warnings, problems := resolve(cfg)
	for _, w := range warnings {
		log.Warn(w)
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return lc, nil
}

// resolve turns a parsed configuration into specs: scripts into commands
// (checked against enable_script_security, given their user), initial
// states, checksum modes.
func resolve(cfg *config.Config) (lc *loadedConfig, warnings []string, errs []error) {
	r := resolver{cfg: cfg}
	lc = &loadedConfig{RouterID: cfg.GlobalDefs.RouterID, Config: cfg}
	lc.Health.Command = func(s *config.Script, user, group string, timeout time.Duration) (script.Command, error) {
		x := resolver{cfg: cfg}
		c, ok := x.command(s, user, group, timeout, config.Pos{File: "MISC_CHECK"}, "misc_path")
		if !ok {
			return c, fmt.Errorf("%s %s", strings.Join(x.warnings, "; "), errors.Join(x.errs...))
		}
		return c, nil
	}
	for _, s := range cfg.VRRPScripts {
		c, ok := r.command(s.Script, s.User, s.Group, time.Duration(s.Timeout), s.Pos, "vrrp_script "+s.Name)
		if !ok {
			continue
		}
		if s.InitFail {
			r.warnf(s.Pos, "vrrp_script %s: init_fail has no effect in keepalived (2.2.7): tracking a script resets it to start without a result, and its first result counts at once; vipd does the same", s.Name)
		}
		lc.Scripts = append(lc.Scripts, scriptSpec{
			Name: s.Name, Command: c, Interval: time.Duration(s.Interval),
			Weight: s.Weight, Rise: s.Rise, Fall: s.Fall,
		})
	}
	for k := range cfg.VRRPInstances {
		lc.Instances = append(lc.Instances, r.instance(&cfg.VRRPInstances[k], lc.Scripts))
	}
	lc.Groups = r.syncGroups(lc.Instances, lc.Scripts)
	lc.StartupDelay = time.Duration(cfg.GlobalDefs.VRRPStartupDelay)
	lc.Health.TLS = r.sslConfig()
	lc.RealServerNotify = r.realServerNotify()
	// What the kernel would not take, or vipd would leave out or change
	// when it programs IPVS, refuses the file here rather than a warning
	// at run time.
	if _, errs := lvs.FromConfig(cfg, nil); len(errs) > 0 {
		r.errs = append(r.errs, errs...)
	}
	r.checkMiscScripts()
	r.checkGuards()
	return lc, r.warnings, r.errs
}

// sslConfig turns the SSL block into the TLS settings of SSL_GET checks
// (health.TLSFromSSL), reporting each unusable file at the block's line.
// Without a block (nil) checks verify against the system's roots.
func (r *resolver) sslConfig() *tls.Config {
	cfg, err := health.TLSFromSSL(r.cfg.SSL)
	if err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			r.errorf(r.cfg.SSL.Pos, "%v", e)
		}
	}
	return cfg
}

// checkMiscScripts reports, at load, the MISC_CHECK programs that cannot
// run (an unknown user, a missing program, one refused by
// enable_script_security) as errors with file:line. Should one become
// unrunnable later, its check fails every time it runs, keeping its real
// server out of the pool.
func (r *resolver) checkMiscScripts() {
	for _, vs := range r.cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			for _, c := range rs.MiscCheck {
				what := "MISC_CHECK of real_server " + netip.AddrPortFrom(rs.IP, uint16(rs.Port)).String()
				r.command(c.MiscPath, c.User, c.Group, c.MiscTimeout.Duration(), c.Pos, what)
			}
		}
	}
}

// rsScripts are a real server's notify_up and notify_down, ready to run
// (nil: none).
type rsScripts struct{ Up, Down *script.Command }

// realServerNotify resolves every real server's notify_up and notify_down
// like any other script (user, PATH, enable_script_security). keepalived
// runs them with no arguments and no time limit when the real server's
// checks take it up or down.
func (r *resolver) realServerNotify() map[*config.RealServer]rsScripts {
	out := map[*config.RealServer]rsScripts{}
	for i := range r.cfg.VirtualServers {
		vs := &r.cfg.VirtualServers[i]
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			var s rsScripts
			resolve := func(sc *config.Script, kw string) *script.Command {
				if sc == nil {
					return nil
				}
				what := "real_server " + netip.AddrPortFrom(rs.IP, uint16(rs.Port)).String() + " " + kw
				c, ok := r.command(sc, sc.User, sc.Group, script.NoTimeout, rs.Pos, what)
				if !ok {
					return nil
				}
				return &c
			}
			s.Up, s.Down = resolve(rs.NotifyUp, "notify_up"), resolve(rs.NotifyDown, "notify_down")
			if s.Up != nil || s.Down != nil {
				out[rs] = s
			}
		}
	}
	return out
}

// amqpPorts are RabbitMQ's AMQP ports (plain and TLS).
var amqpPorts = map[int]bool{5672: true, 5671: true}

// checkGuards warns about real servers whose health checks cannot see what
// matters: an AMQP port watched by TCP_CHECK alone (a hung RabbitMQ node —
// stopped, not dead — still completes TCP handshakes, because the kernel
// accepts for it, so it stays in the pool), and a real server with no check
// at all (always taken as up).
func (r *resolver) checkGuards() {
	for _, vs := range r.cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			checks := len(rs.TCPCheck) + len(rs.HTTPGet) + len(rs.SSLGet) + len(rs.MiscCheck) + len(rs.AMQPCheck)
			amqp := amqpPorts[rs.Port] || amqpPorts[vs.Port]
			for _, c := range rs.TCPCheck {
				amqp = amqp || amqpPorts[c.ConnectPort]
			}
			if len(rs.SSLGet) > 0 && (r.cfg.SSL == nil || r.cfg.SSL.CA == "") {
				r.warnf(rs.SSLGet[0].Pos, "real_server %s: SSL_GET verifies the server's certificate against the system's roots (keepalived does not verify it): a self-signed certificate, or one without this address or virtualhost, fails the check; name its CA in an SSL { ca FILE } block", netip.AddrPortFrom(rs.IP, uint16(rs.Port)))
			}
			switch {
			case checks == 0:
				r.warnf(rs.Pos, "real_server %s: no health check; it is taken as up whatever happens to it", netip.AddrPortFrom(rs.IP, uint16(rs.Port)))
			case amqp && checks == len(rs.TCPCheck):
				r.warnf(rs.Pos, "real_server %s: an AMQP port guarded by TCP_CHECK alone: a hung RabbitMQ node (process stopped) still accepts TCP connections and stays in the pool; add AMQP_CHECK (or HTTP_GET of the management API's health checks)", netip.AddrPortFrom(rs.IP, uint16(rs.Port)))
			}
		}
	}
}

type resolver struct {
	cfg      *config.Config
	errs     []error
	warnings []string
}

// strictPos is where strict mode was asked for: the instance's
// strict_mode, else global_defs vrrp_strict.
func (r *resolver) strictPos(in *config.VRRPInstance) config.Pos {
	if in.Given("strict_mode") {
		return in.KeywordPos("strict_mode")
	}
	return r.cfg.GlobalDefs.KeywordPos("vrrp_strict")
}

func (r *resolver) errorf(p config.Pos, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s:%d: %s", p.File, p.Line, fmt.Sprintf(format, args...)))
}

func (r *resolver) warnf(p config.Pos, format string, args ...any) {
	r.warnings = append(r.warnings, fmt.Sprintf("%s:%d: %s", p.File, p.Line, fmt.Sprintf(format, args...)))
}

// defaultScriptUser is who keepalived runs scripts as when no script_user
// is given, if that user exists (otherwise as itself).
const defaultScriptUser = "keepalived_script"

// command turns a script keyword into the command to run, as keepalived
// prepares a script when it loads the configuration: its user (the
// keyword's, else script_user, else keepalived_script if that user
// exists), its program looked up in PATH when given by name, and, with
// enable_script_security, the program's path checked (script.Resolve).
// What keepalived would not run for its security rules (it disables such a
// script, dropping it from tracking) is an error here, with file:line:
// vipd refuses the configuration rather than run without it. A program
// not found is a warning; the script then fails closed (Refused).
func (r *resolver) command(s *config.Script, usr, group string, timeout time.Duration, p config.Pos, what string) (script.Command, bool) {
	if s == nil || len(s.Argv) == 0 {
		return script.Command{}, false
	}
	g := r.cfg.GlobalDefs
	if usr == "" {
		usr, group = g.ScriptUser, g.ScriptGroup
	}
	c := script.Command{Argv: s.Argv, Timeout: timeout}
	if usr == "" {
		if _, err := lookupUser(defaultScriptUser); err == nil {
			usr = defaultScriptUser
		} else if g.EnableScriptSecurity {
			r.errorf(p, "%s: enable_script_security is on, no script_user is given and user %s (keepalived's default script user) does not exist: keepalived then runs no script at all and drops tracked ones from tracking; add script_user (e.g. \"script_user root\") to global_defs, or create the user",
				what, defaultScriptUser)
			return c, false
		}
	}
	cred, err := credential(usr, group)
	if err != nil {
		r.errorf(p, "%s: %v", what, err)
		return c, false
	}
	c.Credential = cred
	resolved, err := script.Resolve(c, g.EnableScriptSecurity)
	switch {
	case errors.Is(err, script.ErrNotFound):
		// Perhaps checked away from the host it runs on: a warning, and
		// the script fails closed until a reload finds it.
		r.warnf(p, "%s: %v: keepalived disables such a script (dropping it from tracking); vipd keeps it, never running it: a tracked script counts as failed, a MISC_CHECK keeps its real server out, a notify script does not run; install it and reload", what, err)
		c.Refused = err
		return c, true
	case err != nil:
		r.errorf(p, "%s: %v (enable_script_security: keepalived disables such a script; vipd refuses to run without it)", what, err)
		return c, false
	}
	if script.ShellOnly(s.Argv[0]) && (strings.Contains(s.Argv[0], "/dev/tcp/") || strings.Contains(s.Argv[0], "/dev/udp/")) && !shellIsBash() {
		r.warnf(p, "%s: %q runs through /bin/sh, as in keepalived; /bin/sh here is not bash, which alone opens /dev/tcp and /dev/udp: it fails every time", what, s.Raw)
	}
	return resolved, true
}

// lookupUser is user.Lookup, replaceable in tests.
var lookupUser = user.Lookup

// shellIsBash reports whether /bin/sh is bash (which alone gives the
// /dev/tcp/HOST/PORT redirections of keepalived's samples a meaning).
func shellIsBash() bool {
	p, err := filepath.EvalSymlinks("/bin/sh")
	return err == nil && strings.HasPrefix(filepath.Base(p), "bash")
}

// credential looks up who a script runs as; nil for vipd's own user.
func credential(usr, group string) (*syscall.Credential, error) {
	if usr == "" {
		return nil, nil
	}
	u, err := user.Lookup(usr)
	if err != nil {
		return nil, fmt.Errorf("script_user %q: %w", usr, err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("script group %q: %w", group, err)
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	if uid == 0 && gid == 0 {
		return nil, nil // root: no change of credentials needed
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (r *resolver) instance(in *config.VRRPInstance, scripts []scriptSpec) instanceSpec {
	s := instanceSpec{
		Name:         in.Name,
		Interface:    in.Interface,
		VRID:         uint8(in.VirtualRouterID),
		Version:      in.EffectiveVersion(),
		Priority:     uint8(in.Priority),
		Interval:     in.Interval(),
		InitialState: vrrp.Backup,
		Preempt:      !in.Nopreempt,
		PreemptDelay: time.Duration(in.PreemptDelay),
		Source:       in.UnicastSrcIP,
		GARPDelay:    time.Duration(in.GarpMasterDelay),
		GARPRepeat:   in.GarpMasterRepeat,
		GARPRefresh:  time.Duration(in.GarpMasterRefresh),

		GARPRefreshRepeat: in.GarpMasterRefreshRepeat,
	}
	if in.InitialMaster() {
		s.InitialState = vrrp.Master
	}
	if !s.Source.IsValid() && in.McastSrcIP.IsValid() {
		s.Source = in.McastSrcIP
	}
	if in.V3ChecksumAsV2 {
		s.Checksum = vrrp.ChecksumMessageOnly
	}
	if a := in.Authentication; a != nil && s.Version == 2 && a.AuthType == "PASS" {
		s.AuthType = vrrp.AuthPass
		copy(s.AuthData[:], a.AuthPass.Reveal())
	} else if a != nil && a.AuthType == "AH" {
		r.errorf(in.Pos, "vrrp_instance %s: auth_type AH is not supported (use PASS, or none with version 3)", in.Name)
	}
	if in.NoAccept {
		// keepalived installs nftables rules that drop traffic to (and
		// from) the addresses of such an instance while it is master.
		const drop = "keepalived then drops all traffic to the virtual addresses with a firewall (nftables) while this router is master and not the address owner; vipd has no such firewall and refuses to run it"
		if in.Given("no_accept") && !in.StrictMode {
			r.errorf(in.KeywordPos("no_accept"), "vrrp_instance %s: no_accept: %s (remove no_accept)", in.Name, drop)
		} else {
			r.errorf(r.strictPos(in), "vrrp_instance %s: strict mode turns accept mode off for priority %d (below 255; in version 2 even with accept): %s: remove vrrp_strict (strict_mode) on every router, make this router the address owner (priority 255), or with version 3 add accept",
				in.Name, in.Priority, drop)
		}
	}
	for _, v := range in.VirtualIPAddress {
		s.VIPs = append(s.VIPs, r.vip(in, "virtual_ipaddress", v))
	}
	for _, v := range in.VirtualIPAddressExcluded {
		s.Excluded = append(s.Excluded, r.vip(in, "virtual_ipaddress_excluded", v))
	}
	g := r.cfg.GlobalDefs
	s.GARPInterval, s.GNAInterval = time.Duration(g.VRRPGarpInterval), time.Duration(g.VRRPGnaInterval)
	for _, p := range in.UnicastPeer {
		s.Peers = append(s.Peers, peerSpec{Addr: p.Address, MinTTL: p.MinTTL, MaxTTL: p.MaxTTL})
	}
	if !in.Unicast() {
		s.Group = in.McastDstIP
		if !s.Group.IsValid() { // a Config built by hand
			s.Group = vrrp.GroupIPv4
			if in.IPv6() {
				s.Group = vrrp.GroupIPv6
			}
		}
	}
	s.CheckUnicastSrc = in.Unicast() && in.CheckUnicastSrc
	s.LowerPriorityNoAdvert = in.StrictMode || in.LowerPrioNoAdvert
	// The instance's own interface is tracked without weight, as keepalived
	// does: while it is down the instance is in FAULT; not so with
	// dont_track_primary. A track_interface entry naming it is dropped,
	// as keepalived drops it.
	if !in.DontTrackPrimary {
		s.TrackInterfaces = append(s.TrackInterfaces, trackInterface{Name: in.Interface})
	}
	for _, t := range in.TrackInterface {
		if t.Name == in.Interface {
			r.warnf(in.KeywordPos("track_interface"), "vrrp_instance %s: track_interface %s is the instance's own interface; ignored, as keepalived ignores it (its own interface is tracked without weight unless dont_track_primary)", in.Name, t.Name)
			continue
		}
		s.TrackInterfaces = append(s.TrackInterfaces, trackInterface{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse})
	}
	// keepalived also tracks the device of every address on another
	// interface, unless no_track, with weight 0: down puts the instance in
	// FAULT. A device already tracked with a weight (track_interface) loses
	// it, as in keepalived: the address's tracking wins.
	for _, v := range append(slices.Clone(in.VirtualIPAddress), in.VirtualIPAddressExcluded...) {
		if v.Dev == "" || v.Dev == in.Interface || v.NoTrack {
			continue
		}
		if k := slices.IndexFunc(s.TrackInterfaces, func(t trackInterface) bool { return t.Name == v.Dev }); k >= 0 {
			s.TrackInterfaces[k].Weight, s.TrackInterfaces[k].Reverse = 0, false
			continue
		}
		s.TrackInterfaces = append(s.TrackInterfaces, trackInterface{Name: v.Dev})
	}
	for _, t := range in.TrackScript {
		known := false
		for _, sc := range scripts {
			known = known || sc.Name == t.Name
		}
		if known { // a refused or missing script was reported already
			s.TrackScripts = append(s.TrackScripts, trackScript{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse})
		}
	}
	notify := func(sc *config.Script, kw string) (script.Command, bool) {
		if sc == nil {
			return script.Command{}, false
		}
		// keepalived bounds no notify script's run but notify_stop's
		// (see notifier).
		return r.command(sc, sc.User, sc.Group, script.NoTimeout, in.KeywordPos(kw), "vrrp_instance "+in.Name+" "+kw)
	}
	s.NotifyState = map[vrrp.State]script.Command{}
	for _, n := range []struct {
		st vrrp.State
		sc *config.Script
		kw string
	}{
		{vrrp.Master, in.NotifyMaster, "notify_master"}, {vrrp.Backup, in.NotifyBackup, "notify_backup"},
		{vrrp.Fault, in.NotifyFault, "notify_fault"}, {vrrp.Stopped, in.NotifyStop, "notify_stop"},
	} {
		if c, ok := notify(n.sc, n.kw); ok {
			s.NotifyState[n.st] = c
		}
	}
	if c, ok := notify(in.Notify, "notify"); ok {
		s.Notify = &c
	}
	return s
}

// checkConfig is `vipd check`: warnings and errors on stderr (file:line
// each); when the file is valid, "FILE: OK (...)" on stdout, or with dump
// the configuration in effect as JSON on stdout and the OK line on stderr.
func checkConfig(path string, dump bool, stdout, stderr io.Writer) error {
	cfg, err := config.Load(path)
	if cfg != nil {
		for _, n := range cfg.Notes {
			fmt.Fprintf(stderr, "warning: %s\n", n)
		}
	}
	if err != nil {
		return err
	}
	_, warnings, problems := resolve(cfg)
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if len(problems) > 0 {
		return errors.Join(problems...)
	}
	ok := stdout
	if dump {
		js, err := cfg.JSON()
		if err != nil {
			return err
		}
		if _, err := stdout.Write(append(js, '\n')); err != nil {
			return err
		}
		ok = stderr
	}
	_, err = fmt.Fprintf(ok, "%s: OK (%d vrrp_instance, %d vrrp_script, %d virtual_server)\n",
		path, len(cfg.VRRPInstances), len(cfg.VRRPScripts), len(cfg.VirtualServers))
	return err
}

// Scopes as `ip addr` names them, by rtnetlink number.
var scopes = map[string]uint8{"global": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}

// vip resolves one virtual_ipaddress line's brd and scope as keepalived
// does: "brd +" / "brd -" set the subnet's broadcast / network address
// (prefixes up to /30), an address is taken as given, no brd sets none.
// What keepalived rejects or ignores with a message (brd or scope on an
// IPv6 address, brd +/- on a /31 or /32) vipd refuses.
func (r *resolver) vip(in *config.VRRPInstance, kw string, v config.VirtualIP) vipSpec {
	out := vipSpec{Prefix: v.Address, Dev: v.Dev, Label: v.Label}
	a, p := v.Pos, v.Address
	if a.File == "" { // a VirtualIP built by hand
		a = in.KeywordPos(kw)
	}
	if v.Scope != "" {
		if p.Addr().Is6() {
			r.errorf(a, "%s %s: scope on an IPv6 address (keepalived ignores it); remove it", kw, p)
		}
		out.Scope = scopes[v.Scope]
	}
	switch {
	case v.Brd == "":
	case p.Addr().Is6():
		r.errorf(a, "%s %s: brd on an IPv6 address (keepalived drops the address); remove it", kw, p)
	case v.Brd == "+" || v.Brd == "-":
		if p.Bits() > 30 {
			r.errorf(a, "%s %s: brd %s needs a prefix of /30 or shorter (keepalived sets no broadcast then); give the prefix or remove brd", kw, p, v.Brd)
			break
		}
		b := p.Addr().As4()
		host := uint32(1)<<(32-p.Bits()) - 1
		x := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		if v.Brd == "+" {
			x |= host
		} else {
			x &^= host
		}
		out.Broadcast = netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	default:
		out.Broadcast, _ = netip.ParseAddr(v.Brd) // the parser checked it
	}
	return out
}

// syncGroups resolves the vrrp_sync_groups: their notify scripts, and the
// tracking keepalived gives their members. Each group's track_script and
// track_interface entries apply to every member (without weight when a
// member is an address owner). Without sync_group_tracking_weight a
// member's own weighted track_script entries are dropped and its weighted
// track_interface entries lose their weight (down is FAULT), as keepalived
// does, with a warning each.
func (r *resolver) syncGroups(specs []instanceSpec, scripts []scriptSpec) []groupSpec {
	var out []groupSpec
	for gi := range r.cfg.VRRPSyncGroups {
		g := &r.cfg.VRRPSyncGroups[gi]
		gs := groupSpec{Name: g.Name, Members: g.Group,
			Notify: instanceSpec{Name: g.Name, group: true, NotifyState: map[vrrp.State]script.Command{}}}
		notify := func(kw string, sc *config.Script) (script.Command, bool) {
			if sc == nil {
				return script.Command{}, false
			}
			return r.command(sc, sc.User, sc.Group, script.NoTimeout, g.KeywordPos(kw), "vrrp_sync_group "+g.Name+" "+kw)
		}
		for _, n := range []struct {
			st vrrp.State
			kw string
			sc *config.Script
		}{
			{vrrp.Master, "notify_master", g.NotifyMaster}, {vrrp.Backup, "notify_backup", g.NotifyBackup},
			{vrrp.Fault, "notify_fault", g.NotifyFault}, {vrrp.Stopped, "notify_stop", g.NotifyStop},
		} {
			if c, ok := notify(n.kw, n.sc); ok {
				gs.Notify.NotifyState[n.st] = c
			}
		}
		if c, ok := notify("notify", g.Notify); ok {
			gs.Notify.Notify = &c
		}
		owner := false
		for _, m := range g.Group {
			if in := r.cfg.VRRPInstance(m); in != nil && in.Priority == 255 {
				owner = true
			}
		}
		var gScripts []trackScript
		for _, t := range g.TrackScript {
			known := false
			for _, sc := range scripts {
				known = known || sc.Name == t.Name
			}
			if !known {
				continue
			}
			w := t.Weight
			if owner && w != 0 {
				r.warnf(g.KeywordPos("track_script"), "vrrp_sync_group %s: track_script %s: weight cleared, a member is an address owner (as keepalived does)", g.Name, t.Name)
				w = 0
			}
			gScripts = append(gScripts, trackScript{Name: t.Name, Weight: w, Reverse: t.Reverse})
		}
		var gIfs []trackInterface
		for _, t := range g.TrackInterface {
			w := t.Weight
			if owner && w != 0 {
				r.warnf(g.KeywordPos("track_interface"), "vrrp_sync_group %s: track_interface %s: weight cleared, a member is an address owner (as keepalived does)", g.Name, t.Name)
				w = 0
			}
			gIfs = append(gIfs, trackInterface{Name: t.Name, Weight: w, Reverse: t.Reverse})
		}
		for k := range specs {
			s := &specs[k]
			if r.cfg.SyncGroupOf(s.Name) != g {
				continue
			}
			in := r.cfg.VRRPInstance(s.Name)
			if !owner && s.InitialState == vrrp.Master {
				// keepalived starts every member as BACKUP unless all are
				// address owners; what state MASTER turned off stays off.
				s.InitialState, s.Preempt, s.PreemptDelay = vrrp.Backup, true, 0
			}
			if !g.TrackingWeight {
				kept := s.TrackScripts[:0]
				for _, t := range s.TrackScripts {
					if t.Weight != 0 {
						r.warnf(in.KeywordPos("track_script"), "vrrp_instance %s: track_script %s has a weight in vrrp_sync_group %s; dropped, as keepalived drops it (add sync_group_tracking_weight to the group to keep weights)", s.Name, t.Name, g.Name)
						continue
					}
					kept = append(kept, t)
				}
				s.TrackScripts = kept
				for j := range s.TrackInterfaces {
					if t := &s.TrackInterfaces[j]; t.Weight != 0 {
						r.warnf(in.KeywordPos("track_interface"), "vrrp_instance %s: track_interface %s has a weight in vrrp_sync_group %s; tracked without it (down is FAULT), as keepalived does (add sync_group_tracking_weight to the group to keep weights)", s.Name, t.Name, g.Name)
						t.Weight, t.Reverse = 0, false
					}
				}
			}
			s.TrackScripts = append(s.TrackScripts, gScripts...)
			s.TrackInterfaces = append(s.TrackInterfaces, gIfs...)
		}
		out = append(out, gs)
	}
	return out
}
