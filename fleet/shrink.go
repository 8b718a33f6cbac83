package fleet

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/msm-project/msm/catalog"
)

// ShrinkPlan is a decided removal: which containers go, whether each
// returns to the warm pool or is destroyed, and which servers are left
// empty and released.
type ShrinkPlan struct {
	// Unloads return to the warm pool (the service is unloaded, the
	// container stays, waiting).
	Unloads []Container `json:"unloads,omitempty"`
	// Destroys are stopped and removed, releasing their leases.
	Destroys []Container `json:"destroys,omitempty"`
	// Release are servers with no container left once the plan is done.
	Release []string `json:"release,omitempty"`
}

// Empty reports whether the plan changes nothing.
func (p ShrinkPlan) Empty() bool { return len(p.Unloads)+len(p.Destroys)+len(p.Release) == 0 }

// Services returns the services the plan removes instances of, in order.
func (p ShrinkPlan) Services() []string {
	var out []string
	for _, c := range slices.Concat(p.Unloads, p.Destroys) {
		if c.Service != "" && !slices.Contains(out, c.Service) {
			out = append(out, c.Service)
		}
	}
	return out
}

// PlanShrink decides how to bring every service down to desired (never
// below its min), and applies the
// decision to inv: the chosen containers become draining. It picks
// instances so that servers empty out first: those on the server with the
// fewest containers, the newest first. A removed instance returns to the
// warm pool while the pool is short, else it is destroyed; the instances of
// a service gone from the catalog all return to waiting (containers no
// longer needed wait to be reused; a pool above its size is not trimmed).
// Servers left with no container are released.
//
// Services named in hold ("" is the warm pool) are left as they are: an
// operation running side by side works on them.
func PlanShrink(inv *Inventory, cat *catalog.Catalog, desired func(catalog.Service) int, hold ...string) ShrinkPlan {
	return PlanShrinkWith(inv, cat, Options{Desired: desired, Hold: hold})
}

// PlanShrinkWith is PlanShrink with the options of a decision made while
// other operations run: the services (and pool) in o.Hold are left as they
// are, and no server in o.Avoid is released (an operation running beside
// it launches or already releases it).
func PlanShrinkWith(inv *Inventory, cat *catalog.Catalog, o Options) ShrinkPlan {
	var plan ShrinkPlan
	desired, hold := o.Desired, o.Hold
	if desired == nil {
		desired = func(s catalog.Service) int { return s.Replicas.Initial }
	}
	// pool counts each warm pool ("" the Manager's image's) as it fills.
	pool := map[string]int{}
	for _, p := range cat.Manager.Pools() {
		pool[p.Image] = inv.PoolOf(p.Image)
	}
	short := func(image string) bool { return pool[image] < cat.Manager.PoolSize(image) }
	draining := inv.drainingServers()
	// Agents behind their node are replaced (agents.go).
	var nodes map[string]string
	if o.Agents || anyAgents(o.Rolls) {
		nodes = inv.NodeVersions()
	}
	// One walk learns what the choices below need: each server's
	// containers not yet draining (it shrinks as victims are picked), and
	// each service's containers.
	onServer := map[string]int{}
	byService := map[string][]int{}
	for i, c := range inv.Containers {
		if c.State != Draining {
			onServer[c.Server]++
		}
		if c.Service != "" {
			byService[c.Service] = append(byService[c.Service], i)
		}
	}
	drain := func(c *Container) {
		if c.State != Draining {
			onServer[c.Server]--
		}
		c.State = Draining
	}
	// victims orders candidates: emptiest server first, newest first.
	// The keys are taken once per call (not per comparison): the order is
	// the one of the containers counted when the call is made.
	type victim struct {
		c       *Container
		on, seq int
	}
	victims := func(among []int, match func(Container) bool) []*Container {
		var vs []victim
		for _, i := range among {
			if c := &inv.Containers[i]; match(*c) {
				vs = append(vs, victim{c: c, on: onServer[c.Server], seq: SeqOf(c.ID)})
			}
		}
		slices.SortStableFunc(vs, func(a, b victim) int {
			if n := cmp.Compare(a.on, b.on); n != 0 {
				return n
			}
			return -cmp.Compare(a.seq, b.seq)
		})
		out := make([]*Container, len(vs))
		for i, v := range vs {
			out[i] = v.c
		}
		return out
	}
	inCatalog := map[string]bool{}
	held := func(service string) bool { return slices.Contains(hold, service) }
	for _, svc := range cat.Services {
		inCatalog[svc.Name] = true
		if held(svc.Name) {
			continue
		}
		want := max(desired(svc), svc.Replicas.Min)
		mine := byService[svc.Name]
		// Extend before destroy: the instances of a draining server go once
		// as many healthy ones serve elsewhere as the service wants.
		staying, stayingReady := 0, 0
		for _, i := range mine {
			c := inv.Containers[i]
			if !c.stays(draining) {
				continue
			}
			staying++
			if c.State == Loaded && c.Healthy {
				stayingReady++
			}
		}
		if stayingReady >= want {
			for _, c := range victims(mine, func(c Container) bool {
				return (c.State == Loaded || c.State == Starting) && draining[c.Server]
			}) {
				drain(c)
				plan.Destroys = append(plan.Destroys, *c)
			}
		}
		remove := func(c *Container) {
			// It returns to the pool of its image when that is short: a
			// container of a service's own image waits only in that
			// image's pool, else it is destroyed.
			// An agent behind its node does not go back to waiting.
			loaded := c.State == Loaded && !AgentBehind(*c, nodes)
			if short(c.Image) && loaded && o.PoolHeld {
				return // it goes to the pool once the pool is free
			}
			drain(c)
			staying--
			if short(c.Image) && loaded {
				c.Unloading = true
				plan.Unloads = append(plan.Unloads, *c)
				pool[c.Image]++
			} else {
				plan.Destroys = append(plan.Destroys, *c)
			}
		}
		serving := func(c Container) bool { return (c.State == Loaded || c.State == Starting) && !draining[c.Server] }
		// A roll removes old instances as the new ones serve, and the
		// surplus is of the old ones first; a paused one removes nothing
		// that its surge holds.
		roll := rollOf(o.Rolls, svc.Name)
		allow := 0
		if roll != nil {
			if roll.Paused && staying <= want+roll.Surge {
				continue
			}
			old := func(c Container) bool { return serving(c) && !roll.fresh(c, nodes) }
			var n RollCount
			for _, i := range mine {
				n.add(inv.Containers[i], *roll, o.Now, draining, nodes)
			}
			if k := n.rollRemovals(*roll, want); k > 0 && !roll.Paused {
				for _, c := range victims(mine, old)[:k] {
					remove(c)
				}
			}
			// Above desired by the roll's surge is the roll's to remove
			// (above, as the new instances serve); beyond it, the old first.
			if n.Stale > 0 {
				allow = roll.Surge
			}
			if surplus := staying - want - allow; surplus > 0 {
				olds := victims(mine, old)
				for _, c := range olds[:min(surplus, len(olds))] {
					remove(c)
				}
			}
		}
		surplus := staying - want - allow
		if surplus <= 0 {
			continue
		}
		for _, c := range victims(mine, serving)[:surplus] {
			remove(c)
		}
	}
	lost := map[string]bool{}
	for _, s := range inv.Servers {
		if s.State == ServerLost {
			lost[s.ID] = true
		}
	}
	// A reported crash serves nothing: its container is destroyed at once,
	// which frees its slot and port for the replacement. Those of a lost
	// server wait until it comes back and fences them.
	for i := range inv.Containers {
		c := &inv.Containers[i]
		if c.State == Failed && c.Crashed && !lost[c.Server] && !held(c.Service) {
			drain(c)
			plan.Destroys = append(plan.Destroys, *c)
		}
	}
	// A service gone from the catalog is no longer needed: its containers
	// go back to waiting (those of a draining server are destroyed, and
	// those of a service's own image unless its image's pool is short).
	for i := range inv.Containers {
		c := &inv.Containers[i]
		if c.Service == "" || (c.State != Loaded && c.State != Starting) || inCatalog[c.Service] || held(c.Service) {
			continue
		}
		loaded := c.State == Loaded && (c.Image == "" || short(c.Image))
		if loaded && !draining[c.Server] && o.PoolHeld {
			continue // it goes to the pool once the pool is free
		}
		drain(c)
		if loaded && !draining[c.Server] {
			c.Unloading = true
			plan.Unloads = append(plan.Unloads, *c)
			pool[c.Image]++
		} else {
			plan.Destroys = append(plan.Destroys, *c)
		}
	}
	// A waiting container replaced for its agent is no reason to release
	// its server: its replacement may wait there.
	renewed := map[string]bool{}
	if o.Agents && !held("") {
		shrinkAgents(inv, cat, nodes, draining, victims, func(c *Container) {
			drain(c)
			plan.Destroys = append(plan.Destroys, *c)
			renewed[c.ID] = true
		})
	}
	// Waiting containers of a draining server go once their image's pool
	// is full elsewhere.
	if len(draining) > 0 && !held("") {
		all := make([]int, len(inv.Containers))
		for i := range all {
			all[i] = i
		}
		full := map[string]bool{}
		for _, p := range cat.Manager.Pools() {
			full[p.Image] = inv.waitingOutside(p.Image) >= p.Size
		}
		for _, c := range victims(all, func(c Container) bool {
			return c.Service == "" && c.State == Waiting && draining[c.Server] && (full[c.Image] || cat.Manager.PoolSize(c.Image) == 0)
		}) {
			drain(c)
			plan.Destroys = append(plan.Destroys, *c)
		}
	}
	// A server whose every container is destroyed by this plan is released,
	// and so is a draining server with nothing left on it.
	destroyed := make(map[string]bool, len(plan.Destroys))
	notCrash := map[string]bool{} // servers with a destroy that is not a crash
	for _, d := range plan.Destroys {
		destroyed[d.ID] = true
		if !d.Crashed && !renewed[d.ID] {
			notCrash[d.Server] = true
		}
	}
	total, kept := map[string]int{}, map[string]bool{}
	for _, c := range inv.Containers {
		total[c.Server]++
		if !destroyed[c.ID] {
			kept[c.Server] = true
		}
	}
	for _, s := range inv.Servers {
		if slices.Contains(o.Avoid, s.ID) {
			continue
		}
		if s.State == ServerDraining && total[s.ID] == 0 {
			plan.Release = append(plan.Release, s.ID)
			continue
		}
		// A crash being replaced is no reason to release its server.
		if !kept[s.ID] && notCrash[s.ID] {
			plan.Release = append(plan.Release, s.ID)
		}
	}
	return plan
}

// SeqOf is the number at the end of a container ID (<manager>-c<n>).
func SeqOf(id string) int {
	n, mul := 0, 1
	for i := len(id) - 1; i >= 0 && id[i] >= '0' && id[i] <= '9'; i-- {
		n += int(id[i]-'0') * mul
		mul *= 10
	}
	return n
}

// waitingOutside counts the waiting containers of image that are not on a
// draining server.
func (inv *Inventory) waitingOutside(image string) int {
	n := 0
	for _, c := range inv.Containers {
		if c.Service == "" && c.State == Waiting && c.Image == image && !inv.draining(c) {
			n++
		}
	}
	return n
}

// shrinkStrategy comes after the urgent placements (recover, rearrange,
// extend) and before the provision and the refill: what is above desired
// (or crashed, or of a service gone from the catalog, or on a drained
// server once its replacements serve) goes in one Shrink operation,
// leaving alone what the operations running or decided hold. A surplus
// instance returns to a short pool (the refill then waits for it); while
// another operation holds the pool, nothing is unloaded into it.
func shrinkStrategy(d *decider) {
	hold := slices.Clone(d.services)
	if d.pool {
		hold = append(hold, "")
	}
	plan := PlanShrinkWith(&d.work, d.s.Catalog, Options{Desired: d.s.Desired, Hold: hold, Avoid: d.servers, PoolHeld: d.pool, Rolls: d.s.Rolls, Now: d.now, Agents: d.s.Agents})
	if plan.Empty() {
		return
	}
	name := "pool"
	if svcs := plan.Services(); len(svcs) == 1 {
		name = svcs[0]
	} else if len(svcs) > 1 {
		name = "all"
	}
	d.add(Op{Kind: KindShrink, Name: name, Remove: plan, Keys: plan.Keys(), Reason: shrinkReason(d, plan)})
}

// shrinkReason says why each container goes: above its service's desired,
// crashed, on a draining server, of a service gone from the catalog, or a
// waiting container of a drained server.
func shrinkReason(d *decider, plan ShrinkPlan) string {
	draining := d.work.drainingServers()
	var nodes map[string]string
	if d.s.Agents || anyAgents(d.s.Rolls) {
		nodes = d.work.NodeVersions()
	}
	inCatalog := map[string]bool{}
	for _, s := range d.s.Catalog.Services {
		inCatalog[s.Name] = true
	}
	var order []string
	count := map[string]int{}
	for _, c := range slices.Concat(plan.Unloads, plan.Destroys) {
		var why string
		switch {
		case c.Crashed:
			why = "crashed"
		case c.Service == "" && !draining[c.Server] && AgentBehind(c, nodes):
			why = "waiting with an agent of another version than its node's"
		case c.Service == "":
			why = "waiting on a drained server"
		case draining[c.Server]:
			why = "moved off " + c.Server
		case !inCatalog[c.Service]:
			why = c.Service + " gone from the catalog"
		case rollOf(d.s.Rolls, c.Service) != nil && c.Revision != rollOf(d.s.Rolls, c.Service).Revision:
			why = c.Service + " replaced by revision " + rollOf(d.s.Rolls, c.Service).Revision
		case rollOf(d.s.Rolls, c.Service) != nil && !rollOf(d.s.Rolls, c.Service).fresh(c, nodes):
			why = c.Service + " replaced on an agent of its node's version"
		default:
			why = c.Service + " above desired"
		}
		if count[why] == 0 {
			order = append(order, why)
		}
		count[why]++
	}
	var parts []string
	for _, why := range order {
		parts = append(parts, fmt.Sprintf("%s: %d", why, count[why]))
	}
	if len(plan.Release) > 0 {
		parts = append(parts, "left empty: "+strings.Join(plan.Release, ", "))
	}
	return strings.Join(parts, "; ")
}
