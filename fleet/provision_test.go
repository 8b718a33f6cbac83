package fleet

import (
	"testing"

	"github.com/msm-project/msm/catalog"
)

// TestProvisionStrategy: what the catalog asks that no operation before
// was named for goes in one Provision, with the pool's refill when it may
// run now; a fleet brought up from nothing is one operation.
func TestProvisionStrategy(t *testing.T) {
	runDecide(t, []decideCase{
		{
			name:    "from nothing: every service and the pool, one operation",
			state:   State{Manager: mgr, Catalog: webAPI(1), Inventory: &Inventory{}},
			ops:     []string{"provision: launch s1 start m-c1@s1:20000=web start m-c2@s1:20001=web start m-c3@s1:20002=api start m-c4@s1:20003"},
			reasons: []string{"below desired: web 2, api 1; warm pool 1 below its size 1"},
		},
		{
			name: "a service added to the catalog takes the waiting container, and the same provision refills the pool",
			state: State{Manager: mgr, Catalog: cat(1, []catalog.Server{big1, big2}, svc("web", 2, 1), svc("api", 1, 1), svc("db", 1, 1)),
				Inventory: twoServers(loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), loaded("m-c3", "s1", 20002, "api"), waiting("m-c4", "s2", 21000))},
			ops: []string{"provision: start m-c10@s2:21001 load m-c4=db"},
		},
		{
			name: "beside a recovery, the other services' demand is a provision of its own",
			state: State{Manager: mgr, Catalog: webAPI(0),
				Inventory:  twoServers(crashed("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web")),
				Recovering: []string{"web"}},
			ops: []string{"recover web: start m-c10@s2:21000=web", "provision: start m-c11@s2:21001=api"},
		},
		{
			name: "a service in back-off gets nothing",
			state: State{Manager: mgr, Catalog: webAPI(0), Inventory: twoServers(loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web")),
				Backoff: []Hold{{Service: "api", Until: now.Add(1)}}},
		},
		{
			name: "no room: nothing, and the demand is unplaced",
			state: State{Manager: mgr, Catalog: cat(0, []catalog.Server{s1}, svc("web", 3, 1)),
				Inventory: &Inventory{Seq: 2, Servers: []Server{ready(s1)}, Containers: []Container{loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web")}}},
		},
	})
}
