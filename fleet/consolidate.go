package fleet

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/msm-project/msm/catalog"
)

// PlanConsolidation picks a server to drain so that the fleet uses one
// server less: the least-used ready server whose every container fits on
// the other ready servers (slots and a free port each, placed greedily).
// It returns "" when no server can be released that way.
func PlanConsolidation(inv *Inventory, cat *catalog.Catalog) string {
	slots := slotsTable(cat)
	var ready []*Server
	for i := range inv.Servers {
		s := &inv.Servers[i]
		if s.State == ServerReady {
			ready = append(ready, s)
		}
		if s.State == ServerDraining || s.State == ServerLaunching || s.State == ServerLost {
			return "" // one change at a time
		}
	}
	if len(ready) < 2 {
		return ""
	}
	v := newView(inv, slots)
	// Least used first; on a tie, the later server (the one added last).
	slices.SortStableFunc(ready, func(a, b *Server) int {
		if n := cmp.Compare(v.used[a.ID], v.used[b.ID]); n != 0 {
			return n
		}
		return -cmp.Compare(a.ID, b.ID)
	})
	for _, cand := range ready {
		if len(v.on[cand.ID]) == 0 {
			continue // an empty server is released by Shrink
		}
		free := map[string]int{}
		ports := map[string]int{}
		for _, s := range ready {
			if s.ID == cand.ID {
				continue
			}
			free[s.ID] = s.Slots - v.used[s.ID]
			if p, err := v.portsOf(s.ID); err == nil {
				ports[s.ID] = p.free()
			}
		}
		fits := true
		for _, i := range v.on[cand.ID] {
			need := slotsOf(inv.Containers[i].Service, slots)
			placed := false
			for _, s := range ready {
				if s.ID != cand.ID && free[s.ID] >= need && ports[s.ID] > 0 {
					free[s.ID] -= need
					ports[s.ID]--
					placed = true
					break
				}
			}
			if !placed {
				fits = false
				break
			}
		}
		if fits {
			return cand.ID
		}
		return "" // only the least-used server is a candidate
	}
	return ""
}

// consolidateStrategy comes last, and only when nothing else runs or was
// decided: with the consolidation policy on, the least-used server whose
// every container fits on the others is marked draining; the next
// decision rearranges it and a Shrink releases it.
func consolidateStrategy(d *decider) {
	if !d.s.Catalog.Manager.Consolidate || len(d.s.Running) > 0 || len(d.d.Ops) > 0 {
		return
	}
	id := PlanConsolidation(&d.work, d.s.Catalog)
	if id == "" {
		return
	}
	n := len(d.work.OnServer(id))
	d.work.Server(id).State = ServerDraining
	d.add(Op{Kind: KindConsolidate, Name: id, Drain: id, Keys: Keys{Servers: []string{id}, On: []string{id}},
		Reason: fmt.Sprintf("%s is the least used server and the others have room for its %d container(s)", id, n)})
}
