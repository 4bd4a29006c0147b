package vm

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Config describes one VM run. The zero value plus a Command works: every
// zero field gets the default [DefaultConfig] shows. [Run] copies it.
type Config struct {
	// Kernel is the kernel image to boot; empty means the newest
	// /boot/vmlinuz-* installed by linux-image-amd64 (see [FindKernel]).
	Kernel string

	// ModulesDir holds the kernel's modules and depmod's index files;
	// empty means /lib/modules/<release of Kernel>.
	ModulesDir string

	// Modules are the kernel modules put into the initramfs, with their
	// dependencies, and loaded by /init before Command runs, dependencies
	// first. Names are module names ("ip_vs_wrr") or aliases ("crc32c").
	// nil means [DefaultModules]; an empty non-nil slice means none.
	Modules []string

	// OnDemand puts Modules into the initramfs without loading them:
	// modprobe and the kernel's module autoloader (request_module, e.g.
	// for an IPVS scheduler or the IPVS generic netlink family) load them
	// when asked, from the filtered modules.dep, modules.alias and
	// modules.softdep the initramfs holds.
	OnDemand bool

	// Files are extra files for the guest: guest path -> host path, e.g.
	// "/bin/vipd" -> a binary made by [BuildStaticBinary]. They keep the
	// host file's permission bits. Paths under /amqpha and /init are taken.
	Files map[string]string

	// Binaries are absolute paths of host executables, such as
	// /usr/sbin/ipvsadm or /usr/bin/ip of iproute2, placed at the same
	// path in the guest together with the dynamic loader and the shared
	// libraries they need. Their directories come before busybox's in
	// the guest's PATH.
	Binaries []string

	// Command is what /init runs once the guest is set up, looked up in
	// the guest's PATH (/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:
	// /sbin:/bin), with standard input from /dev/null and its output on
	// the serial console. Required.
	Command []string

	// Env adds "KEY=value" variables to Command's environment, which
	// already has PATH, HOME=/root and AMQPHA_VM=1 (see [InGuest]).
	Env []string

	// Memory is the guest's RAM in qemu's -m syntax; "" means "512M".
	Memory string

	// CPUs is the number of virtual CPUs; 0 means 1. Under TCG more CPUs
	// rarely make a guest faster on a 2-core host.
	CPUs int

	// Timeout bounds the whole run, boot included; 0 means 2 minutes.
	// When it passes, qemu is killed and Run returns [ErrTimeout].
	Timeout time.Duration

	// CacheDir keeps the built base initramfs between runs; "" means
	// $AMQPHA_VM_CACHE, else $XDG_CACHE_HOME/amqpha-vm or
	// ~/.cache/amqpha-vm, else <tmp>/amqpha-vm.
	CacheDir string

	// Console, if not nil, receives a copy of the serial console as it
	// arrives, line by line with carriage returns removed; for example
	// os.Stderr to watch a run. Writes happen on one goroutine.
	Console io.Writer
}

// DefaultConfig returns a fresh Config holding the defaults [Run] fills in.
func DefaultConfig() Config {
	return Config{
		Modules: DefaultModules(),
		Memory:  "512M",
		CPUs:    1,
		Timeout: 2 * time.Minute,
	}
}

// withDefaults returns a copy of c with zero fields filled and slices and
// maps copied, so that the caller may change c during the run.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Modules == nil {
		c.Modules = d.Modules
	} else {
		c.Modules = slices.Clone(c.Modules) // keeps an empty list empty, not nil
	}
	if c.Memory == "" {
		c.Memory = d.Memory
	}
	if c.CPUs == 0 {
		c.CPUs = d.CPUs
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.CacheDir == "" {
		c.CacheDir = defaultCacheDir()
	}
	files := make(map[string]string, len(c.Files))
	for g, h := range c.Files {
		files[g] = h
	}
	c.Files = files
	c.Binaries = slices.Clone(c.Binaries)
	c.Command = slices.Clone(c.Command)
	c.Env = slices.Clone(c.Env)
	return c
}

func defaultCacheDir() string {
	if d := os.Getenv("AMQPHA_VM_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "amqpha-vm")
	}
	return filepath.Join(os.TempDir(), "amqpha-vm")
}

var (
	memoryRE = regexp.MustCompile(`^[1-9][0-9]*[KMGT]?$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// reservedGuest are guest paths the package writes itself.
var reservedGuest = []string{"init", "amqpha", "bin/busybox", "lib/modules"}

// Validate reports what is wrong with c, without looking at the host.
func (c Config) Validate() error {
	var errs []error
	if len(c.Command) == 0 || c.Command[0] == "" {
		errs = append(errs, errors.New("vm: Config.Command is empty"))
	}
	for _, a := range c.Command {
		if strings.ContainsRune(a, 0) {
			errs = append(errs, fmt.Errorf("vm: Config.Command argument %q holds a NUL byte", a))
		}
	}
	if c.Memory != "" && !memoryRE.MatchString(c.Memory) {
		errs = append(errs, fmt.Errorf("vm: Config.Memory %q is not like 512M", c.Memory))
	}
	if c.CPUs < 0 || c.CPUs > 64 {
		errs = append(errs, fmt.Errorf("vm: Config.CPUs %d is out of 0..64", c.CPUs))
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("vm: Config.Timeout %v is negative", c.Timeout))
	}
	for _, kv := range c.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envKeyRE.MatchString(k) || strings.ContainsRune(v, 0) {
			errs = append(errs, fmt.Errorf("vm: Config.Env entry %q is not KEY=value", kv))
		}
	}
	for g := range c.Files {
		if err := checkGuestPath(g); err != nil {
			errs = append(errs, err)
		}
	}
	for _, b := range c.Binaries {
		if !filepath.IsAbs(b) {
			errs = append(errs, fmt.Errorf("vm: Config.Binaries entry %q is not an absolute path", b))
		} else if err := checkGuestPath(b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkGuestPath(g string) error {
	if !path.IsAbs(g) {
		return fmt.Errorf("vm: guest path %q is not absolute", g)
	}
	n, ok := cleanName(g)
	if !ok {
		return fmt.Errorf("vm: guest path %q is not a file path", g)
	}
	for _, r := range reservedGuest {
		if n == r || strings.HasPrefix(n, r+"/") {
			return fmt.Errorf("vm: guest path %q is reserved for the VM's own files", g)
		}
	}
	return nil
}
