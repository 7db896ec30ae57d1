package loadtest

import (
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
)

// TestEverySendDistinctMail: every send of a run is a distinct mail by
// the content id the producer stores it under, also when a corpus is sent
// several times over (each send has a recipient of its own), so the
// mail stream's dedup never merges two sends and the lost and duplicated
// counts stay right.
func TestEverySendDistinctMail(t *testing.T) {
	cp, err := GenerateCorpus(CorpusConfig{Seed: 1, Mails: 5, Domains: 2, RSABits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]Config{
		"synthetic": {Size: 2048, DeadEvery: 7},
		"corpus":    {Corpus: cp},
	} {
		r := &run{cfg: cfg, token: "lttest", date: time.Now()}
		seen := map[string]int{}
		for n := 1; n <= 4*5; n++ {
			m := r.newMail(n, n%2 == 0)
			raw, err := r.raw(m)
			if err != nil {
				t.Fatal(err)
			}
			id := contracts.ContentID(m.from, []string{m.rcpt}, raw)
			if prev, dup := seen[id]; dup {
				t.Fatalf("%s: sends %d and %d are one mail (content id %s)", name, prev, n, id)
			}
			seen[id] = n
		}
	}
}
