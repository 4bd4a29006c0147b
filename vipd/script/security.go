package script

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrInsecure is wrapped by CheckSecure's errors.
var ErrInsecure = errors.New("script: unsafe script path")

// ErrNotFound is wrapped by Resolve's errors for a program that does not
// exist, is not in PATH, or is not a file its user may execute.
var ErrNotFound = errors.New("script: program not found or not executable")

// CheckSecure refuses a script that someone other than root could change,
// by keepalived's rule (enable_script_security): the path must be
// absolute; the file, every directory above it and, for a symbolic link,
// its target and the target's directories must belong to root (uid 0); no
// file or directory on the way may be writable by others or by a group
// other than root's, except a directory with the sticky bit (like /tmp),
// where others may add files but not replace root's.
func CheckSecure(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%w: %q is not an absolute path", ErrInsecure, path)
	}
	canon, real, err := canonical(path)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInsecure, err)
	}
	for _, p := range uniq(canon, real) {
		if err := checkChain(p); err != nil {
			return err
		}
	}
	return nil
}

// canonical is path with its directories' links resolved, keeping the
// file's own name when that names the same file (some programs act on the
// name they were called by), as keepalived rewrites a script's path; real
// is the file itself, every link resolved.
func canonical(path string) (canon, real string, err error) {
	real, err = filepath.EvalSymlinks(path)
	if err != nil {
		return "", "", err
	}
	canon = real
	if filepath.Base(path) != filepath.Base(real) {
		named := filepath.Join(filepath.Dir(real), filepath.Base(path))
		a, errA := os.Stat(named)
		b, errB := os.Stat(real)
		if errA == nil && errB == nil && os.SameFile(a, b) {
			canon = named
		}
	}
	return canon, real, nil
}

func uniq(a, b string) []string {
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}

// checkChain checks p and every directory above it, from the root down,
// without following links (p has no linked directory in it).
func checkChain(p string) error {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := "/"
	for k := -1; k < len(parts); k++ {
		if k >= 0 {
			cur = filepath.Join(cur, parts[k])
		}
		last := k == len(parts)-1
		fi, err := os.Lstat(cur)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrInsecure, err)
		}
		mode := fi.Mode()
		switch {
		case !last && !mode.IsDir():
			return fmt.Errorf("%w: %s is not a directory", ErrInsecure, cur)
		case last && !mode.IsRegular() && mode&fs.ModeSymlink == 0:
			return fmt.Errorf("%w: %s is not a file", ErrInsecure, cur)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%w: cannot read the owner of %s", ErrInsecure, cur)
		}
		if st.Uid != 0 {
			return fmt.Errorf("%w: %s belongs to uid %d, not root", ErrInsecure, cur, st.Uid)
		}
		guarded := mode.IsRegular() || (mode.IsDir() && mode&fs.ModeSticky == 0)
		if guarded && ((st.Gid != 0 && mode&0o020 != 0) || mode&0o002 != 0) {
			return fmt.Errorf("%w: %s is writable by others or by group %d (mode %v)", ErrInsecure, cur, st.Gid, mode)
		}
	}
	return nil
}

// Resolve does to a command what keepalived does to a script when it
// loads the configuration, and returns the command to run:
//
//   - a redirection only ([ShellOnly]) is left as it is: the shell runs it;
//   - an Argv[0] without a slash is looked up in PATH (vipd's own PATH, or
//     /bin:/usr/bin without one) for a regular file the script's user may
//     execute, and replaced by the path found;
//   - the program must exist and be executable by the script's user (c's
//     Credential, or vipd's own user);
//   - with security (enable_script_security), a program that runs with
//     root's user or group (or is set-user/group-ID root) must pass
//     [CheckSecure].
//
// Errors wrap ErrNotFound or ErrInsecure.
func Resolve(c Command, security bool) (Command, error) {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return c, fmt.Errorf("%w: empty command", ErrNotFound)
	}
	if ShellOnly(c.Argv[0]) {
		return c, nil
	}
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	if c.Credential != nil {
		uid, gid = c.Credential.Uid, c.Credential.Gid
	}
	path := c.Argv[0]
	if !strings.Contains(path, "/") {
		found, err := lookPath(path, uid, gid)
		if err != nil {
			return c, err
		}
		path = found
	}
	fi, err := os.Stat(path)
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() || !executable(fi.Mode(), st, uid, gid) {
		return c, fmt.Errorf("%w: %s is not a file that uid %d gid %d may execute", ErrNotFound, path, uid, gid)
	}
	mode := fi.Mode()
	asRoot := uid == 0 || gid == 0 ||
		(st.Uid == 0 && mode&fs.ModeSetuid != 0 && mode&0o100 != 0) ||
		(st.Gid == 0 && mode&fs.ModeSetgid != 0 && mode&0o010 != 0)
	if security && asRoot {
		if err := CheckSecure(path); err != nil {
			return c, err
		}
	}
	out := c
	out.Argv = append([]string{path}, c.Argv[1:]...)
	return out, nil
}

// lookPath searches PATH for file as keepalived does: the first regular
// file that uid/gid may execute.
func lookPath(file string, uid, gid uint32) (string, error) {
	dirs, ok := os.LookupEnv("PATH")
	if !ok {
		dirs = "/bin:/usr/bin"
	}
	denied := false
	for _, dir := range filepath.SplitList(dirs) {
		p := filepath.Join(dir, file)
		if dir == "" {
			p = file // an empty entry is the current directory
		}
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && fi.Mode().IsRegular() && executable(fi.Mode(), st, uid, gid) {
			if !filepath.IsAbs(p) {
				if abs, err := filepath.Abs(p); err == nil {
					p = abs
				}
			}
			return p, nil
		}
		denied = true
	}
	if denied {
		return "", fmt.Errorf("%w: %q in PATH (%s) is not a file that uid %d gid %d may execute", ErrNotFound, file, dirs, uid, gid)
	}
	return "", fmt.Errorf("%w: %q is in no directory of PATH (%s)", ErrNotFound, file, dirs)
}

// executable is keepalived's test of whether uid/gid may execute a file:
// root needs any execute bit, the owner the owner's, the group the
// group's, others the others'.
func executable(mode fs.FileMode, st *syscall.Stat_t, uid, gid uint32) bool {
	switch {
	case uid == 0:
		return mode&0o111 != 0
	case uid == st.Uid:
		return mode&0o100 != 0
	case gid == st.Gid:
		return mode&0o010 != 0
	}
	return mode&0o001 != 0
}
