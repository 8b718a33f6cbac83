package fleet

import (
	"testing"
	"time"
)

// TestRecoverStrategy: the services with a failed instance get their
// replacements first, in one Recover, from the waiting containers before
// new ones; a service in back-off or held by a running operation waits
// (and stays to be named), one with nothing missing is forgotten.
func TestRecoverStrategy(t *testing.T) {
	webCrashed := func() *Inventory {
		return twoServers(crashed("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), loaded("m-c3", "s1", 20002, "api"),
			waiting("m-c4", "s2", 21000))
	}
	runDecide(t, []decideCase{
		{
			name:    "a crash takes the waiting container; the pool's refill waits for it",
			state:   State{Manager: mgr, Catalog: webAPI(1), Inventory: webCrashed(), Recovering: []string{"web"}},
			ops:     []string{"recover web: load m-c4=web"},
			reasons: []string{"web 1 below desired"},
		},
		{
			name:  "with no waiting container, a new one beside the others",
			state: State{Manager: mgr, Catalog: webAPI(0), Inventory: twoServers(crashed("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), loaded("m-c3", "s1", 20002, "api")), Recovering: []string{"web"}},
			// s2 is the emptiest server (spread); the crashed m-c1 is
			// destroyed once its replacement runs (web is held now).
			ops: []string{"recover web: start m-c10@s2:21000=web"},
		},
		{
			name: "two services recovered in one operation",
			state: State{Manager: mgr, Catalog: webAPI(0), Inventory: twoServers(crashed("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), crashed("m-c3", "s1", 20002, "api")),
				Recovering: []string{"web", "api"}},
			ops: []string{"recover web+api: start m-c10@s2:21000=web start m-c11@s2:21001=api"},
		},
		{
			name: "in back-off: nothing yet, still to name; the crash is destroyed meanwhile",
			state: State{Manager: mgr, Catalog: webAPI(0), Inventory: webCrashed(), Recovering: []string{"web"},
				Backoff: []Hold{{Service: "web", Until: now.Add(time.Second)}}},
			ops:        []string{"shrink web: destroy m-c1"},
			recovering: []string{"web"},
		},
		{
			name: "held by a running operation: it waits for it",
			state: State{Manager: mgr, Catalog: webAPI(1), Inventory: webCrashed(), Recovering: []string{"web"},
				Running: []Keys{{Services: []string{"web"}}}},
			recovering: []string{"web"},
		},
		{
			name:  "nothing missing any more: forgotten",
			state: State{Manager: mgr, Catalog: webAPI(1), Inventory: twoServers(loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), loaded("m-c3", "s1", 20002, "api"), waiting("m-c4", "s2", 21000)), Recovering: []string{"web"}},
		},
	})
}
