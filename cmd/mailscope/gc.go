package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// gcPercent is the garbage collector's target when GOGC is not set. Every
// role allocates per mail and keeps little alive (the mails in flight), so
// the default of 100 runs the collector very often: in the load test
// (docs/performance.md) GOGC=400 cut the worker's CPU per mail by a
// quarter (435 to 328 µs) and the producer's likewise (332 to 247 µs).
const gcPercent = 400

// memoryLimitShare is the part of the container's memory limit the Go
// runtime is told to stay under (GOMEMLIMIT) when GOMEMLIMIT is not set,
// so that the larger GC target never takes a pod past its limit: near
// it, the collector runs as often as it must.
const memoryLimitShare = 0.9

// tuneGC applies gcPercent and a memory limit from the cgroup (v2
// memory.max, or v1 memory.limit_in_bytes), unless the environment sets
// GOGC or GOMEMLIMIT, which then win.
func tuneGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gcPercent)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		return
	}
	if limit := cgroupMemoryLimit(); limit > 0 {
		debug.SetMemoryLimit(int64(float64(limit) * memoryLimitShare))
	}
}

// cgroupMemoryLimit returns the memory limit of this process's cgroup in
// bytes, 0 when there is none or it cannot be read.
func cgroupMemoryLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(p); err == nil {
			return parseMemoryLimit(string(b))
		}
	}
	return 0
}

// parseMemoryLimit reads a cgroup memory limit file's content: bytes, or
// "max" (v2) or a huge number (v1) for none, which is 0.
func parseMemoryLimit(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0
	}
	return n
}
