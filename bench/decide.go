package main

import (
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/fleet/fleettest"
)

// decisionCost is B8: what one decision of the Manager costs at fleet
// size, measured in this process on the planners the Manager calls. The
// fleet is n loaded containers, 20 per server, over 50 services; a
// decision places one more instance of each of 10 services and removes
// one of each of 10 others (PlanScale, then PlanShrink), on a copy of the
// inventory, as the Manager decides on its own.
func decisionCost(e *benchEnv) ([]Figure, error) {
	var out []Figure
	for _, n := range []int{1000, 10000, 50000} {
		inv, cat := fleettest.Loaded(n, 10, "bench")
		desired := func(s catalog.Service) int {
			i := slices.IndexFunc(cat.Services, func(x catalog.Service) bool { return x.Name == s.Name })
			switch {
			case i < 10:
				return s.Replicas.Initial + 1
			case i < 20:
				return s.Replicas.Initial - 1
			}
			return s.Replicas.Initial
		}
		var samples []time.Duration
		for range max(e.runs, 5) {
			work := inv.Clone()
			runtime.GC() // the copies' garbage is not the decision's
			start := time.Now()
			add := fleet.PlanScale(&work, cat, "bench", fleet.Options{Desired: desired})
			remove := fleet.PlanShrink(&work, cat, desired)
			samples = append(samples, time.Since(start))
			if len(add.Starts) != 10 || len(remove.Destroys) != 10 {
				return nil, fmt.Errorf("a decision at %d containers planned %d starts and %d removals, want 10 and 10", n, len(add.Starts), len(remove.Destroys))
			}
		}
		f := summarize(fmt.Sprintf("B8.%dk", n/1000), fmt.Sprintf("one decision at %d containers on %d servers (10 to place, 10 to remove)", n, n/20), samples)
		if n == 10000 {
			f.Target = 20 * time.Millisecond
		}
		if len(out) > 0 {
			prev := out[len(out)-1]
			f.Baseline = prev.ID
			f.Note = fmt.Sprintf("%d× the containers of %s for %.1f× its time (linear growth: ≤ %d×)",
				n/sizeOf(prev), prev.ID, float64(f.P50)/float64(prev.P50), n/sizeOf(prev))
		}
		out = append(out, f)
	}
	return out, nil
}

// sizeOf is the fleet size of a B8 figure.
func sizeOf(f Figure) int {
	var k int
	_, _ = fmt.Sscanf(f.ID, "B8.%dk", &k)
	return k * 1000
}
