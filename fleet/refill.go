package fleet

import "fmt"

// refillStrategy comes last among placements: the warm pool is brought
// back to its size by an operation of its own, unless another operation
// holds the pool or loads waiting containers (running, or decided now):
// then the refill is the decision's made when that one ends, so that an
// extension or a recovery is one load, not a load and a container start,
// and never competes with the refill.
func refillStrategy(d *decider) {
	if !refillOpen(d) {
		return
	}
	before := d.work.Pooled(d.s.Catalog)
	plan := d.place(nil, true)
	if plan.Empty() {
		return
	}
	d.add(Op{Kind: KindRefill, Place: plan, Keys: plan.Keys(),
		Reason: fmt.Sprintf("warm pool %d below its size %d", before, d.s.Catalog.Manager.PoolTotal())})
}

// refillOpen reports whether the warm pool (every pool: the Manager's
// image's and each service image's) may be refilled now.
func refillOpen(d *decider) bool {
	return d.open("") && !d.took && d.s.Catalog.Manager.PoolTotal() > 0
}
