package config

import "strings"

// The lexer turns a file into words, braces and ends of line, the way
// keepalived reads it:
//
//   - '#' and '!' start a comment to the end of the line anywhere outside
//     double quotes, even inside a word; "\#" and "\!" are literal.
//   - '{' and '}' outside double quotes are tokens of their own, even when
//     glued to a word ("monitor_nginx{").
//   - Double quotes group text with blanks into one word and are removed;
//     quoted and unquoted parts next to each other form one word.
//   - A backslash before any other character is kept with it, verbatim:
//     escapes are decoded only where a script is split into arguments.
//   - A backslash at the end of a line joins the next line to it.

type tokKind uint8

const (
	tWord tokKind = iota
	tOpen
	tClose
	tEOL
)

// token is one lexical element. off and end delimit its raw text in the
// file, so script keywords can split the raw text again.
type token struct {
	kind     tokKind
	val      string
	line     int
	off, end int
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// lex splits src into tokens. Problems are returned as errors naming file;
// their messages never quote the text involved, which may be a secret.
func lex(file string, src []byte) ([]token, []*Error) {
	var (
		toks []token
		errs []*Error
		line = 1
		n    = len(src)
	)
	eol := func() {
		if len(toks) > 0 && toks[len(toks)-1].kind != tEOL {
			toks = append(toks, token{kind: tEOL, line: line})
		}
	}
	for i := 0; i < n; {
		c := src[i]
		switch {
		case c == '\n':
			eol()
			line++
			i++
		case isBlank(c):
			i++
		case c == '#' || c == '!':
			for i < n && src[i] != '\n' {
				i++
			}
		case c == '{' || c == '}':
			k := tOpen
			if c == '}' {
				k = tClose
			}
			toks = append(toks, token{kind: k, val: string(c), line: line, off: i, end: i + 1})
			i++
		case c == '\\' && continuation(src, i) > 0:
			i += continuation(src, i)
			line++
		default:
			t, next, err := lexWord(src, i, line)
			if err != "" {
				errs = append(errs, &Error{File: file, Line: line, Msg: err})
			}
			if next == i { // cannot happen; guard against looping
				next++
			}
			toks = append(toks, t)
			i = next
		}
	}
	eol()
	return toks, errs
}

// continuation reports the length of a backslash-newline at src[i], or 0.
func continuation(src []byte, i int) int {
	if i+1 < len(src) && src[i+1] == '\n' {
		return 2
	}
	if i+2 < len(src) && src[i+1] == '\r' && src[i+2] == '\n' {
		return 3
	}
	return 0
}

// lexWord reads one word starting at src[i]. It returns the token, the
// offset after it and an error message ("" when none).
func lexWord(src []byte, i, line int) (token, int, string) {
	var (
		b       strings.Builder
		start   = i
		n       = len(src)
		inQuote bool
		errMsg  string
	)
loop:
	for i < n {
		c := src[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			i++
		case c == '\n':
			if inQuote {
				errMsg = "unterminated double-quoted string (a quote may not span lines)"
			}
			break loop
		case inQuote:
			if c == '\\' && i+1 < n && src[i+1] != '\n' {
				b.WriteByte(c)
				b.WriteByte(src[i+1])
				i += 2
				continue
			}
			b.WriteByte(c)
			i++
		case isBlank(c) || c == '{' || c == '}' || c == '#' || c == '!':
			break loop
		case c == '\\':
			if continuation(src, i) > 0 {
				break loop
			}
			if i+1 < n {
				next := src[i+1]
				if next != '#' && next != '!' {
					b.WriteByte(c)
				}
				b.WriteByte(next)
				i += 2
				continue
			}
			b.WriteByte(c)
			i++
		default:
			b.WriteByte(c)
			i++
		}
	}
	if inQuote && errMsg == "" {
		errMsg = "unterminated double-quoted string at the end of the file"
	}
	return token{kind: tWord, val: b.String(), line: line, off: start, end: i}, i, errMsg
}
