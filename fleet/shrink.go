package fleet

import (
	"cmp"
	"slices"

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
func PlanShrink(inv *Inventory, cat *catalog.Catalog, desired func(catalog.Service) int) ShrinkPlan {
	var plan ShrinkPlan
	if desired == nil {
		desired = func(s catalog.Service) int { return s.Replicas.Initial }
	}
	pool := inv.WarmPool()
	onServer := func(server string) int {
		n := 0
		for _, c := range inv.Containers {
			if c.Server == server && c.State != Draining {
				n++
			}
		}
		return n
	}
	// victims orders candidates: emptiest server first, newest first.
	victims := func(match func(Container) bool) []*Container {
		var out []*Container
		for i := range inv.Containers {
			if match(inv.Containers[i]) {
				out = append(out, &inv.Containers[i])
			}
		}
		slices.SortStableFunc(out, func(a, b *Container) int {
			if n := cmp.Compare(onServer(a.Server), onServer(b.Server)); n != 0 {
				return n
			}
			return -cmp.Compare(SeqOf(a.ID), SeqOf(b.ID))
		})
		return out
	}
	for _, svc := range cat.Services {
		want := max(desired(svc), svc.Replicas.Min)
		// Extend before destroy: the instances of a draining server go once
		// as many healthy ones serve elsewhere as the service wants.
		staying, stayingReady := inv.Staying(svc.Name)
		if stayingReady >= want {
			for _, c := range victims(func(c Container) bool {
				return c.Service == svc.Name && (c.State == Loaded || c.State == Starting) && inv.draining(c)
			}) {
				c.State = Draining
				plan.Destroys = append(plan.Destroys, *c)
			}
		}
		surplus := staying - want
		if surplus <= 0 {
			continue
		}
		for _, c := range victims(func(c Container) bool {
			return c.Service == svc.Name && (c.State == Loaded || c.State == Starting) && !inv.draining(c)
		})[:surplus] {
			loaded := c.State == Loaded
			c.State = Draining
			if pool < cat.Manager.WarmPool && loaded {
				plan.Unloads = append(plan.Unloads, *c)
				pool++
			} else {
				plan.Destroys = append(plan.Destroys, *c)
			}
		}
	}
	// A reported crash serves nothing: its container is destroyed at once,
	// which frees its slot and port for the replacement. Those of a lost
	// server wait until it comes back and fences them.
	for i := range inv.Containers {
		c := &inv.Containers[i]
		if c.State == Failed && c.Crashed && !inv.lost(*c) {
			c.State = Draining
			plan.Destroys = append(plan.Destroys, *c)
		}
	}
	// A service gone from the catalog is no longer needed: its containers
	// go back to waiting (those of a draining server are destroyed).
	for i := range inv.Containers {
		c := &inv.Containers[i]
		if c.Service == "" || (c.State != Loaded && c.State != Starting) || slices.ContainsFunc(cat.Services, func(s catalog.Service) bool { return s.Name == c.Service }) {
			continue
		}
		loaded := c.State == Loaded
		c.State = Draining
		if loaded && !inv.draining(*c) {
			plan.Unloads = append(plan.Unloads, *c)
			pool++
		} else {
			plan.Destroys = append(plan.Destroys, *c)
		}
	}
	// Waiting containers of a draining server go once the pool is full
	// elsewhere.
	if inv.waitingOutside() >= cat.Manager.WarmPool {
		for _, c := range victims(func(c Container) bool { return c.Service == "" && c.State == Waiting && inv.draining(c) }) {
			c.State = Draining
			plan.Destroys = append(plan.Destroys, *c)
		}
	}
	// A server whose every container is destroyed by this plan is released,
	// and so is a draining server with nothing left on it.
	for _, s := range inv.Servers {
		if s.State == ServerDraining && len(inv.OnServer(s.ID)) == 0 {
			plan.Release = append(plan.Release, s.ID)
			continue
		}
		kept := false
		for _, c := range inv.Containers {
			if c.Server == s.ID && !slices.ContainsFunc(plan.Destroys, func(d Container) bool { return d.ID == c.ID }) {
				kept = true
				break
			}
		}
		// A crash being replaced is no reason to release its server.
		if !kept && slices.ContainsFunc(plan.Destroys, func(d Container) bool { return d.Server == s.ID && !d.Crashed }) {
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

// lost reports whether a container sits on a lost server.
func (inv *Inventory) lost(c Container) bool {
	s := inv.Server(c.Server)
	return s != nil && s.State == ServerLost
}

// waitingOutside counts waiting containers that are not on a draining server.
func (inv *Inventory) waitingOutside() int {
	n := 0
	for _, c := range inv.Containers {
		if c.Service == "" && c.State == Waiting && !inv.draining(c) {
			n++
		}
	}
	return n
}
