package fleet

import (
	"fmt"
	"time"

	"github.com/msm-project/msm/catalog"
)

// Roll is a service rolling to a new revision, as a decision reads it:
// its instances of another revision are replaced, MaxSurge above desired
// at a time, each old one removed once enough of the new serve (the
// shrink's part), never more than MaxUnavailable healthy instances below
// desired. The seed's "extend, then destroy", applied to versions.
type Roll struct {
	Service string `json:"service"`
	// Revision is the revision the instances should run: the catalog's,
	// or while rolling back the one rolled from.
	Revision    string        `json:"revision"`
	Surge       int           `json:"surge"`
	Unavailable int           `json:"unavailable"`
	Grace       time.Duration `json:"grace"`
	// Paused: the roll neither adds nor removes until resumed.
	Paused bool `json:"paused,omitempty"`
	// Agents says it replaces the instances whose agent is behind their
	// node too (`msm upgrade agents`, agents.go): of the revision or not.
	Agents bool `json:"agents,omitempty"`
}

// fresh reports whether c runs what the roll rolls to: its revision, and
// with Agents an agent of its node's version (nodes from NodeVersions).
func (r Roll) fresh(c Container, nodes map[string]string) bool {
	return c.Revision == r.Revision && !(r.Agents && AgentBehind(c, nodes))
}

// RollCount is where a roll stands in an inventory.
type RollCount struct {
	// Fresh and Stale count the service's instances that stay (starting
	// or loaded, not draining, not failed, not on a draining server) of
	// the roll's revision and of another.
	Fresh, Stale int
	// Ready counts those healthy, a fresh one once healthy for the grace;
	// FreshReady the fresh ones among them.
	Ready, FreshReady int
}

// CountRoll counts the instances of r's service in inv at now.
func CountRoll(inv *Inventory, r Roll, now time.Time) RollCount {
	return CountRolls(inv, []Roll{r}, now)[0]
}

// CountRolls counts the instances of each roll's service in inv at now, in
// one walk of the inventory (a decision over many rolls does not walk it
// once per roll).
func CountRolls(inv *Inventory, rolls []Roll, now time.Time) []RollCount {
	out := make([]RollCount, len(rolls))
	if len(rolls) == 0 {
		return out
	}
	at := make(map[string]int, len(rolls))
	for i, r := range rolls {
		at[r.Service] = i
	}
	draining := inv.drainingServers()
	var nodes map[string]string
	if anyAgents(rolls) {
		nodes = inv.NodeVersions()
	}
	for _, c := range inv.Containers {
		if i, ok := at[c.Service]; ok {
			out[i].add(c, rolls[i], now, draining, nodes)
		}
	}
	return out
}

// add counts c, an instance of r's service, if it stays.
func (n *RollCount) add(c Container, r Roll, now time.Time, draining map[string]bool, nodes map[string]string) {
	if !c.stays(draining) {
		return
	}
	fresh := r.fresh(c, nodes)
	if fresh {
		n.Fresh++
	} else {
		n.Stale++
	}
	if c.State == Loaded && c.Healthy && (!fresh || now.Sub(c.ReadyAt) >= r.Grace) {
		n.Ready++
		if fresh {
			n.FreshReady++
		}
	}
}

// Waiting reports why a roll of a service that wants desired instances
// waits for the service, "" when it does not: it starts no instance of the
// new revision while fewer than desired − MaxUnavailable serve (failures
// being replaced come first).
func (n RollCount) Waiting(r Roll, desired int) string {
	if n.Stale > 0 && n.Ready < desired-r.Unavailable {
		return fmt.Sprintf("%d of %d instance(s) healthy, fewer than the %d the roll keeps serving: it waits until they are", n.Ready, desired, desired-r.Unavailable)
	}
	return ""
}

// rollSurge is how many instances of the new revision a roll starts now:
// up to MaxSurge above desired, and no more than are still to replace.
func (n RollCount) rollSurge(r Roll, desired int) int {
	if n.Stale == 0 || n.Waiting(r, desired) != "" {
		return 0
	}
	return max(0, min(desired+r.Surge-(n.Fresh+n.Stale), desired-n.Fresh))
}

// rollRemovals is how many old instances a roll removes now: as many as
// leave desired − MaxUnavailable healthy.
func (n RollCount) rollRemovals(r Roll, want int) int {
	return max(0, min(n.Stale, n.Ready-(want-r.Unavailable)))
}

// rollStrategy comes after the extensions and before the shrink: each
// service rolling to a new revision, not paused and not held, gets a Roll
// operation placing its next instances of the new revision (the shrink
// removes old ones as they serve). One instance at a time with the
// defaults: extend, wait until healthy for the grace, destroy one old.
func rollStrategy(d *decider) {
	// Placing one service's instances changes no other's counts: one
	// walk counts them all.
	counts := CountRolls(&d.work, d.s.Rolls, d.now)
	for i, r := range d.s.Rolls {
		if r.Paused || !d.open(r.Service) {
			continue
		}
		svc := d.catalogService(r.Service)
		if svc == nil {
			continue
		}
		desired := d.s.Desired(*svc)
		n := counts[i]
		k := n.rollSurge(r, desired)
		if k == 0 {
			continue
		}
		plan := d.placeUpTo(r.Service, n.Fresh+n.Stale+k)
		if plan.Empty() {
			continue
		}
		placed := len(plan.Starts) + len(plan.Loads)
		what, other := "revision "+r.Revision, "of another"
		if r.Agents {
			what, other = what+" on agents of their node's version", "behind"
		}
		d.add(Op{Kind: KindRoll, Name: r.Service, Place: plan, Keys: plan.Keys(),
			Reason: fmt.Sprintf("roll %s to %s: %d of %d instance(s) run it, %d %s to replace; %d new (max_surge %d, max_unavailable %d)",
				r.Service, what, n.Fresh, desired, n.Stale, other, placed, r.Surge, r.Unavailable)})
	}
}

// placeUpTo places instances of service until it has total that stay.
func (d *decider) placeUpTo(service string, total int) Plan {
	desired := d.s.Desired
	defer func() { d.s.Desired = desired }()
	d.s.Desired = func(s catalog.Service) int {
		if s.Name == service {
			return total
		}
		return desired(s)
	}
	return d.place([]string{service}, false)
}

// catalogService is the catalog's service of that name, or nil.
func (d *decider) catalogService(name string) *catalog.Service {
	for i := range d.s.Catalog.Services {
		if d.s.Catalog.Services[i].Name == name {
			return &d.s.Catalog.Services[i]
		}
	}
	return nil
}

// rollOf is the roll of service among rolls, or nil.
func rollOf(rolls []Roll, service string) *Roll {
	for i := range rolls {
		if rolls[i].Service == service {
			return &rolls[i]
		}
	}
	return nil
}
