package rules

import (
	"fmt"
	"strings"
)

// Causes of a refused key, as Problems and the
// mailscope.rules.refused_keys metric give them.
const (
	// CauseParse: the key's value does not parse (a bad line, a value
	// of the wrong type); its last good rules stay in force.
	CauseParse = "parse"
	// CauseUnknownFlag: the key is not the name of a known flag (a typo
	// such as mail.handlr); its rules are never in force.
	CauseUnknownFlag = "unknown_flag"
)

// maxSuggestDistance is the largest edit distance at which a known flag
// is suggested for an unknown name.
const maxSuggestDistance = 3

// Nearest returns the known flag whose name is closest to name by edit
// distance, when it is close enough to be a likely typo (at most 3
// edits); ok is false otherwise.
func Nearest(name string) (flag string, ok bool) {
	best := maxSuggestDistance + 1
	for _, f := range registry {
		if d := editDistance(name, f.Name); d < best {
			best, flag = d, f.Name
		}
	}
	return flag, best <= maxSuggestDistance
}

// unknownFlag is the message of a key that names no known flag.
func unknownFlag(name string) string {
	msg := fmt.Sprintf("%q is not a known flag", name)
	if near, ok := Nearest(name); ok {
		msg += fmt.Sprintf(" (did you mean %s?)", near)
	}
	names := make([]string, len(registry))
	for i, f := range registry {
		names[i] = f.Name
	}
	return msg + "; known flags: " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance of a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
