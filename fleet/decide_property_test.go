package fleet

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"

	"github.com/msm-project/msm/catalog"
)

// TestDecideProperties drives Decide through random fleets and random
// event sequences (crashes, extensions, scale-downs, drains, operations
// ending in any order, catalog changes), applying each decision and running
// its operations side by side, and checks after every step that no two
// running operations hold a key in common, that ports stay unique and slots
// within bounds (invariant 1), that Decide never changes its input and
// Apply records what it decided; and at the end, once every operation has
// ended and nothing more is decided, that every service is at desired or
// its shortfall is reported with a reason.
func TestDecideProperties(t *testing.T) {
	runs, steps := 300, 40
	if testing.Short() {
		runs = 40
	}
	for seed := int64(1); seed <= int64(runs); seed++ {
		w := newOpsWorld(seed)
		for step := 0; step < steps; step++ {
			what := w.step()
			if problems := w.problems(); len(problems) > 0 {
				t.Fatalf("seed %d, step %d (%s):\n  %s\ncatalog: %+v\ninventory: %+v\nhistory:\n  %s",
					seed, step, what, strings.Join(problems, "\n  "), w.cat, w.inv, strings.Join(w.history, "\n  "))
			}
		}
		if problems := w.settle(); len(problems) > 0 {
			t.Fatalf("seed %d, settled:\n  %s\ncatalog: %+v\ninventory: %+v\nhistory:\n  %s",
				seed, strings.Join(problems, "\n  "), w.cat, w.inv, strings.Join(w.history, "\n  "))
		}
	}
}

// opsWorld is a fleet whose operations run side by side: each decided op
// stays running until a step ends it, and then does all it planned.
type opsWorld struct {
	rnd        *rand.Rand
	cat        *catalog.Catalog
	inv        Inventory
	desired    map[string]int
	extending  []string
	recovering []string
	running    []Op
	history    []string
	last       Decision
	problem    []string
}

func newOpsWorld(seed int64) *opsWorld {
	base := newWorld(seed)
	return &opsWorld{rnd: base.rnd, cat: base.cat, desired: map[string]int{}}
}

func (w *opsWorld) log(format string, args ...any) string {
	s := fmt.Sprintf(format, args...)
	w.history = append(w.history, s)
	return s
}

func (w *opsWorld) want(s catalog.Service) int {
	if n, ok := w.desired[s.Name]; ok {
		return min(max(n, s.Replicas.Min), s.Replicas.Max)
	}
	return s.Replicas.Initial
}

// decide makes one decision, applies it and starts its operations.
func (w *opsWorld) decide() string {
	var running []Keys
	for _, op := range w.running {
		running = append(running, op.Keys)
	}
	before := w.inv.Clone()
	d := Decide(State{Inventory: &w.inv, Catalog: w.cat, Manager: mgr, Desired: w.want,
		Extending: w.extending, Recovering: w.recovering, Running: running, Limit: 3}, now)
	if a, b := asJSON(&before), asJSON(&w.inv); a != b {
		w.problem = append(w.problem, "Decide changed its input")
	}
	w.inv.Apply(d)
	if a, b := asJSON(d.next), asJSON(&w.inv); a != b {
		w.problem = append(w.problem, fmt.Sprintf("Apply made\n    %s\n  the strategies decided\n    %s", b, a))
	}
	w.extending, w.recovering = d.Extending, d.Recovering
	w.last = d
	var names []string
	for _, op := range d.Ops {
		if op.Kind == KindConsolidate {
			names = append(names, opString(op))
			continue // recorded: no operation runs
		}
		w.running = append(w.running, op)
		names = append(names, opString(op))
	}
	return w.log("decide: %s", strings.Join(names, " | "))
}

// end ends a running operation, which did all it planned.
func (w *opsWorld) end(i int) string {
	op := w.running[i]
	w.running = slices.Delete(w.running, i, i+1)
	inv := &w.inv
	for _, s := range op.Place.Servers {
		if srv := inv.Server(s.ID); srv != nil && srv.State == ServerLaunching {
			srv.State = ServerReady
		}
	}
	for _, p := range slices.Concat(op.Place.Starts, op.Place.Loads) {
		c := inv.Container(p.ID)
		if c == nil {
			continue
		}
		switch {
		case c.Service == "" && c.State == Starting:
			c.State, c.Registered = Waiting, true
		case c.Service != "" && (c.State == Starting || c.State == Loaded):
			c.State, c.Healthy, c.Registered = Loaded, true, true
		}
	}
	for _, u := range op.Remove.Unloads {
		if c := inv.Container(u.ID); c != nil {
			c.State, c.Service, c.Healthy, c.Unloading = Waiting, "", false, false
		}
	}
	for _, r := range op.Remove.Destroys {
		inv.RemoveContainer(r.ID)
	}
	for _, s := range op.Remove.Release {
		if len(inv.OnServer(s)) == 0 {
			inv.RemoveServer(s)
		}
	}
	return w.log("end %s", opString(op))
}

// step does one random thing and says what.
func (w *opsWorld) step() string {
	w.problem = nil
	r := w.rnd
	switch k := r.Intn(12); {
	case k < 4:
		return w.decide()
	case k < 7:
		if len(w.running) == 0 {
			return w.decide()
		}
		return w.end(r.Intn(len(w.running)))
	case k == 7:
		// A loaded instance crashes (its agent's error report).
		var loaded []int
		for i, c := range w.inv.Containers {
			if c.State == Loaded && c.Service != "" {
				loaded = append(loaded, i)
			}
		}
		if len(loaded) == 0 {
			return w.log("crash: none loaded")
		}
		c := &w.inv.Containers[loaded[r.Intn(len(loaded))]]
		c.State, c.Healthy, c.Crashed = Failed, false, true
		w.recovering = appendNew(w.recovering, c.Service)
		return w.log("crash %s (%s)", c.ID, c.Service)
	case k == 8:
		if len(w.cat.Services) == 0 {
			return w.log("extend: no service")
		}
		s := w.cat.Services[r.Intn(len(w.cat.Services))]
		w.desired[s.Name] = w.want(s) + 1 + r.Intn(2)
		w.extending = appendNew(w.extending, s.Name)
		return w.log("extend %s to %d", s.Name, w.want(s))
	case k == 9:
		if len(w.cat.Services) == 0 {
			return w.log("scale down: no service")
		}
		s := w.cat.Services[r.Intn(len(w.cat.Services))]
		w.desired[s.Name] = w.want(s) - 1 - r.Intn(2)
		return w.log("scale %s down to %d", s.Name, w.want(s))
	case k == 10:
		var ready []int
		for i, s := range w.inv.Servers {
			if s.State == ServerReady {
				ready = append(ready, i)
			}
		}
		if len(ready) == 0 || slices.ContainsFunc(w.inv.Servers, func(s Server) bool { return s.State == ServerDraining }) {
			return w.log("drain: none")
		}
		s := &w.inv.Servers[ready[r.Intn(len(ready))]]
		s.State = ServerDraining
		return w.log("drain %s", s.ID)
	default:
		if r.Intn(2) == 0 {
			w.cat.Manager.WarmPool = r.Intn(4)
			return w.log("warm pool %d", w.cat.Manager.WarmPool)
		}
		w.cat.Manager.Consolidate = !w.cat.Manager.Consolidate
		return w.log("consolidate %v", w.cat.Manager.Consolidate)
	}
}

// problems checks the world after a step.
func (w *opsWorld) problems() []string {
	out := slices.Clone(w.problem)
	out = append(out, inventoryProblems(&w.inv, w.cat)...)
	for i, a := range w.running {
		for _, b := range w.running[i+1:] {
			if a.Keys.Overlaps(b.Keys) {
				out = append(out, fmt.Sprintf("running %q and %q hold a key in common: %+v, %+v", opString(a), opString(b), a.Keys, b.Keys))
			}
		}
	}
	return out
}

// settle ends every operation and decides again until nothing is decided,
// then checks that every service is at desired or says why not.
func (w *opsWorld) settle() []string {
	for round := 0; ; round++ {
		if round == 200 {
			return []string{"still deciding after 200 rounds"}
		}
		for len(w.running) > 0 {
			w.end(0)
		}
		w.decide()
		if p := w.problems(); len(p) > 0 {
			return p
		}
		if len(w.running) == 0 && len(w.last.Ops) == 0 && !w.last.Capped {
			break
		}
	}
	var out []string
	ready := w.inv.ReadyByService()
	for _, s := range w.cat.Services {
		want := w.want(s)
		if ready[s.Name] >= want {
			continue
		}
		if !slices.ContainsFunc(w.last.Unplaced, func(u Unplaced) bool { return u.Service == s.Name && u.Reason != "" }) {
			out = append(out, fmt.Sprintf("%s: %d ready of %d desired, and no reason given", s.Name, ready[s.Name], want))
		}
	}
	if pool := w.inv.WarmPool(); pool < w.cat.Manager.WarmPool &&
		!slices.ContainsFunc(w.last.Unplaced, func(u Unplaced) bool { return u.Service == "" && u.Reason != "" }) {
		out = append(out, fmt.Sprintf("warm pool %d of %d, and no reason given", pool, w.cat.Manager.WarmPool))
	}
	return out
}

func asJSON(inv *Inventory) string {
	b, err := json.Marshal(inv)
	if err != nil {
		return err.Error()
	}
	return string(b)
}
