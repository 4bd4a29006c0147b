package script

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrInsecure is wrapped by CheckSecure's errors.
var ErrInsecure = errors.New("script: unsafe script path")

// CheckSecure refuses a script that someone other than root could change:
// the path must be absolute, the file and every directory above it must be
// owned by root (uid 0) and not writable by group or others. Symbolic links
// are followed and their targets checked too. It is what keepalived's
// enable_script_security demands of scripts run as root.
func CheckSecure(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%w: %q is not an absolute path", ErrInsecure, path)
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInsecure, err)
	}
	for _, p := range uniq(path, real) {
		if err := checkChain(p); err != nil {
			return err
		}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInsecure, err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%w: %s is not an executable file", ErrInsecure, real)
	}
	return nil
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// checkChain checks p and its parent directories, without following p
// itself if it is a link (the link's own directory matters, its target is
// checked separately).
func checkChain(p string) error {
	for {
		fi, err := os.Lstat(p)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInsecure, err)
		}
		if err := checkOwner(p, fi); err != nil {
			return err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

func checkOwner(p string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil // a link's own mode means nothing; its directory is checked
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%w: cannot read the owner of %s", ErrInsecure, p)
	}
	if st.Uid != 0 {
		return fmt.Errorf("%w: %s belongs to uid %d, not root", ErrInsecure, p, st.Uid)
	}
	perm := fi.Mode().Perm()
	if perm&0o022 != 0 {
		// A sticky directory (like /tmp) still lets others add files, and
		// a script whose path runs through it can be swapped.
		return fmt.Errorf("%w: %s is writable by group or others (mode %v)", ErrInsecure, p, fi.Mode())
	}
	return nil
}
