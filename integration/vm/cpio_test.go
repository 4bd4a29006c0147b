package vm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"
)

// cpioFile is one entry read back from a newc archive.
type cpioFile struct {
	name       string
	mode       uint32
	ino        uint32
	rdev       [2]uint32
	data       string
	afterTrail bool // in a later archive of a concatenation
}

// readNewc parses concatenated newc archives the way the kernel does.
func readNewc(b []byte) ([]cpioFile, error) {
	var out []cpioFile
	archive := 0
	for off := 0; off < len(b); {
		if b[off] == 0 { // padding between archives
			off++
			continue
		}
		if len(b)-off < newcHeader || string(b[off:off+6]) != newcMagic {
			return nil, fmt.Errorf("offset %d: no newc header", off)
		}
		var f [13]uint32
		for i := range f {
			v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 32)
			if err != nil {
				return nil, fmt.Errorf("offset %d field %d: %v", off, i, err)
			}
			f[i] = uint32(v)
		}
		nameStart := off + newcHeader
		nameEnd := nameStart + int(f[11])
		if nameEnd > len(b) || f[11] == 0 || b[nameEnd-1] != 0 {
			return nil, fmt.Errorf("offset %d: bad name", off)
		}
		name := string(b[nameStart : nameEnd-1])
		dataStart := (nameEnd + 3) &^ 3
		dataEnd := dataStart + int(f[6])
		if dataEnd > len(b) {
			return nil, errors.New("truncated data")
		}
		off = (dataEnd + 3) &^ 3
		if name == newcTrailer {
			archive++
			continue
		}
		out = append(out, cpioFile{
			name: name, mode: f[1], ino: f[0], rdev: [2]uint32{f[9], f[10]},
			data: string(b[dataStart:dataEnd]), afterTrail: archive > 0,
		})
	}
	return out, nil
}

func TestCPIOWriter(t *testing.T) {
	var buf bytes.Buffer
	c := newCPIOWriter(&buf, 10)
	steps := []error{
		c.Bytes("/a/b/c.txt", 0o644, []byte("hello")),
		c.Bytes("a/b/d", 0o755, []byte("1234")), // parents written once
		c.Symlink("/lib64/ld.so", "/lib/x86_64-linux-gnu/ld.so"),
		c.CharDev("/dev/console", 0o600, 5, 1),
		c.Dir("/empty/dir", 0o700),
		c.File("/big", 0o600, 3, strings.NewReader("xyzIGNORED")),
		c.Close(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not a multiple of 4", buf.Len())
	}
	files, err := readNewc(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	inos := map[uint32]bool{}
	for _, f := range files {
		got = append(got, fmt.Sprintf("%s %o %q %v", f.name, f.mode, f.data, f.rdev))
		if inos[f.ino] || f.ino <= 10 {
			t.Errorf("%s: inode %d reused or below the base", f.name, f.ino)
		}
		inos[f.ino] = true
	}
	want := []string{
		`a 40755 "" [0 0]`,
		`a/b 40755 "" [0 0]`,
		`a/b/c.txt 100644 "hello" [0 0]`,
		`a/b/d 100755 "1234" [0 0]`,
		`lib64 40755 "" [0 0]`,
		`lib64/ld.so 120777 "/lib/x86_64-linux-gnu/ld.so" [0 0]`,
		`dev 40755 "" [0 0]`,
		`dev/console 20600 "" [5 1]`,
		`empty 40755 "" [0 0]`,
		`empty/dir 40700 "" [0 0]`,
		`big 100600 "xyz" [0 0]`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCPIOWriterErrors(t *testing.T) {
	tests := []struct {
		name string
		do   func(c *cpioWriter) error
	}{
		{"root", func(c *cpioWriter) error { return c.Bytes("/", 0o644, nil) }},
		{"dotdot is cleaned, empty is not", func(c *cpioWriter) error { return c.Bytes("/..", 0o644, nil) }},
		{"nul", func(c *cpioWriter) error { return c.Bytes("/a\x00b", 0o644, nil) }},
		{"short reader", func(c *cpioWriter) error { return c.File("/f", 0o644, 10, strings.NewReader("abc")) }},
		{"negative size", func(c *cpioWriter) error { return c.File("/f", 0o644, -1, strings.NewReader("")) }},
		{"empty symlink", func(c *cpioWriter) error { return c.Symlink("/l", "") }},
		{"missing host file", func(c *cpioWriter) error { return c.HostFile("/f", "/nonexistent/file") }},
		{"host dir", func(c *cpioWriter) error { return c.HostFile("/f", t.TempDir()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(newCPIOWriter(io.Discard, 0)); err == nil {
				t.Error("no error")
			}
		})
	}
}

// Two archives written with distinct inode bases concatenate into one the
// kernel reads in order.
func TestCPIOConcatenated(t *testing.T) {
	var buf bytes.Buffer
	a := newCPIOWriter(&buf, baseIno)
	if err := a.Bytes("/etc/x", 0o644, []byte("base")); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := newCPIOWriter(&buf, overlayIno)
	if err := b.Bytes("/etc/x", 0o644, []byte("overlay")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := readNewc(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]cpioFile{}
	for _, f := range files {
		last[f.name] = f
	}
	if f := last["etc/x"]; f.data != "overlay" || !f.afterTrail {
		t.Errorf("etc/x = %+v, want the overlay's", f)
	}
}
