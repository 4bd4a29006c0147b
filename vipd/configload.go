package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/amqpha/amqpha/vipd/config"
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
		lc.Scripts = append(lc.Scripts, scriptSpec{
			Name: s.Name, Command: c, Interval: time.Duration(s.Interval),
			Weight: s.Weight, Rise: s.Rise, Fall: s.Fall, InitFail: s.InitFail,
		})
	}
	for k := range cfg.VRRPInstances {
		lc.Instances = append(lc.Instances, r.instance(&cfg.VRRPInstances[k], lc.Scripts))
	}
	lc.Groups = r.syncGroups(lc.Instances, lc.Scripts)
	lc.StartupDelay = time.Duration(cfg.GlobalDefs.VRRPStartupDelay)
	lc.Health.TLS = r.sslConfig()
	r.checkMiscScripts()
	r.checkGuards()
	return lc, r.warnings, r.errs
}

// sslConfig turns the SSL block into the TLS settings of SSL_GET checks:
// the CA file's certificates as the only roots, the client certificate.
// Without a block (nil) checks verify against the system's roots.
func (r *resolver) sslConfig() *tls.Config {
	ssl := r.cfg.SSL
	if ssl == nil {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ssl.CA != "" {
		pem, err := os.ReadFile(ssl.CA)
		if err != nil {
			r.errorf(ssl.Pos, "SSL: ca: %v", err)
		} else {
			cfg.RootCAs = x509.NewCertPool()
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				r.errorf(ssl.Pos, "SSL: ca: %s holds no PEM certificate", ssl.CA)
			}
		}
	}
	if ssl.Certificate != "" && ssl.Key != "" {
		cert, err := tls.LoadX509KeyPair(ssl.Certificate, ssl.Key)
		if err != nil {
			r.errorf(ssl.Pos, "SSL: certificate %s and key %s: %v", ssl.Certificate, ssl.Key, err)
		} else {
			cfg.Certificates = []tls.Certificate{cert}
		}
	}
	return cfg
}

// checkMiscScripts reports, at load, the MISC_CHECK programs that will
// not run: an unknown user is an error; a program refused by
// enable_script_security is a warning, and that check fails whenever it
// runs, keeping its real server out of the pool.
func (r *resolver) checkMiscScripts() {
	for _, vs := range r.cfg.VirtualServers {
		for _, rs := range vs.RealServers {
			for _, c := range rs.MiscCheck {
				what := "MISC_CHECK of real_server " + netip.AddrPortFrom(rs.IP, uint16(rs.Port)).String()
				warned := len(r.warnings)
				if _, ok := r.command(c.MiscPath, c.User, c.Group, c.MiscTimeout.Duration(), c.Pos, what); !ok && len(r.warnings) > warned {
					r.warnings[len(r.warnings)-1] += "; the check fails every time, so the real server stays out of the pool"
				}
			}
		}
	}
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

// notifyTimeout bounds a notify script (keepalived has no such bound; a
// hanging notify script would otherwise hold every later notification).
const notifyTimeout = 30 * time.Second

func (r *resolver) command(s *config.Script, usr, group string, timeout time.Duration, p config.Pos, what string) (script.Command, bool) {
	if s == nil || len(s.Argv) == 0 {
		return script.Command{}, false
	}
	g := r.cfg.GlobalDefs
	if usr == "" {
		usr, group = g.ScriptUser, g.ScriptGroup
	}
	c := script.Command{Argv: s.Argv, Timeout: timeout}
	cred, err := credential(usr, group)
	if err != nil {
		r.errorf(p, "%s: %v", what, err)
		return c, false
	}
	c.Credential = cred
	if g.EnableScriptSecurity && (cred == nil || cred.Uid == 0) {
		if err := script.CheckSecure(s.Argv[0]); err != nil {
			// As keepalived: the script is disabled, the rest runs.
			r.warnf(p, "%s disabled by enable_script_security: %v", what, err)
			return c, false
		}
	}
	return c, true
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
	s.LowerPriorityNoAdvert = in.StrictMode
	// The instance's own interface is tracked without weight, as keepalived
	// does: while it is down the instance is in FAULT; not so with
	// dont_track_primary. A track_interface entry naming it is dropped,
	// as keepalived drops it.
	if !in.DontTrackPrimary {
		s.TrackInterfaces = append(s.TrackInterfaces, trackInterface{Name: in.Interface})
	}
	// So is the interface of every address given with dev (unless
	// no_track), as keepalived tracks it: down is FAULT.
	devs := map[string]bool{in.Interface: true}
	for _, v := range append(append([]config.VirtualIP(nil), in.VirtualIPAddress...), in.VirtualIPAddressExcluded...) {
		if v.Dev != "" && !v.NoTrack && !devs[v.Dev] {
			devs[v.Dev] = true
			s.TrackInterfaces = append(s.TrackInterfaces, trackInterface{Name: v.Dev})
		}
	}
	for _, t := range in.TrackInterface {
		if t.Name == in.Interface {
			r.warnf(in.KeywordPos("track_interface"), "vrrp_instance %s: track_interface %s is the instance's own interface; ignored, as keepalived ignores it (its own interface is tracked without weight unless dont_track_primary)", in.Name, t.Name)
			continue
		}
		s.TrackInterfaces = append(s.TrackInterfaces, trackInterface{Name: t.Name, Weight: t.Weight, Reverse: t.Reverse})
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
	notify := func(sc *config.Script) (script.Command, bool) {
		if sc == nil {
			return script.Command{}, false
		}
		return r.command(sc, sc.User, sc.Group, notifyTimeout, in.Pos, "vrrp_instance "+in.Name+" notify script")
	}
	s.NotifyState = map[vrrp.State]script.Command{}
	for st, sc := range map[vrrp.State]*config.Script{
		vrrp.Master: in.NotifyMaster, vrrp.Backup: in.NotifyBackup,
		vrrp.Fault: in.NotifyFault, vrrp.Stopped: in.NotifyStop,
	} {
		if c, ok := notify(sc); ok {
			s.NotifyState[st] = c
		}
	}
	if c, ok := notify(in.Notify); ok {
		s.Notify = &c
	}
	return s
}

// checkConfig is `vipd check`: notes and errors on stderr (file:line
// each), the effective configuration as JSON on stdout when it is valid.
func checkConfig(path string, stdout, stderr io.Writer) error {
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
	js, err := cfg.JSON()
	if err != nil {
		return err
	}
	if _, err := stdout.Write(append(js, '\n')); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: OK (%d vrrp_instance, %d vrrp_script, %d virtual_server)\n",
		path, len(cfg.VRRPInstances), len(cfg.VRRPScripts), len(cfg.VirtualServers))
	return nil
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
		notify := func(sc *config.Script) (script.Command, bool) {
			if sc == nil {
				return script.Command{}, false
			}
			return r.command(sc, sc.User, sc.Group, notifyTimeout, g.Pos, "vrrp_sync_group "+g.Name+" notify script")
		}
		for st, sc := range map[vrrp.State]*config.Script{
			vrrp.Master: g.NotifyMaster, vrrp.Backup: g.NotifyBackup,
			vrrp.Fault: g.NotifyFault, vrrp.Stopped: g.NotifyStop,
		} {
			if c, ok := notify(sc); ok {
				gs.Notify.NotifyState[st] = c
			}
		}
		if c, ok := notify(g.Notify); ok {
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
