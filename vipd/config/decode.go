package config

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// decoder turns statement trees into typed blocks, collecting errors and
// notes.
type decoder struct {
	errs  []*Error
	notes []Note
	cur   *meta // the block being walked, for marking bad keywords
}

// meta records, for one block, where each keyword given in it was and the
// keywords whose values were rejected. Validate uses it to report at the
// right line and not to report twice.
type meta struct {
	lines map[string]Pos
	bad   map[string]bool
}

func newMeta() *meta { return &meta{lines: map[string]Pos{}, bad: map[string]bool{}} }

// pos returns where kw was given, or def when it was not given.
func (m *meta) pos(kw string, def Pos) Pos {
	if m != nil {
		if p, ok := m.lines[kw]; ok {
			return p
		}
	}
	return def
}

func (m *meta) has(kw string) bool {
	if m == nil {
		return false
	}
	_, ok := m.lines[kw]
	return ok
}

func (m *meta) isBad(kw string) bool { return m != nil && m.bad[kw] }

// aliases maps other names of a keyword to the name used in the structs'
// json tags.
var aliases = map[string]string{
	"lb_algo":      "lvs_sched",
	"lb_kind":      "lvs_method",
	"nb_get_retry": "retry",
	"lvs_id":       "router_id",
}

func canon(kw string) string {
	if c, ok := aliases[kw]; ok {
		return c
	}
	return kw
}

func (d *decoder) errorf(s *stmt, line int, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: s.file, Line: line, Msg: fmt.Sprintf(format, args...)})
	if d.cur != nil && s.kw.val != "" {
		d.cur.bad[canon(s.kw.val)] = true
	}
}

// errPos reports an error found after parsing, at a position.
func (d *decoder) errPos(p Pos, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: p.File, Line: p.Line, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) notePos(p Pos, kind NoteKind, kw, format string, args ...any) {
	d.notes = append(d.notes, Note{File: p.File, Line: p.Line, Kind: kind, Keyword: kw, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) note(s *stmt, kind NoteKind, format string, args ...any) {
	d.notePos(s.pos(), kind, s.kw.val, format, args...)
}

// handler decodes one keyword of a block.
type handler struct {
	fn    func(s *stmt)
	block bool // the keyword takes a { } block
}

type keywords map[string]handler

func value(fn func(*stmt)) handler { return handler{fn: fn} }
func block(fn func(*stmt)) handler { return handler{fn: fn, block: true} }

// walk decodes the statements of parent's block with h. kind names the
// block for the tables of ignored and not implemented keywords. m, when not
// nil, records keyword lines. cur returns the block's struct: after the
// walk its json form tells what a misspelt keyword's value stays at.
func (d *decoder) walk(kind string, parent *stmt, h keywords, m *meta, cur func() any) {
	saved := d.cur
	d.cur = m
	defer func() { d.cur = saved }()

	var unknown []*stmt
	for _, s := range parent.block {
		kw := s.kw.val
		if kw != "" && strings.ContainsRune("@$~", rune(kw[0])) {
			name := kw
			if i := strings.IndexByte(name, '='); i >= 0 {
				name = name[:i] + "=..." // a parameter's value may be a secret
			}
			d.errorf(s, s.kw.line, "%q: keepalived's conditional lines (@), parameters ($) and sequences (~) are not supported by vipd", name)
			continue
		}
		hd, ok := h[kw]
		if !ok {
			if !d.known(kind, s) {
				unknown = append(unknown, s)
			}
			continue
		}
		switch {
		case hd.block && !s.hasBlock:
			d.errorf(s, s.kw.line, "%s: expected a block { ... }", kw)
			continue
		case !hd.block && s.hasBlock:
			d.errorf(s, s.kw.line, "%s: does not take a block", kw)
			continue
		}
		if m != nil {
			c := canon(kw)
			if prev, seen := m.lines[c]; seen && !hd.block {
				d.note(s, NoteNoEffect, "%s given again; it replaces the value from %s", kw, prev)
			}
			m.lines[c] = s.pos()
		}
		hd.fn(s)
	}
	if len(unknown) == 0 {
		return
	}
	var fields map[string]json.RawMessage // the block as json, made once
	lookup := func(key string) (string, bool) {
		if cur == nil {
			return "", false
		}
		if fields == nil {
			fields = map[string]json.RawMessage{}
			if b, err := json.Marshal(cur()); err == nil {
				_ = json.Unmarshal(b, &fields)
			}
		}
		return jsonValue(fields[key])
	}
	for _, s := range unknown {
		d.unknown(kind, parent, s, h, m, lookup)
	}
}

// known reports keepalived keywords vipd does not implement: a note for
// those that cannot change failover, an error saying what to do for the
// others. It reports whether kw is one of them.
func (d *decoder) known(kind string, s *stmt) bool {
	kw := s.kw.val
	if why, ok := refusedKeywords[kind][kw]; ok {
		d.errorf(s, s.kw.line, "%s: not supported by vipd: %s", kw, why)
		return true
	}
	if why, ok := warnedKeywords[kind][kw]; ok {
		d.note(s, NoteIgnored, "%s: ignored; %s", kw, why)
		return true
	}
	return false
}

func (d *decoder) unknown(kind string, parent, s *stmt, h keywords, m *meta, lookup func(string) (string, bool)) {
	kw := s.kw.val
	where := "at the top level"
	if parent.kw.val != "" {
		where = "in " + parent.label()
	}
	var cands []string
	for _, m := range []map[string]string{warnedKeywords[kind], refusedKeywords[kind]} {
		for k := range m {
			cands = append(cands, k)
		}
	}
	for k := range h {
		cands = append(cands, k)
	}
	sug := suggest(kw, cands)
	if (kind == "authentication" || kind == "AMQP_CHECK" || kind == "HTTP_GET" || kind == "SSL") && sug == "" && len(keywordHomes()[kw]) == 0 {
		// A stray word in a block holding a secret may be the secret.
		d.errorf(s, s.kw.line, "unknown keyword %s (not shown: it may be a secret); remove it or fix its spelling", where)
		return
	}
	msg := fmt.Sprintf("unknown keyword %q %s", kw, where)
	if _, ok := h[sug]; ok && sug != "" && len(s.args) == 1 && !s.hasBlock {
		// A misspelling that asks for the value in effect anyway (the
		// seeds' "protocal TCP") changes nothing: a warning.
		if v, ok := lookup(canon(sug)); ok && v == s.args[0].val {
			d.note(s, NoteUnknown, "%s (did you mean %q?); ignored, %s, which is what this line asks for", msg, sug, stays(sug, m, lookup))
			return
		}
	}
	switch {
	case sug != "":
		msg += fmt.Sprintf(": did you mean %q?", sug)
		if _, ok := h[sug]; ok {
			if c := stays(sug, m, lookup); c != "" {
				msg += " (" + c + ")"
			}
		}
	default:
		if homes := keywordHomes()[kw]; len(homes) > 0 {
			msg += fmt.Sprintf(": it belongs in %s", strings.Join(homes, " or "))
		} else {
			msg += ": no such keyword; remove it or fix its spelling"
		}
	}
	d.errorf(s, s.kw.line, "%s", msg)
}

// stays says what the keyword kw keeps as value when a misspelling of it
// was ignored.
func stays(kw string, m *meta, lookup func(string) (string, bool)) string {
	c := canon(kw)
	if m.has(c) {
		return fmt.Sprintf("%s is set at %s", kw, m.lines[c])
	}
	if v, ok := lookup(c); ok {
		return fmt.Sprintf("%s stays %s, the default", kw, v)
	}
	return ""
}

// jsonValue formats a json string, number or boolean; it reports false
// for anything else, and for an empty string.
func jsonValue(raw json.RawMessage) (string, bool) {
	var x any
	if len(raw) == 0 || json.Unmarshal(raw, &x) != nil {
		return "", false
	}
	switch x := x.(type) {
	case string:
		if x == "" {
			return "", false
		}
		return x, true
	case float64, bool:
		return string(raw), true
	}
	return "", false
}

// blockKinds builds, for each kind of block, its keyword table on a
// throwaway target; keywordHomes uses them to tell where a keyword that
// is unknown in one block belongs.
func blockKinds() map[string]func(d *decoder) keywords {
	return map[string]func(d *decoder) keywords{
		"global_defs":     func(d *decoder) keywords { return d.globalKeywords(new(GlobalDefs)) },
		"vrrp_script":     func(d *decoder) keywords { return d.scriptKeywords(new(VRRPScript)) },
		"vrrp_instance":   func(d *decoder) keywords { return d.instanceKeywords(new(VRRPInstance)) },
		"vrrp_sync_group": func(d *decoder) keywords { return d.syncGroupKeywords(new(VRRPSyncGroup)) },
		"authentication":  func(d *decoder) keywords { return d.authKeywords(new(Authentication)) },
		"virtual_server":  func(d *decoder) keywords { return d.vsKeywords(new(VirtualServer)) },
		"real_server":     func(d *decoder) keywords { return d.rsKeywords(new(RealServer)) },
		"TCP_CHECK":       func(d *decoder) keywords { return d.checkKeywords(new(CheckCommon), true) },
		"HTTP_GET":        func(d *decoder) keywords { return d.httpKeywords(new(HTTPCheck)) },
		"url":             func(d *decoder) keywords { return d.urlKeywords(new(URL)) },
		"MISC_CHECK":      func(d *decoder) keywords { return d.miscKeywords(new(MiscCheck)) },
		"AMQP_CHECK":      func(d *decoder) keywords { return d.amqpKeywords(new(AMQPCheck)) },
		"SSL":             func(d *decoder) keywords { return d.sslKeywords(new(SSL)) },
		"top level":       func(d *decoder) keywords { return d.topKeywords(new(Config)) },
	}
}

var (
	homesOnce sync.Once
	homes     map[string][]string
)

// keywordHomes maps each keyword to the kinds of block it belongs in.
func keywordHomes() map[string][]string {
	homesOnce.Do(func() {
		h := map[string][]string{}
		d := &decoder{}
		for kind, build := range blockKinds() {
			if kind == "top level" {
				kind = "the top level"
			}
			for kw := range build(d) {
				h[kw] = append(h[kw], kind)
			}
		}
		for _, tab := range []map[string]map[string]string{warnedKeywords, refusedKeywords} {
			for kind, m := range tab {
				if kind == "top level" {
					kind = "the top level"
				}
				for kw := range m {
					if !slices.Contains(h[kw], kind) {
						h[kw] = append(h[kw], kind)
					}
				}
			}
		}
		for _, v := range h {
			slices.Sort(v)
		}
		homes = h
	})
	return homes
}

// Argument helpers. Each reports a bad argument as an error naming the
// keyword, what was expected and what was found, and returns ok=false.
// None of them is used for secrets, since they quote what they found.

// nargs checks that s has min..max arguments (max < 0: no upper bound).
func (d *decoder) nargs(s *stmt, min, max int) bool {
	n := len(s.args)
	if n >= min && (max < 0 || n <= max) {
		return true
	}
	var want string
	switch {
	case min == max && min == 0:
		want = "no argument"
	case min == max && min == 1:
		want = "one argument"
	case min == max:
		want = fmt.Sprintf("%d arguments", min)
	case max < 0:
		want = fmt.Sprintf("at least %d argument(s)", min)
	default:
		want = fmt.Sprintf("%d to %d arguments", min, max)
	}
	d.errorf(s, s.kw.line, "%s: expected %s, got %d", s.kw.val, want, n)
	return false
}

func (d *decoder) strArg(s *stmt) (string, bool) {
	if !d.nargs(s, 1, 1) {
		return "", false
	}
	return s.args[0].val, true
}

func (d *decoder) flag(s *stmt) bool { return d.nargs(s, 0, 0) }

func (d *decoder) intVal(s *stmt, t token, lo, hi int) (int, bool) {
	v, err := strconv.Atoi(t.val)
	if err != nil || v < lo || v > hi {
		d.errorf(s, t.line, "%s: expected an integer %d..%d, got %q", s.kw.val, lo, hi, t.val)
		return 0, false
	}
	return v, true
}

func (d *decoder) intArg(s *stmt, lo, hi int) (int, bool) {
	if !d.nargs(s, 1, 1) {
		return 0, false
	}
	return d.intVal(s, s.args[0], lo, hi)
}

// secondsVal parses a time in seconds, with an optional fraction.
func (d *decoder) secondsVal(s *stmt, t token, lo, hi time.Duration) (Duration, bool) {
	v, ok := parseSeconds(t.val)
	if !ok || v < lo || v > hi {
		d.errorf(s, t.line, "%s: expected a time in seconds %s..%s (e.g. 3 or 0.5), got %q",
			s.kw.val, seconds(lo), seconds(hi), t.val)
		return 0, false
	}
	return Duration(v), true
}

func (d *decoder) secondsArg(s *stmt, lo, hi time.Duration) (Duration, bool) {
	if !d.nargs(s, 1, 1) {
		return 0, false
	}
	return d.secondsVal(s, s.args[0], lo, hi)
}

// wholeSecondsArg parses a whole number of seconds.
func (d *decoder) wholeSecondsArg(s *stmt, lo, hi int) (Duration, bool) {
	if !d.nargs(s, 1, 1) {
		return 0, false
	}
	t := s.args[0]
	v, err := strconv.Atoi(t.val)
	if err != nil || v < lo || v > hi {
		d.errorf(s, t.line, "%s: expected a whole number of seconds %d..%d, got %q", s.kw.val, lo, hi, t.val)
		return 0, false
	}
	return Duration(time.Duration(v) * time.Second), true
}

// boolArg parses keepalived's optional <BOOL>: no argument means true.
func (d *decoder) boolArg(s *stmt) (bool, bool) {
	if !d.nargs(s, 0, 1) {
		return false, false
	}
	if len(s.args) == 0 {
		return true, true
	}
	switch strings.ToLower(s.args[0].val) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	d.errorf(s, s.args[0].line, "%s: expected on|off|true|false|yes|no, got %q", s.kw.val, s.args[0].val)
	return false, false
}

func (d *decoder) addrVal(s *stmt, t token) (netip.Addr, bool) {
	a, err := netip.ParseAddr(t.val)
	if err != nil || a.Zone() != "" {
		d.errorf(s, t.line, "%s: expected an IPv4 or IPv6 address, got %q", s.kw.val, t.val)
		return netip.Addr{}, false
	}
	return a, true
}

func (d *decoder) addrArg(s *stmt) (netip.Addr, bool) {
	if !d.nargs(s, 1, 1) {
		return netip.Addr{}, false
	}
	return d.addrVal(s, s.args[0])
}

func (d *decoder) portVal(s *stmt, t token) (int, bool) {
	v, err := strconv.Atoi(t.val)
	if err != nil || v < 1 || v > 65535 {
		d.errorf(s, t.line, "%s: expected a port 1..65535, got %q", s.kw.val, t.val)
		return 0, false
	}
	return v, true
}

func (d *decoder) portArg(s *stmt) (int, bool) {
	if !d.nargs(s, 1, 1) {
		return 0, false
	}
	return d.portVal(s, s.args[0])
}

// parseSeconds parses "3", "0.5" or ".25" as seconds, to the nanosecond.
func parseSeconds(s string) (time.Duration, bool) {
	ip, frac, _ := strings.Cut(s, ".")
	if (ip == "" && frac == "") || len(ip) > 9 || len(frac) > 9 || !digits(ip) || !digits(frac) {
		return 0, false
	}
	var v int64
	for _, c := range ip {
		v = v*10 + int64(c-'0')
	}
	v *= int64(time.Second)
	scale := int64(time.Second)
	for _, c := range frac {
		scale /= 10
		v += int64(c-'0') * scale
	}
	return time.Duration(v), true
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// seconds formats d as keepalived writes times: "1", "0.5".
func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

func parseInt(s string) (int, bool) {
	v, err := strconv.Atoi(s)
	return v, err == nil
}
