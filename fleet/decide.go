package fleet

import (
	"slices"
	"strings"
	"time"

	"github.com/msm-project/msm/catalog"
)

// Decide is the Manager's decision as data: from its state and the time
// now, the operations the fleet needs, each with its kind, its plan, why,
// and the keys it holds. It never changes s.Inventory: the Manager records
// the decision with Inventory.Apply before it runs the operations.
//
// The strategies run in priority order, one file each: recover
// (recover.go), rearrange a draining server (rearrange.go), extend
// (extend.go), roll a service to a new revision (roll.go), shrink and
// release (shrink.go: before the refill, so that a
// surplus instance returns to a short pool instead of a new container
// being started for it), provision what the catalog asks (provision.go),
// refill the warm pool (refill.go), consolidate (consolidate.go). Each works on what the ones before left: a service, the
// warm pool or a server an earlier operation (running, or decided here)
// holds is left alone, so no two operations ever hold one key and any that
// are decided may run side by side.
func Decide(s State, now time.Time) Decision {
	d := newDecider(s, now)
	for _, strategy := range []func(*decider){recoverStrategy, rearrangeStrategy, extendStrategy, rollStrategy, shrinkStrategy, provisionStrategy, refillStrategy, consolidateStrategy} {
		strategy(d)
	}
	return d.result()
}

// State is what a decision reads. Nothing in it is changed.
type State struct {
	Inventory *Inventory
	Catalog   *catalog.Catalog
	// Manager names the new containers and servers (<manager>-c<n>, -s<n>).
	Manager string
	// Desired is how many instances a service should have; nil means its
	// initial replicas.
	Desired func(catalog.Service) int
	// Backoff holds services (the warm pool is "") in crash-loop back-off
	// until their time.
	Backoff []Hold
	// Extending are the services whose desired instances an extension
	// raised, Recovering those with a failed instance to replace: their
	// placements are named for it.
	Extending  []string
	Recovering []string
	// Running are the keys the operations in flight hold.
	Running []Keys
	// Limit caps the instances one operation places (0: no cap).
	Limit int
	// Revision is the revision a service's new instances are loaded with
	// (nil: none is kept); Rolls the services rolling to a new one.
	Revision func(service string) string
	Rolls    []Roll
	// Agents says agents follow their node (agents.go): a waiting
	// container whose agent is behind its node is replaced, not loaded.
	Agents bool
}

// Hold keeps a service from new instances until a time.
type Hold struct {
	Service string
	Until   time.Time
}

// Kind is what an operation does; the Manager runs each kind as its
// workflow (recover: Recover, rearrange: Rearrange, extend: Extend,
// provision and refill: Provision, shrink: Shrink; consolidate only marks
// a server draining, and the next decision rearranges it).
type Kind string

// Kinds of operations, in the order a decision considers them.
const (
	KindRecover     Kind = "recover"
	KindRearrange   Kind = "rearrange"
	KindExtend      Kind = "extend"
	KindProvision   Kind = "provision"
	KindRefill      Kind = "refill"
	KindShrink      Kind = "shrink"
	KindConsolidate Kind = "consolidate"
	// KindRoll places instances of a service's new revision (roll.go).
	KindRoll Kind = "roll"
)

// Op is one operation a decision starts.
type Op struct {
	Kind Kind `json:"kind"`
	// Name is what the operation is named for in its workflow ID: the
	// services it places ("web", "web+api"), the server it rearranges or
	// drains, "pool" or "all" for a shrink; "" for provision and refill.
	Name string `json:"name,omitempty"`
	// Reason says why, with the figures the decision used.
	Reason string `json:"reason"`
	// Place is the placement of recover, rearrange, extend, provision and
	// refill; Remove the removals of shrink; Drain the server consolidate
	// drains.
	Place  Plan       `json:"place,omitzero"`
	Remove ShrinkPlan `json:"remove,omitzero"`
	Drain  string     `json:"drain,omitempty"`
	Keys   Keys       `json:"keys"`
}

// Decision is what Decide returns.
type Decision struct {
	Ops []Op
	// Forget are failed server launches with nothing on them: forgotten,
	// so that the next launch is a new one.
	Forget []string
	// Seq and ServerSeq are the inventory's counters once the ops' new
	// containers and servers are numbered.
	Seq, ServerSeq int
	// Unplaced is the demand no server could take, with why.
	Unplaced []Unplaced
	// Capped says an operation reached the limit with demand left: decide
	// again at once.
	Capped bool
	// Extending and Recovering are what is still to be named: services
	// that an operation running or a back-off holds.
	Extending, Recovering []string

	// next is the working copy the strategies decided on: Apply of the
	// decision to the state's inventory makes the same (tests check it).
	next *Inventory
}

// Keys are what an operation holds while it runs.
type Keys struct {
	// Services are the services it adds or removes instances of.
	Services []string `json:"services,omitempty"`
	// Pool says it starts warm-pool containers, unloads instances into the
	// pool, or destroys waiting containers.
	Pool bool `json:"pool,omitempty"`
	// Took says it loads waiting containers: the pool is refilled once it
	// ends, so the refill never competes with its loads.
	Took bool `json:"took,omitempty"`
	// Servers are the servers it launches or releases: nothing else is
	// placed there meanwhile.
	Servers []string `json:"servers,omitempty"`
	// On are every server it has a step on: a server lost there ends those
	// steps.
	On []string `json:"on,omitempty"`
}

// Overlaps reports whether two operations would hold a key in common.
func (k Keys) Overlaps(o Keys) bool {
	return (k.Pool && o.Pool) || slices.ContainsFunc(k.Services, func(s string) bool { return slices.Contains(o.Services, s) }) ||
		slices.ContainsFunc(k.Servers, func(s string) bool { return slices.Contains(o.Servers, s) })
}

// Keys are what a placement holds. Taking a waiting container holds
// nothing but Took: the decision took it out of the pool, so no other
// decision can.
func (p Plan) Keys() Keys {
	k := Keys{Services: p.Services(), Took: len(p.Loads) > 0}
	for _, s := range p.Servers {
		k.Servers = append(k.Servers, s.ID)
		k.On = appendNew(k.On, s.ID)
	}
	for _, c := range p.Starts {
		k.Pool = k.Pool || c.Service == ""
	}
	for _, c := range slices.Concat(p.Starts, p.Loads) {
		k.On = appendNew(k.On, c.Server)
	}
	return k
}

// ContainerIDs are the IDs of the containers a placement starts or loads,
// in plan order.
func (p Plan) ContainerIDs() []string {
	ids := make([]string, 0, len(p.Starts)+len(p.Loads))
	for _, c := range slices.Concat(p.Starts, p.Loads) {
		ids = append(ids, c.ID)
	}
	return ids
}

// ContainerIDs are the IDs of the containers a shrink unloads or
// destroys, in plan order.
func (p ShrinkPlan) ContainerIDs() []string {
	ids := make([]string, 0, len(p.Unloads)+len(p.Destroys))
	for _, c := range slices.Concat(p.Unloads, p.Destroys) {
		ids = append(ids, c.ID)
	}
	return ids
}

// Keys are what a shrink holds.
func (p ShrinkPlan) Keys() Keys {
	k := Keys{Services: p.Services(), Pool: len(p.Unloads) > 0, Servers: slices.Clone(p.Release)}
	for _, c := range slices.Concat(p.Unloads, p.Destroys) {
		k.Pool = k.Pool || c.Service == ""
		k.On = appendNew(k.On, c.Server)
	}
	for _, s := range p.Release {
		k.On = appendNew(k.On, s)
	}
	return k
}

// Apply records a decision in inv, as the strategies recorded it on their
// copy: forgotten launches go, new servers are launching, new containers
// starting, loads loaded and not yet healthy, removals draining (unloads
// also unloading), a consolidated server draining.
func (inv *Inventory) Apply(d Decision) {
	for _, id := range d.Forget {
		inv.RemoveServer(id)
	}
	from := len(inv.Containers)
	for _, op := range d.Ops {
		for _, s := range op.Place.Servers {
			inv.AddServer(s)
		}
		inv.Containers = append(inv.Containers, op.Place.Starts...)
		for _, l := range op.Place.Loads {
			if c := inv.Container(l.ID); c != nil {
				c.Service, c.State, c.Healthy, c.Revision = l.Service, Loaded, false, l.Revision
			}
		}
		for _, u := range op.Remove.Unloads {
			if c := inv.Container(u.ID); c != nil {
				c.State, c.Unloading = Draining, true
			}
		}
		for _, r := range op.Remove.Destroys {
			if c := inv.Container(r.ID); c != nil {
				c.State = Draining
			}
		}
		if s := inv.Server(op.Drain); s != nil {
			s.State = ServerDraining
		}
	}
	// Containers stay in the order of their numbers (Container lookups
	// search by it); one operation's starts may interleave another's.
	slices.SortStableFunc(inv.Containers[from:], func(a, b Container) int { return SeqOf(a.ID) - SeqOf(b.ID) })
	inv.Seq, inv.ServerSeq = max(inv.Seq, d.Seq), max(inv.ServerSeq, d.ServerSeq)
}

// decider is one decision in the making: the strategies' shared scratch.
type decider struct {
	s   State
	now time.Time
	// work is the copy of the inventory the strategies record their plans
	// on, so each sees what the ones before took.
	work Inventory
	// services, pool and servers are the keys held so far, by the running
	// operations and the ones decided here; took says one of them loads
	// waiting containers.
	services []string
	pool     bool
	took     bool
	servers  []string
	// backoff are the services in back-off now; tried those a strategy
	// placed already (each service's demand is looked at once).
	backoff []string
	tried   []string
	// view is what the placements learnt of work in one walk, kept
	// current by each (built by the first).
	view *view
	// counted and onDraining are missing's last answer, made when the
	// decision had countedAt ops (each op changes them).
	counted, onDraining map[string]int
	countedAt           int
	d                   Decision
}

func newDecider(s State, now time.Time) *decider {
	d := &decider{s: s, now: now, work: s.Inventory.Clone()}
	if d.s.Desired == nil {
		d.s.Desired = func(c catalog.Service) int { return c.Replicas.Initial }
	}
	for _, b := range s.Backoff {
		if b.Until.After(now) {
			d.backoff = appendNew(d.backoff, b.Service)
		}
	}
	for _, k := range s.Running {
		d.claim(k)
	}
	// A launch that failed left a server with nothing on it: forget it, so
	// the next attempt launches anew (the event log keeps why).
	if s.Catalog.Manager.Launches() {
		held := d.work.perServer()
		for _, srv := range d.work.Servers {
			if srv.State == ServerFailed && held[srv.ID] == 0 {
				d.d.Forget = append(d.d.Forget, srv.ID)
			}
		}
		for _, id := range d.d.Forget {
			d.work.RemoveServer(id)
		}
	}
	return d
}

// claim records the keys of an operation running or decided.
func (d *decider) claim(k Keys) {
	for _, s := range k.Services {
		d.services = appendNew(d.services, s)
	}
	d.pool = d.pool || k.Pool
	d.took = d.took || k.Took
	for _, s := range k.Servers {
		d.servers = appendNew(d.servers, s)
	}
}

// held reports whether a service ("" the pool) gets nothing now: an
// operation holds it, or it is in back-off.
func (d *decider) held(service string) bool {
	if service == "" {
		return d.pool || slices.Contains(d.backoff, "")
	}
	return slices.Contains(d.services, service) || slices.Contains(d.backoff, service)
}

// open reports whether a strategy may place a service now: nothing holds
// it and no strategy before looked at it.
func (d *decider) open(service string) bool {
	return !d.held(service) && !slices.Contains(d.tried, service)
}

// openOf are the services of list a strategy may place now (open).
func (d *decider) openOf(list []string) []string {
	var out []string
	for _, s := range list {
		if d.open(s) {
			out = append(out, s)
		}
	}
	return out
}

// place plans the instances of the services named (and the pool's, with
// pool) on the working copy, everything else held, and returns the plan;
// what cannot be placed is the decision's Unplaced.
func (d *decider) place(services []string, pool bool) Plan {
	hold := slices.Clone(d.backoff)
	for _, s := range d.s.Catalog.Services {
		if !slices.Contains(services, s.Name) {
			hold = append(hold, s.Name)
		}
	}
	if !pool {
		hold = append(hold, "")
	}
	if d.view == nil {
		d.view = newView(&d.work, slotsTable(d.s.Catalog))
	}
	plan := planScale(&d.work, d.view, d.s.Catalog, d.s.Manager, Options{Desired: d.s.Desired, Hold: hold, Avoid: d.servers, Limit: d.s.Limit, Revision: d.s.Revision, Agents: d.s.Agents})
	d.tried = append(d.tried, services...)
	if pool {
		d.tried = append(d.tried, "")
	}
	d.d.Unplaced = append(d.d.Unplaced, plan.Unplaced...)
	d.d.Capped = d.d.Capped || plan.Capped
	return plan
}

// add records an operation decided here.
func (d *decider) add(op Op) {
	d.claim(op.Keys)
	d.d.Ops = append(d.d.Ops, op)
}

// missing counts, per service, the instances below desired once the
// drains are done (the demand a placement sees), and per service the
// instances on draining servers ("": the waiting containers there).
func (d *decider) missing() (missing, onDraining map[string]int) {
	if d.counted != nil && d.countedAt == len(d.d.Ops) {
		return d.counted, d.onDraining
	}
	defer func() { d.counted, d.onDraining, d.countedAt = missing, onDraining, len(d.d.Ops) }()
	draining := d.work.drainingServers()
	staying := map[string]int{}
	onDraining = map[string]int{}
	for _, c := range d.work.Containers {
		if c.Service == "" {
			if c.State == Waiting && draining[c.Server] {
				onDraining[""]++
			}
			continue
		}
		if c.stays(draining) {
			staying[c.Service]++
		} else if draining[c.Server] && c.State != Draining && c.State != Failed {
			onDraining[c.Service]++
		}
	}
	missing = map[string]int{}
	for _, s := range d.s.Catalog.Services {
		if n := d.s.Desired(s) - staying[s.Name]; n > 0 {
			missing[s.Name] = n
		}
	}
	return missing, onDraining
}

func (d *decider) result() Decision {
	d.d.Seq, d.d.ServerSeq = d.work.Seq, d.work.ServerSeq
	// What is still to be named is what a running operation or a back-off
	// holds; the rest was named now or needs nothing any more.
	keep := func(list []string, named Kind) []string {
		var out []string
		for _, s := range list {
			if d.held(s) && !d.named(named, s) {
				out = append(out, s)
			}
		}
		return out
	}
	d.d.Extending = keep(d.s.Extending, KindExtend)
	d.d.Recovering = keep(d.s.Recovering, KindRecover)
	d.d.next = &d.work
	return d.d
}

// named reports whether an operation of kind decided here places service.
func (d *decider) named(kind Kind, service string) bool {
	return slices.ContainsFunc(d.d.Ops, func(op Op) bool { return op.Kind == kind && slices.Contains(op.Keys.Services, service) })
}

// joinNames names an operation for the services it places.
func joinNames(services []string) string { return strings.Join(services, "+") }

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
