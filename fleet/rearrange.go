package fleet

import (
	"fmt"
	"slices"
	"strings"
)

// rearrangeStrategy comes second: the instances on a draining server (and
// its waiting containers) are extended elsewhere first (the Shrink that destroys them waits until as
// many healthy ones serve elsewhere), in one Rearrange operation named for
// the server.
func rearrangeStrategy(d *decider) {
	if !slices.ContainsFunc(d.work.Servers, func(s Server) bool { return s.State == ServerDraining }) {
		return
	}
	missing, onDraining := d.missing()
	var services []string
	for _, s := range d.s.Catalog.Services {
		if onDraining[s.Name] > 0 && missing[s.Name] > 0 && d.open(s.Name) {
			services = append(services, s.Name)
		}
	}
	// The waiting containers there are moved too, when the pool may be
	// refilled now.
	pool := onDraining[""] > 0 && refillOpen(d)
	if len(services) == 0 && !pool {
		return
	}
	plan := d.place(services, pool)
	if plan.Empty() {
		return
	}
	var from []string
	for _, s := range d.work.Servers {
		if s.State == ServerDraining {
			from = append(from, s.ID)
		}
	}
	k := plan.Keys()
	var what []string
	for _, s := range k.Services {
		what = append(what, fmt.Sprintf("%s ×%d", s, onDraining[s]))
	}
	if n := poolStarts(plan); n > 0 {
		what = append(what, fmt.Sprintf("%d waiting", n))
	}
	d.add(Op{Kind: KindRearrange, Name: strings.Join(from, "+"), Place: plan, Keys: k,
		Reason: fmt.Sprintf("%s draining: move %s elsewhere, then destroy the old ones", strings.Join(from, ", "), strings.Join(what, ", "))})
}
