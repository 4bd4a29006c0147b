package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// The initramfs is two concatenated newc archives. The base holds what does
// not change between runs with the same kernel and module list: /init,
// busybox, the modules and their index files. It is built once and kept in
// the cache directory under a name that hashes everything it is made of.
// The overlay holds what a run adds: its configuration, its command and its
// files. Run concatenates the two into one file for qemu's -initrd.

// busyboxPath is where Debian's busybox-static installs busybox.
const busyboxPath = "/bin/busybox"

// baseFormat changes whenever the base archive's layout changes, so that
// cached archives of an older layout are not used.
const baseFormat = "amqpha-vm-base-1"

// Inode number ranges of the two archives.
const (
	baseIno    = 1
	overlayIno = 1 << 24
)

// baseInitramfs returns the path of the cached base archive for k and
// modules, building it first if need be.
func baseInitramfs(cacheDir string, k Kernel, modules []string) (string, error) {
	db, err := loadModuleDB(k.ModulesDir)
	if err != nil {
		return "", err
	}
	load, err := db.resolve(modules)
	if err != nil {
		return "", err
	}
	if static, err := isStatic(busyboxPath); err != nil {
		return "", &MissingError{What: busyboxPath, Hint: "apt-get install busybox-static", Err: err}
	} else if !static {
		return "", &MissingError{What: "a static " + busyboxPath, Hint: "apt-get install busybox-static"}
	}

	// The cache key: the layout, /init, busybox and each module file as
	// found on disk (path, size, modification time).
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", baseFormat, initScript, k.Version)
	stamp := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("vm: %w", err)
		}
		fmt.Fprintf(h, "%s %d %d\n", p, fi.Size(), fi.ModTime().UnixNano())
		return nil
	}
	files := []string{busyboxPath, filepath.Join(k.ModulesDir, "modules.dep")}
	for _, it := range load {
		files = append(files, filepath.Join(k.ModulesDir, it.path))
		fmt.Fprintf(h, "%s %v\n", it.path, it.optional)
	}
	for _, f := range files {
		if err := stamp(f); err != nil {
			return "", err
		}
	}
	name := fmt.Sprintf("base-%s-%s.cpio", k.Version, hex.EncodeToString(h.Sum(nil))[:16])
	dst := filepath.Join(cacheDir, name)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}

	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("vm: cache: %w", err)
	}
	tmp, err := os.CreateTemp(cacheDir, name+".*.tmp")
	if err != nil {
		return "", fmt.Errorf("vm: cache: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := writeBase(tmp, k, db, load); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("vm: cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("vm: cache: %w", err)
	}
	// Concurrent builders write the same bytes; the last rename wins.
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("vm: cache: %w", err)
	}
	return dst, nil
}

func writeBase(w io.Writer, k Kernel, db *moduleDB, load []loadItem) error {
	c := newCPIOWriter(w, baseIno)
	for _, d := range []string{"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/proc", "/sys", "/tmp", "/run", "/root", "/etc"} {
		if err := c.Dir(d, 0o755); err != nil {
			return err
		}
	}
	if err := c.Dir("/dev", 0o755); err != nil {
		return err
	}
	// The kernel opens /dev/console for /init before anything is mounted.
	if err := c.CharDev("/dev/console", 0o600, 5, 1); err != nil {
		return err
	}
	if err := c.CharDev("/dev/null", 0o666, 1, 3); err != nil {
		return err
	}
	if err := c.Bytes("/init", 0o755, []byte(initScript)); err != nil {
		return err
	}
	if err := c.HostFile(busyboxPath, busyboxPath); err != nil {
		return err
	}
	etc := map[string]string{
		"/etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"/etc/group":    "root:x:0:\nnogroup:x:65534:\n",
		"/etc/hosts":    "127.0.0.1\tlocalhost\n::1\tlocalhost\n",
		"/etc/hostname": "amqpha-vm\n",
	}
	for _, p := range sortedKeys(etc) {
		if err := c.Bytes(p, 0o644, []byte(etc[p])); err != nil {
			return err
		}
	}

	guestMods := path.Join(modulesDir, k.Version)
	set := make(map[string]bool, len(load))
	var list strings.Builder
	for _, it := range load {
		set[it.path] = true
		if err := c.HostFile(path.Join(guestMods, it.path), filepath.Join(k.ModulesDir, it.path)); err != nil {
			return err
		}
		kind := "required"
		if it.optional {
			kind = "optional"
		}
		fmt.Fprintf(&list, "%s %s\n", kind, path.Join(guestMods, it.path))
	}
	dep, alias, softdep := db.filtered(set)
	index := map[string][]byte{"modules.dep": dep, "modules.alias": alias, "modules.softdep": softdep}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir, "modules.builtin")); err == nil {
		index["modules.builtin"] = b
	}
	for _, n := range sortedKeys(index) {
		if err := c.Bytes(path.Join(guestMods, n), 0o644, index[n]); err != nil {
			return err
		}
	}
	if err := c.Bytes(guestModules, 0o644, []byte(list.String())); err != nil {
		return err
	}
	return c.Close()
}

// writeOverlay writes the per-run archive.
func writeOverlay(w io.Writer, cfg Config, token string) error {
	c := newCPIOWriter(w, overlayIno)
	if err := c.Bytes(guestConfig, 0o644, []byte(configScript(token, !cfg.OnDemand))); err != nil {
		return err
	}
	if err := c.Bytes(guestRun, 0o644, []byte(runScript(cfg.Env, cfg.Command))); err != nil {
		return err
	}
	for _, g := range sortedKeys(cfg.Files) {
		if err := c.HostFile(g, cfg.Files[g]); err != nil {
			return err
		}
	}
	libs := map[string]string{}
	for _, b := range cfg.Binaries {
		exe, err := hostExecutable(b)
		if err != nil {
			return err
		}
		if err := c.HostFile(b, exe); err != nil {
			return err
		}
		so, err := sharedObjects(exe)
		if err != nil {
			return err
		}
		for g, h := range so {
			libs[g] = h
		}
	}
	for _, g := range sortedKeys(libs) {
		if _, given := cfg.Files[g]; given {
			continue
		}
		if err := c.HostFile(g, libs[g]); err != nil {
			return err
		}
	}
	return c.Close()
}

// writeInitrd writes the base archive followed by the run's overlay to dst.
func writeInitrd(dst, base string, cfg Config, token string) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	in, err := os.Open(base)
	if err != nil {
		out.Close()
		return fmt.Errorf("vm: %w", err)
	}
	_, err = io.Copy(out, in)
	in.Close()
	if err == nil {
		err = writeOverlay(out, cfg, token)
	}
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("vm: %w", cerr)
	}
	return err
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
