package vm

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// DefaultModules returns a fresh copy of the kernel modules a [Config] with
// nil Modules gets: IPVS with every scheduler Debian's kernel ships, veth,
// bridge and dummy interfaces. Their dependencies (nf_conntrack,
// nf_defrag_ipv4/6, libcrc32c, llc, stp, ...) and soft dependencies
// (crc32c_generic for libcrc32c) are added from the kernel's modules.dep and
// modules.softdep; modules built into the kernel are left out.
func DefaultModules() []string {
	return []string{
		"ip_vs",
		"ip_vs_rr", "ip_vs_wrr", "ip_vs_lc", "ip_vs_wlc", "ip_vs_lblc", "ip_vs_lblcr",
		"ip_vs_dh", "ip_vs_sh", "ip_vs_sed", "ip_vs_nq", "ip_vs_fo", "ip_vs_ovf", "ip_vs_mh",
		"nf_conntrack",
		"veth", "bridge", "dummy",
	}
}

// modName turns a module file name or a module name into the canonical
// module name: no directory, no .ko suffix (also compressed ones), dashes
// as underscores.
func modName(s string) string {
	s = path.Base(s)
	if i := strings.Index(s, ".ko"); i > 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

// depFile is the parsed modules.dep: module path (relative to the modules
// directory) to the paths of the modules it needs, and the order of lines.
type depFile struct {
	deps  map[string][]string
	order []string
}

// parseModulesDep reads depmod's modules.dep: "kernel/a.ko: kernel/b.ko
// kernel/c.ko" per line.
func parseModulesDep(r io.Reader) (depFile, error) {
	d := depFile{deps: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		mod, rest, ok := strings.Cut(line, ":")
		mod = strings.TrimSpace(mod)
		if !ok || mod == "" || strings.ContainsAny(mod, " \t") {
			return depFile{}, fmt.Errorf("vm: modules.dep line %d: %q is not \"module: deps\"", n, line)
		}
		if _, dup := d.deps[mod]; !dup {
			d.order = append(d.order, mod)
		}
		d.deps[mod] = strings.Fields(rest)
	}
	if err := sc.Err(); err != nil {
		return depFile{}, fmt.Errorf("vm: modules.dep: %w", err)
	}
	return d, nil
}

// aliasLine is one "alias PATTERN MODULE" line of modules.alias.
type aliasLine struct{ pattern, module string }

// parseModulesAlias reads modules.alias; other keywords are skipped.
func parseModulesAlias(r io.Reader) ([]aliasLine, error) {
	var out []aliasLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "alias" {
			out = append(out, aliasLine{pattern: f[1], module: modName(f[2])})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vm: modules.alias: %w", err)
	}
	return out, nil
}

// parseModulesSoftdep reads modules.softdep ("softdep MOD pre: a b post: c")
// and returns the "pre:" names per module. Words before any "pre:" or
// "post:" and the "post:" names are ignored: nothing here needs them.
func parseModulesSoftdep(r io.Reader) (map[string][]string, error) {
	out := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[0] != "softdep" {
			continue
		}
		mod := modName(f[1])
		pre := false
		for _, w := range f[2:] {
			switch w {
			case "pre:":
				pre = true
			case "post:":
				pre = false
			default:
				if pre {
					out[mod] = append(out[mod], w)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vm: modules.softdep: %w", err)
	}
	return out, nil
}

// parseModulesBuiltin reads modules.builtin (one "kernel/x/y.ko" per line)
// into a set of module names.
func parseModulesBuiltin(r io.Reader) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			out[modName(line)] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("vm: modules.builtin: %w", err)
	}
	return out, nil
}

// moduleDB is what the kernel's modules directory says about its modules.
type moduleDB struct {
	dir     string
	dep     depFile
	byName  map[string]string // module name -> path relative to dir
	alias   []aliasLine
	softPre map[string][]string
	builtin map[string]bool
}

func loadModuleDB(dir string) (*moduleDB, error) {
	db := &moduleDB{dir: dir, byName: map[string]string{}}
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, &MissingError{What: "kernel modules", Hint: "apt-get install linux-image-amd64", Err: err}
	}
	db.dep, err = parseModulesDep(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	for _, p := range db.dep.order {
		db.byName[modName(p)] = p
	}
	optional := func(name string, parse func(io.Reader) error) error {
		f, err := os.Open(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("vm: %w", err)
		}
		defer f.Close()
		return parse(f)
	}
	if err := optional("modules.alias", func(r io.Reader) (err error) {
		db.alias, err = parseModulesAlias(r)
		return err
	}); err != nil {
		return nil, err
	}
	if err := optional("modules.softdep", func(r io.Reader) (err error) {
		db.softPre, err = parseModulesSoftdep(r)
		return err
	}); err != nil {
		return nil, err
	}
	if err := optional("modules.builtin", func(r io.Reader) (err error) {
		db.builtin, err = parseModulesBuiltin(r)
		return err
	}); err != nil {
		return nil, err
	}
	return db, nil
}

// lookup finds the module files a name stands for: the module of that name,
// or else every module an alias pattern matching the name points at.
// builtin reports a name built into the kernel.
func (db *moduleDB) lookup(name string) (paths []string, builtin bool) {
	n := modName(name)
	if p, ok := db.byName[n]; ok {
		return []string{p}, false
	}
	if db.builtin[n] {
		return nil, true
	}
	for _, a := range db.alias {
		if ok, _ := path.Match(a.pattern, name); !ok {
			continue
		}
		if p, ok := db.byName[a.module]; ok && !slices.Contains(paths, p) {
			paths = append(paths, p)
		} else if db.builtin[a.module] {
			builtin = true
		}
	}
	sort.Strings(paths)
	return paths, builtin && len(paths) == 0
}

// loadItem is one module to load at boot, in order.
type loadItem struct {
	path     string // relative to the modules directory
	optional bool   // a soft dependency: a failure to load it is not fatal
}

// resolve returns the modules to load for names, dependencies first. Names
// built into the kernel are dropped; an unknown name is an error.
func (db *moduleDB) resolve(names []string) ([]loadItem, error) {
	var (
		out     []loadItem
		state   = map[string]int{} // 1 visiting, 2 done
		unknown []string
	)
	var visit func(p string, optional bool)
	visit = func(p string, optional bool) {
		switch state[p] {
		case 1:
			return // a cycle; depmod does not write them, but stay finite
		case 2:
			if !optional {
				markRequired(out, db.dep.deps, p)
			}
			return
		}
		state[p] = 1
		for _, soft := range db.softPre[modName(p)] {
			paths, _ := db.lookup(soft)
			for _, sp := range paths {
				visit(sp, true)
			}
		}
		for _, d := range db.dep.deps[p] {
			if _, known := db.dep.deps[d]; known {
				visit(d, optional)
			}
		}
		state[p] = 2
		out = append(out, loadItem{path: p, optional: optional})
	}
	for _, name := range names {
		paths, builtin := db.lookup(name)
		switch {
		case builtin:
		case len(paths) == 0:
			unknown = append(unknown, name)
		default:
			for _, p := range paths {
				visit(p, false)
			}
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("vm: no kernel module %s in %s", strings.Join(unknown, ", "), db.dir)
	}
	return out, nil
}

// filtered returns the lines of the modules directory's index files that
// concern the modules in set, so that modprobe in the guest (busybox's) and
// the kernel's module autoloader find exactly what the initramfs holds.
func (db *moduleDB) filtered(set map[string]bool) (dep, alias, softdep []byte) {
	var b strings.Builder
	for _, p := range db.dep.order {
		if set[p] {
			b.WriteString(p + ":")
			for _, d := range db.dep.deps[p] {
				b.WriteString(" " + d)
			}
			b.WriteByte('\n')
		}
	}
	dep = []byte(b.String())
	b.Reset()
	for _, a := range db.alias {
		if set[db.byName[a.module]] {
			b.WriteString("alias " + a.pattern + " " + a.module + "\n")
		}
	}
	alias = []byte(b.String())
	b.Reset()
	mods := make([]string, 0, len(db.softPre))
	for m := range db.softPre {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	for _, m := range mods {
		if set[db.byName[m]] {
			b.WriteString("softdep " + m + " pre: " + strings.Join(db.softPre[m], " ") + "\n")
		}
	}
	softdep = []byte(b.String())
	return dep, alias, softdep
}

// markRequired turns p and everything it depends on, already in out, from
// optional into required: a soft dependency that is also asked for outright.
func markRequired(out []loadItem, deps map[string][]string, p string) {
	need := map[string]bool{p: true}
	for _, d := range deps[p] {
		need[d] = true
	}
	for i := range out {
		if need[out[i].path] {
			out[i].optional = false
		}
	}
}
