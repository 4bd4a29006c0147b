package config

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Limits that keep a hostile or broken file from exhausting the parser.
const (
	// MaxIncludeDepth is how deeply include may nest: the main file is at
	// depth 0, a file it includes at depth 1, and so on.
	MaxIncludeDepth = 8
	// MaxBlockDepth is how deeply { } blocks may nest.
	MaxBlockDepth = 32
	// MaxIncludes is how many include lines and included files, in all, a
	// configuration may have.
	MaxIncludes = 256
)

// stmt is one statement: a keyword, its arguments on the same line, and
// the block that follows it, if any.
type stmt struct {
	kw       token
	args     []token
	block    []*stmt
	hasBlock bool
	file     string
	src      []byte // the whole file, for re-splitting script arguments
}

func (s *stmt) pos() Pos { return Pos{File: s.file, Line: s.kw.line} }

// label names the statement for messages: the keyword and its first two
// arguments, e.g. "virtual_server 192.168.0.10 5672".
func (s *stmt) label() string {
	parts := []string{s.kw.val}
	for i, a := range s.args {
		if i == 2 {
			break
		}
		parts = append(parts, a.val)
	}
	return strings.Join(parts, " ")
}

// Load reads the configuration file at path, follows its include
// directives (relative patterns are taken from the directory of the file
// that holds them) and returns the configuration with its notes.
//
// When the file cannot be read, Load returns a nil *Config and the error
// from the file system. When the file has problems, it returns the
// configuration as far as it could be built, with its Notes, together with
// an [ErrorList]: such a configuration must not be run. Load may be called
// from any goroutine.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parse(osFS{}, path, data)
}

// Parse parses data as the file name; include directives are resolved
// relative to filepath.Dir(name) on the local file system. Results are as
// for [Load].
func Parse(name string, data []byte) (*Config, error) {
	return parse(osFS{}, name, data)
}

// ParseFS reads name from fsys and parses it; include patterns are
// resolved in fsys, relative to the directory of the including file, and
// absolute patterns relative to the root of fsys. Results are as for
// [Load].
func ParseFS(fsys fs.FS, name string) (*Config, error) {
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, err
	}
	return parse(ioFS{fsys}, name, data)
}

func parse(fsys fileSystem, name string, data []byte) (*Config, error) {
	l := &loader{fs: fsys, files: []string{name}, stack: []string{fsys.clean(name)}}
	root := &stmt{kw: token{val: "", line: 1}, file: name, hasBlock: true}
	root.block = l.parseFile(name, data, 0)
	d := &decoder{errs: l.errs, notes: l.notes}
	cfg := d.decode(root)
	cfg.Files = l.files
	d.finalize(cfg)
	v := validator{errs: d.errs}
	v.config(cfg)
	d.errs = v.errs

	d.errs = dedup(d.errs, func(e *Error) Note { return Note{File: e.File, Line: e.Line, Msg: e.Msg} })
	d.notes = dedup(d.notes, func(n Note) Note { return n })
	order := make(map[string]int, len(l.files))
	for i, f := range l.files {
		order[f] = i
	}
	slices.SortStableFunc(d.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(order[a.File], order[b.File]), cmp.Compare(a.Line, b.Line))
	})
	slices.SortStableFunc(d.notes, func(a, b Note) int {
		return cmp.Or(cmp.Compare(order[a.File], order[b.File]), cmp.Compare(a.Line, b.Line))
	})
	cfg.Notes = d.notes
	return cfg, ErrorList(d.errs).err()
}

// dedup drops repeats, as a file included twice reports its problems
// twice.
func dedup[T any](xs []T, key func(T) Note) []T {
	seen := make(map[Note]bool, len(xs))
	out := xs[:0]
	for _, x := range xs {
		if k := key(x); !seen[k] {
			seen[k] = true
			out = append(out, x)
		}
	}
	return out
}

// fileSystem is where included files come from: the local file system for
// Load and Parse, an fs.FS for ParseFS.
type fileSystem interface {
	readFile(name string) ([]byte, error)
	glob(pattern string) ([]string, error)
	isDir(name string) bool
	// resolve returns the pattern of an include found in file.
	resolve(file, pattern string) string
	clean(name string) string
}

type osFS struct{}

func (osFS) readFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (osFS) glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }
func (osFS) clean(name string) string              { return filepath.Clean(name) }
func (osFS) isDir(name string) bool {
	fi, err := os.Stat(name)
	return err == nil && fi.IsDir()
}
func (osFS) resolve(file, pattern string) string {
	if filepath.IsAbs(pattern) {
		return filepath.Clean(pattern)
	}
	return filepath.Join(filepath.Dir(file), pattern)
}

type ioFS struct{ fsys fs.FS }

func (f ioFS) readFile(name string) ([]byte, error)  { return fs.ReadFile(f.fsys, name) }
func (f ioFS) glob(pattern string) ([]string, error) { return fs.Glob(f.fsys, pattern) }
func (f ioFS) clean(name string) string              { return path.Clean(name) }
func (f ioFS) isDir(name string) bool {
	fi, err := fs.Stat(f.fsys, name)
	return err == nil && fi.IsDir()
}
func (f ioFS) resolve(file, pattern string) string {
	if strings.HasPrefix(pattern, "/") {
		p := path.Clean(strings.TrimLeft(pattern, "/"))
		if p == "" {
			return "."
		}
		return p
	}
	return path.Join(path.Dir(file), pattern)
}

// loader builds statement trees, following includes.
type loader struct {
	fs    fileSystem
	files []string // every file read, the main one first
	stack []string // the chain of files being included, cleaned
	count int      // include lines and included files so far
	over  bool     // MaxIncludes was exceeded and reported
	errs  []*Error
	notes []Note
}

func (l *loader) errorf(file string, line int, cause error, format string, args ...any) {
	l.errs = append(l.errs, &Error{File: file, Line: line, Msg: fmt.Sprintf(format, args...), Err: cause})
}

// parseFile lexes src and builds its statement tree; depth is its include
// depth.
func (l *loader) parseFile(name string, src []byte, depth int) []*stmt {
	toks, errs := lex(name, src)
	l.errs = append(l.errs, errs...)
	p := &treeParser{l: l, toks: toks, file: name, src: src, depth: depth}
	return p.list(0, nil)
}

type treeParser struct {
	l     *loader
	toks  []token
	i     int
	file  string
	src   []byte
	depth int
}

func (p *treeParser) peek() (token, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return token{}, false
}

// list reads statements up to the '}' closing open, or to the end of the
// file when open is nil.
func (p *treeParser) list(nest int, open *stmt) []*stmt {
	var out []*stmt
	for {
		t, ok := p.peek()
		if !ok {
			if open != nil {
				p.l.errorf(p.file, open.kw.line, nil, "%s: block has no closing '}'", open.kw.val)
			}
			return out
		}
		switch t.kind {
		case tEOL:
			p.i++
		case tClose:
			p.i++
			if open != nil {
				return out
			}
			p.l.errorf(p.file, t.line, nil, "unexpected '}' with no block open")
		case tOpen:
			p.i++
			p.l.errorf(p.file, t.line, nil, "unexpected '{': a block must follow a keyword")
			p.skipBlock()
		default:
			s := p.statement(nest)
			if isInclude(s.kw.val) {
				if s.hasBlock {
					p.l.errorf(p.file, s.kw.line, nil, "%s does not take a block", s.kw.val)
					continue
				}
				out = append(out, p.l.include(s, p.depth)...)
				continue
			}
			out = append(out, s)
		}
	}
}

// statement reads a keyword, its arguments and its block, if any. The
// opening brace may be on the keyword's line or on a following line.
func (p *treeParser) statement(nest int) *stmt {
	kw := p.toks[p.i]
	p.i++
	s := &stmt{kw: kw, file: p.file, src: p.src}
	for {
		t, ok := p.peek()
		if !ok || t.kind != tWord {
			break
		}
		s.args = append(s.args, t)
		p.i++
	}
	j := p.i
	for j < len(p.toks) && p.toks[j].kind == tEOL {
		j++
	}
	if j < len(p.toks) && p.toks[j].kind == tOpen {
		p.i = j + 1
		s.hasBlock = true
		if nest+1 > MaxBlockDepth {
			p.l.errorf(p.file, kw.line, nil, "%s: blocks nested more than %d deep", kw.val, MaxBlockDepth)
			p.skipBlock()
			return s
		}
		s.block = p.list(nest+1, s)
	}
	return s
}

// skipBlock skips to the '}' matching a '{' just read, without recursion.
func (p *treeParser) skipBlock() {
	level := 1
	for ; p.i < len(p.toks) && level > 0; p.i++ {
		switch p.toks[p.i].kind {
		case tOpen:
			level++
		case tClose:
			level--
		}
	}
}

func isInclude(kw string) bool {
	switch kw {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return true
	}
	return false
}

// include expands an include statement into the statements of the files
// its pattern matches, in lexical order.
func (l *loader) include(s *stmt, depth int) []*stmt {
	kw, line := s.kw.val, s.kw.line
	if len(s.args) != 1 {
		l.errorf(s.file, line, nil, "%s: expected one file name or pattern, got %d arguments", kw, len(s.args))
		return nil
	}
	arg := s.args[0].val
	if !l.budget(s, arg) {
		return nil
	}
	if depth+1 > MaxIncludeDepth {
		l.errorf(s.file, line, ErrIncludeDepth, "%s %q: includes nested more than %d deep", kw, arg, MaxIncludeDepth)
		return nil
	}
	pattern := l.fs.resolve(s.file, arg)
	matches, err := l.fs.glob(pattern)
	if err != nil {
		l.errorf(s.file, line, err, "%s %q: bad pattern: %v", kw, arg, err)
		return nil
	}
	if len(matches) == 0 {
		if kw == "include" || kw == "includer" {
			l.notes = append(l.notes, Note{File: s.file, Line: line, Kind: NoteNoEffect, Keyword: kw,
				Msg: fmt.Sprintf("%s %q: no file matches; nothing is included", kw, arg)})
		} else {
			l.errorf(s.file, line, fs.ErrNotExist, "%s %q: no file matches", kw, arg)
		}
		return nil
	}
	var out []*stmt
	for _, m := range matches {
		if l.fs.isDir(m) {
			l.notes = append(l.notes, Note{File: s.file, Line: line, Kind: NoteNoEffect, Keyword: kw,
				Msg: fmt.Sprintf("%s %q: %s is a directory; skipped", kw, arg, m)})
			continue
		}
		cm := l.fs.clean(m)
		if i := slices.Index(l.stack, cm); i >= 0 {
			chain := append(slices.Clone(l.stack[i:]), cm)
			l.errorf(s.file, line, ErrIncludeCycle, "%s %q: include cycle: %s", kw, arg, strings.Join(chain, " -> "))
			continue
		}
		if !l.budget(s, arg) {
			return out
		}
		data, err := l.fs.readFile(m)
		if err != nil {
			l.errorf(s.file, line, err, "%s %q: %v", kw, arg, unwrapPath(err))
			continue
		}
		if !slices.Contains(l.files, m) {
			l.files = append(l.files, m)
		}
		l.stack = append(l.stack, cm)
		out = append(out, l.parseFile(m, data, depth+1)...)
		l.stack = l.stack[:len(l.stack)-1]
	}
	return out
}

// budget counts an include line or an included file against MaxIncludes.
// Past it, it reports an error once and returns false.
func (l *loader) budget(s *stmt, arg string) bool {
	l.count++
	if l.count <= MaxIncludes {
		return true
	}
	if !l.over {
		l.over = true
		l.errorf(s.file, s.kw.line, ErrIncludeDepth, "%s %q: more than %d include lines and included files in all; this and later include lines are skipped",
			s.kw.val, arg, MaxIncludes)
	}
	return false
}

// unwrapPath shortens a *fs.PathError to "path: reason".
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}
