package fleet

import (
	"fmt"
	"strings"
)

// provisionStrategy comes after the shrink: what the catalog asks that no operation
// before was named for (a new catalog, a service below desired after its
// back-off, instances a node lost) is placed in one Provision operation.
// The warm pool's refill joins it when the refill may run now
// (refillOpen), so that a fleet brought up from nothing is one operation.
func provisionStrategy(d *decider) {
	missing, _ := d.missing()
	var services, why []string
	for _, s := range d.s.Catalog.Services {
		if missing[s.Name] > 0 && d.open(s.Name) {
			services = append(services, s.Name)
			why = append(why, fmt.Sprintf("%s %d", s.Name, missing[s.Name]))
		}
	}
	if len(services) == 0 {
		return
	}
	plan := d.place(services, refillOpen(d))
	if plan.Empty() {
		return
	}
	reason := "below desired: " + strings.Join(why, ", ")
	if n := poolStarts(plan); n > 0 {
		reason += fmt.Sprintf("; warm pool %d below its size %d", n, d.s.Catalog.Manager.PoolTotal())
	}
	d.add(Op{Kind: KindProvision, Place: plan, Keys: plan.Keys(), Reason: reason})
}

// poolStarts counts the warm-pool containers a plan starts.
func poolStarts(p Plan) int {
	n := 0
	for _, c := range p.Starts {
		if c.Service == "" {
			n++
		}
	}
	return n
}
