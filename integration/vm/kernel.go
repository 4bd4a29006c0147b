package vm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Where Debian's linux-image packages put the kernel and its modules.
const (
	bootDir    = "/boot"
	modulesDir = "/lib/modules"
)

// Kernel is a kernel image with the modules built for it.
type Kernel struct {
	Image      string // the bzImage, e.g. /boot/vmlinuz-6.1.0-56-amd64
	Version    string // its release, as uname -r prints it
	ModulesDir string // e.g. /lib/modules/6.1.0-56-amd64
}

// FindKernel picks the kernel a [Config] boots. With image empty it is the
// newest /boot/vmlinuz-* that has a modules directory with a modules.dep
// (what linux-image-amd64 installs); otherwise image, whose release is read
// from its boot header. With modDir empty the modules are those in
// /lib/modules/<release>. It fails with a [*MissingError] when there is no
// such kernel. Safe for concurrent use.
func FindKernel(image, modDir string) (Kernel, error) {
	if image == "" {
		k, err := newestKernel()
		if err != nil {
			return Kernel{}, err
		}
		if modDir != "" {
			k.ModulesDir = modDir
		}
		return k, nil
	}
	f, err := os.Open(image)
	if err != nil {
		return Kernel{}, &MissingError{What: "kernel image " + image, Hint: "apt-get install linux-image-amd64", Err: err}
	}
	defer f.Close()
	hdr := make([]byte, 64<<10)
	n, err := io.ReadFull(f, hdr)
	if err != nil && err != io.ErrUnexpectedEOF {
		return Kernel{}, fmt.Errorf("vm: %s: %w", image, err)
	}
	version, ok := kernelRelease(hdr[:n])
	if !ok {
		version = strings.TrimPrefix(filepath.Base(image), "vmlinuz-")
	}
	if modDir == "" {
		modDir = filepath.Join(modulesDir, version)
	}
	return Kernel{Image: image, Version: version, ModulesDir: modDir}, nil
}

func newestKernel() (Kernel, error) {
	images, _ := filepath.Glob(filepath.Join(bootDir, "vmlinuz-*"))
	var best Kernel
	for _, img := range images {
		v := strings.TrimPrefix(filepath.Base(img), "vmlinuz-")
		md := filepath.Join(modulesDir, v)
		if _, err := os.Stat(filepath.Join(md, "modules.dep")); err != nil {
			continue
		}
		if f, err := os.Open(img); err != nil {
			continue // e.g. mode 0600 on Ubuntu and not root
		} else {
			f.Close()
		}
		if best.Image == "" || versionLess(best.Version, v) {
			best = Kernel{Image: img, Version: v, ModulesDir: md}
		}
	}
	if best.Image == "" {
		return Kernel{}, &MissingError{
			What: "a readable " + bootDir + "/vmlinuz-* with modules in " + modulesDir,
			Hint: "apt-get install linux-image-amd64",
		}
	}
	return best, nil
}

// kernelRelease reads the release string from an x86 bzImage boot header:
// "HdrS" at 0x202, and at 0x20E the offset (from 0x200) of a NUL-terminated
// string that starts with the release ("6.1.0-56-amd64 (debian-kernel@...)
// #1 SMP ..."). See the kernel's Documentation/arch/x86/boot.rst.
func kernelRelease(hdr []byte) (string, bool) {
	if len(hdr) < 0x210 || string(hdr[0x202:0x206]) != "HdrS" {
		return "", false
	}
	off := 0x200 + int(binary.LittleEndian.Uint16(hdr[0x20E:]))
	if off >= len(hdr) {
		return "", false
	}
	s := hdr[off:]
	if i := bytes.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	release, _, _ := strings.Cut(string(s), " ")
	if release == "" || !isPrintable(release) {
		return "", false
	}
	return release, true
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r <= ' ' || r > '~' || r == '/' {
			return false
		}
	}
	return true
}

// versionLess compares kernel releases by their runs of digits as numbers
// and the rest as text: "6.1.0-9" < "6.1.0-56".
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		ca, ra := versionChunk(a)
		cb, rb := versionChunk(b)
		if ca != cb {
			na, ea := strconv.ParseUint(ca, 10, 64)
			nb, eb := strconv.ParseUint(cb, 10, 64)
			if ea == nil && eb == nil {
				return na < nb
			}
			return ca < cb
		}
		a, b = ra, rb
	}
	return len(a) < len(b)
}

func versionChunk(s string) (chunk, rest string) {
	digit := s[0] >= '0' && s[0] <= '9'
	i := 1
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') == digit {
		i++
	}
	return s[:i], s[i:]
}
