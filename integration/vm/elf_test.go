package vm

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/amqpha/amqpha/internal/testenv"
)

func TestSharedObjects(t *testing.T) {
	exe, err := exec.LookPath("ls")
	if err != nil {
		testenv.Missing(t, "no ls: %v", err)
	}
	if static, err := isStatic(exe); err != nil || static {
		testenv.Missing(t, "a dynamically linked ELF ls: %s is static or not ELF (%v)", exe, err)
	}
	so, err := sharedObjects(exe)
	if err != nil {
		t.Fatal(err)
	}
	var libc, loader bool
	for guest, host := range so {
		if guest != host {
			t.Errorf("%s found at %s: the guest path must be the host's", guest, host)
		}
		if _, err := os.Stat(host); err != nil {
			t.Error(err)
		}
		libc = libc || strings.HasSuffix(guest, "/libc.so.6")
		loader = loader || strings.Contains(guest, "ld-linux")
	}
	if !libc || !loader {
		t.Errorf("%s needs %v: no libc or no dynamic loader", exe, so)
	}
}

func TestIsStatic(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := isStatic(self); err != nil {
		t.Fatal(err)
	}
	if _, err := isStatic("/nonexistent"); err == nil {
		t.Error("no error for a missing file")
	}
	if _, err := sharedObjects("/nonexistent"); err == nil {
		t.Error("sharedObjects: no error for a missing file")
	}
}
