package fleet

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/msm-project/msm/catalog"
)

// TestPlacementProperties drives PlanProvision through random catalogs and
// random histories (plans, lost and destroyed containers, ports found held
// by other processes, servers coming up or failing, catalog changes) and
// checks after every step that invariant 1 and the slot limit hold, that a
// plan places exactly the missing demand or says why not, that deciding
// again decides nothing, and that no container ID is ever reused.
func TestPlacementProperties(t *testing.T) {
	runs, steps := 400, 40
	if testing.Short() {
		runs = 50
	}
	for seed := int64(1); seed <= int64(runs); seed++ {
		w := newWorld(seed)
		for step := 0; step < steps; step++ {
			what := w.step()
			if problems := w.problems(); len(problems) > 0 {
				t.Fatalf("seed %d, step %d (%s):\n  %s\ncatalog: %+v\ninventory: %+v\nhistory:\n  %s",
					seed, step, what, strings.Join(problems, "\n  "), w.cat, w.inv, strings.Join(w.history, "\n  "))
			}
		}
	}
}

type world struct {
	rnd     *rand.Rand
	cat     *catalog.Catalog
	inv     Inventory
	ids     map[string]bool // every container ID ever handed out
	names   int             // services ever named, so names are not reused
	history []string
	// set by a plan step, checked by problems
	plan   *Plan
	before Inventory
}

func newWorld(seed int64) *world {
	rnd := rand.New(rand.NewSource(seed))
	c := &catalog.Catalog{Manager: catalog.Manager{Kind: catalog.KindStandalone, WarmPool: rnd.Intn(4)}}
	for i := range 1 + rnd.Intn(4) {
		slots := 1 + rnd.Intn(5)
		first := 20000 + 100*i
		if rnd.Intn(3) == 0 {
			first = 20000 // the same range on several servers is fine
		}
		c.Manager.Servers = append(c.Manager.Servers, catalog.Server{
			Name:    fmt.Sprintf("s%d", i+1),
			Address: fmt.Sprintf("10.0.0.%d", i+1),
			Slots:   slots,
			Ports:   catalog.PortRange{First: first, Last: first + slots - 1 + rnd.Intn(4)},
		})
	}
	// Listed in an order that is not the name order, sometimes.
	rnd.Shuffle(len(c.Manager.Servers), func(i, j int) {
		c.Manager.Servers[i], c.Manager.Servers[j] = c.Manager.Servers[j], c.Manager.Servers[i]
	})
	n := rnd.Intn(5)
	for i := range n {
		c.Services = append(c.Services, randomService(rnd, fmt.Sprintf("svc%d", i+1)))
	}
	c.Default()
	return &world{rnd: rnd, cat: c, ids: map[string]bool{}, names: n}
}

func randomService(rnd *rand.Rand, name string) catalog.Service {
	n := rnd.Intn(5)
	return catalog.Service{Name: name, Command: "/bin/true", Slots: 1 + rnd.Intn(3),
		Replicas: catalog.Replicas{Min: n, Initial: n, Max: n + 2}}
}

func (w *world) log(format string, args ...any) string {
	s := fmt.Sprintf(format, args...)
	w.history = append(w.history, s)
	return s
}

// step does one random thing to the world and says what.
func (w *world) step() string {
	w.plan = nil
	r := w.rnd
	inv := &w.inv
	switch k := r.Intn(10); {
	case k < 4:
		w.before = cloneInventory(*inv)
		p := PlanProvision(inv, w.cat, mgr)
		w.plan = &p
		return w.log("plan: %d servers, %d starts, %d loads, unplaced %+v", len(p.Servers), len(p.Starts), len(p.Loads), p.Unplaced)
	case k == 4:
		var gone []string
		for _, c := range inv.Containers {
			if r.Intn(3) == 0 {
				gone = append(gone, c.ID)
			}
		}
		for _, id := range gone {
			inv.RemoveContainer(id)
		}
		return w.log("remove %v", gone)
	case k == 5:
		if len(inv.Servers) == 0 {
			return w.log("block: no server")
		}
		s := &inv.Servers[r.Intn(len(inv.Servers))]
		port := s.Ports.First + r.Intn(s.Ports.Size())
		if !slices.Contains(s.Blocked, port) {
			s.Blocked = append(s.Blocked, port)
		}
		// As the Manager does when a start finds its port taken: the
		// container never got the port, so its record goes.
		var gone []string
		for _, c := range inv.OnServer(s.ID) {
			if c.Port == port {
				gone = append(gone, c.ID)
			}
		}
		for _, id := range gone {
			inv.RemoveContainer(id)
		}
		return w.log("block %s:%d, removing %v", s.ID, port, gone)
	case k == 6:
		for i := range inv.Servers {
			s := &inv.Servers[i]
			if s.State != ServerLaunching {
				continue
			}
			switch r.Intn(5) {
			case 0:
				s.State = ServerFailed
			case 1, 2, 3:
				s.State = ServerReady
			}
		}
		return w.log("servers launch")
	case k == 7:
		for i := range inv.Containers {
			c := &inv.Containers[i]
			switch {
			case c.State == Starting && c.Service == "" && r.Intn(2) == 0:
				c.State, c.Registered = Waiting, true
			case c.State == Starting && c.Service != "" && r.Intn(2) == 0:
				c.State, c.Registered = Loaded, true
			case c.State == Loaded && !c.Healthy && r.Intn(2) == 0:
				c.Healthy = true
			case r.Intn(12) == 0:
				c.State, c.Healthy = Failed, false
			case r.Intn(12) == 0:
				c.State = Draining
			}
		}
		return w.log("containers move on")
	case k == 8:
		if len(w.cat.Services) > 0 && r.Intn(2) == 0 {
			s := &w.cat.Services[r.Intn(len(w.cat.Services))]
			s.Replicas.Initial = r.Intn(6)
			s.Replicas.Max = s.Replicas.Initial + 2
			return w.log("scale %s to %d", s.Name, s.Replicas.Initial)
		}
		if r.Intn(2) == 0 {
			w.cat.Manager.WarmPool = r.Intn(4)
			return w.log("warm pool %d", w.cat.Manager.WarmPool)
		}
		w.names++
		s := randomService(r, fmt.Sprintf("svc%d", w.names))
		w.cat.Services = append(w.cat.Services, s)
		return w.log("add %s: %d x %d slots", s.Name, s.Replicas.Initial, s.Slots)
	default:
		// A catalog service removed: its containers stay until shrunk, and
		// still use their slots (counted as one each, as for any unknown
		// service).
		if len(w.cat.Services) == 0 {
			return w.log("remove service: none")
		}
		i := w.rnd.Intn(len(w.cat.Services))
		name := w.cat.Services[i].Name
		if w.cat.Services[i].Slots > 1 {
			// Dropping a multi-slot service from the catalog would
			// re-count its containers at one slot, which hides overuse
			// rather than causing it; keep the test's slot count honest.
			return w.log("remove service %s: skipped (multi-slot)", name)
		}
		w.cat.Services = slices.Delete(w.cat.Services, i, i+1)
		return w.log("remove service %s", name)
	}
}

// problems checks the world after a step.
func (w *world) problems() []string {
	out := inventoryProblems(&w.inv, w.cat)
	if w.plan == nil {
		return out
	}
	p := *w.plan
	inv := &w.inv
	slots := map[string]int{}
	for _, s := range w.cat.Services {
		slots[s.Name] = s.Slots
	}
	need := func(service string) int { return max(slots[service], 1) }

	// IDs are new, and recorded.
	for _, c := range p.Starts {
		if w.ids[c.ID] {
			out = append(out, fmt.Sprintf("container ID %s handed out again", c.ID))
		}
		w.ids[c.ID] = true
		if got := inv.Container(c.ID); got == nil || *got != c || got.State != Starting {
			out = append(out, fmt.Sprintf("start %+v is not recorded as starting: %+v", c, got))
		}
	}
	for _, c := range p.Loads {
		if got := inv.Container(c.ID); got == nil || *got != c || got.State != Loaded || got.Healthy || got.Service == "" {
			out = append(out, fmt.Sprintf("load %+v is not recorded as loaded and not healthy: %+v", c, got))
		}
		if was := w.before.Container(c.ID); was == nil || was.State != Waiting {
			out = append(out, fmt.Sprintf("load %s was not a waiting container: %+v", c.ID, was))
		}
	}
	// Servers are launched from the catalog, once, and only when used.
	for _, s := range p.Servers {
		if w.before.Server(s.ID) != nil {
			out = append(out, fmt.Sprintf("server %s launched again", s.ID))
		}
		if !slices.ContainsFunc(w.cat.Manager.Servers, func(cs catalog.Server) bool { return cs.Name == s.ID }) {
			out = append(out, fmt.Sprintf("server %s is not in the catalog", s.ID))
		}
		if !slices.ContainsFunc(p.Starts, func(c Container) bool { return c.Server == s.ID }) {
			out = append(out, fmt.Sprintf("server %s launched for nothing", s.ID))
		}
	}
	// Nothing lands on a failed server.
	for _, c := range p.Starts {
		if s := inv.Server(c.Server); s != nil && s.State == ServerFailed {
			out = append(out, fmt.Sprintf("container %s started on failed server %s", c.ID, s.ID))
		}
	}

	// Exactly the missing demand is placed or reported, never more.
	unplaced := map[string]int{}
	for _, u := range p.Unplaced {
		unplaced[u.Service] += u.Count
		if u.Count <= 0 || u.Reason == "" {
			out = append(out, fmt.Sprintf("unplaced %+v says nothing", u))
		}
		out = append(out, w.roomFor(u, need(u.Service))...)
	}
	check := func(what string, want, was, now, left int) {
		target := max(want, was)
		if now > target {
			out = append(out, fmt.Sprintf("%s over-placed: %d, wanted %d (had %d)", what, now, want, was))
		}
		if now+left != target {
			out = append(out, fmt.Sprintf("%s: %d placed + %d unplaced, wanted %d (had %d)", what, now, left, want, was))
		}
	}
	for _, s := range w.cat.Services {
		was, _ := w.before.Instances(s.Name)
		now, _ := inv.Instances(s.Name)
		check("service "+s.Name, s.Replicas.Initial, was, now, unplaced[s.Name])
	}
	// Each load took a waiting container out of the pool before it was
	// refilled.
	check("warm pool", w.cat.Manager.WarmPool, w.before.WarmPool()-len(p.Loads), inv.WarmPool(), unplaced[""])

	// Deciding again decides nothing.
	again := cloneInventory(*inv)
	if p2 := PlanProvision(&again, w.cat, mgr); !p2.Empty() {
		out = append(out, fmt.Sprintf("second plan is not empty: %+v", p2))
	}
	return out
}

// roomFor reports room that an unplaced demand of need slots could have
// used: a server in use with the slots and a port, a listed server not yet
// in use, or (for a service) a waiting container on a ready server.
// Placement only ever takes room, so what is free after the plan was free
// when the demand was given up.
func (w *world) roomFor(u Unplaced, need int) []string {
	var out []string
	inv := &w.inv
	for _, s := range inv.Servers {
		if s.State == ServerFailed {
			continue
		}
		used, held := 0, map[int]bool{}
		for _, c := range inv.OnServer(s.ID) {
			used += max(w.slots(c.Service), 1)
			held[c.Port] = true
		}
		freePorts := 0
		for port := s.Ports.First; port <= s.Ports.Last; port++ {
			if !held[port] && !slices.Contains(s.Blocked, port) {
				freePorts++
			}
		}
		if s.Slots-used >= need && freePorts > 0 {
			out = append(out, fmt.Sprintf("unplaced %+v, but server %s has %d free slots and %d free ports", u, s.ID, s.Slots-used, freePorts))
		}
		if u.Service == "" || s.State != ServerReady {
			continue
		}
		for _, c := range inv.OnServer(s.ID) {
			if c.State == Waiting && c.Service == "" && s.Slots-used+1 >= need {
				out = append(out, fmt.Sprintf("unplaced %+v, but waiting container %s on %s could take it", u, c.ID, s.ID))
			}
		}
	}
	for _, cs := range w.cat.Manager.Servers {
		if inv.Server(cs.Name) == nil && cs.Slots >= need {
			out = append(out, fmt.Sprintf("unplaced %+v, but listed server %s is not in use", u, cs.Name))
		}
	}
	return out
}

func (w *world) slots(service string) int {
	for _, s := range w.cat.Services {
		if s.Name == service {
			return s.Slots
		}
	}
	return 0
}
