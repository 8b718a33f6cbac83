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
// size, measured in this process on fleet.Decide, the function the Manager
// calls, and Inventory.Apply, which records it. The fleet is n loaded
// containers, 20 per server, over 50 services; a decision extends 10
// services by one instance (10 Extend ops) and removes one instance of
// each of 10 others (one Shrink).
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
		var extending []string
		for _, s := range cat.Services[:10] {
			extending = append(extending, s.Name)
		}
		var samples []time.Duration
		for range max(e.runs, 5) {
			work := inv.Clone()
			runtime.GC() // the copy's garbage is not the decision's
			start := time.Now()
			d := fleet.Decide(fleet.State{Inventory: &work, Catalog: cat, Manager: "bench", Desired: desired, Extending: extending, Limit: 500}, time.Now())
			work.Apply(d)
			samples = append(samples, time.Since(start))
			starts, destroys, extends := 0, 0, 0
			for _, op := range d.Ops {
				starts += len(op.Place.Starts)
				destroys += len(op.Remove.Destroys)
				if op.Kind == fleet.KindExtend {
					extends++
				}
			}
			if starts != 10 || destroys != 10 || extends != 10 {
				return nil, fmt.Errorf("a decision at %d containers planned %d extensions, %d starts and %d removals, want 10, 10 and 10", n, extends, starts, destroys)
			}
		}
		f := summarize(fmt.Sprintf("B8.%dk", n/1000), fmt.Sprintf("one decision (fleet.Decide + Apply) at %d containers on %d servers: 10 extensions, 10 removals", n, n/20), samples)
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
