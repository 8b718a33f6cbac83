package fleet

import (
	"fmt"
	"strings"
)

// recoverStrategy comes first: the services with a failed instance to
// replace (a crash, an error report, a lost server, a failed start) get
// their replacements in one Recover operation, before anything else
// takes the waiting containers or the room. A service an operation holds
// or in back-off is recovered once that ends.
func recoverStrategy(d *decider) {
	services := d.openOf(d.s.Recovering)
	if len(services) == 0 {
		return
	}
	missing, _ := d.missing()
	plan := d.place(services, false)
	if plan.Empty() {
		return
	}
	k := plan.Keys()
	var why []string
	for _, s := range k.Services {
		why = append(why, fmt.Sprintf("%s %d below desired", s, missing[s]))
	}
	d.add(Op{Kind: KindRecover, Name: joinNames(k.Services), Place: plan, Keys: k,
		Reason: "failed instances to replace: " + strings.Join(why, ", ")})
}
