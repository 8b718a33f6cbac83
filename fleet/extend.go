package fleet

import (
	"fmt"
	"strings"
)

// extendStrategy comes third: each service an extension raised (an
// overload report, an operator, the autoscaler) gets its own Extend
// operation, so that extensions of several services run side by side. One
// placement serves them all (the fleet is looked at once), split per
// service; services placed on a server it launches share one operation,
// which launches it before their starts.
func extendStrategy(d *decider) {
	services := d.openOf(d.s.Extending)
	if len(services) == 0 {
		return
	}
	missing, _ := d.missing()
	plan := d.place(services, false)
	for _, p := range plan.split() {
		k := p.Keys()
		var why []string
		for _, s := range k.Services {
			why = append(why, fmt.Sprintf("%s: %d instance(s) below its desired %d", s, missing[s], d.desired(s)))
		}
		d.add(Op{Kind: KindExtend, Name: joinNames(k.Services), Place: p, Keys: k, Reason: strings.Join(why, "; ")})
	}
}

// split divides a plan per service, in the order of the services' first
// instances. A server the plan launches goes with the first service placed
// there, and so does every other service placed there: their starts need
// that launch, which one operation carries out before them.
func (p Plan) split() []Plan {
	group := map[string]int{} // service → its group
	var order []string        // services in order of their first instance
	at := func(service string) int {
		g, ok := group[service]
		if !ok {
			g = len(order)
			group[service] = g
			order = append(order, service)
		}
		return g
	}
	launched := map[string]bool{}
	for _, s := range p.Servers {
		launched[s.ID] = true
	}
	owner := map[string]int{} // launched server → the group launching it
	for _, c := range p.Loads {
		at(c.Service)
	}
	for _, c := range p.Starts {
		g := at(c.Service)
		if !launched[c.Server] {
			continue
		}
		o, ok := owner[c.Server]
		if !ok {
			owner[c.Server] = g
			continue
		}
		if o != g {
			// Join the launching group: relabel every member of g.
			for _, s := range order {
				if group[s] == g {
					group[s] = o
				}
			}
			for _, srv := range p.Servers {
				if og, ok := owner[srv.ID]; ok && og == g {
					owner[srv.ID] = o
				}
			}
		}
	}
	// Plans in order of their groups' first service.
	var out []Plan
	index := map[int]int{}
	planOf := func(service string) *Plan {
		g := group[service]
		i, ok := index[g]
		if !ok {
			i = len(out)
			index[g] = i
			out = append(out, Plan{})
		}
		return &out[i]
	}
	for _, s := range order {
		planOf(s)
	}
	for _, c := range p.Loads {
		q := planOf(c.Service)
		q.Loads = append(q.Loads, c)
	}
	for _, c := range p.Starts {
		q := planOf(c.Service)
		q.Starts = append(q.Starts, c)
	}
	for _, s := range p.Servers {
		g, ok := owner[s.ID]
		if !ok || len(out) == 0 {
			// Launched with nothing placed on it (its port range could
			// not lease): it still goes with an operation, which
			// releases it.
			if len(out) == 0 {
				out = append(out, Plan{})
			}
			out[0].Servers = append(out[0].Servers, s)
			continue
		}
		q := &out[index[g]]
		q.Servers = append(q.Servers, s)
	}
	return out
}

// desired is a service's desired instances, 0 if it left the catalog.
func (d *decider) desired(service string) int {
	for _, s := range d.s.Catalog.Services {
		if s.Name == service {
			return d.s.Desired(s)
		}
	}
	return 0
}
