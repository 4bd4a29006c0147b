package vm

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// note encodes one ELF note.
func note(name string, typ uint32, desc []byte) []byte {
	var b bytes.Buffer
	n := append([]byte(name), 0)
	_ = binary.Write(&b, binary.LittleEndian, [3]uint32{uint32(len(n)), uint32(len(desc)), typ})
	b.Write(n)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	b.Write(desc)
	for b.Len()%4 != 0 {
		b.WriteByte(0)
	}
	return b.Bytes()
}

func TestHasNote(t *testing.T) {
	pvh := note("Xen", 18, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	tests := []struct {
		name  string
		notes []byte
		want  bool
	}{
		{"pvh after others", append(note("GNU", 3, []byte("build-id")), append(note("Xen", 6, []byte("linux\x00")), pvh...)...), true},
		{"pvh", pvh, true},
		{"other type", note("Xen", 17, nil), false},
		{"other name", note("Linux", 18, nil), false},
		{"truncated", pvh[:len(pvh)-2], false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasNote(tt.notes, "Xen", 18); got != tt.want {
				t.Errorf("hasNote = %v, want %v", got, tt.want)
			}
		})
	}
}

// fakeBzWithPayload builds a bzImage whose payload is p.
func fakeBzWithPayload(p []byte) []byte {
	b := make([]byte, 5*512+len(p))
	b[0x1F1] = 4 // setup sectors: the protected-mode code starts at 5*512
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], 0x20F)
	binary.LittleEndian.PutUint32(b[0x248:], 0)
	binary.LittleEndian.PutUint32(b[0x24C:], uint32(len(p)))
	copy(b[5*512:], p)
	return b
}

func TestExtractVmlinux(t *testing.T) {
	kernel := []byte("\x7fELF pretend this is a kernel")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(kernel)
	zw.Close()
	gz.Write([]byte{1, 2, 3, 4}) // the size the build appends is ignored for gzip
	got, err := extractVmlinux(fakeBzWithPayload(gz.Bytes()))
	if err != nil || !bytes.Equal(got, kernel) {
		t.Fatalf("gzip: %q, %v", got, err)
	}
	if _, err := extractVmlinux(fakeBzWithPayload([]byte("LZ4?junkjunk"))); err == nil {
		t.Error("unknown compression: no error")
	}
	if _, err := extractVmlinux([]byte("not a kernel")); err == nil {
		t.Error("not a bzImage: no error")
	}
	if hasPVHNote(kernel) {
		t.Error("hasPVHNote on a non-ELF")
	}
}

// FuzzHasNote: a Xen note of type 18 in front of anything is found; any
// other well-formed note in front of b changes nothing (the walk steps over
// it, padding included); and a note found stays found whatever follows.
func FuzzHasNote(f *testing.F) {
	f.Add(note("Xen", 18, []byte{1, 2, 3, 4}), "GNU", uint32(1), []byte{5}, []byte{})
	f.Add(note("GNU", 1, nil), "Xen", uint32(18), []byte{}, []byte{0, 0, 0, 0})
	f.Add(note("Xen", 18, nil), "Linux", uint32(18), []byte{1, 2, 3, 4, 5, 6}, []byte{})
	f.Fuzz(func(t *testing.T, b []byte, name string, typ uint32, desc, extra []byte) {
		found := hasNote(b, "Xen", 18)
		if found && !hasNote(append(slices.Clip(b), extra...), "Xen", 18) {
			t.Fatalf("a note found in %x is lost once %x follows", b, extra)
		}
		if !hasNote(append(note("Xen", 18, desc), b...), "Xen", 18) {
			t.Fatalf("a Xen note (desc %x) in front of %x is not found", desc, b)
		}
		if strings.TrimRight(name, "\x00") == "Xen" && typ == 18 {
			return
		}
		if got := hasNote(append(note(name, typ, desc), b...), "Xen", 18); got != found {
			t.Fatalf("a note %q type %d (desc %x) in front of %x: hasNote = %v, without it %v", name, typ, desc, b, got, found)
		}
	})
}

func FuzzBzPayload(f *testing.F) {
	f.Add(fakeBzWithPayload([]byte("\x1f\x8bpayload")))
	f.Fuzz(func(t *testing.T, img []byte) {
		p, err := bzPayload(img)
		if err == nil && (len(p) <= 4 || len(p) > len(img)) {
			t.Fatalf("payload of %d bytes from an image of %d", len(p), len(img))
		}
	})
}
