//go:build integration

package vrrp

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// vipdBin is the vipd binary the tests run, built once by TestMain.
var vipdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vipd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Readable and runnable by the unprivileged user one test runs it as.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vipdBin = filepath.Join(dir, "vipd")
	// Tests run vipd with the race detector; measurements (which report
	// its memory and CPU) run it as users do.
	flags := []string{"build", "-race", "-o", vipdBin}
	if os.Getenv("AMQPHA_VRRP_BENCH") != "" {
		flags = []string{"build", "-o", vipdBin}
	}
	build := exec.Command("go", append(flags, "github.com/amqpha/amqpha/vipd")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building vipd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}
