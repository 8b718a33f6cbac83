package fleet

import "testing"

// TestRearrangeStrategy: the instances of a draining server, and its
// waiting containers, are placed elsewhere in one Rearrange named for the
// server; its old instances go only once the new ones serve.
func TestRearrangeStrategy(t *testing.T) {
	drained := func(containers ...Container) *Inventory {
		inv := twoServers(containers...)
		inv.Servers[0].State = ServerDraining
		return inv
	}
	runDecide(t, []decideCase{
		{
			name: "s1's web and api move to s2, its waiting container too",
			state: State{Manager: mgr, Catalog: webAPI(1), Inventory: drained(
				loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "api"), waiting("m-c3", "s1", 20002), loaded("m-c4", "s2", 21000, "web"))},
			ops:     []string{"rearrange s1: start m-c10@s2:21001=web start m-c11@s2:21002=api start m-c12@s2:21003"},
			reasons: []string{"s1 draining: move web ×1, api ×1, 1 waiting elsewhere"},
		},
		{
			name: "once the new ones serve, the old ones go and s1 is released",
			state: State{Manager: mgr, Catalog: webAPI(1), Inventory: drained(
				loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "api"), waiting("m-c3", "s1", 20002), loaded("m-c4", "s2", 21000, "web"),
				loaded("m-c10", "s2", 21001, "web"), loaded("m-c11", "s2", 21002, "api"), waiting("m-c12", "s2", 21003))},
			ops:     []string{"shrink all: destroy m-c1 destroy m-c2 destroy m-c3 release s1"},
			reasons: []string{"moved off s1: 2; waiting on a drained server: 1; left empty: s1"},
		},
		{
			name: "a service held by a running operation stays until it ends; the rest moves",
			state: State{Manager: mgr, Catalog: webAPI(0), Inventory: drained(
				loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "api"), loaded("m-c4", "s2", 21000, "web")),
				Running: []Keys{{Services: []string{"api"}}}},
			ops: []string{"rearrange s1: start m-c10@s2:21001=web"},
		},
	})
}
