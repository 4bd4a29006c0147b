package lvs

import (
	"cmp"
	"fmt"
	"net/netip"
	"strconv"

	"github.com/amqpha/amqpha/vipd/config"
)

// MaxGroupRange is the most addresses one address range of a
// virtual_server_group may expand to; each address is a kernel service.
const MaxGroupRange = 1 << 16

// HealthFunc reports the health of real server rs of virtual server vs.
// FromConfig calls it once per real server of each virtual server, on the
// caller's goroutine; it must not block.
type HealthFunc func(vs *config.VirtualServer, rs *config.RealServer) Status

// FromConfig returns the IPVS table that the virtual_server blocks of cfg
// describe, given the health of their real servers (health nil: all
// [Up]):
//
//   - a real server that is [Down] is left out, or kept with weight 0 when
//     its inhibit_on_failure is set; one in [Drain] has weight 0; one that
//     is [Up] has its configured weight, or the dynamic weight of its
//     [Status];
//   - the sorry_server is added, with weight 1 and the virtual server's
//     lvs_method, when no real server is up with a weight above 0
//     (keepalived's default quorum of 1); if it is also a real server, it
//     replaces it;
//   - "virtual_server group NAME" becomes one service per address of each
//     range (port from the entry) and one per fwmark entry;
//   - lvs_sched names the kernel scheduler as is; lvs_method NAT, DR, TUN
//     are [Masq], [Route], [Tunnel]; persistence_timeout and
//     persistence_granularity (an IPv4 netmask, or a prefix length) are
//     the service's persistence and netmask.
//
// A firewall-mark service takes the family of the group entry ("inet6"),
// else of its first real server that is not tunnelled, else of its first
// real or sorry server, else IPv4.
//
// Problems come back as errors, one each, naming the position in the
// file: a service or destination the kernel would not take is left out; a
// weight above [MaxWeight] is clamped; a persistence_granularity that does
// not fit the service's family is dropped (full mask). The table holds
// everything else and passes [Table.Validate]. cfg is not changed;
// FromConfig does not block (beyond health) and may be called from any
// goroutine.
func FromConfig(cfg *config.Config, health HealthFunc) (Table, []error) {
	t := Table{}
	var errs []error
	errorf := func(pos config.Pos, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %w", pos, invalidf(format, args...)))
	}
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		label := vsLabel(vs)
		dests := wantedDests(vs, health, func(format string, args ...any) { errorf(vs.Pos, label+": "+format, args...) })
		proto, err := protocolOf(vs)
		if err != nil {
			errorf(vs.Pos, "%s: %v", label, err)
			continue
		}
		base := Service{
			Protocol:    proto,
			Scheduler:   vs.LVSSched,
			Persistence: vs.PersistenceTimeout.Duration(),
		}
		svcs, ok := servicesOf(cfg, vs, base, errorf)
		if !ok {
			continue
		}
		for _, s := range svcs {
			if vs.PersistenceGranularity != "" && s.Persistence > 0 {
				m, err := granularity(vs.PersistenceGranularity, s.Key().Family)
				if err != nil {
					errorf(vs.Pos, "%s: %s: %v; a full mask is used", label, s.Key(), err)
				}
				s.Netmask = m
			}
			if err := s.Validate(); err != nil {
				errorf(vs.Pos, "%s: %v", label, err)
				continue
			}
			k := s.Key()
			if _, dup := t[k]; dup {
				errorf(vs.Pos, "%s: service %s is already defined by another virtual_server; this one is ignored", label, k)
				continue
			}
			st := ServiceState{Service: s, Destinations: make(map[netip.AddrPort]Destination, len(dests))}
			for _, d := range dests {
				if err := d.Validate(s); err != nil {
					errorf(vs.Pos, "%s: %v", label, err)
					continue
				}
				st.Destinations[d.Key()] = d
			}
			t[k] = st
		}
	}
	return t, errs
}

// protocolOf returns vs's protocol: TCP unless it says otherwise.
func protocolOf(vs *config.VirtualServer) (Protocol, error) {
	if vs.Protocol == "" {
		return TCP, nil
	}
	return ParseProtocol(vs.Protocol)
}

// servicesOf returns the kernel services virtual server vs stands for,
// with base's settings: one, or one per address and fwmark of its group
// (false when the group does not exist).
func servicesOf(cfg *config.Config, vs *config.VirtualServer, base Service, errorf func(config.Pos, string, ...any)) ([]Service, bool) {
	switch {
	case vs.Fwmark != 0:
		s := base
		s.FWMark, s.Protocol, s.Family = vs.Fwmark, 0, fwmarkFamily(vs, "")
		return []Service{s}, true
	case vs.Group != "":
		g := cfg.VirtualServerGroup(vs.Group)
		if g == nil {
			errorf(vs.Pos, "%s: no virtual_server_group %s", vsLabel(vs), vs.Group)
			return nil, false
		}
		return groupServices(g, vs, base, func(format string, args ...any) { errorf(g.Pos, format, args...) }), true
	}
	s := base
	s.Addr, s.Port = vs.IP, uint16(vs.Port)
	return []Service{s}, true
}

// ServiceKeys returns the keys of the kernel services that virtual server
// vs of cfg stands for in [FromConfig]'s table: one, or one per address
// and fwmark of its virtual_server_group (none when the group is missing
// or the protocol unknown).
func ServiceKeys(cfg *config.Config, vs *config.VirtualServer) []ServiceKey {
	proto, err := protocolOf(vs)
	if err != nil {
		return nil
	}
	svcs, _ := servicesOf(cfg, vs, Service{Protocol: proto}, func(config.Pos, string, ...any) {})
	keys := make([]ServiceKey, 0, len(svcs))
	for _, s := range svcs {
		keys = append(keys, s.normalized().Key())
	}
	return keys
}

// wantedDests returns the destinations of vs given the health of its real
// servers, with the sorry server when it is needed.
func wantedDests(vs *config.VirtualServer, health HealthFunc, errorf func(string, ...any)) []Destination {
	var (
		out  []Destination
		live int
	)
	for j := range vs.RealServers {
		rs := &vs.RealServers[j]
		var st Status
		if health != nil {
			st = health(vs, rs)
		}
		w := rs.Weight
		if st.WeightSet {
			w = st.Weight
		}
		if w > MaxWeight {
			errorf("real_server %s: weight %d is above %d; %d is used", netip.AddrPortFrom(rs.IP, uint16(rs.Port)), w, MaxWeight, MaxWeight)
			w = MaxWeight
		}
		w = max(w, 0)
		switch st.State {
		case Down:
			if !rs.InhibitOnFailure {
				continue
			}
			w = 0
		case Drain:
			w = 0
		case Up:
			live += w
		}
		fwd, err := ParseForward(cmp.Or(rs.LVSMethod, vs.LVSMethod, config.MethodNAT))
		if err != nil {
			errorf("real_server %s: %v", rs.IP, err)
			continue
		}
		out = append(out, Destination{Addr: rs.IP, Port: uint16(rs.Port), Weight: w, Forward: fwd})
	}
	if ss := vs.SorryServer; ss != nil && live == 0 {
		fwd, err := ParseForward(cmp.Or(vs.LVSMethod, config.MethodNAT))
		if err != nil {
			errorf("sorry_server %s: %v", ss.IP, err)
			return out
		}
		sorry := Destination{Addr: ss.IP, Port: uint16(ss.Port), Weight: 1, Forward: fwd}
		for i := range out {
			if out[i].Key() == sorry.Key() {
				out = append(out[:i], out[i+1:]...)
				break
			}
		}
		out = append(out, sorry)
	}
	return out
}

// groupServices expands a virtual_server_group for vs.
func groupServices(g *config.VirtualServerGroup, vs *config.VirtualServer, base Service, errorf func(string, ...any)) []Service {
	var out []Service
	for _, e := range g.Entries {
		if e.Fwmark != 0 {
			s := base
			s.FWMark, s.Protocol, s.Family = e.Fwmark, 0, fwmarkFamily(vs, e.Family)
			out = append(out, s)
			continue
		}
		n := 0
		for a := e.First; a.IsValid() && !e.Last.Less(a); a = a.Next() {
			if n++; n > MaxGroupRange {
				errorf("virtual_server_group %s: range %s-%s has more than %d addresses; the rest is ignored", g.Name, e.First, e.Last, MaxGroupRange)
				break
			}
			s := base
			s.Addr, s.Port = a, uint16(e.Port)
			out = append(out, s)
			if a == e.Last {
				break
			}
		}
	}
	return out
}

// fwmarkFamily returns the family of a firewall-mark service of vs;
// family is the entry's "inet" or "inet6", or empty. The entry's family
// wins, then the virtual server's ip_family, then its real servers'.
func fwmarkFamily(vs *config.VirtualServer, family string) Family {
	switch cmp.Or(family, vs.IPFamily) {
	case "inet":
		return IPv4
	case "inet6":
		return IPv6
	}
	for _, rs := range vs.RealServers {
		if cmp.Or(rs.LVSMethod, vs.LVSMethod) != config.MethodTUN {
			return FamilyOf(rs.IP)
		}
	}
	if len(vs.RealServers) > 0 {
		return FamilyOf(vs.RealServers[0].IP)
	}
	if vs.SorryServer != nil {
		return FamilyOf(vs.SorryServer.IP)
	}
	return IPv4
}

// granularity turns persistence_granularity into a netmask of family f:
// an IPv4 netmask as written, or a prefix length.
func granularity(v string, f Family) (netip.Addr, error) {
	if n, err := strconv.Atoi(v); err == nil {
		limit := 32
		if f == IPv6 {
			limit = 128
		}
		if n < 1 || n > limit {
			return netip.Addr{}, fmt.Errorf("persistence_granularity %s: expected a prefix length 1..%d", v, limit)
		}
		return PrefixMask(f, n), nil
	}
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is4() || f != IPv4 {
		return netip.Addr{}, fmt.Errorf("persistence_granularity %s: expected an IPv4 netmask or a prefix length for an %s service", v, f)
	}
	return a, nil
}

func vsLabel(vs *config.VirtualServer) string {
	switch {
	case vs.Group != "":
		return "virtual_server group " + vs.Group
	case vs.Fwmark != 0:
		return fmt.Sprintf("virtual_server fwmark %d", vs.Fwmark)
	}
	return fmt.Sprintf("virtual_server %s %d", vs.IP, vs.Port)
}
