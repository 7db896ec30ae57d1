package rules_test

import (
	"fmt"

	"github.com/mailscope/mailscope/rules"
)

func Example() {
	rs, err := rules.Parse(rules.FlagHandler, 7, []byte(`
# quarantine the beta campaign on staging, unless signed by example.com
mail_header:Subject:(?i)\[beta\]&env:staging 10 quarantine
dkim:example.com 20 publish
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	snap := rules.NewSnapshot(map[string]*rules.RuleSet{rules.FlagHandler: rs})

	f := &rules.Facts{
		Headers: rules.HeadersFromFields(func(yield func(k, v string) bool) {
			yield("Subject", "=?UTF-8?Q?=5BBeta=5D_news?=")
		}),
		Env: "staging",
	}
	d := snap.Eval(rules.FlagHandler, f)
	fmt.Println(d.Value, "by line", d.Rule.Line, "rev", d.Revision)

	f.DKIMPass, f.DKIMKnown = []string{"example.com"}, true
	fmt.Println(snap.Eval(rules.FlagHandler, f).Value)

	d = snap.Eval(rules.FlagPause, f)
	fmt.Println(d.Bool(), d.Rule == nil)
	// Output:
	// quarantine by line 3 rev 7
	// publish
	// false true
}

func ExampleParse_error() {
	_, err := rules.Parse(rules.FlagPause, 12, []byte("env:prod 1 maybe\ntrust:high 2 on"))
	fmt.Println(err)
	// Output:
	// mail.pause rev 12: line 1: value "maybe": not a bool: want true/false, on/off, yes/no or 1/0; line 2: scope term "trust:high": trust level must be strong, weak or none
}
