//go:build faults

package faults

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var (
	seedFlag    = flag.Int64("faults.seed", 0, "seed of the fault schedule (kill points, kill targets, mail sizes); 0: from the clock, printed to replay with")
	mailsFlag   = flag.Int("faults.mails", 600, "mails per mode")
	sendersFlag = flag.Int("faults.senders", 8, "concurrent SMTP senders per mode")
)

// binary is the mailscope binary TestMain builds; seed the run's seed.
var (
	binary string
	seed   int64
)

// results collects every mode's result, printed as one table at the
// end.
var results struct {
	sync.Mutex
	list []*result
}

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	seed = *seedFlag
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	fmt.Printf("faults: seed %d (replay with -faults.seed %d)\n", seed, seed)
	dir, err := os.MkdirTemp("", "mailscope-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "mailscope")
	build := exec.Command("go", "build", "-o", binary, "github.com/mailscope/mailscope/cmd/mailscope")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "faults: build the binary: %v\n", err)
		return 1
	}
	code := m.Run()
	results.Lock()
	defer results.Unlock()
	if len(results.list) > 0 {
		fmt.Printf("\nfaults: seed %d\n%s", seed, table(results.list))
	}
	return code
}
