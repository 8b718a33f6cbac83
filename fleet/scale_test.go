package fleet_test

import (
	"fmt"
	"testing"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/fleet/fleettest"
)

var scales = []int{1000, 10000, 50000}

func BenchmarkPlanProvision(b *testing.B) {
	for _, n := range scales {
		inv, c := fleettest.Loaded(n, 0, "m")
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				work := inv.Clone()
				fleet.PlanProvision(&work, c, "m")
			}
		})
	}
}

func BenchmarkPlanShrink(b *testing.B) {
	for _, n := range scales {
		inv, c := fleettest.Loaded(n, 0, "m")
		// One fewer instance of each of the 50 services: 50 removals.
		desired := func(s catalog.Service) int { return s.Replicas.Initial - 1 }
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				work := inv.Clone()
				p := fleet.PlanShrink(&work, c, desired)
				if len(p.Destroys) != 50 {
					b.Fatalf("%d destroys, want 50", len(p.Destroys))
				}
			}
		})
	}
}
