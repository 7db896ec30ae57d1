package deploy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// promRef is a series selector found in a PromQL expression: a metric
// name and its label matchers.
type promRef struct {
	metric   string
	matchers []promMatcher
}

// promMatcher is one label matcher of a selector: label op "value".
type promMatcher struct {
	label, op, value string
}

func (r promRef) String() string {
	var ms []string
	for _, m := range r.matchers {
		ms = append(ms, fmt.Sprintf("%s%s%q", m.label, m.op, m.value))
	}
	if len(ms) == 0 {
		return r.metric
	}
	return r.metric + "{" + strings.Join(ms, ",") + "}"
}

// promKeywords are the identifiers of PromQL that are never a metric name
// where they stand outside a selector: operators, modifiers and the
// aggregation operators (which may be followed by by/without before
// their parenthesis).
var promKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true, "start": true, "end": true,
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true,
	"count": true, "count_values": true, "bottomk": true, "topk": true, "quantile": true,
	"limitk": true, "limit_ratio": true,
}

// promGrouping are the keywords followed by a parenthesized label list.
var promGrouping = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// promRefs returns the series selectors of expr, a PromQL expression
// that may hold Grafana variables ($name, ${name}, $__rate_interval).
// It is a tokenizer, not a parser: it skips strings, comments, ranges and
// subqueries ([...]), numbers and durations, function names (an
// identifier before "("), keywords and the label lists of by, without,
// on, ignoring, group_left and group_right; every other identifier is a
// metric name, with the matchers of the {...} that follows it. A bare
// {...} selector must name its metric with __name__="...".
func promRefs(expr string) ([]promRef, error) {
	var refs []promRef
	s := expr
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j, _, err := promString(s, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				end := strings.IndexByte(s[i:], '}')
				if end < 0 {
					return nil, fmt.Errorf("unclosed ${ at %d", i)
				}
				i += end + 1
				continue
			}
			for i < len(s) && promIdentChar(s[i]) {
				i++
			}
		case c == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return nil, fmt.Errorf("unclosed [ at %d", i)
			}
			i += end + 1
		case c == '{':
			ms, j, err := promMatchers(s, i)
			if err != nil {
				return nil, err
			}
			i = j
			ref := promRef{}
			for _, m := range ms {
				if m.label == "__name__" && m.op == "=" {
					ref.metric = m.value
				} else {
					ref.matchers = append(ref.matchers, m)
				}
			}
			if ref.metric == "" {
				return nil, fmt.Errorf("selector without a metric name at %d", i)
			}
			refs = append(refs, ref)
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (promIdentChar(s[i]) || s[i] == '.') {
				i++
			}
		case promIdentStart(c):
			j := i
			for j < len(s) && promIdentChar(s[j]) {
				j++
			}
			word := s[i:j]
			k := j
			for k < len(s) && (s[k] == ' ' || s[k] == '\t' || s[k] == '\n' || s[k] == '\r') {
				k++
			}
			switch {
			case promGrouping[word] && k < len(s) && s[k] == '(':
				end := strings.IndexByte(s[k:], ')')
				if end < 0 {
					return nil, fmt.Errorf("unclosed %s( at %d", word, k)
				}
				i = k + end + 1
			case promKeywords[word], k < len(s) && s[k] == '(':
				i = j // a keyword, or a function's name
			default:
				ref := promRef{metric: word}
				i = j
				if k < len(s) && s[k] == '{' {
					ms, end, err := promMatchers(s, k)
					if err != nil {
						return nil, err
					}
					ref.matchers, i = ms, end
				}
				refs = append(refs, ref)
			}
		default:
			i++
		}
	}
	return refs, nil
}

func promIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func promIdentChar(c byte) bool { return promIdentStart(c) || c >= '0' && c <= '9' }

// promString reads the string literal at s[i] and returns the index after
// it and its value.
func promString(s string, i int) (int, string, error) {
	q := s[i]
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`' && j+1 < len(s):
			j++
			b.WriteByte(s[j])
		case s[j] == q:
			return j + 1, b.String(), nil
		default:
			b.WriteByte(s[j])
		}
	}
	return 0, "", fmt.Errorf("unclosed string at %d", i)
}

// promMatchers reads the {label op "value", ...} at s[i].
func promMatchers(s string, i int) ([]promMatcher, int, error) {
	var ms []promMatcher
	i++ // {
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == ',' || s[i] == '\n' || s[i] == '\t') {
			i++
		}
		if i >= len(s) {
			return nil, 0, fmt.Errorf("unclosed {")
		}
		if s[i] == '}' {
			return ms, i + 1, nil
		}
		j := i
		for j < len(s) && promIdentChar(s[j]) {
			j++
		}
		if j == i {
			return nil, 0, fmt.Errorf("no label name at %d", i)
		}
		m := promMatcher{label: s[i:j]}
		for j < len(s) && s[j] == ' ' {
			j++
		}
		for _, op := range []string{"=~", "!~", "!=", "="} {
			if strings.HasPrefix(s[j:], op) {
				m.op = op
				break
			}
		}
		if m.op == "" {
			return nil, 0, fmt.Errorf("no matcher operator after %s at %d", m.label, j)
		}
		j += len(m.op)
		for j < len(s) && s[j] == ' ' {
			j++
		}
		if j >= len(s) || (s[j] != '"' && s[j] != '\'' && s[j] != '`') {
			return nil, 0, fmt.Errorf("no value for %s at %d", m.label, j)
		}
		end, v, err := promString(s, j)
		if err != nil {
			return nil, 0, err
		}
		m.value = v
		ms = append(ms, m)
		i = end
	}
}

// TestPromRefs pins the tokenizer on the constructs the dashboard and the
// alert rules use, and on the ones it must not mistake for metrics.
func TestPromRefs(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (disposition) (rate(mailscope_mail_outcomes_total{namespace="$namespace"}[$__rate_interval]))`,
			[]string{`mailscope_mail_outcomes_total{namespace="$namespace"}`}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_seconds_bucket{x="1", y=~"2|3"}[5m])))`,
			[]string{`a_seconds_bucket{x="1",y=~"2|3"}`}},
		{"max by (namespace) (p{s=\"MAIL\"}) > 1000\nand\nderiv(max by (namespace) (p{s=\"MAIL\"})[15m:1m]) > 0",
			[]string{`p{s="MAIL"}`, `p{s="MAIL"}`}},
		{`sum(rate(q{rcode=~"SERVFAIL|timeout"}[5m])) / sum(rate(q[5m])) > 0.1`, []string{`q{rcode=~"SERVFAIL|timeout"}`, "q"}},
		{`sum by(namespace)(r) < 1 or absent(r)`, []string{"r", "r"}},
		{`x / on(pod) group_left(version) y offset 5m`, []string{"x", "y"}},
		{`count without (instance) (build_info{v!="a}b"}) * 1e3 + 0x1f`, []string{`build_info{v!="a}b"}`}},
		{`{__name__="n", a="b"} # a comment naming not_a_metric`, []string{`n{a="b"}`}},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{`sum by (pod) (go_gc_duration_seconds{pod=~"mailscope-.*",quantile="1"}) @ start()`, []string{`go_gc_duration_seconds{pod=~"mailscope-.*",quantile="1"}`}},
		{`max by (cause) (mailscope_rules_refused_keys) > bool 0`, []string{"mailscope_rules_refused_keys"}},
	} {
		refs, err := promRefs(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		var got []string
		for _, r := range refs {
			got = append(got, r.String())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`m{a="b"`, `m{a}`, `rate(m[5m)`, `"open`, `{a="b"}`} {
		if _, err := promRefs(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
