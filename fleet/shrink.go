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
func (p ShrinkPlan) Empty() bool { return len(p.Unloads)+len(p.Destroys) == 0 }

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
// below its min) and the warm pool down to its size, and applies the
// decision to inv: the chosen containers become draining. It picks
// instances so that servers empty out first: those on the server with the
// fewest containers, the newest first. A removed instance returns to the
// warm pool while the pool is short, else it is destroyed. Servers left
// with no container are released.
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
			return -cmp.Compare(seqOf(a.ID), seqOf(b.ID))
		})
		return out
	}
	for _, svc := range cat.Services {
		want := max(desired(svc), svc.Replicas.Min)
		assigned, _ := inv.Instances(svc.Name)
		surplus := assigned - want
		if surplus <= 0 {
			continue
		}
		for _, c := range victims(func(c Container) bool {
			return c.Service == svc.Name && (c.State == Loaded || c.State == Starting)
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
	if extra := pool - cat.Manager.WarmPool; extra > 0 {
		for _, c := range victims(func(c Container) bool { return c.Service == "" && c.State == Waiting })[:min(extra, inv.waitingCount())] {
			c.State = Draining
			plan.Destroys = append(plan.Destroys, *c)
		}
	}
	// A server whose every container is destroyed by this plan is released.
	for _, s := range inv.Servers {
		kept := false
		for _, c := range inv.Containers {
			if c.Server == s.ID && !slices.ContainsFunc(plan.Destroys, func(d Container) bool { return d.ID == c.ID }) {
				kept = true
				break
			}
		}
		if !kept && slices.ContainsFunc(plan.Destroys, func(d Container) bool { return d.Server == s.ID }) {
			plan.Release = append(plan.Release, s.ID)
		}
	}
	return plan
}

func (inv *Inventory) waitingCount() int {
	n := 0
	for _, c := range inv.Containers {
		if c.Service == "" && c.State == Waiting {
			n++
		}
	}
	return n
}

// seqOf is the number at the end of a container ID (<manager>-c<n>).
func seqOf(id string) int {
	n, mul := 0, 1
	for i := len(id) - 1; i >= 0 && id[i] >= '0' && id[i] <= '9'; i-- {
		n += int(id[i]-'0') * mul
		mul *= 10
	}
	return n
}
