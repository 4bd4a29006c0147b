package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Forwarding methods of IPVS (lvs_method, lb_kind).
const (
	MethodNAT = "NAT"
	MethodDR  = "DR"
	MethodTUN = "TUN"
)

// Schedulers keepalived accepts for lvs_sched (lb_algo).
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos"}

// VirtualServer is a virtual_server block: "virtual_server IP [PORT]",
// "virtual_server fwmark N" or "virtual_server group NAME". Exactly one of
// IP, Fwmark and Group is set. After Parse every field holds the value in
// effect, and the real servers and their checkers have inherited the
// virtual server's defaults.
type VirtualServer struct {
	Pos Pos `json:"-"`

	IP     netip.Addr `json:"ip,omitzero"`
	Port   int        `json:"port,omitempty"`
	Fwmark uint32     `json:"fwmark,omitempty"`
	Group  string     `json:"group,omitempty"`

	DelayLoop Duration `json:"delay_loop"` // default 60s
	// LVSSched is the scheduler ("lvs_sched", old name "lb_algo"), default
	// wlc.
	LVSSched string `json:"lvs_sched"`
	// LVSMethod is NAT, DR or TUN ("lvs_method", old name "lb_kind"),
	// default NAT.
	LVSMethod string `json:"lvs_method"`
	// PersistenceTimeout: 0 is no persistence; "persistence_timeout" alone
	// is 360s.
	PersistenceTimeout Duration `json:"persistence_timeout"`
	// PersistenceGranularity is an IPv4 netmask or an IPv6 prefix length,
	// as written.
	PersistenceGranularity string `json:"persistence_granularity,omitempty"`
	// Protocol is TCP, UDP or SCTP. vipd's default is TCP; keepalived's is
	// UDP (a note says so when the protocol is not set).
	Protocol         string      `json:"protocol"`
	SorryServer      *ServerAddr `json:"sorry_server,omitempty"`
	InhibitOnFailure bool        `json:"inhibit_on_failure"`
	// Virtualhost is the default Host header (and TLS server name) of the
	// HTTP_GET and SSL_GET checks of the real servers; after Parse the
	// checks hold the value in effect.
	Virtualhost string `json:"virtualhost,omitempty"`
	// Weight is the default weight of the real servers (1..65535, default
	// 1); after Parse the real servers hold the value in effect.
	Weight int `json:"weight,omitempty"`
	// Alpha is the default of the checkers' alpha.
	Alpha bool `json:"alpha,omitempty"`
	// IPFamily is ip_family: "inet" or "inet6", the family of a
	// firewall-mark service (and of a group's fwmark entries without their
	// own); empty: from the real servers. Addresses of the service must be
	// of this family.
	IPFamily string `json:"ip_family,omitempty"`

	// Defaults for the real servers' checkers, shown when set here.
	ConnectTimeout   Duration `json:"connect_timeout,omitempty"`
	Retry            int      `json:"retry,omitempty"`
	DelayBeforeRetry Duration `json:"delay_before_retry,omitempty"`

	RealServers []RealServer `json:"real_server"`

	meta *meta
}

// ServerAddr is an address and port, as sorry_server has them.
type ServerAddr struct {
	IP   netip.Addr `json:"ip"`
	Port int        `json:"port,omitempty"`
}

// DefaultVirtualServer returns a virtual_server with keepalived's defaults
// (and TCP, vipd's default protocol).
func DefaultVirtualServer() VirtualServer {
	return VirtualServer{
		DelayLoop: Duration(DefaultDelayLoop),
		LVSSched:  DefaultScheduler,
		LVSMethod: MethodNAT,
		Protocol:  "TCP",
	}
}

// RealServer is a real_server block: "real_server IP [PORT]".
type RealServer struct {
	Pos Pos `json:"-"`

	IP   netip.Addr `json:"ip"`
	Port int        `json:"port,omitempty"`
	// Weight is the IPVS weight, default 1.
	Weight int `json:"weight"`
	// LVSMethod defaults to the virtual server's.
	LVSMethod string `json:"lvs_method"`
	// InhibitOnFailure: on failure set the weight to 0 instead of removing
	// the real server; defaults to the virtual server's.
	InhibitOnFailure bool    `json:"inhibit_on_failure"`
	NotifyUp         *Script `json:"notify_up,omitempty"`
	NotifyDown       *Script `json:"notify_down,omitempty"`
	// Virtualhost is the default Host header (and TLS server name) of this
	// real server's HTTP_GET and SSL_GET checks, before the virtual
	// server's.
	Virtualhost string `json:"virtualhost,omitempty"`
	// Alpha is the default of this real server's checkers' alpha, before
	// the virtual server's.
	Alpha bool `json:"alpha,omitempty"`

	// Defaults for this real server's checkers, shown when set here.
	DelayLoop        Duration `json:"delay_loop,omitempty"`
	ConnectTimeout   Duration `json:"connect_timeout,omitempty"`
	Retry            int      `json:"retry,omitempty"`
	DelayBeforeRetry Duration `json:"delay_before_retry,omitempty"`

	TCPCheck  []TCPCheck  `json:"TCP_CHECK,omitempty"`
	HTTPGet   []HTTPCheck `json:"HTTP_GET,omitempty"`
	SSLGet    []HTTPCheck `json:"SSL_GET,omitempty"`
	MiscCheck []MiscCheck `json:"MISC_CHECK,omitempty"`
	// AMQPCheck is vipd's own checker (keepalived has none): an AMQP
	// handshake with the real server.
	AMQPCheck []AMQPCheck `json:"AMQP_CHECK,omitempty"`

	meta *meta
}

// DefaultRealServer returns a real_server with keepalived's defaults.
func DefaultRealServer() RealServer {
	return RealServer{Weight: 1}
}

// VirtualServerGroup is a virtual_server_group block: lines of
// "ADDR|RANGE [PORT]" and "fwmark N [inet|inet6]".
type VirtualServerGroup struct {
	Pos     Pos        `json:"-"`
	Name    string     `json:"name"`
	Entries []VSGEntry `json:"entries"`
}

// VSGEntry is one line of a virtual_server_group: an address range
// (First..Last, equal for a single address) with an optional port, or a
// firewall mark with an optional family ("inet" or "inet6").
type VSGEntry struct {
	First  netip.Addr `json:"first,omitzero"`
	Last   netip.Addr `json:"last,omitzero"`
	Port   int        `json:"port,omitempty"`
	Fwmark uint32     `json:"fwmark,omitempty"`
	Family string     `json:"family,omitempty"`
}

func (d *decoder) virtualServer(s *stmt) (VirtualServer, bool) {
	vs := DefaultVirtualServer()
	vs.Pos, vs.meta = s.pos(), newMeta()
	if !d.nargs(s, 1, 2) {
		return vs, false
	}
	a0 := s.args[0]
	switch a0.val {
	case "fwmark", "group":
		if len(s.args) != 2 {
			d.errorf(s, a0.line, "virtual_server %s: expected a %s after it", a0.val, map[string]string{"fwmark": "mark number", "group": "group name"}[a0.val])
			return vs, false
		}
		if a0.val == "group" {
			vs.Group = s.args[1].val
			break
		}
		v, err := strconv.ParseUint(s.args[1].val, 10, 32)
		if err != nil || v == 0 {
			d.errorf(s, s.args[1].line, "virtual_server fwmark: expected an integer 1..%d, got %q", uint32(math.MaxUint32), s.args[1].val)
			return vs, false
		}
		vs.Fwmark = uint32(v)
	default:
		ip, ok := d.addrVal(s, a0)
		if !ok {
			return vs, false
		}
		vs.IP = ip
		if len(s.args) == 2 {
			if vs.Port, ok = d.portVal(s, s.args[1]); !ok {
				return vs, false
			}
		}
	}
	d.walk("virtual_server", s, d.vsKeywords(&vs), vs.meta, func() any { return &vs })
	return vs, true
}

func (d *decoder) vsKeywords(vs *VirtualServer) keywords {
	return keywords{
		"delay_loop": value(func(s *stmt) {
			if v, ok := d.secondsArg(s, time.Millisecond, 24*time.Hour); ok {
				vs.DelayLoop = v
			}
		}),
		"lvs_sched": value(d.schedHandler(vs)),
		"lb_algo":   value(d.schedHandler(vs)),
		"lvs_method": value(func(s *stmt) {
			if v, ok := d.methodArg(s); ok {
				vs.LVSMethod = v
			}
		}),
		"lb_kind": value(func(s *stmt) {
			if v, ok := d.methodArg(s); ok {
				vs.LVSMethod = v
			}
		}),
		"persistence_timeout": value(func(s *stmt) {
			if len(s.args) == 0 {
				vs.PersistenceTimeout = Duration(DefaultPersistenceTimeout)
				return
			}
			if v, ok := d.wholeSecondsArg(s, 1, 86400*31); ok {
				vs.PersistenceTimeout = v
			}
		}),
		"persistence_granularity": value(func(s *stmt) {
			v, ok := d.strArg(s)
			if !ok {
				return
			}
			if a, err := netip.ParseAddr(v); err == nil && a.Is4() {
				vs.PersistenceGranularity = v
				return
			}
			if n, ok := parseInt(v); ok && n >= 1 && n <= 128 {
				vs.PersistenceGranularity = v
				return
			}
			d.errorf(s, s.args[0].line, "persistence_granularity: expected an IPv4 netmask or an IPv6 prefix length 1..128, got %q", v)
		}),
		"protocol": value(func(s *stmt) {
			v, ok := d.strArg(s)
			if !ok {
				return
			}
			switch u := strings.ToUpper(v); u {
			case "TCP", "UDP", "SCTP":
				vs.Protocol = u
			default:
				d.errorf(s, s.args[0].line, "protocol: expected TCP, UDP or SCTP, got %q", v)
			}
		}),
		"sorry_server": value(func(s *stmt) {
			if !d.nargs(s, 1, 2) {
				return
			}
			ip, ok := d.addrVal(s, s.args[0])
			if !ok {
				return
			}
			ss := &ServerAddr{IP: ip}
			if len(s.args) == 2 && s.args[1].val != "0" {
				if ss.Port, ok = d.portVal(s, s.args[1]); !ok {
					return
				}
			}
			vs.SorryServer = ss
		}),
		"inhibit_on_failure": value(func(s *stmt) {
			if v, ok := d.boolArg(s); ok {
				vs.InhibitOnFailure = v
			}
		}),
		"connect_timeout":    value(d.timeoutHandler(&vs.ConnectTimeout)),
		"retry":              value(d.retryHandler(&vs.Retry)),
		"delay_before_retry": value(d.delayHandler(&vs.DelayBeforeRetry)),
		"virtualhost":        value(d.hostHandler(&vs.Virtualhost)),
		"alpha":              value(d.boolHandler(&vs.Alpha)),
		"ip_family": value(func(s *stmt) {
			v, ok := d.strArg(s)
			if !ok {
				return
			}
			if v != "inet" && v != "inet6" {
				d.errorf(s, s.args[0].line, "ip_family: expected inet or inet6, got %q", v)
				return
			}
			vs.IPFamily = v
		}),
		"weight": value(func(s *stmt) {
			if v, ok := d.intArg(s, 1, 65535); ok {
				vs.Weight = v
			}
		}),
		"real_server": block(func(s *stmt) {
			if rs, ok := d.realServer(s); ok {
				vs.RealServers = append(vs.RealServers, rs)
			}
		}),
	}
}

func (d *decoder) schedHandler(vs *VirtualServer) func(*stmt) {
	return func(s *stmt) {
		v, ok := d.strArg(s)
		if !ok {
			return
		}
		for _, sc := range Schedulers {
			if v == sc {
				vs.LVSSched = v
				return
			}
		}
		d.errorf(s, s.args[0].line, "%s: expected one of %s, got %q", s.kw.val, strings.Join(Schedulers, "|"), v)
	}
}

func (d *decoder) methodArg(s *stmt) (string, bool) {
	if !d.nargs(s, 1, -1) {
		return "", false
	}
	v := s.args[0].val
	switch v {
	case MethodNAT, MethodDR:
		if len(s.args) > 1 {
			d.errorf(s, s.args[1].line, "%s: %s takes no options, got %q", s.kw.val, v, s.args[1].val)
			return "", false
		}
		return v, true
	case MethodTUN:
		if len(s.args) > 2 || (len(s.args) == 2 && s.args[1].val != "ipip") {
			d.errorf(s, s.args[1].line, "%s: TUN: tunnel options: not supported by vipd: its tunnels are ipip; give TUN alone or TUN ipip", s.kw.val)
			return "", false
		}
		return v, true
	}
	d.errorf(s, s.args[0].line, "%s: expected NAT, DR or TUN, got %q", s.kw.val, v)
	return "", false
}

func (d *decoder) timeoutHandler(p *Duration) func(*stmt) {
	return func(s *stmt) {
		if v, ok := d.secondsArg(s, time.Millisecond, time.Hour); ok {
			*p = v
		}
	}
}

func (d *decoder) delayHandler(p *Duration) func(*stmt) {
	return func(s *stmt) {
		if v, ok := d.secondsArg(s, 0, 24*time.Hour); ok {
			*p = v
		}
	}
}

func (d *decoder) retryHandler(p *int) func(*stmt) {
	return func(s *stmt) {
		if s.kw.val == "nb_get_retry" {
			d.note(s, NoteDeprecated, "nb_get_retry is the old name of retry; taken as retry (keepalived itself only knows it in HTTP_GET and SSL_GET)")
		}
		if v, ok := d.intArg(s, 0, 1<<20); ok {
			*p = v
		}
	}
}

func (d *decoder) realServer(s *stmt) (RealServer, bool) {
	rs := DefaultRealServer()
	rs.Pos, rs.meta = s.pos(), newMeta()
	if !d.nargs(s, 1, 2) {
		return rs, false
	}
	ip, ok := d.addrVal(s, s.args[0])
	if !ok {
		return rs, false
	}
	rs.IP = ip
	if len(s.args) == 2 {
		if rs.Port, ok = d.portVal(s, s.args[1]); !ok {
			return rs, false
		}
	}
	d.walk("real_server", s, d.rsKeywords(&rs), rs.meta, func() any { return &rs })
	return rs, true
}

func (d *decoder) rsKeywords(rs *RealServer) keywords {
	notify := func(p **Script) func(*stmt) {
		return func(s *stmt) {
			if v, ok := d.notifyArg(s); ok {
				*p = v
			}
		}
	}
	return keywords{
		"weight": value(func(s *stmt) {
			if v, ok := d.intArg(s, 0, math.MaxInt32); ok {
				rs.Weight = v
			}
		}),
		"lvs_method": value(func(s *stmt) {
			if v, ok := d.methodArg(s); ok {
				rs.LVSMethod = v
			}
		}),
		"inhibit_on_failure": value(func(s *stmt) {
			if v, ok := d.boolArg(s); ok {
				rs.InhibitOnFailure = v
			}
		}),
		"notify_up":   value(notify(&rs.NotifyUp)),
		"notify_down": value(notify(&rs.NotifyDown)),
		"virtualhost": value(d.hostHandler(&rs.Virtualhost)),
		"alpha":       value(d.boolHandler(&rs.Alpha)),
		"delay_loop": value(func(s *stmt) {
			if v, ok := d.secondsArg(s, time.Millisecond, 24*time.Hour); ok {
				rs.DelayLoop = v
			}
		}),
		"connect_timeout":    value(d.timeoutHandler(&rs.ConnectTimeout)),
		"retry":              value(d.retryHandler(&rs.Retry)),
		"delay_before_retry": value(d.delayHandler(&rs.DelayBeforeRetry)),
		"TCP_CHECK": block(func(s *stmt) {
			c := TCPCheck{Pos: s.pos(), CheckCommon: newCheckCommon()}
			d.checker("TCP_CHECK", s, d.checkKeywords(&c.CheckCommon, true), &c.CheckCommon, &c)
			rs.TCPCheck = append(rs.TCPCheck, c)
		}),
		"HTTP_GET": block(func(s *stmt) {
			rs.HTTPGet = append(rs.HTTPGet, d.httpCheck(s))
		}),
		"SSL_GET": block(func(s *stmt) {
			rs.SSLGet = append(rs.SSLGet, d.httpCheck(s))
		}),
		"MISC_CHECK": block(func(s *stmt) {
			c := MiscCheck{Pos: s.pos(), CheckCommon: newCheckCommon()}
			d.checker("MISC_CHECK", s, d.miscKeywords(&c), &c.CheckCommon, &c)
			rs.MiscCheck = append(rs.MiscCheck, c)
		}),
		"AMQP_CHECK": block(func(s *stmt) {
			c := AMQPCheck{Pos: s.pos(), CheckCommon: newCheckCommon(), VHost: "/"}
			d.checker("AMQP_CHECK", s, d.amqpKeywords(&c), &c.CheckCommon, &c)
			rs.AMQPCheck = append(rs.AMQPCheck, c)
		}),
	}
}

func (d *decoder) virtualServerGroup(s *stmt) (VirtualServerGroup, bool) {
	g := VirtualServerGroup{Pos: s.pos()}
	if !d.nargs(s, 1, 1) {
		return g, false
	}
	g.Name = s.args[0].val
	for _, e := range s.block {
		if e.hasBlock {
			d.errorf(e, e.kw.line, "virtual_server_group %s: an entry does not take a block", g.Name)
			continue
		}
		if ent, ok := d.vsgEntry(e); ok {
			g.Entries = append(g.Entries, ent)
		}
	}
	return g, true
}

func (d *decoder) vsgEntry(e *stmt) (VSGEntry, bool) {
	var ent VSGEntry
	if e.kw.val == "fwmark" {
		if len(e.args) < 1 || len(e.args) > 2 {
			d.errorf(e, e.kw.line, "virtual_server_group: fwmark: expected a mark and optionally inet or inet6")
			return ent, false
		}
		v, err := strconv.ParseUint(e.args[0].val, 10, 32)
		if err != nil || v == 0 {
			d.errorf(e, e.args[0].line, "virtual_server_group: fwmark: expected an integer 1..%d, got %q", uint32(math.MaxUint32), e.args[0].val)
			return ent, false
		}
		ent.Fwmark = uint32(v)
		if len(e.args) == 2 {
			if f := e.args[1].val; f != "inet" && f != "inet6" {
				d.errorf(e, e.args[1].line, "virtual_server_group: fwmark: expected inet or inet6 after the mark, got %q", f)
				return ent, false
			}
			ent.Family = e.args[1].val
		}
		return ent, true
	}
	first, last, err := parseRange(e.kw.val)
	if err != nil {
		d.errorf(e, e.kw.line, "virtual_server_group: expected ADDR, ADDR-LAST, ADDR-ADDR or ADDR/PREFIX, got %q: %v", e.kw.val, err)
		return ent, false
	}
	ent.First, ent.Last = first, last
	if len(e.args) > 1 {
		d.errorf(e, e.args[1].line, "virtual_server_group: expected an address range and optionally a port, got %d words", len(e.args)+1)
		return ent, false
	}
	if len(e.args) == 1 {
		p, ok := parseInt(e.args[0].val)
		if !ok || p < 0 || p > 65535 {
			d.errorf(e, e.args[0].line, "virtual_server_group: expected a port 0..65535, got %q", e.args[0].val)
			return ent, false
		}
		ent.Port = p
	}
	return ent, true
}

// parseRange parses the address forms of virtual_server_group:
// 192.168.200.1-10, 192.168.200.250-192.168.201.10, 192.168.202.8/29, or
// a single address (and the IPv6 equivalents, with a hexadecimal last
// group in the short form).
func parseRange(s string) (netip.Addr, netip.Addr, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Addr{}, netip.Addr{}, err
		}
		p = p.Masked()
		return p.Addr(), lastAddr(p), nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil || first.Zone() != "" {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("bad address %q", lo)
	}
	if !isRange {
		return first, first, nil
	}
	var last netip.Addr
	if a, err := netip.ParseAddr(hi); err == nil {
		last = a
	} else {
		// Only the last group (IPv4: decimal octet, IPv6: hex 16 bits).
		b := first.AsSlice()
		var v uint64
		if first.Is4() {
			v, err = strconv.ParseUint(hi, 10, 8)
			b[3] = byte(v)
		} else {
			v, err = strconv.ParseUint(hi, 16, 16)
			b[14], b[15] = byte(v>>8), byte(v)
		}
		if err != nil {
			return netip.Addr{}, netip.Addr{}, fmt.Errorf("bad end of range %q", hi)
		}
		last, _ = netip.AddrFromSlice(b)
	}
	if last.Is4() != first.Is4() || last.Less(first) {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("range end %s is before its start or of another family", last)
	}
	return first, last, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
