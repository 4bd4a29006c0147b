package vm

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// qemuBinary is the emulator Run starts (Debian package qemu-system-x86).
const qemuBinary = "qemu-system-x86_64"

// kernelArgs is the guest kernel's command line: the console on the first
// serial port, few messages, no lingering after a panic, and nothing that
// costs emulated time for no use in a throwaway test VM (CPU vulnerability
// mitigations, audit, AppArmor, the clocksource watchdog).
var kernelArgs = []string{
	"console=ttyS0", "quiet", "loglevel=3", "panic=-1", "rdinit=/init",
	"8250.nr_uarts=1", "mitigations=off", "audit=0", "security=none",
	"tsc=reliable", "no_timer_check",
}

// Result is what a guest's command did.
type Result struct {
	// Output is what the command printed (standard output and error,
	// interleaved as on a terminal), carriage returns removed.
	Output string

	// ExitCode is the command's exit status as /init's shell saw it:
	// 128+n for a command killed by signal n, 127 for one not found.
	ExitCode int

	// Console is the whole serial console: kernel messages, /init and the
	// command's output.
	Console string

	// Boot is the time from starting qemu to the command's start.
	Boot time.Duration

	// Duration is the time from starting qemu to its end.
	Duration time.Duration
}

// Run boots the kernel of cfg under qemu-system-x86_64 with TCG (no KVM), on
// an initramfs holding busybox, the kernel modules, cfg's files and an /init
// that mounts proc, sysfs, devtmpfs and tmpfs on /tmp and /run, loads the
// modules, brings lo up, runs cfg.Command and powers the VM off. The guest
// has no network device: its traffic stays inside it.
//
// Run blocks until the guest is off, ctx is done or cfg.Timeout passes. It
// returns the command's [Result] when the guest reported an exit status,
// whatever that status is; otherwise a [*GuestError] (wrapping
// [ErrTimeout], [ErrNoExit], [ErrSetup] or ctx's error), with the partial
// Result as well. Prerequisites missing on the host give a [*MissingError].
// Run is safe for concurrent use; each run has its own temporary
// directory, and the cache directory is shared safely.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	c := cfg.withDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	qemu, err := exec.LookPath(qemuBinary)
	if err != nil {
		return nil, &MissingError{What: qemuBinary, Hint: "apt-get install --no-install-recommends qemu-system-x86", Err: err}
	}
	k, err := FindKernel(c.Kernel, c.ModulesDir)
	if err != nil {
		return nil, err
	}
	base, err := baseInitramfs(c.CacheDir, k, c.Modules)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "amqpha-vm-")
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	defer os.RemoveAll(tmp)
	token := newToken()
	initrd := filepath.Join(tmp, "initrd.cpio")
	if err := writeInitrd(initrd, base, c, token); err != nil {
		return nil, err
	}

	image := bootImage(c.CacheDir, k) // the first time per kernel: seconds

	ctx, cancel := context.WithTimeoutCause(ctx, c.Timeout, ErrTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, qemu, qemuArgs(c, image, initrd)...)
	con := newConsole(token, c.Console)
	var stderr bytes.Buffer
	cmd.Stdin = nil
	cmd.Stdout = con
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	setProcAttr(cmd)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vm: start %s: %w", qemuBinary, err)
	}
	waitErr := cmd.Wait()
	con.flush()
	res := &Result{
		Output:   con.output.String(),
		ExitCode: -1,
		Console:  con.Console(),
		Duration: time.Since(start),
	}
	if !con.started.IsZero() {
		res.Boot = con.started.Sub(start)
	}
	switch {
	case con.exited && con.setupErr == "":
		res.ExitCode = con.exitCode
		return res, nil
	case con.setupErr != "":
		return res, &GuestError{Err: ErrSetup, Detail: con.setupErr, Console: res.Console}
	case ctx.Err() != nil:
		return res, &GuestError{Err: context.Cause(ctx), Console: res.Console}
	}
	detail := strings.TrimSpace(stderr.String())
	if waitErr != nil {
		detail = strings.TrimSpace(waitErr.Error() + " " + detail)
	}
	return res, &GuestError{Err: ErrNoExit, Detail: detail, Console: res.Console}
}

func qemuArgs(c Config, kernel, initrd string) []string {
	return []string{
		"-nodefaults", "-no-user-config",
		"-machine", "pc", "-accel", "tcg",
		"-cpu", "max",
		"-m", c.Memory, "-smp", strconv.Itoa(c.CPUs),
		"-display", "none", "-serial", "stdio",
		"-no-reboot",
		"-kernel", kernel, "-initrd", initrd,
		"-append", strings.Join(kernelArgs, " "),
	}
}

func newToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}
