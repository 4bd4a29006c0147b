package vm

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// The kernel unpacks an initramfs written in the "newc" cpio format (see the
// kernel's Documentation/driver-api/early-userspace/buffer-format.rst): each
// entry is a 110-byte ASCII header of thirteen 8-digit hexadecimal fields
// after the magic "070701", the NUL-terminated name, padding to 4 bytes, the
// data and padding to 4 bytes again. An entry named "TRAILER!!!" ends an
// archive; archives may be concatenated and the kernel unpacks them in order,
// later entries replacing earlier ones of the same name.

const (
	newcMagic   = "070701"
	newcTrailer = "TRAILER!!!"
	newcHeader  = 110
)

// File type bits of the mode field, as in stat(2).
const (
	modeDir     = 0o040000
	modeRegular = 0o100000
	modeSymlink = 0o120000
	modeCharDev = 0o020000
)

// cpioWriter writes a newc archive. It creates the parent directories of
// every entry it is given, once each, and numbers inodes from a base so that
// two archives meant to be concatenated do not share inode numbers. Not safe
// for concurrent use.
type cpioWriter struct {
	w    *bufio.Writer
	ino  uint32
	dirs map[string]bool
	err  error
}

func newCPIOWriter(w io.Writer, inoBase uint32) *cpioWriter {
	return &cpioWriter{w: bufio.NewWriterSize(w, 1<<16), ino: inoBase, dirs: map[string]bool{".": true}}
}

// cleanName turns a guest path into an archive name: relative, cleaned, no
// "..". It reports false for names that would escape the root or are empty.
func cleanName(name string) (string, bool) {
	name = path.Clean("/" + name)
	if name == "/" || strings.ContainsRune(name, 0) {
		return "", false
	}
	return name[1:], true
}

type cpioEntry struct {
	name         string
	mode         uint32
	nlink        uint32
	size         int64
	rdevMaj, min uint32
}

func (c *cpioWriter) header(e cpioEntry) {
	if c.err != nil {
		return
	}
	c.ino++
	fields := [13]uint32{
		c.ino, e.mode, 0, 0, e.nlink, 0, uint32(e.size),
		0, 0, e.rdevMaj, e.min, uint32(len(e.name) + 1), 0,
	}
	var b strings.Builder
	b.Grow(newcHeader + len(e.name) + 4)
	b.WriteString(newcMagic)
	for _, f := range fields {
		fmt.Fprintf(&b, "%08X", f)
	}
	b.WriteString(e.name)
	b.WriteByte(0)
	for (b.Len())%4 != 0 {
		b.WriteByte(0)
	}
	_, c.err = c.w.WriteString(b.String())
}

func (c *cpioWriter) pad(n int64) {
	if c.err != nil {
		return
	}
	if r := n % 4; r != 0 {
		_, c.err = c.w.Write(make([]byte, 4-r))
	}
}

// Dir adds a directory and its parents.
func (c *cpioWriter) Dir(name string, perm fs.FileMode) error {
	n, ok := cleanName(name)
	if !ok {
		return fmt.Errorf("vm: bad guest path %q", name)
	}
	c.parents(n)
	c.dir(n, perm)
	return c.err
}

func (c *cpioWriter) dir(n string, perm fs.FileMode) {
	if c.dirs[n] {
		return
	}
	c.dirs[n] = true
	c.header(cpioEntry{name: n, mode: modeDir | uint32(perm.Perm()), nlink: 2})
}

func (c *cpioWriter) parents(n string) {
	var todo []string
	for d := path.Dir(n); !c.dirs[d]; d = path.Dir(d) {
		todo = append(todo, d)
	}
	for i := len(todo) - 1; i >= 0; i-- {
		c.dir(todo[i], 0o755)
	}
}

// File adds a regular file of the given size whose content is read from r.
func (c *cpioWriter) File(name string, perm fs.FileMode, size int64, r io.Reader) error {
	n, ok := cleanName(name)
	if !ok {
		return fmt.Errorf("vm: bad guest path %q", name)
	}
	if size < 0 || size > 0xFFFFFFFF {
		return fmt.Errorf("vm: %s: size %d does not fit a newc archive", name, size)
	}
	c.parents(n)
	c.header(cpioEntry{name: n, mode: modeRegular | uint32(perm.Perm()), nlink: 1, size: size})
	if c.err != nil {
		return c.err
	}
	copied, err := io.CopyN(c.w, r, size)
	if err != nil {
		c.err = fmt.Errorf("vm: %s: wrote %d of %d bytes: %w", name, copied, size, err)
		return c.err
	}
	c.pad(size)
	return c.err
}

// Bytes adds a regular file holding data.
func (c *cpioWriter) Bytes(name string, perm fs.FileMode, data []byte) error {
	return c.File(name, perm, int64(len(data)), strings.NewReader(string(data)))
}

// HostFile adds the host file src (symbolic links followed) as name, keeping
// its permission bits.
func (c *cpioWriter) HostFile(name, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("vm: %s is not a regular file", src)
	}
	return c.File(name, fi.Mode().Perm(), fi.Size(), f)
}

// Symlink adds a symbolic link name pointing at target.
func (c *cpioWriter) Symlink(name, target string) error {
	n, ok := cleanName(name)
	if !ok || target == "" {
		return fmt.Errorf("vm: bad symlink %q -> %q", name, target)
	}
	c.parents(n)
	c.header(cpioEntry{name: n, mode: modeSymlink | 0o777, nlink: 1, size: int64(len(target))})
	if c.err == nil {
		_, c.err = c.w.WriteString(target)
	}
	c.pad(int64(len(target)))
	return c.err
}

// CharDev adds a character device node; no privilege is needed to describe
// one, the kernel creates it while unpacking.
func (c *cpioWriter) CharDev(name string, perm fs.FileMode, major, minor uint32) error {
	n, ok := cleanName(name)
	if !ok {
		return fmt.Errorf("vm: bad guest path %q", name)
	}
	c.parents(n)
	c.header(cpioEntry{name: n, mode: modeCharDev | uint32(perm.Perm()), nlink: 1, rdevMaj: major, min: minor})
	return c.err
}

// Close writes the trailer and flushes; it does not close the underlying
// writer.
func (c *cpioWriter) Close() error {
	c.header(cpioEntry{name: newcTrailer, nlink: 1})
	if c.err != nil {
		return c.err
	}
	return c.w.Flush()
}
