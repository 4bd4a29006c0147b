package config

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel causes that an [*Error] may wrap; test for them with errors.Is.
var (
	// ErrIncludeCycle: a file includes itself, directly or through others.
	ErrIncludeCycle = errors.New("config: include cycle")
	// ErrIncludeDepth: includes are nested deeper than [MaxIncludeDepth],
	// or the configuration has more than [MaxIncludes] include lines and
	// included files in all.
	ErrIncludeDepth = errors.New("config: too many or too deeply nested includes")
)

// Error is one problem in a configuration file, at a line of it. It prints
// as "file:line: msg". Msg says what was expected and what was found; it
// never contains a secret (auth_pass, AMQP_CHECK password).
type Error struct {
	File string
	Line int
	Msg  string
	// Err is the underlying cause when there is one (a file system error,
	// [ErrIncludeCycle], [ErrIncludeDepth]); nil otherwise.
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// ErrorList is every [*Error] found in one parse, in file order. Parse,
// Load, ParseFS and Validate return one (never an empty one) as their
// error; errors.As(err, &list) recovers it, and errors.As(err, &e) with
// e an *Error finds the first.
type ErrorList []*Error

// Error prints one error a line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the errors of the list, so that errors.Is and errors.As
// look into each of them.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// err returns l as an error, or nil when it is empty.
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// NoteKind says what a [Note] is about.
type NoteKind int

// Kinds of notes.
const (
	// NoteUnknown: a misspelt keyword whose value is the one in effect
	// anyway ("protocal TCP"); it was ignored. Other unknown keywords are
	// errors.
	NoteUnknown NoteKind = iota + 1
	// NoteIgnored: a keyword keepalived knows and vipd ignores because it
	// cannot change failover (mail, SNMP, process tuning; see [Keywords]).
	NoteIgnored
	// NoteNotImplemented: a keepalived form vipd accepts without doing
	// what it asks (a script user's supplementary groups).
	NoteNotImplemented
	// NoteUndefined: a reference to something that is not defined, such as a
	// track_script naming no vrrp_script.
	NoteUndefined
	// NoteDeprecated: an old keyword or form that still works.
	NoteDeprecated
	// NoteNoEffect: a setting that has no effect where it stands, or is
	// replaced by a later one.
	NoteNoEffect
	// NoteCompat: vipd applies a rule keepalived also applies, or differs from
	// keepalived, in a way the reader should know about.
	NoteCompat
)

func (k NoteKind) String() string {
	switch k {
	case NoteUnknown:
		return "unknown keyword"
	case NoteIgnored:
		return "ignored"
	case NoteNotImplemented:
		return "not implemented"
	case NoteUndefined:
		return "undefined reference"
	case NoteDeprecated:
		return "deprecated"
	case NoteNoEffect:
		return "no effect"
	case NoteCompat:
		return "compatibility"
	}
	return fmt.Sprintf("NoteKind(%d)", int(k))
}

// Note is a warning about a configuration that is still usable: what was
// found at File:Line and what follows from it. It prints as
// "file:line: msg".
type Note struct {
	File    string
	Line    int
	Kind    NoteKind
	Keyword string // the keyword the note is about
	Msg     string // what was found, and the consequence
}

func (n Note) String() string { return fmt.Sprintf("%s:%d: %s", n.File, n.Line, n.Msg) }
