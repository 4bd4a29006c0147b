package netns

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// enterNetns switches the calling OS thread into the network namespace
// bound at path and returns a function that switches it back. The caller
// must hold runtime.LockOSThread for as long as the thread is switched.
func enterNetns(path string) (restore func() error, err error) {
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netns: open own namespace: %w", err)
	}
	target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(orig)
		return nil, fmt.Errorf("netns: open %s: %w", path, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		unix.Close(orig)
		return nil, fmt.Errorf("netns: setns %s: %w", path, err)
	}
	return func() error {
		defer unix.Close(orig)
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("netns: setns back: %w", err)
		}
		return nil
	}, nil
}

// procAttr puts a child into its own process group, so that it and its
// children can be killed together, and has the kernel kill it should the
// OS thread that started it die (the test binary crashing or timing out).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup sends SIGKILL to the process group led by pid; a group already
// gone is no error.
func killGroup(pid int) error {
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// killPid sends SIGKILL to one process; a process already gone is no error.
func killPid(pid int) error { return signalPid(pid, syscall.SIGKILL) }

// freezePid sends SIGSTOP to one process; a process already gone is no error.
func freezePid(pid int) error { return signalPid(pid, syscall.SIGSTOP) }

func signalPid(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
