package loadtest

import "syscall"

// childAttr makes a child process get SIGTERM when the load test dies,
// however it dies, so that no child outlives it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
