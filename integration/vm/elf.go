package vm

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// libDirs are where the dynamic loader of a Debian amd64 system looks when
// it has no ld.so.cache, which is the case in the guest.
var libDirs = []string{
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
	"/lib64", "/usr/lib64", "/lib", "/usr/lib",
}

// sharedObjects returns the files a dynamically linked host executable needs
// besides itself, keyed by the path the guest must have them at: its ELF
// interpreter (PT_INTERP) and, recursively, its DT_NEEDED libraries, found
// the way the dynamic loader finds them (DT_RUNPATH or DT_RPATH with
// $ORIGIN, then the system directories). A static executable needs none.
func sharedObjects(exe string) (map[string]string, error) {
	out := map[string]string{}
	seen := map[string]bool{}
	var walk func(file string, top bool) error
	walk = func(file string, top bool) error {
		f, err := elf.Open(file)
		if err != nil {
			return fmt.Errorf("vm: %s: %w", file, err)
		}
		defer f.Close()
		if top {
			for _, p := range f.Progs {
				if p.Type != elf.PT_INTERP {
					continue
				}
				b := make([]byte, p.Filesz)
				if _, err := p.ReadAt(b, 0); err != nil {
					return fmt.Errorf("vm: %s: interpreter: %w", file, err)
				}
				interp := strings.TrimRight(string(b), "\x00")
				out[interp] = interp
			}
		}
		needed, err := f.ImportedLibraries()
		if err != nil {
			return fmt.Errorf("vm: %s: %w", file, err)
		}
		var search []string
		for _, tag := range []elf.DynTag{elf.DT_RUNPATH, elf.DT_RPATH} {
			vals, _ := f.DynString(tag)
			for _, v := range vals {
				for _, d := range strings.Split(v, ":") {
					d = strings.ReplaceAll(d, "$ORIGIN", filepath.Dir(file))
					d = strings.ReplaceAll(d, "${ORIGIN}", filepath.Dir(file))
					search = append(search, d)
				}
			}
		}
		search = append(search, libDirs...)
		for _, lib := range needed {
			if seen[lib] {
				continue
			}
			seen[lib] = true
			found := ""
			for _, d := range search {
				cand := filepath.Join(d, lib)
				if strings.Contains(lib, "/") {
					cand = lib
				}
				if sameArch(cand, f) {
					found = cand
					break
				}
			}
			if found == "" {
				return fmt.Errorf("vm: %s needs %s, which is in none of %s", file, lib, strings.Join(search, ", "))
			}
			out[found] = found
			if err := walk(found, false); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(exe, true); err != nil {
		return nil, err
	}
	return out, nil
}

// sameArch reports whether path is an ELF file for the machine and class of
// ref, as the loader skips libraries of another architecture.
func sameArch(path string, ref *elf.File) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Machine == ref.Machine && f.Class == ref.Class
}

// isStatic reports whether the executable at path has no ELF interpreter,
// i.e. runs without a dynamic loader and libraries.
func isStatic(path string) (bool, error) {
	f, err := elf.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// hostExecutable checks an entry of [Config.Binaries]: an absolute path to a
// regular file.
func hostExecutable(name string) (string, error) {
	if filepath.IsAbs(name) {
		fi, err := os.Stat(name)
		if err != nil {
			return "", fmt.Errorf("vm: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("vm: %s is not a regular file", name)
		}
		return name, nil
	}
	return "", fmt.Errorf("vm: binary %q: give an absolute host path", name)
}
