package fleet

import (
	"testing"

	"github.com/msm-project/msm/catalog"
)

// TestExtendStrategy: each service an extension raised gets an Extend of
// its own (side by side), the waiting containers first; a server one
// launches is that one's; the refill waits for those that took from the
// pool.
func TestExtendStrategy(t *testing.T) {
	full := func() *Inventory {
		return twoServers(loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), loaded("m-c3", "s1", 20002, "api"),
			waiting("m-c4", "s2", 21000))
	}
	webTo := func(n int) func(catalog.Service) int {
		return func(s catalog.Service) int {
			if s.Name == "web" {
				return n
			}
			return s.Replicas.Initial
		}
	}
	both := func(s catalog.Service) int { return s.Replicas.Initial + 1 }
	runDecide(t, []decideCase{
		{
			name:    "one extension takes the waiting container; the refill waits",
			state:   State{Manager: mgr, Catalog: webAPI(1), Inventory: full(), Desired: webTo(3), Extending: []string{"web"}},
			ops:     []string{"extend web: load m-c4=web"},
			reasons: []string{"web: 1 instance(s) below its desired 3"},
		},
		{
			name:  "two extensions: one each, the second starting a container",
			state: State{Manager: mgr, Catalog: webAPI(1), Inventory: full(), Desired: both, Extending: []string{"web", "api"}},
			ops:   []string{"extend web: load m-c4=web", "extend api: start m-c10@s2:21001=api"},
		},
		{
			name: "no waiting container: a new one, and the refill beside it",
			state: State{Manager: mgr, Catalog: webAPI(1), Inventory: twoServers(loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), loaded("m-c3", "s1", 20002, "api")),
				Desired: webTo(3), Extending: []string{"web"}},
			ops: []string{"extend web: start m-c10@s2:21000=web", "refill: start m-c11@s2:21001"},
		},
		{
			name: "services placed on a server launched now share the operation that launches it",
			state: State{Manager: mgr, Catalog: cat(0, []catalog.Server{s1, s2}, svc("web", 1, 1), svc("api", 1, 1)),
				Inventory: &Inventory{Seq: 2, Servers: []Server{ready(s1)}, Containers: []Container{loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "api")}},
				Desired:   both, Extending: []string{"web", "api"}},
			ops: []string{"extend web+api: launch s2 start m-c3@s2:21000=web start m-c4@s2:21001=api"},
		},
		{
			name: "held by a running operation: still to name",
			state: State{Manager: mgr, Catalog: webAPI(1), Inventory: full(), Desired: both, Extending: []string{"web", "api"},
				Running: []Keys{{Services: []string{"web"}}}},
			ops:       []string{"extend api: load m-c4=api"},
			extending: []string{"web"},
		},
		{
			name:  "at desired already: forgotten",
			state: State{Manager: mgr, Catalog: webAPI(1), Inventory: full(), Extending: []string{"web"}},
		},
	})
}
