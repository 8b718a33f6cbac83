package fleet

import "testing"

// TestRefillStrategy: the warm pool is brought back to its size by an
// operation of its own, unless another holds the pool or loads waiting
// containers (running or decided now), or the pool is in back-off.
func TestRefillStrategy(t *testing.T) {
	atDesired := func() *Inventory {
		return twoServers(loaded("m-c1", "s1", 20000, "web"), loaded("m-c2", "s1", 20001, "web"), loaded("m-c3", "s1", 20002, "api"))
	}
	runDecide(t, []decideCase{
		{
			name:    "short by two: two new waiting containers on the emptiest server",
			state:   State{Manager: mgr, Catalog: webAPI(2), Inventory: atDesired()},
			ops:     []string{"refill: start m-c10@s2:21000 start m-c11@s2:21001"},
			reasons: []string{"warm pool 0 below its size 2"},
		},
		{
			name:  "a running operation took a waiting container: later",
			state: State{Manager: mgr, Catalog: webAPI(2), Inventory: atDesired(), Running: []Keys{{Services: []string{"web"}, Took: true}}},
		},
		{
			name:  "a running operation holds the pool: later",
			state: State{Manager: mgr, Catalog: webAPI(2), Inventory: atDesired(), Running: []Keys{{Pool: true}}},
		},
		{
			name:  "the pool in back-off: later",
			state: State{Manager: mgr, Catalog: webAPI(2), Inventory: atDesired(), Backoff: []Hold{{Service: "", Until: now.Add(1)}}},
		},
		{
			name:  "a server a running operation launches gets nothing",
			state: State{Manager: mgr, Catalog: webAPI(1), Inventory: atDesired(), Running: []Keys{{Services: []string{"api"}, Servers: []string{"s2"}}}},
			ops:   []string{"refill: start m-c10@s1:20003"},
		},
	})
}
