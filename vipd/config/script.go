package config

import (
	"errors"
	"strings"
)

// Script is a program to run, as given to a script keyword (vrrp_script
// script, notify_master and the other notify keywords, misc_path,
// notify_up/notify_down). It is split into arguments without a shell, the
// way keepalived splits it: blanks separate arguments, single and double
// quotes group them, and backslash escapes (\n, \t, \xHH, \NNN, \cC, \C)
// are decoded. Run Argv directly, except where keepalived hands a script
// to /bin/sh (package script's Start says when).
type Script struct {
	// Raw is the command line as written, outer quotes removed.
	Raw string `json:"raw"`
	// Argv is Raw split into the program and its arguments.
	Argv []string `json:"argv"`
	// User and Group are who the script runs as (the optional words after
	// the script of a notify keyword); empty: the global script_user.
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
}

var (
	errUnterminatedQuote = errors.New("unterminated quote")
	errTrailingEscape    = errors.New(`a backslash ends the text with nothing to escape`)
)

// splitWords splits s into words at blanks outside quotes. Single and
// double quotes group blanks into a word and are removed. With escapes,
// backslash sequences are decoded; without, a backslash and the character
// after it are kept as they are. A backslash before a newline joins lines.
func splitWords(s string, escapes bool) ([]string, error) {
	var (
		words  []string
		b      strings.Builder
		inWord bool
		quote  byte
	)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errTrailingEscape
			}
			if quote == 0 && (s[i+1] == '\n' || (s[i+1] == '\r' && i+2 < len(s) && s[i+2] == '\n')) {
				if inWord {
					words = append(words, b.String())
					b.Reset()
					inWord = false
				}
				i += 2
				if s[i-1] == '\r' {
					i++
				}
				continue
			}
			inWord = true
			if !escapes {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
				i += 2
				continue
			}
			r, n := unescape(s[i+1:])
			b.WriteByte(r)
			i += 1 + n
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
			i++
		case c == '"' || c == '\'':
			quote = c
			inWord = true
			i++
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			if inWord {
				words = append(words, b.String())
				b.Reset()
				inWord = false
			}
			i++
		default:
			b.WriteByte(c)
			inWord = true
			i++
		}
	}
	if quote != 0 {
		return nil, errUnterminatedQuote
	}
	if inWord {
		words = append(words, b.String())
	}
	return words, nil
}

// unescape decodes the escape sequence that s starts with (s follows a
// backslash and is not empty). It returns the byte and how many bytes of s
// the sequence used.
func unescape(s string) (byte, int) {
	c := s[0]
	switch {
	case c == 'x' && len(s) > 1 && isHex(s[1]):
		v, n := byte(0), 1
		for ; n <= 2 && n < len(s) && isHex(s[n]); n++ {
			v = v<<4 | hexVal(s[n])
		}
		return v, n
	case c == 'c' && len(s) > 1:
		return s[1] & 0x1f, 2
	case c >= '0' && c <= '7':
		v, n := byte(0), 0
		for ; n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7'; n++ {
			v = v<<3 + (s[n] - '0')
		}
		return v, n
	}
	switch c {
	case 'a':
		return '\a', 1
	case 'b':
		return '\b', 1
	case 'E':
		return 0x1b, 1
	case 'f':
		return '\f', 1
	case 'n':
		return '\n', 1
	case 'r':
		return '\r', 1
	case 't':
		return '\t', 1
	case 'v':
		return '\v', 1
	}
	return c, 1
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// scriptArg decodes the arguments of a script keyword. The first word of
// the raw text is the command line; the words after it are returned in
// rest (a notify keyword's user and group).
func (d *decoder) scriptArg(s *stmt) (sc *Script, rest []string, ok bool) {
	if !d.nargs(s, 1, -1) {
		return nil, nil, false
	}
	first, last := s.args[0], s.args[len(s.args)-1]
	raw := string(s.src[first.off:last.end])
	slots, err := splitWords(raw, false)
	if err != nil || len(slots) == 0 {
		d.errorf(s, first.line, "%s: cannot read the command: %v", s.kw.val, errOrEmpty(err))
		return nil, nil, false
	}
	argv, err := splitWords(slots[0], true)
	if err != nil || len(argv) == 0 || argv[0] == "" {
		d.errorf(s, first.line, "%s: cannot split the command into arguments: %v", s.kw.val, errOrEmpty(err))
		return nil, nil, false
	}
	return &Script{Raw: slots[0], Argv: argv}, slots[1:], true
}

func errOrEmpty(err error) error {
	if err == nil {
		return errors.New("it is empty")
	}
	return err
}

// notifyArg decodes a notify keyword: a script, then optionally the user
// and group to run it as.
func (d *decoder) notifyArg(s *stmt) (*Script, bool) {
	sc, rest, ok := d.scriptArg(s)
	if !ok {
		return nil, false
	}
	if len(rest) > 2 {
		d.errorf(s, s.kw.line, "%s: expected a script and at most a user and a group, got %d more words; quote the script when it has arguments",
			s.kw.val, len(rest))
		return nil, false
	}
	if len(rest) > 0 {
		sc.User = rest[0]
	}
	if len(rest) > 1 {
		sc.Group = d.group(s, rest[1])
	}
	return sc, true
}

// commandArg decodes a keyword whose value is only a script (vrrp_script
// script, misc_path): as keepalived does, the words after the first are
// not part of the command, and a note says so.
func (d *decoder) commandArg(s *stmt) (*Script, bool) {
	sc, rest, ok := d.scriptArg(s)
	if ok && len(rest) > 0 {
		d.note(s, NoteNoEffect, "%s: only the first word is the command, as in keepalived; %d more word(s) ignored; quote the whole command line to pass arguments",
			s.kw.val, len(rest))
	}
	return sc, ok
}

// group strips the ':' keepalived allows before a group name (meaning: set
// the user's supplementary groups too), with a note.
func (d *decoder) group(s *stmt, g string) string {
	if rest, ok := strings.CutPrefix(g, ":"); ok {
		d.note(s, NoteNotImplemented, "%s: ':' before the group (set supplementary groups) is not implemented by vipd; the group is %q", s.kw.val, rest)
		return rest
	}
	return g
}
