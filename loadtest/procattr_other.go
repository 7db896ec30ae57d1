//go:build !linux

package loadtest

import "syscall"

// childAttr: without Linux's parent-death signal, children are stopped
// only by System.Close.
func childAttr() *syscall.SysProcAttr { return nil }
