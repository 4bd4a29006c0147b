package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// VirtualIP is one line of virtual_ipaddress or virtual_ipaddress_excluded:
// "ADDR[/PREFIX] [dev IF] [label L] [brd ADDR|+|-] [scope S] ...".
type VirtualIP struct {
	Pos Pos `json:"-"` // the address's line
	// Address keeps the address as written, with its prefix length (/32 or
	// /128 when none was given); it is not masked.
	Address netip.Prefix `json:"address"`
	Dev     string       `json:"dev,omitempty"`
	Label   string       `json:"label,omitempty"`
	Brd     string       `json:"brd,omitempty"`
	Scope   string       `json:"scope,omitempty"`
	// NoTrack: the instance does not go to FAULT while Dev is down. As in
	// keepalived, an address on a device other than the instance's
	// interface is tracked (weight 0) unless no_track is given.
	NoTrack bool `json:"no_track,omitempty"`
	// Options holds the options vipd accepts with a warning, since they
	// do not change which address is served (home, mngtmpaddr,
	// preferred_lft), as written. Other options keepalived knows
	// (peer, -nodad, noprefixroute, autojoin, use_vmac, track_group) are
	// errors.
	Options []string `json:"options,omitempty"`
}

// UnicastPeer is one line of unicast_peer: "ADDR [min_ttl N] [max_ttl N]".
// Adverts from the peer whose TTL / hop limit lies outside
// MinTTL..MaxTTL are dropped.
type UnicastPeer struct {
	Address netip.Addr `json:"address"`
	MinTTL  int        `json:"min_ttl"` // default 0
	MaxTTL  int        `json:"max_ttl"` // default 255
}

// TrackInterface is one line of track_interface: "IF [weight N [reverse]]".
// With weight 0 the instance goes to FAULT while the interface is down;
// otherwise the weight is added to (positive, while up) or subtracted from
// (negative, while down) the priority, the other way round with Reverse.
type TrackInterface struct {
	Name    string `json:"name"`
	Weight  int    `json:"weight"`
	Reverse bool   `json:"reverse,omitempty"`
}

// TrackScript is one line of track_script: "NAME [weight N]
// [reverse|noreverse]". Weight and Reverse default to the vrrp_script's;
// after Parse they hold the values in effect.
type TrackScript struct {
	Name    string `json:"name"`
	Weight  int    `json:"weight"`
	Reverse bool   `json:"reverse,omitempty"`

	pos                   Pos
	weightSet, reverseSet bool
}

// Authentication is the authentication block of a version 2 instance.
type Authentication struct {
	// AuthType is "PASS" or "AH".
	AuthType string `json:"auth_type"`
	// AuthPass is the password; only its first 8 bytes go on the wire.
	AuthPass Secret `json:"auth_pass,omitempty"`
}

func (d *decoder) authKeywords(a *Authentication) keywords {
	return keywords{
		"auth_type": value(func(s *stmt) {
			v, ok := d.strArg(s)
			if !ok {
				return
			}
			switch v {
			case "PASS", "AH":
				a.AuthType = v
			default:
				d.errorf(s, s.args[0].line, "auth_type: expected PASS or AH, got %q", v)
			}
		}),
		"auth_pass": value(func(s *stmt) {
			// Never quote the argument: it is a secret.
			if len(s.args) != 1 {
				d.errorf(s, s.kw.line, "auth_pass: expected one argument (the password), got %d", len(s.args))
				return
			}
			a.AuthPass = Secret(s.args[0].val)
			if len(a.AuthPass) > 8 {
				d.note(s, NoteCompat, "auth_pass: longer than 8 characters; only the first 8 are used, as in keepalived")
			}
		}),
	}
}

// vipBlock decodes the lines of a virtual_ipaddress block.
func (d *decoder) vipBlock(s *stmt) []VirtualIP {
	if len(s.args) > 0 {
		d.errorf(s, s.kw.line, "%s: expected no argument before '{', got %d", s.kw.val, len(s.args))
	}
	var out []VirtualIP
	for _, e := range s.block {
		if e.hasBlock {
			d.errorf(e, e.kw.line, "%s: an address line does not take a block", s.kw.val)
			continue
		}
		if v, ok := d.vip(s.kw.val, e); ok {
			out = append(out, v)
		}
	}
	return out
}

func (d *decoder) vip(kw string, e *stmt) (VirtualIP, bool) {
	var v VirtualIP
	p, ok := parseAddrPrefix(e.kw.val)
	if !ok {
		d.errorf(e, e.kw.line, "%s: expected an address ADDR or ADDR/PREFIX, got %q", kw, e.kw.val)
		return v, false
	}
	v.Address = p
	v.Pos = e.pos()
	args := e.args
	var ignored []string
	for i := 0; i < len(args); i++ {
		opt := args[i].val
		needs := func(what string) (string, bool) {
			if i+1 >= len(args) {
				d.errorf(e, args[i].line, "%s: %s after %s: expected %s", kw, opt, e.kw.val, what)
				return "", false
			}
			i++
			return args[i].val, true
		}
		switch opt {
		case "dev", "label", "scope", "brd", "broadcast":
			arg, ok := needs("a value")
			if !ok {
				return v, false
			}
			switch opt {
			case "dev":
				v.Dev = arg
			case "label":
				v.Label = arg
			case "scope":
				switch arg {
				case "site", "link", "host", "nowhere", "global":
					v.Scope = arg
				default:
					d.errorf(e, args[i].line, "%s: scope: expected site|link|host|nowhere|global, got %q", kw, arg)
					return v, false
				}
			default:
				if a, err := netip.ParseAddr(arg); (err != nil || a.Is6() != p.Addr().Is6()) && arg != "+" && arg != "-" {
					d.errorf(e, args[i].line, "%s: brd: expected an address of the same family, + or -, got %q", kw, arg)
					return v, false
				}
				v.Brd = arg
			}
		case "no_track":
			v.NoTrack = true
		default:
			i, ok = d.vipOption(kw, e, args, i, &ignored)
			if !ok {
				return v, false
			}
		}
	}
	if len(ignored) > 0 {
		v.Options = ignored
		d.note(e, NoteIgnored, "%s: %s: option(s) %s ignored; %s",
			kw, e.kw.val, strings.Join(ignored, ", "), vipOptionWhy(ignored))
	}
	return v, true
}

// parseAddrPrefix parses ADDR or ADDR/PREFIX; a bare address gets the
// full-length prefix.
func parseAddrPrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p, err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// peerBlock decodes the lines of a unicast_peer block; ttl reports whether
// any line gave min_ttl or max_ttl.
func (d *decoder) peerBlock(s *stmt) (peers []UnicastPeer, ttl bool) {
	if len(s.args) > 0 {
		d.errorf(s, s.kw.line, "unicast_peer: expected no argument before '{', got %d", len(s.args))
	}
	for _, e := range s.block {
		a, err := netip.ParseAddr(e.kw.val)
		if err != nil || a.Zone() != "" || e.hasBlock {
			d.errorf(e, e.kw.line, "unicast_peer: expected an address, got %q", e.kw.val)
			continue
		}
		p := UnicastPeer{Address: a, MaxTTL: 255}
		ok := true
		for i := 0; i < len(e.args) && ok; i += 2 {
			name := e.args[i].val
			if (name != "min_ttl" && name != "max_ttl") || i+1 >= len(e.args) {
				d.errorf(e, e.args[i].line, "unicast_peer: expected min_ttl N or max_ttl N after %s, got %q", e.kw.val, name)
				ok = false
				break
			}
			var v int
			v, ok = d.intValNamed(e, e.args[i+1], "unicast_peer "+name, 0, 255)
			ttl = true
			if name == "min_ttl" {
				p.MinTTL = v
			} else {
				p.MaxTTL = v
			}
		}
		if ok {
			peers = append(peers, p)
		}
	}
	return peers, ttl
}

func (d *decoder) trackInterfaceBlock(s *stmt) []TrackInterface {
	if len(s.args) > 0 {
		d.errorf(s, s.kw.line, "track_interface: expected no argument before '{', got %d", len(s.args))
	}
	var out []TrackInterface
	for _, e := range s.block {
		t := TrackInterface{Name: e.kw.val}
		if d.trackWeight(e, "track_interface", &t.Weight, &t.Reverse, nil, nil) {
			out = append(out, t)
		}
	}
	return out
}

func (d *decoder) trackScriptBlock(s *stmt) []TrackScript {
	if len(s.args) > 0 {
		d.errorf(s, s.kw.line, "track_script: expected no argument before '{', got %d", len(s.args))
	}
	var out []TrackScript
	for _, e := range s.block {
		t := TrackScript{Name: e.kw.val, pos: e.pos()}
		if d.trackWeight(e, "track_script", &t.Weight, &t.Reverse, &t.weightSet, &t.reverseSet) {
			out = append(out, t)
		}
	}
	return out
}

// trackWeight decodes "[weight N] [reverse|noreverse]" after a tracked
// name.
func (d *decoder) trackWeight(e *stmt, kw string, w *int, rev, wSet, revSet *bool) bool {
	if e.hasBlock {
		d.errorf(e, e.kw.line, "%s: an entry does not take a block", kw)
		return false
	}
	for i := 0; i < len(e.args); i++ {
		switch a := e.args[i]; a.val {
		case "weight":
			if i+1 >= len(e.args) {
				d.errorf(e, a.line, "%s: weight after %s: expected an integer -253..253", kw, e.kw.val)
				return false
			}
			i++
			v, ok := d.intValNamed(e, e.args[i], kw+" weight", -253, 253)
			if !ok {
				return false
			}
			*w = v
			if wSet != nil {
				*wSet = true
			}
		case "reverse", "noreverse":
			*rev = a.val == "reverse"
			if revSet != nil {
				*revSet = true
			}
		default:
			d.errorf(e, a.line, "%s: expected weight N, reverse or noreverse after %s, got %q", kw, e.kw.val, a.val)
			return false
		}
	}
	return true
}

// intValNamed is intVal for values inside a block's entries, where the
// keyword of the statement is the entry itself.
func (d *decoder) intValNamed(e *stmt, t token, name string, lo, hi int) (int, bool) {
	v, ok := parseInt(t.val)
	if !ok || v < lo || v > hi {
		d.errorf(e, t.line, "%s: expected an integer %d..%d, got %q", name, lo, hi, t.val)
		return 0, false
	}
	return v, true
}

// vipOption decodes the option at args[i] of a virtual_ipaddress line
// (other than dev, label, brd and scope): a warned option is added to
// ignored, a refused or unknown one is an error. It returns the index of
// the option's last word.
func (d *decoder) vipOption(kw string, e *stmt, args []token, i int, ignored *[]string) (int, bool) {
	opt := args[i].val
	k := slices.IndexFunc(vipOptions, func(o vipOption) bool { return o.name == opt })
	if k < 0 {
		names := make([]string, 0, len(vipOptions)+5)
		for _, o := range vipOptions {
			names = append(names, o.name)
		}
		names = append(names, "dev", "label", "brd", "broadcast", "scope", "no_track")
		msg := fmt.Sprintf("%s: unknown option %q after %s", kw, opt, e.kw.val)
		if sug := suggest(opt, names); sug != "" {
			msg += fmt.Sprintf(": did you mean %q?", sug)
		} else {
			msg += ": expected dev, label, brd, scope or one of keepalived's address options"
		}
		d.errorf(e, args[i].line, "%s", msg)
		return i, false
	}
	o := vipOptions[k]
	text := opt
	if o.arg {
		if i+1 >= len(args) {
			d.errorf(e, args[i].line, "%s: %s after %s: expected a value", kw, opt, e.kw.val)
			return i, false
		}
		i++
		text += " " + args[i].val
	}
	if o.support == Refused {
		d.errorf(e, args[i].line, "%s: %s: option %s: not supported by vipd: %s", kw, e.kw.val, opt, o.why)
		return i, false
	}
	*ignored = append(*ignored, text)
	return i, true
}

// vipOptionWhy joins the reasons of the warned options in list.
func vipOptionWhy(list []string) string {
	var why []string
	for _, o := range vipOptions {
		for _, w := range list {
			if (w == o.name || strings.HasPrefix(w, o.name+" ")) && !slices.Contains(why, o.name+": "+o.why) {
				why = append(why, o.name+": "+o.why)
			}
		}
	}
	return strings.Join(why, "; ")
}
