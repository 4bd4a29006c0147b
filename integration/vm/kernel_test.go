package vm

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fakeBzImage returns a bzImage boot header whose version string is s.
func fakeBzImage(s string) []byte {
	b := make([]byte, 0x1000)
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], 0x20F)
	binary.LittleEndian.PutUint16(b[0x20E:], 0x600)
	copy(b[0x800:], s+"\x00")
	return b
}

func TestKernelRelease(t *testing.T) {
	tests := []struct {
		name string
		hdr  []byte
		want string
		ok   bool
	}{
		{"debian", fakeBzImage("6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2"), "6.1.0-56-amd64", true},
		{"bare", fakeBzImage("6.12.9"), "6.12.9", true},
		{"empty string", fakeBzImage(""), "", false},
		{"slash", fakeBzImage("../../etc"), "", false},
		{"no magic", make([]byte, 0x1000), "", false},
		{"short", []byte("HdrS"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := kernelRelease(tt.hdr)
			if got != tt.want || ok != tt.ok {
				t.Errorf("kernelRelease = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestVersionLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"6.1.0-9-amd64", "6.1.0-56-amd64", true},
		{"6.1.0-56-amd64", "6.1.0-9-amd64", false},
		{"5.10.0-28-amd64", "6.1.0-1-amd64", true},
		{"6.1.0-56-amd64", "6.1.0-56-amd64", false},
		{"6.1", "6.1.0", true},
		{"6.1.0-rt", "6.1.0-amd64", false},
	}
	for _, tt := range tests {
		if got := versionLess(tt.a, tt.b); got != tt.want {
			t.Errorf("versionLess(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestFindKernelImage(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "bzImage")
	if err := os.WriteFile(img, fakeBzImage("6.9.1-test (x) #1"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := FindKernel(img, "")
	if err != nil {
		t.Fatal(err)
	}
	if k.Version != "6.9.1-test" || k.ModulesDir != "/lib/modules/6.9.1-test" || k.Image != img {
		t.Errorf("FindKernel = %+v", k)
	}
	k, err = FindKernel(img, dir)
	if err != nil || k.ModulesDir != dir {
		t.Errorf("FindKernel with a modules dir = %+v, %v", k, err)
	}
	if _, err := FindKernel(filepath.Join(dir, "none"), ""); !errors.Is(err, ErrMissing) {
		t.Errorf("missing image: err = %v, want ErrMissing", err)
	}
}

func FuzzKernelRelease(f *testing.F) {
	f.Add(fakeBzImage("6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1"))
	f.Add([]byte("HdrS"))
	f.Fuzz(func(t *testing.T, hdr []byte) {
		v, ok := kernelRelease(hdr)
		if ok && (v == "" || !isPrintable(v)) {
			t.Fatalf("release %q accepted", v)
		}
	})
}
