package fleet

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

// at is c of revision rev, healthy since since (loaded ones).
func at(c Container, rev string, since time.Time) Container {
	c.Revision = rev
	if c.State == Loaded && c.Healthy {
		c.ReadyAt = since
	}
	return c
}

// revB is every service's revision "b": the one rolled to.
func revB(string) string { return "b" }

// rollB rolls web to revision b with the defaults (surge 1, none
// unavailable, a grace of 10 s).
func rollB(mod ...func(*Roll)) []Roll {
	r := Roll{Service: "web", Revision: "b", Surge: 1, Grace: 10 * time.Second}
	for _, f := range mod {
		f(&r)
	}
	return []Roll{r}
}

func TestRollStrategy(t *testing.T) {
	long := now.Add(-time.Minute)     // healthy past the grace
	just := now.Add(-2 * time.Second) // healthy, within it
	webA := func(id string, port int) Container { return at(loaded(id, "s1", port, "web"), "a", long) }
	api := at(loaded("m-c3", "s1", 20002, "api"), "b", long)
	runDecide(t, []decideCase{{
		name: "the first instance of the new revision takes the waiting container",
		state: State{Manager: mgr, Catalog: webAPI(1), Revision: revB, Rolls: rollB(), Inventory: twoServers(
			webA("m-c1", 20000), webA("m-c2", 20001), api, waiting("m-c4", "s2", 21000))},
		ops:     []string{"roll web: load m-c4=web"},
		reasons: []string{"roll web to revision b: 0 of 2 instance(s) run it, 2 of another to replace; 1 new (max_surge 1, max_unavailable 0)"},
	}, {
		name: "with no waiting container it starts one",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Rolls: rollB(), Inventory: twoServers(
			webA("m-c1", 20000), webA("m-c2", 20001), api)},
		ops: []string{"roll web: start m-c10@s2:21000=web"},
	}, {
		name: "max_surge 2 starts two",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Rolls: rollB(func(r *Roll) { r.Surge = 2 }), Inventory: twoServers(
			webA("m-c1", 20000), webA("m-c2", 20001), api)},
		ops: []string{"roll web: start m-c10@s2:21000=web start m-c11@s2:21001=web"},
	}, {
		name: "paused: nothing",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Rolls: rollB(func(r *Roll) { r.Paused = true }), Inventory: twoServers(
			webA("m-c1", 20000), webA("m-c2", 20001), api)},
	}, {
		name: "the new instance healthy within the grace: nothing goes, nothing more starts",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Rolls: rollB(), Inventory: twoServers(
			webA("m-c1", 20000), webA("m-c2", 20001), api, at(loaded("m-c5", "s2", 21000, "web"), "b", just))},
	}, {
		name: "the new instance past the grace: one old instance goes",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Rolls: rollB(), Inventory: twoServers(
			webA("m-c1", 20000), webA("m-c2", 20001), api, at(loaded("m-c5", "s2", 21000, "web"), "b", long))},
		ops:     []string{"shrink web: destroy m-c2"},
		reasons: []string{"web replaced by revision b: 1"},
	}, {
		name: "an old instance crashed: its recovery places the new revision, the roll waits",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Rolls: rollB(), Recovering: []string{"web"}, Inventory: twoServers(
			webA("m-c1", 20000), api, crashed("m-c2", "s1", 20001, "web"))},
		ops: []string{"recover web: start m-c10@s2:21000=web"},
	}, {
		name: "an old instance unhealthy: the roll waits",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Rolls: rollB(), Inventory: twoServers(
			webA("m-c1", 20000), func() Container { c := webA("m-c2", 20001); c.Healthy = false; return c }(), api)},
	}, {
		name: "max_unavailable 1 and no surge: an old instance goes first",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Rolls: rollB(func(r *Roll) { r.Surge, r.Unavailable = 0, 1 }), Inventory: twoServers(
			webA("m-c1", 20000), webA("m-c2", 20001), api)},
		ops: []string{"shrink web: destroy m-c2"},
	}, {
		name: "rolling back: the instances of the failed revision are the old ones",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: func(string) string { return "a" },
			Rolls: []Roll{{Service: "web", Revision: "a", Surge: 1, Grace: 10 * time.Second}}, Inventory: twoServers(
				webA("m-c1", 20000), webA("m-c2", 20001), api, at(loaded("m-c5", "s2", 21000, "web"), "b", long))},
		ops: []string{"shrink web: destroy m-c5 release s2"},
	}, {
		name: "every instance of the new revision: nothing",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Rolls: rollB(), Inventory: twoServers(
			at(loaded("m-c1", "s1", 20000, "web"), "b", long), at(loaded("m-c2", "s1", 20001, "web"), "b", long), api)},
	}, {
		name: "an extension during a roll starts the new revision",
		state: State{Manager: mgr, Catalog: webAPI(0), Revision: revB, Rolls: rollB(), Extending: []string{"web"},
			Desired: func(s catalog.Service) int { return map[string]int{"web": 3, "api": 1}[s.Name] }, Inventory: twoServers(
				webA("m-c1", 20000), webA("m-c2", 20001), api)},
		ops: []string{"extend web: start m-c10@s2:21000=web"},
	}})
}

// TestRollReplacesOneInstanceAtATime walks a roll of web ×3 through the
// Manager's decisions, each operation done and its instances healthy before
// the next decision, the clock past the grace: one new instance at a time,
// one old one removed once it serves, never fewer than 3 healthy, and in the
// end every instance of the new revision.
func TestRollReplacesOneInstanceAtATime(t *testing.T) {
	c := webAPI(1)
	c.Services[0].Replicas.Initial = 3
	inv := twoServers(
		at(loaded("m-c1", "s1", 20000, "web"), "a", now), at(loaded("m-c2", "s1", 20001, "web"), "a", now),
		at(loaded("m-c5", "s2", 21001, "web"), "a", now), at(loaded("m-c3", "s1", 20002, "api"), "b", now), waiting("m-c4", "s2", 21000))
	clock := now
	var kinds []string
	for step := 0; step < 20; step++ {
		clock = clock.Add(15 * time.Second)
		d := Decide(State{Manager: mgr, Catalog: c, Revision: revB, Rolls: rollB(), Inventory: inv}, clock)
		if len(d.Ops) == 0 {
			break
		}
		inv.Apply(d)
		for _, op := range d.Ops {
			kinds = append(kinds, string(op.Kind))
			for _, p := range slices.Concat(op.Place.Starts, op.Place.Loads) {
				x := inv.Container(p.ID)
				if x.Service == "" {
					x.State = Waiting
					continue
				}
				x.State, x.Healthy, x.ReadyAt = Loaded, true, clock
				assert.Equal(t, "b", x.Revision, "%s is of the new revision", x.ID)
			}
			for _, r := range op.Remove.Destroys {
				inv.RemoveContainer(r.ID)
			}
			for _, r := range op.Remove.Unloads {
				x := inv.Container(r.ID)
				x.State, x.Service, x.Unloading, x.Healthy, x.Revision = Waiting, "", false, false, ""
			}
		}
		healthy := 0
		for _, x := range inv.Containers {
			if x.Service == "web" && x.State == Loaded && x.Healthy {
				healthy++
			}
		}
		require.GreaterOrEqual(t, healthy, 3, "step %d: web below desired", step)
		require.LessOrEqual(t, healthy, 4, "step %d: more than max_surge above desired", step)
	}
	var revs []string
	for _, x := range inv.Containers {
		if x.Service == "web" {
			revs = append(revs, x.Revision)
		}
	}
	assert.Equal(t, []string{"b", "b", "b"}, revs)
	assert.Equal(t, 3, count(kinds, "roll"), "one roll operation per instance: %v", kinds)
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// TestRollToANewImage: on the docker kind a service whose image changed
// rolls to containers of the new image (its revision names the image);
// the old image's instances go as the new serve.
func TestRollToANewImage(t *testing.T) {
	long := now.Add(-time.Minute)
	app := imaged("app", "registry.example/app:2", 1)
	app.Replicas.Initial, app.Replicas.Max = 2, 4
	old := func(id string, port int) Container {
		return at(ofImg(loaded(id, "s1", port, "app"), "registry.example/app:1"), "a", long)
	}
	roll := []Roll{{Service: "app", Revision: "b", Surge: 1, Grace: 10 * time.Second}}
	runDecide(t, []decideCase{{
		name: "the first instance of the new image",
		state: State{Manager: mgr, Catalog: dockerCat(0, []catalog.Server{big1, big2}, app), Revision: revB, Rolls: roll,
			Inventory: twoServers(old("m-c1", 20000), old("m-c2", 20001))},
		ops: []string{"roll app: start m-c10@s2:21000=app of registry.example/app:2"},
	}, {
		name: "it serves past the grace: an old one goes, destroyed (no pool of its image)",
		state: State{Manager: mgr, Catalog: dockerCat(0, []catalog.Server{big1, big2}, app), Revision: revB, Rolls: roll,
			Inventory: twoServers(old("m-c1", 20000), old("m-c2", 20001), at(ofImg(loaded("m-c10", "s2", 21000, "app"), app.Image), "b", long))},
		ops: []string{"shrink app: destroy m-c2"},
	}})
}
