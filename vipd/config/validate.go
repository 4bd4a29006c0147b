package config

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Validate checks the rules that make a configuration runnable: required
// keywords, ranges, address families, references between blocks and
// clashes between instances and between virtual servers. Parse, Load and
// ParseFS already ran it; call it again after changing a Config, or on one
// built by hand, where zero fields stand for defaults. It returns an
// [ErrorList] or nil. It does not modify c.
func (c *Config) Validate() error {
	var v validator
	v.config(c)
	return ErrorList(v.errs).err()
}

type validator struct {
	errs []*Error
}

func (v *validator) errorf(p Pos, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: p.File, Line: p.Line, Msg: fmt.Sprintf(format, args...)})
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func (v *validator) config(c *Config) {
	g := &c.GlobalDefs
	if g.VRRPVersion != 0 && g.VRRPVersion != 2 && g.VRRPVersion != 3 && !g.meta.isBad("vrrp_version") {
		v.errorf(g.meta.pos("vrrp_version", g.Pos), "vrrp_version: expected 2 or 3, got %d", g.VRRPVersion)
	}
	if ssl := c.SSL; ssl != nil {
		if (ssl.Certificate == "") != (ssl.Key == "") {
			v.errorf(ssl.Pos, "SSL: certificate and key go together (a client certificate needs its key)")
		}
		if ssl.Password != "" {
			v.errorf(ssl.Pos, "SSL: password: vipd does not take encrypted keys; give key an unencrypted PEM key readable by root only")
		}
	}
	scripts := map[string]Pos{}
	for i := range c.VRRPScripts {
		sc := &c.VRRPScripts[i]
		if p, dup := scripts[sc.Name]; dup {
			v.errorf(sc.Pos, "vrrp_script %s is already defined at %s", sc.Name, p)
		} else {
			scripts[sc.Name] = sc.Pos
		}
		v.script(sc)
	}
	names := map[string]Pos{}
	type vridKey struct {
		iface string
		v6    bool
		vrid  int
	}
	vrids := map[vridKey][]*VRRPInstance{}
	for i := range c.VRRPInstances {
		in := &c.VRRPInstances[i]
		if p, dup := names[in.Name]; dup {
			v.errorf(in.Pos, "vrrp_instance %s is already defined at %s", in.Name, p)
		} else {
			names[in.Name] = in.Pos
		}
		v.instance(c, in)
		if in.Interface == "" || in.VirtualRouterID == 0 {
			continue
		}
		k := vridKey{in.Interface, in.IPv6(), in.VirtualRouterID}
		for _, other := range vrids[k] {
			if !apart(in, other) {
				v.errorf(in.meta.pos("virtual_router_id", in.Pos),
					"vrrp_instance %s: virtual_router_id %d on %s (%s) is already used by vrrp_instance %s at %s",
					in.Name, in.VirtualRouterID, in.Interface, map[bool]string{false: "IPv4", true: "IPv6"}[k.v6], other.Name, other.Pos)
				break
			}
		}
		vrids[k] = append(vrids[k], in)
	}
	groups := map[string]Pos{}
	for i := range c.VirtualServerGroups {
		vg := &c.VirtualServerGroups[i]
		if p, dup := groups[vg.Name]; dup {
			v.errorf(vg.Pos, "virtual_server_group %s is already defined at %s", vg.Name, p)
		} else {
			groups[vg.Name] = vg.Pos
		}
	}
	services := map[string]Pos{}
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		v.virtualServer(c, vs)
		key := vsLabel(vs) + "/" + vs.Protocol
		if vs.Fwmark != 0 {
			key = vsLabel(vs)
		}
		if p, dup := services[key]; dup {
			v.errorf(vs.Pos, "%s (%s) is already defined at %s", vsLabel(vs), vs.Protocol, p)
		} else {
			services[key] = vs.Pos
		}
	}
}

// apart reports whether two instances of one VRID on one interface and
// family hear different adverts, so that keepalived allows them: one
// unicast and one multicast, multicast to different groups, or both
// unicast with no peer in common.
func apart(a, b *VRRPInstance) bool {
	if a.Unicast() != b.Unicast() {
		return true
	}
	if !a.Unicast() {
		return a.McastDstIP.IsValid() && b.McastDstIP.IsValid() && a.McastDstIP != b.McastDstIP
	}
	for _, p := range a.UnicastPeer {
		for _, q := range b.UnicastPeer {
			if p.Address == q.Address {
				return false
			}
		}
	}
	return true
}

func (v *validator) script(sc *VRRPScript) {
	m := sc.meta
	if sc.Script == nil && !m.isBad("script") {
		v.errorf(sc.Pos, "vrrp_script %s: no script given", sc.Name)
	}
	if sc.Interval < 0 && !m.isBad("interval") {
		v.errorf(m.pos("interval", sc.Pos), "vrrp_script %s: interval: must not be negative", sc.Name)
	}
	if (sc.Weight < -253 || sc.Weight > 253) && !m.isBad("weight") {
		v.errorf(m.pos("weight", sc.Pos), "vrrp_script %s: weight: expected an integer -253..253, got %d", sc.Name, sc.Weight)
	}
	if sc.Rise < 0 || sc.Fall < 0 {
		v.errorf(sc.Pos, "vrrp_script %s: rise and fall must not be negative", sc.Name)
	}
}

func (v *validator) instance(c *Config, in *VRRPInstance) {
	m := in.meta
	name := "vrrp_instance " + in.Name
	missing := func(kw, what string) {
		if !m.has(kw) && !m.isBad(kw) {
			v.errorf(in.Pos, "%s: no %s given: %s is required", name, kw, what)
		}
	}
	if in.Interface == "" {
		missing("interface", "the interface to run VRRP on")
	}
	switch {
	case in.VirtualRouterID == 0:
		missing("virtual_router_id", "the VRID, 1..255, the same on every router of the group")
	case in.VirtualRouterID < 0 || in.VirtualRouterID > 255:
		v.errorf(m.pos("virtual_router_id", in.Pos), "virtual_router_id: expected an integer 1..255, got %q", fmt.Sprint(in.VirtualRouterID))
	}
	if (in.Priority < 1 || in.Priority > 255) && !m.isBad("priority") {
		v.errorf(m.pos("priority", in.Pos), "priority: expected an integer 1..255, got %q", fmt.Sprint(in.Priority))
	}
	if in.State != "" && in.State != StateMaster && in.State != StateBackup && !m.isBad("state") {
		v.errorf(m.pos("state", in.Pos), "state: expected MASTER or BACKUP, got %q", string(in.State))
	}
	if in.Version != 0 && in.Version != 2 && in.Version != 3 && !m.isBad("version") {
		v.errorf(m.pos("version", in.Pos), "version: expected 2 or 3, got %q", fmt.Sprint(in.Version))
	}
	v.advertInt(in)
	if in.PreemptDelay < 0 || in.PreemptDelay > Duration(1000*time.Second) {
		v.errorf(m.pos("preempt_delay", in.Pos), "preempt_delay: expected a time in seconds 0..1000, got %s", seconds(time.Duration(in.PreemptDelay)))
	}

	if len(in.VirtualIPAddress) == 0 && !in.NoVirtualIPAddress {
		v.errorf(m.pos("virtual_ipaddress", in.Pos),
			"%s: no virtual_ipaddress: at least one address is required (no_virtual_ipaddress allows none)", name)
	}
	var first netip.Addr
	for i, vip := range in.VirtualIPAddress {
		a := vip.Address.Addr()
		if i == 0 {
			first = a
			continue
		}
		if a.Is6() != first.Is6() {
			v.errorf(m.pos("virtual_ipaddress", in.Pos),
				"%s: virtual_ipaddress: %s is %s but the first address, %s, is %s; all the addresses of an instance must be of one family (put the others in virtual_ipaddress_excluded)",
				name, a, family(a), first, family(first))
			break
		}
	}
	if in.NativeIPv6 && !in.IPv6() {
		v.errorf(m.pos("native_ipv6", in.Pos), "%s: native_ipv6: the instance's virtual_ipaddress entries are not IPv6 (or there are none); vipd takes the family from them: give IPv6 addresses, or remove native_ipv6", name)
	}
	if a := in.Authentication; a != nil {
		p := m.pos("authentication", in.Pos)
		switch {
		case in.EffectiveVersion() == 3:
			v.errorf(p, "%s: authentication: version 3 has no authentication", name)
		case a.AuthType == "" && !m.isBad("auth_type"):
			v.errorf(p, "%s: authentication: no auth_type given: expected PASS or AH", name)
		case a.AuthType == "PASS" && a.AuthPass == "" && !m.isBad("auth_pass"):
			v.errorf(p, "%s: authentication: auth_type PASS needs an auth_pass", name)
		}
	}
	if first.IsValid() {
		for _, kw := range []string{"unicast_src_ip", "mcast_src_ip"} {
			a := in.UnicastSrcIP
			if kw == "mcast_src_ip" {
				a = in.McastSrcIP
			}
			if a.IsValid() && a.Is6() != first.Is6() {
				v.errorf(m.pos(kw, in.Pos), "%s: %s %s is %s but the virtual addresses are %s", name, kw, a, family(a), family(first))
			}
		}
		for _, p := range in.UnicastPeer {
			if p.Address.Is6() != first.Is6() {
				v.errorf(m.pos("unicast_peer", in.Pos), "%s: unicast_peer %s is %s but the virtual addresses are %s", name, p.Address, family(p.Address), family(first))
			}
		}
	}
	peers := map[netip.Addr]bool{}
	for _, p := range in.UnicastPeer {
		if p.MinTTL < 0 || p.MaxTTL > 255 || p.MinTTL > p.MaxTTL {
			v.errorf(m.pos("unicast_peer", in.Pos), "%s: unicast_peer %s: expected 0 <= min_ttl <= max_ttl <= 255, got %d and %d", name, p.Address, p.MinTTL, p.MaxTTL)
		}
		if peers[p.Address] {
			v.errorf(m.pos("unicast_peer", in.Pos), "%s: unicast_peer %s is listed twice", name, p.Address)
		}
		peers[p.Address] = true
	}
	if g := in.McastDstIP; g.IsValid() && !m.isBad("mcast_dst_ip") {
		switch {
		case !g.IsMulticast():
			v.errorf(m.pos("mcast_dst_ip", in.Pos), "%s: mcast_dst_ip %s is not a multicast address", name, g)
		case first.IsValid() && g.Is6() != first.Is6():
			v.errorf(m.pos("mcast_dst_ip", in.Pos), "%s: mcast_dst_ip %s is %s but the virtual addresses are %s", name, g, family(g), family(first))
		}
	}
	if in.StrictMode {
		// keepalived refuses to run these instances in strict mode.
		if in.Unicast() {
			v.errorf(m.pos("unicast_peer", in.Pos), "%s: unicast_peer: strict mode (vrrp_strict or strict_mode) allows no unicast peers; keepalived refuses the instance too", name)
		}
		if len(in.VirtualIPAddress) == 0 && in.NoVirtualIPAddress {
			v.errorf(m.pos("no_virtual_ipaddress", in.Pos), "%s: no_virtual_ipaddress: strict mode (vrrp_strict or strict_mode) needs at least one virtual address; keepalived refuses the instance too", name)
		}
	}
	for _, t := range in.TrackInterface {
		if t.Weight < -253 || t.Weight > 253 {
			v.errorf(m.pos("track_interface", in.Pos), "%s: track_interface %s: weight: expected an integer -253..253, got %d", name, t.Name, t.Weight)
		}
	}
	for _, t := range in.TrackScript {
		p := t.pos
		if p.File == "" {
			p = m.pos("track_script", in.Pos)
		}
		if t.Weight < -253 || t.Weight > 253 {
			v.errorf(p, "%s: track_script %s: weight: expected an integer -253..253, got %d", name, t.Name, t.Weight)
		}
		if c.VRRPScript(t.Name) == nil {
			v.errorf(p, "%s: track_script %s: no vrrp_script %s is defined", name, t.Name, t.Name)
		}
	}
	if in.GarpMasterRepeat < 0 || in.GarpMasterRefreshRepeat < 0 {
		v.errorf(in.Pos, "%s: garp_master_repeat and garp_master_refresh_repeat must not be negative", name)
	}
}

// advertInt checks advert_int against the version: version 2 carries
// whole seconds in 8 bits, version 3 centiseconds in 12 bits.
func (v *validator) advertInt(in *VRRPInstance) {
	m := in.meta
	if m.isBad("advert_int") || in.AdvertInt == 0 {
		return
	}
	p := m.pos("advert_int", in.Pos)
	d := time.Duration(in.AdvertInt)
	got := seconds(d)
	switch in.EffectiveVersion() {
	case 2:
		if d < time.Second || d > 255*time.Second || d%time.Second != 0 {
			v.errorf(p, "advert_int: expected whole seconds 1..255 for VRRP version 2, got %q; sub-second and fractional intervals need version 3", got)
		}
	default:
		if d < 10*time.Millisecond || d > 40950*time.Millisecond || d%(10*time.Millisecond) != 0 {
			v.errorf(p, "advert_int: expected 0.01..40.95 seconds in steps of 0.01 for VRRP version 3, got %q", got)
		}
	}
}

func (v *validator) virtualServer(c *Config, vs *VirtualServer) {
	m := vs.meta
	label := vsLabel(vs)
	forms := 0
	for _, set := range []bool{vs.IP.IsValid(), vs.Fwmark != 0, vs.Group != ""} {
		if set {
			forms++
		}
	}
	if forms != 1 {
		v.errorf(vs.Pos, "virtual_server: expected exactly one of an address, fwmark or group, got %d", forms)
	}
	if vs.Group != "" && c.VirtualServerGroup(vs.Group) == nil {
		v.errorf(vs.Pos, "%s: no virtual_server_group %s is defined", label, vs.Group)
	}
	if f := vs.IPFamily; f != "" {
		var addrs []netip.Addr
		if vs.IP.IsValid() {
			addrs = append(addrs, vs.IP)
		}
		if g := c.VirtualServerGroup(vs.Group); g != nil {
			for _, e := range g.Entries {
				if e.First.IsValid() {
					addrs = append(addrs, e.First)
				}
			}
		}
		for _, a := range addrs {
			if a.Is6() != (f == "inet6") {
				v.errorf(m.pos("ip_family", vs.Pos), "%s: ip_family %s, but %s is %s", label, f, a, family(a))
				break
			}
		}
	}
	if vs.Protocol != "" && !slices.Contains([]string{"TCP", "UDP", "SCTP"}, vs.Protocol) && !m.isBad("protocol") {
		v.errorf(m.pos("protocol", vs.Pos), "protocol: expected TCP, UDP or SCTP, got %q", vs.Protocol)
	}
	if vs.LVSSched != "" && !slices.Contains(Schedulers, vs.LVSSched) && !m.isBad("lvs_sched") {
		v.errorf(m.pos("lvs_sched", vs.Pos), "lvs_sched: unknown scheduler %q", vs.LVSSched)
	}
	validMethod := func(s string) bool { return s == "" || s == MethodNAT || s == MethodDR || s == MethodTUN }
	if !validMethod(vs.LVSMethod) && !m.isBad("lvs_method") {
		v.errorf(m.pos("lvs_method", vs.Pos), "lvs_method: expected NAT, DR or TUN, got %q", vs.LVSMethod)
	}
	if s := vs.SorryServer; s != nil && vs.IP.IsValid() && s.IP.Is6() != vs.IP.Is6() {
		v.errorf(m.pos("sorry_server", vs.Pos), "%s: sorry_server %s is %s but the virtual server is %s", label, s.IP, family(s.IP), family(vs.IP))
	}
	seen := map[netip.AddrPort]Pos{}
	for i := range vs.RealServers {
		rs := &vs.RealServers[i]
		rl := fmt.Sprintf("real_server %s %d", rs.IP, rs.Port)
		method := rs.LVSMethod
		if method == "" {
			method = vs.LVSMethod
		}
		if !validMethod(rs.LVSMethod) {
			v.errorf(rs.meta.pos("lvs_method", rs.Pos), "lvs_method: expected NAT, DR or TUN, got %q", rs.LVSMethod)
		}
		if vs.IP.IsValid() && rs.IP.Is6() != vs.IP.Is6() && method != MethodTUN {
			v.errorf(rs.Pos, "%s: %s is %s but the virtual server is %s (only TUN may mix families)", label, rl, family(rs.IP), family(vs.IP))
		}
		ap := netip.AddrPortFrom(rs.IP, uint16(rs.Port))
		if p, dup := seen[ap]; dup {
			v.errorf(rs.Pos, "%s: %s is already defined at %s", label, rl, p)
		}
		seen[ap] = rs.Pos
		if rs.Weight < 0 {
			v.errorf(rs.meta.pos("weight", rs.Pos), "%s: weight: must not be negative, got %d", rl, rs.Weight)
		}
		port := func(kind string, p Pos, cc *CheckCommon) {
			if cc.ConnectPort == 0 && rs.Port == 0 {
				v.errorf(p, "%s: %s: no port to connect to: give connect_port or a port to the real_server", rl, kind)
			}
		}
		for _, ch := range rs.TCPCheck {
			port("TCP_CHECK", ch.Pos, &ch.CheckCommon)
		}
		for _, h := range []struct {
			kind string
			list []HTTPCheck
		}{{"HTTP_GET", rs.HTTPGet}, {"SSL_GET", rs.SSLGet}} {
			for _, ch := range h.list {
				port(h.kind, ch.Pos, &ch.CheckCommon)
				if ch.Password != "" && ch.User == "" {
					v.errorf(ch.Pos, "%s: %s: a password is given but no user", rl, h.kind)
				}
			}
		}
		for _, ch := range rs.AMQPCheck {
			port("AMQP_CHECK", ch.Pos, &ch.CheckCommon)
			if ch.Password != "" && ch.User == "" {
				v.errorf(ch.Pos, "%s: AMQP_CHECK: a password is given but no user", rl)
			}
		}
		for _, ch := range rs.MiscCheck {
			if ch.MiscPath == nil && !ch.meta.isBad("misc_path") {
				v.errorf(ch.Pos, "%s: MISC_CHECK: no misc_path given", rl)
			}
		}
	}
}
