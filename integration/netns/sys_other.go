//go:build !linux

package netns

import (
	"errors"
	"syscall"
)

func enterNetns(string) (func() error, error) { return nil, errors.ErrUnsupported }

func procAttr() *syscall.SysProcAttr { return nil }

func killGroup(int) error { return errors.ErrUnsupported }

func killPid(int) error { return errors.ErrUnsupported }

func freezePid(int) error { return errors.ErrUnsupported }

func processAlive(int) bool { return true }
