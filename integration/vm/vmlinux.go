package vm

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

// Booting the compressed bzImage under TCG spends seconds in the kernel's
// own decompressor (Debian compresses with xz). qemu also boots an
// uncompressed vmlinux directly through its PVH entry point (the kernel is
// built with CONFIG_PVH), so Run extracts vmlinux from the bzImage once,
// keeps it in the cache directory and boots that; if anything about it
// fails, it boots the bzImage.

// errNoPVH means the bzImage could not be turned into a PVH-bootable vmlinux.
var errNoPVH = errors.New("vm: no PVH-bootable vmlinux")

// bootImage returns the file to give qemu's -kernel: the cached vmlinux of
// k if it can be made, else k.Image.
func bootImage(cacheDir string, k Kernel) string {
	p, err := cachedVmlinux(cacheDir, k)
	if err != nil {
		return k.Image
	}
	return p
}

func cachedVmlinux(cacheDir string, k Kernel) (string, error) {
	fi, err := os.Stat(k.Image)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s %d %d", k.Image, fi.Size(), fi.ModTime().UnixNano()))
	name := fmt.Sprintf("vmlinux-%s-%s", k.Version, hex.EncodeToString(h[:])[:16])
	dst := filepath.Join(cacheDir, name)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if _, err := os.Stat(dst + ".none"); err == nil {
		return "", errNoPVH // tried before
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	img, err := os.ReadFile(k.Image)
	if err != nil {
		return "", err
	}
	elfData, err := extractVmlinux(img)
	if err == nil && !hasPVHNote(elfData) {
		err = errNoPVH
	}
	if err != nil {
		// Remember the failure: extraction costs seconds.
		_ = os.WriteFile(dst+".none", []byte(err.Error()+"\n"), 0o644)
		return "", err
	}
	if err := writeFileAtomic(dst, elfData); err != nil {
		return "", err
	}
	return dst, nil
}

// bzPayload returns the compressed kernel inside an x86 bzImage: the setup
// header (boot protocol 2.08 or later) gives the payload's offset from the
// start of the protected-mode code, which follows setup_sects+1 sectors.
func bzPayload(img []byte) ([]byte, error) {
	if len(img) < 0x250 || string(img[0x202:0x206]) != "HdrS" {
		return nil, errors.New("vm: not a bzImage")
	}
	if binary.LittleEndian.Uint16(img[0x206:]) < 0x208 {
		return nil, errors.New("vm: bzImage boot protocol older than 2.08")
	}
	setupSects := int(img[0x1F1])
	if setupSects == 0 {
		setupSects = 4
	}
	off := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(img[0x248:]))
	n := int(binary.LittleEndian.Uint32(img[0x24C:]))
	if off < 0 || n <= 4 || off > len(img) || n > len(img)-off {
		return nil, errors.New("vm: bzImage payload out of range")
	}
	return img[off : off+n], nil
}

// extractVmlinux decompresses the payload of a bzImage. gzip is done here;
// xz and zstd by the host's xz and zstd commands when they are installed.
// The kernel's build appends the uncompressed size (4 bytes, little endian)
// to xz and zstd payloads; it is checked and left out.
func extractVmlinux(img []byte) ([]byte, error) {
	p, err := bzPayload(img)
	if err != nil {
		return nil, err
	}
	var out []byte
	switch {
	case bytes.HasPrefix(p, []byte{0x1F, 0x8B}):
		zr, err := gzip.NewReader(bytes.NewReader(p))
		if err != nil {
			return nil, fmt.Errorf("vm: vmlinux: %w", err)
		}
		zr.Multistream(false)
		out, err = io.ReadAll(io.LimitReader(zr, 1<<30))
		if err != nil {
			return nil, fmt.Errorf("vm: vmlinux: %w", err)
		}
	case bytes.HasPrefix(p, []byte("\xFD7zXZ\x00")):
		out, err = decompressWith(p[:len(p)-4], "xz", "-dc", "--single-stream")
	case bytes.HasPrefix(p, []byte{0x28, 0xB5, 0x2F, 0xFD}):
		out, err = decompressWith(p[:len(p)-4], "zstd", "-dcq")
	default:
		return nil, fmt.Errorf("vm: vmlinux: unsupported compression % x", p[:min(len(p), 4)])
	}
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(p, []byte{0x1F, 0x8B}) {
		if want := binary.LittleEndian.Uint32(p[len(p)-4:]); uint32(len(out)) != want {
			return nil, fmt.Errorf("vm: vmlinux: %d bytes decompressed, the bzImage says %d", len(out), want)
		}
	}
	return out, nil
}

func decompressWith(data []byte, tool string, args ...string) ([]byte, error) {
	path, err := exec.LookPath(tool)
	if err != nil {
		return nil, fmt.Errorf("vm: vmlinux: %w", err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("vm: vmlinux: %s: %w: %s", tool, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// hasPVHNote reports whether data is a 64-bit x86 ELF kernel with the Xen
// note XEN_ELFNOTE_PHYS32_ENTRY (18), which qemu needs to boot it directly.
func hasPVHNote(data []byte) bool {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return false
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return false
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(io.LimitReader(p.Open(), 1<<20))
		if err != nil {
			continue
		}
		if hasNote(notes, "Xen", 18) {
			return true
		}
	}
	return false
}

// hasNote walks ELF notes (namesz, descsz, type, name, desc; 4-byte
// aligned) looking for one with the given name and type.
func hasNote(b []byte, name string, typ uint32) bool {
	for len(b) >= 12 {
		nsz := int(binary.LittleEndian.Uint32(b[0:]))
		dsz := int(binary.LittleEndian.Uint32(b[4:]))
		t := binary.LittleEndian.Uint32(b[8:])
		b = b[12:]
		na, da := (nsz+3)&^3, (dsz+3)&^3
		if nsz < 0 || dsz < 0 || na > len(b) || da > len(b)-na {
			return false
		}
		if t == typ && nsz > 0 && string(bytes.TrimRight(b[:nsz], "\x00")) == name {
			return true
		}
		b = b[na+da:]
	}
	return false
}

// writeFileAtomic writes data to dst through a temporary file and a rename,
// so that concurrent writers and readers never see a partial file.
func writeFileAtomic(dst string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}
