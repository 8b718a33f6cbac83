package fleet

import "fmt"

// extendStrategy comes third: each service an extension raised (an
// overload report, an operator, the autoscaler) gets its own Extend
// operation, so that extensions of several services run side by side. One
// placement serves them all (the fleet is looked at once), split per
// service; a server it launches goes with the first service placed there.
func extendStrategy(d *decider) {
	var services []string
	for _, s := range d.s.Extending {
		if d.open(s) {
			services = append(services, s)
		}
	}
	if len(services) == 0 {
		return
	}
	missing, _ := d.missing()
	plan := d.place(services, false)
	for _, p := range plan.split() {
		k := p.Keys()
		s := ""
		if len(k.Services) > 0 {
			s = k.Services[0]
		}
		d.add(Op{Kind: KindExtend, Name: s, Place: p, Keys: k,
			Reason: fmt.Sprintf("%s: %d instance(s) below its desired %d", s, missing[s], d.desired(s))})
	}
}

// split divides a plan per service, in the order of the services' first
// instances; each server to launch goes with the first plan that places
// an instance on it.
func (p Plan) split() []Plan {
	var out []Plan
	at := map[string]int{}
	of := func(service string) *Plan {
		i, ok := at[service]
		if !ok {
			i = len(out)
			at[service] = i
			out = append(out, Plan{})
		}
		return &out[i]
	}
	launched := map[string]bool{}
	for _, s := range p.Servers {
		launched[s.ID] = true
	}
	for _, c := range p.Loads {
		q := of(c.Service)
		q.Loads = append(q.Loads, c)
	}
	for _, c := range p.Starts {
		q := of(c.Service)
		q.Starts = append(q.Starts, c)
		if launched[c.Server] {
			launched[c.Server] = false
			for _, s := range p.Servers {
				if s.ID == c.Server {
					q.Servers = append(q.Servers, s)
				}
			}
		}
	}
	// A server launched with nothing placed on it (its port range could
	// not lease) still goes with an operation, which releases it.
	for _, s := range p.Servers {
		if launched[s.ID] {
			if len(out) == 0 {
				out = append(out, Plan{})
			}
			out[0].Servers = append(out[0].Servers, s)
		}
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
