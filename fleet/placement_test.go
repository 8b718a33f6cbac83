package fleet

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

const mgr = "m"

// cat builds a defaulted catalog for the standalone kind.
func cat(warm int, servers []catalog.Server, services ...catalog.Service) *catalog.Catalog {
	c := &catalog.Catalog{
		Manager:  catalog.Manager{Kind: catalog.KindStandalone, WarmPool: warm, Servers: servers},
		Services: services,
	}
	c.Default()
	return c
}

func svc(name string, initial, slots int) catalog.Service {
	return catalog.Service{
		Name:     name,
		Command:  "/bin/" + name,
		Slots:    slots,
		Replicas: catalog.Replicas{Min: initial, Initial: initial, Max: initial + 2},
	}
}

func host(name string, slots, first, last int) catalog.Server {
	return catalog.Server{Name: name, Address: "10.0.0." + name[len(name)-1:], Slots: slots, Ports: catalog.PortRange{First: first, Last: last}}
}

// ready is the inventory record of a catalog server that is up.
func ready(cs catalog.Server, blocked ...int) Server {
	return Server{ID: cs.Name, Address: cs.Address, Slots: cs.Slots, Ports: cs.Ports, State: ServerReady, Blocked: blocked}
}

// launched is the inventory record the plan makes for a catalog server.
func launched(cs catalog.Server) Server {
	return Server{ID: cs.Name, Address: cs.Address, Slots: cs.Slots, Ports: cs.Ports, State: ServerLaunching}
}

func starting(id, server string, port int, service string) Container {
	return Container{ID: id, Server: server, Port: port, State: Starting, Service: service}
}

func waiting(id, server string, port int) Container {
	return Container{ID: id, Server: server, Port: port, State: Waiting, Registered: true, PID: 100 + port%100}
}

func loaded(id, server string, port int, service string) Container {
	return Container{ID: id, Server: server, Port: port, State: Loaded, Service: service, Healthy: true, Registered: true}
}

type unplacedWant struct {
	service string
	count   int
	reason  []string // substrings of Reason
}

var (
	s1 = host("s1", 2, 20000, 20009)
	s2 = host("s2", 2, 21000, 21009)
	s3 = host("s3", 2, 22000, 22009)
	b4 = host("b4", 4, 20000, 20003) // big, and its range is the size of its slots
)

func TestPlanProvision(t *testing.T) {
	tests := []struct {
		name         string
		cat          *catalog.Catalog
		inv          Inventory
		wantServers  []Server
		wantStarts   []Container
		wantLoads    []Container
		wantUnplaced []unplacedWant
	}{
		{
			name:        "empty inventory, one server is enough",
			cat:         cat(0, []catalog.Server{b4, s2}, svc("web", 2, 1)),
			wantServers: []Server{launched(b4)},
			wantStarts:  []Container{starting("m-c1", "b4", 20000, "web"), starting("m-c2", "b4", 20001, "web")},
		},
		{
			name:        "empty inventory, the next listed server when slots run out",
			cat:         cat(0, []catalog.Server{s1, s2, s3}, svc("web", 3, 1)),
			wantServers: []Server{launched(s1), launched(s2)},
			wantStarts: []Container{
				starting("m-c1", "s1", 20000, "web"), starting("m-c2", "s1", 20001, "web"),
				starting("m-c3", "s2", 21000, "web"),
			},
		},
		{
			name: "servers are launched in catalog order, not name order",
			cat: cat(0, []catalog.Server{host("z9", 1, 20000, 20000), host("a1", 1, 20000, 20000)},
				svc("web", 1, 1)),
			wantServers: []Server{launched(host("z9", 1, 20000, 20000))},
			wantStarts:  []Container{starting("m-c1", "z9", 20000, "web")},
		},
		{
			name:        "services in catalog order, then the warm pool",
			cat:         cat(2, []catalog.Server{b4, s2}, svc("web", 1, 1), svc("db", 1, 2), svc("zero", 0, 1)),
			wantServers: []Server{launched(b4), launched(s2)},
			wantStarts: []Container{
				starting("m-c1", "b4", 20000, "web"),
				starting("m-c2", "b4", 20001, "db"),
				starting("m-c3", "b4", 20002, ""),
				starting("m-c4", "s2", 21000, ""),
			},
		},
		{
			name: "a waiting container is loaded before a new one starts",
			cat:  cat(0, []catalog.Server{s1}, svc("web", 1, 1)),
			inv: Inventory{
				Servers:    []Server{ready(s1)},
				Containers: []Container{waiting("m-c1", "s1", 20000)},
				Seq:        1,
			},
			wantLoads: []Container{{ID: "m-c1", Server: "s1", Port: 20000, State: Loaded, Service: "web", Registered: true, PID: 100}},
		},
		{
			name: "a waiting container that served before is loaded as not yet healthy",
			cat:  cat(0, []catalog.Server{s1}, svc("web", 1, 1)),
			inv: Inventory{
				Servers: []Server{ready(s1)},
				// Returned to the pool by a shrink, with its old health left.
				Containers: []Container{{ID: "m-c1", Server: "s1", Port: 20005, State: Waiting, Healthy: true, Registered: true, PID: 7}},
				Seq:        1,
			},
			wantLoads: []Container{{ID: "m-c1", Server: "s1", Port: 20005, State: Loaded, Service: "web", Registered: true, PID: 7}},
		},
		{
			name: "loading a waiting container refills the warm pool",
			cat:  cat(1, []catalog.Server{s1}, svc("web", 1, 1)),
			inv: Inventory{
				Servers:    []Server{ready(s1)},
				Containers: []Container{waiting("m-c1", "s1", 20000)},
				Seq:        1,
			},
			wantLoads:  []Container{{ID: "m-c1", Server: "s1", Port: 20000, State: Loaded, Service: "web", Registered: true, PID: 100}},
			wantStarts: []Container{starting("m-c2", "s1", 20001, "")},
		},
		{
			name: "a starting warm container is not loaded yet: a new one starts",
			cat:  cat(1, []catalog.Server{b4}, svc("web", 1, 1)),
			inv: Inventory{
				Servers:    []Server{ready(b4)},
				Containers: []Container{starting("m-c1", "b4", 20000, "")},
				Seq:        1,
			},
			wantStarts: []Container{starting("m-c2", "b4", 20001, "web")},
		},
		{
			name: "a waiting container on a server without room for the service is not used",
			cat:  cat(0, []catalog.Server{s1, b4}, svc("web", 1, 1), svc("db", 1, 2)),
			inv: Inventory{
				// s1: 2 slots, web (1) + waiting (1): turning the waiting
				// container into db (2) would need 3.
				Servers:    []Server{ready(s1)},
				Containers: []Container{loaded("m-c1", "s1", 20000, "web"), waiting("m-c2", "s1", 20001)},
				Seq:        2,
			},
			wantServers: []Server{launched(b4)},
			wantStarts:  []Container{starting("m-c3", "b4", 20000, "db")},
		},
		{
			name: "a waiting container holding the last free slot takes a 2-slot service",
			cat:  cat(0, []catalog.Server{s1}, svc("db", 1, 2)),
			inv: Inventory{
				Servers:    []Server{ready(s1)},
				Containers: []Container{waiting("m-c1", "s1", 20000)},
				Seq:        1,
			},
			wantLoads: []Container{{ID: "m-c1", Server: "s1", Port: 20000, State: Loaded, Service: "db", Registered: true, PID: 100}},
		},
		{
			name: "assigned instances count: starting, loaded",
			cat:  cat(0, []catalog.Server{b4}, svc("web", 2, 1)),
			inv: Inventory{
				Servers: []Server{ready(b4)},
				Containers: []Container{
					starting("m-c1", "b4", 20000, "web"),
					loaded("m-c2", "b4", 20001, "web"),
				},
				Seq: 2,
			},
		},
		{
			// A failed container that could not be destroyed still holds its
			// port and slot, but is no instance: it is replaced.
			name: "a failed instance is replaced, its lease kept",
			cat:  cat(0, []catalog.Server{b4}, svc("web", 2, 1)),
			inv: Inventory{
				Servers: []Server{ready(b4)},
				Containers: []Container{
					loaded("m-c1", "b4", 20000, "web"),
					{ID: "m-c2", Server: "b4", Port: 20001, State: Failed, Service: "web", Error: "crashed"},
				},
				Seq: 2,
			},
			wantStarts: []Container{starting("m-c3", "b4", 20002, "web")},
		},
		{
			name: "a draining instance does not count",
			cat:  cat(0, []catalog.Server{b4}, svc("web", 1, 1)),
			inv: Inventory{
				Servers:    []Server{ready(b4)},
				Containers: []Container{{ID: "m-c1", Server: "b4", Port: 20000, State: Draining, Service: "web"}},
				Seq:        1,
			},
			// The draining container still holds its port and its slot.
			wantStarts: []Container{starting("m-c2", "b4", 20001, "web")},
		},
		{
			name: "warm pool filled to size",
			cat:  cat(3, []catalog.Server{b4}),
			inv: Inventory{
				Servers:    []Server{ready(b4)},
				Containers: []Container{waiting("m-c1", "b4", 20000)},
				Seq:        1,
			},
			wantStarts: []Container{starting("m-c2", "b4", 20001, ""), starting("m-c3", "b4", 20002, "")},
		},
		{
			name: "warm pool not filled beyond its size",
			cat:  cat(1, []catalog.Server{b4}),
			inv: Inventory{
				Servers:    []Server{ready(b4)},
				Containers: []Container{waiting("m-c1", "b4", 20000), starting("m-c2", "b4", 20001, "")},
				Seq:        2,
			},
		},
		{
			name: "a 2-slot service does not go on a server with 1 free slot",
			cat:  cat(0, []catalog.Server{s1, s2}, svc("db", 1, 2)),
			inv: Inventory{
				Servers:    []Server{ready(s1)},
				Containers: []Container{loaded("m-c1", "s1", 20000, "other")},
				Seq:        1,
			},
			wantServers: []Server{launched(s2)},
			wantStarts:  []Container{starting("m-c2", "s2", 21000, "db")},
		},
		{
			name: "the server with the most free slots first",
			cat:  cat(0, []catalog.Server{b4, s2}, svc("web", 1, 1)),
			inv: Inventory{
				Servers:    []Server{ready(b4), ready(s2)},
				Containers: []Container{loaded("m-c1", "b4", 20000, "x"), loaded("m-c2", "b4", 20001, "x"), loaded("m-c3", "b4", 20002, "x")},
				Seq:        3,
			},
			wantStarts: []Container{starting("m-c4", "s2", 21000, "web")},
		},
		{
			name: "blocked ports are skipped",
			cat:  cat(0, []catalog.Server{b4}, svc("web", 2, 1)),
			inv: Inventory{
				Servers: []Server{ready(b4, 20000, 20002)},
				Seq:     7,
			},
			wantStarts: []Container{starting("m-c8", "b4", 20001, "web"), starting("m-c9", "b4", 20003, "web")},
		},
		{
			name: "a failed server is not used",
			cat:  cat(0, []catalog.Server{b4, s2}, svc("web", 1, 1)),
			inv: Inventory{
				Servers: []Server{{ID: "b4", Address: b4.Address, Slots: 4, Ports: b4.Ports, State: ServerFailed, Error: "no capacity"}},
			},
			wantServers: []Server{launched(s2)},
			wantStarts:  []Container{starting("m-c1", "s2", 21000, "web")},
		},
		{
			name: "a waiting container on a failed server is not loaded",
			cat:  cat(0, []catalog.Server{s1, s2}, svc("web", 1, 1)),
			inv: Inventory{
				Servers:    []Server{{ID: "s1", Slots: 2, Ports: s1.Ports, State: ServerFailed}},
				Containers: []Container{waiting("m-c1", "s1", 20000)},
				Seq:        1,
			},
			wantServers: []Server{launched(s2)},
			wantStarts:  []Container{starting("m-c2", "s2", 21000, "web")},
		},
		{
			name: "a launching server takes containers before another is launched",
			cat:  cat(0, []catalog.Server{b4, s2}, svc("web", 1, 1)),
			inv: Inventory{
				Servers:    []Server{launched(b4)},
				Containers: []Container{starting("m-c1", "b4", 20000, "")},
				Seq:        1,
			},
			wantStarts: []Container{starting("m-c2", "b4", 20001, "web")},
		},
		{
			name:        "not enough slots: what fits is placed, the rest is unplaced",
			cat:         cat(1, []catalog.Server{s1}, svc("web", 3, 1)),
			wantServers: []Server{launched(s1)},
			wantStarts:  []Container{starting("m-c1", "s1", 20000, "web"), starting("m-c2", "s1", 20001, "web")},
			wantUnplaced: []unplacedWant{
				{service: "web", count: 1, reason: []string{"1 free slot"}},
				{service: "", count: 1, reason: []string{"1 free slot"}},
			},
		},
		{
			name:         "a service larger than any server",
			cat:          cat(0, []catalog.Server{s1, b4}, svc("big", 2, 8)),
			wantUnplaced: []unplacedWant{{service: "big", count: 2, reason: []string{"8 free slot"}}},
		},
		{
			name: "one service unplaced, the next still placed",
			cat:  cat(0, []catalog.Server{s1}, svc("big", 1, 3), svc("web", 1, 1)),
			inv: Inventory{
				Servers: []Server{ready(s1)},
			},
			wantStarts:   []Container{starting("m-c1", "s1", 20000, "web")},
			wantUnplaced: []unplacedWant{{service: "big", count: 1, reason: []string{"3 free slot"}}},
		},
		{
			name: "a server with free slots but no free port is passed over",
			cat:  cat(0, []catalog.Server{b4, s2}, svc("web", 1, 1)),
			inv: Inventory{
				// b4 has the most free slots (3), but its one port left is
				// blocked.
				Servers:    []Server{ready(b4, 20001, 20002, 20003), ready(s2)},
				Containers: []Container{loaded("m-c1", "b4", 20000, "x"), loaded("m-c2", "s2", 21000, "x")},
				Seq:        2,
			},
			wantStarts: []Container{starting("m-c3", "s2", 21001, "web")},
		},
		{
			name: "a server with no free port makes way for a new one",
			cat:  cat(0, []catalog.Server{b4, s2}, svc("web", 2, 1)),
			inv: Inventory{
				Servers:    []Server{ready(b4, 20000, 20001, 20002)},
				Containers: []Container{loaded("m-c1", "b4", 20003, "x")},
				Seq:        1,
			},
			wantServers: []Server{launched(s2)},
			wantStarts:  []Container{starting("m-c2", "s2", 21000, "web"), starting("m-c3", "s2", 21001, "web")},
		},
		{
			name: "no free port anywhere: unplaced, with the ports as the reason",
			cat:  cat(0, []catalog.Server{b4}, svc("web", 1, 1)),
			inv: Inventory{
				Servers: []Server{ready(b4, 20000, 20001, 20002, 20003)},
			},
			wantUnplaced: []unplacedWant{{service: "web", count: 1, reason: []string{"server b4", "no free port", "20000-20003"}}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inv := tc.inv
			before := inv.Seq
			plan := PlanProvision(&inv, tc.cat, mgr)

			assert.Equal(t, tc.wantServers, plan.Servers, "servers")
			assert.Equal(t, tc.wantStarts, plan.Starts, "starts")
			assert.Equal(t, tc.wantLoads, plan.Loads, "loads")
			require.Len(t, plan.Unplaced, len(tc.wantUnplaced), "unplaced: %+v", plan.Unplaced)
			for i, w := range tc.wantUnplaced {
				u := plan.Unplaced[i]
				assert.Equal(t, w.service, u.Service)
				assert.Equal(t, w.count, u.Count)
				for _, s := range w.reason {
					assert.Contains(t, u.Reason, s)
				}
			}
			assert.Equal(t, len(tc.wantServers)+len(tc.wantStarts)+len(tc.wantLoads) == 0, plan.Empty())

			// The plan is recorded in the inventory.
			for _, s := range plan.Servers {
				got := inv.Server(s.ID)
				require.NotNil(t, got, "server %s", s.ID)
				assert.Equal(t, s, *got)
			}
			for _, c := range plan.Starts {
				got := inv.Container(c.ID)
				require.NotNil(t, got, "container %s", c.ID)
				assert.Equal(t, Starting, got.State)
				assert.Equal(t, c, *got)
			}
			for _, c := range plan.Loads {
				got := inv.Container(c.ID)
				require.NotNil(t, got, "container %s", c.ID)
				assert.Equal(t, Loaded, got.State)
				assert.False(t, got.Healthy)
				assert.Equal(t, c, *got)
			}
			assert.GreaterOrEqual(t, inv.Seq, before+len(plan.Starts))
			checkInventory(t, &inv, tc.cat)

			// Deciding again on the result decides nothing new.
			snapshot := cloneInventory(inv)
			again := PlanProvision(&inv, tc.cat, mgr)
			assert.True(t, again.Empty(), "second plan: %+v", again)
			assert.Equal(t, snapshot.Servers, inv.Servers)
			assert.Equal(t, snapshot.Containers, inv.Containers)
		})
	}
}

func TestPlanProvisionPassesOverABrokenPortBook(t *testing.T) {
	// Two records on one port must never happen; if it does, placement
	// neither hides it nor adds to it, and says why it skipped the server.
	c := cat(0, []catalog.Server{b4}, svc("web", 3, 1))
	inv := Inventory{
		Servers: []Server{ready(b4)},
		Containers: []Container{
			loaded("m-c1", "b4", 20000, "web"),
			loaded("m-c2", "b4", 20000, "web"),
		},
		Seq: 2,
	}
	plan := PlanProvision(&inv, c, mgr)
	assert.True(t, plan.Empty(), "%+v", plan)
	require.Len(t, plan.Unplaced, 1)
	assert.Equal(t, Unplaced{Service: "web", Count: 1, Code: UnplacedNoRoom, Reason: plan.Unplaced[0].Reason}, plan.Unplaced[0])
	assert.Contains(t, plan.Unplaced[0].Reason, "server b4")
	assert.Contains(t, plan.Unplaced[0].Reason, "port 20000 is already leased to m-c1, not to m-c2")
	assert.Len(t, inv.Containers, 2)

	// With another listed server, the demand goes there.
	c = cat(0, []catalog.Server{b4, s2}, svc("web", 3, 1))
	plan = PlanProvision(&inv, c, mgr)
	assert.Equal(t, []Server{launched(s2)}, plan.Servers)
	assert.Equal(t, []Container{starting("m-c3", "s2", 21000, "web")}, plan.Starts)
	assert.Empty(t, plan.Unplaced)
}

func TestPlanProvisionNeverReusesIDs(t *testing.T) {
	c := cat(0, []catalog.Server{b4}, svc("web", 2, 1))
	var inv Inventory
	plan := PlanProvision(&inv, c, mgr)
	require.Len(t, plan.Starts, 2)
	assert.Equal(t, "m-c1", plan.Starts[0].ID)
	assert.Equal(t, "m-c2", plan.Starts[1].ID)

	// m-c2 is gone (destroyed or lost): its replacement is a new ID and gets
	// the port back, since the lease went with the record.
	inv.RemoveContainer("m-c2")
	plan = PlanProvision(&inv, c, mgr)
	assert.Equal(t, []Container{starting("m-c3", "b4", 20001, "web")}, plan.Starts)

	// Even with every container gone, numbering goes on.
	inv.RemoveContainer("m-c1")
	inv.RemoveContainer("m-c3")
	plan = PlanProvision(&inv, c, mgr)
	assert.Equal(t, []Container{starting("m-c4", "b4", 20000, "web"), starting("m-c5", "b4", 20001, "web")}, plan.Starts)
	assert.Equal(t, 5, inv.Seq)
}

func TestPlanProvisionIDsCarryTheManager(t *testing.T) {
	var inv Inventory
	plan := PlanProvision(&inv, cat(1, []catalog.Server{s1}, svc("web", 1, 1)), "prod-eu")
	require.Len(t, plan.Starts, 2)
	assert.Equal(t, "prod-eu-c1", plan.Starts[0].ID)
	assert.Equal(t, "prod-eu-c2", plan.Starts[1].ID)
}

func TestPlanServices(t *testing.T) {
	p := Plan{
		Loads:  []Container{{ID: "a", Service: "db"}},
		Starts: []Container{{ID: "b", Service: "web"}, {ID: "c"}, {ID: "d", Service: "db"}},
	}
	assert.Equal(t, []string{"db", "web"}, p.Services())
	assert.False(t, p.Empty())
	assert.True(t, Plan{Unplaced: []Unplaced{{Service: "x", Count: 1}}}.Empty())
}

// checkInventory asserts invariant 1 and the slot limit over a whole
// inventory: no two containers on one server share a port, every port is in
// its server's range and not blocked, no server has more slots in use than
// it offers, and no two containers share an ID.
func checkInventory(t *testing.T, inv *Inventory, c *catalog.Catalog) {
	t.Helper()
	for _, msg := range inventoryProblems(inv, c) {
		t.Error(msg)
	}
}

func inventoryProblems(inv *Inventory, c *catalog.Catalog) []string {
	var out []string
	slots := map[string]int{}
	for _, s := range c.Services {
		slots[s.Name] = s.Slots
	}
	ids := map[string]bool{}
	for _, ct := range inv.Containers {
		if ids[ct.ID] {
			out = append(out, fmt.Sprintf("container ID %s is used twice", ct.ID))
		}
		ids[ct.ID] = true
		if inv.Server(ct.Server) == nil {
			out = append(out, fmt.Sprintf("container %s is on unknown server %s", ct.ID, ct.Server))
		}
	}
	for _, s := range inv.Servers {
		holder := map[int]string{}
		used := 0
		for _, ct := range inv.OnServer(s.ID) {
			used += max(slots[ct.Service], 1)
			if h, ok := holder[ct.Port]; ok {
				out = append(out, fmt.Sprintf("server %s: port %d leased to both %s and %s", s.ID, ct.Port, h, ct.ID))
			}
			holder[ct.Port] = ct.ID
			if !s.Ports.Contains(ct.Port) {
				out = append(out, fmt.Sprintf("server %s: container %s has port %d outside %s", s.ID, ct.ID, ct.Port, s.Ports))
			}
			for _, b := range s.Blocked {
				if b == ct.Port {
					out = append(out, fmt.Sprintf("server %s: container %s has blocked port %d", s.ID, ct.ID, ct.Port))
				}
			}
		}
		if used > s.Slots {
			out = append(out, fmt.Sprintf("server %s: %d slots in use of %d", s.ID, used, s.Slots))
		}
		if _, err := inv.Ports(s.ID); err != nil {
			out = append(out, fmt.Sprintf("server %s: port book: %v", s.ID, err))
		}
	}
	return out
}

func cloneInventory(inv Inventory) Inventory {
	out := Inventory{Seq: inv.Seq, Containers: append([]Container(nil), inv.Containers...)}
	for _, s := range inv.Servers {
		s.Blocked = append([]int(nil), s.Blocked...)
		out.Servers = append(out.Servers, s)
	}
	return out
}

// TestPlacementPolicy: spread takes the server with the most free slots,
// binpack the one with the fewest that still fit.
func TestPlacementPolicy(t *testing.T) {
	r := catalog.PortRange{First: 100, Last: 199}
	for _, tc := range []struct {
		placement, want string
	}{{catalog.PlacementSpread, "s2"}, {catalog.PlacementBinPack, "s1"}} {
		t.Run(tc.placement, func(t *testing.T) {
			cat := &catalog.Catalog{Manager: catalog.Manager{Placement: tc.placement},
				Services: []catalog.Service{{Name: "web", Slots: 1, Replicas: catalog.Replicas{Initial: 2, Max: 4}}}}
			inv := Inventory{
				Servers:    []Server{{ID: "s1", Slots: 4, Ports: r, State: ServerReady}, {ID: "s2", Slots: 4, Ports: r, State: ServerReady}},
				Containers: []Container{{ID: "m-c1", Server: "s1", Port: 100, State: Loaded, Service: "web", Healthy: true}},
				Seq:        1,
			}
			plan := PlanProvision(&inv, cat, "m")
			if assert.Len(t, plan.Starts, 1) {
				assert.Equal(t, tc.want, plan.Starts[0].Server)
			}
		})
	}
}

func TestPlanScaleLaunchesServersOfTheKindsShape(t *testing.T) {
	cat := &catalog.Catalog{
		Manager: catalog.Manager{Kind: catalog.KindEC2, MaxServers: 2,
			Server: catalog.ServerShape{Slots: 2, Ports: catalog.PortRange{First: 20000, Last: 20009}}},
		Services: []catalog.Service{{Name: "web", Slots: 1, Replicas: catalog.Replicas{Min: 1, Initial: 3, Max: 8}}},
	}
	var inv Inventory
	plan := PlanScale(&inv, cat, "m", Options{})
	require.Len(t, plan.Servers, 2)
	assert.Equal(t, Server{ID: "m-s1", Slots: 2, Ports: catalog.PortRange{First: 20000, Last: 20009}, State: ServerLaunching}, plan.Servers[0])
	assert.Equal(t, "m-s2", plan.Servers[1].ID)
	var on []string
	for _, c := range plan.Starts {
		on = append(on, fmt.Sprintf("%s:%d", c.Server, c.Port))
	}
	assert.Equal(t, []string{"m-s1:20000", "m-s1:20001", "m-s2:20000"}, on, "each server has the whole range")
	assert.Empty(t, plan.Unplaced)

	// At max_servers, more demand is unplaced, and says why.
	for i := range inv.Servers {
		inv.Servers[i].State = ServerReady
	}
	plan = PlanScale(&inv, cat, "m", Options{Desired: func(catalog.Service) int { return 5 }})
	assert.Len(t, plan.Starts, 1, "the last free slot")
	require.Len(t, plan.Unplaced, 1)
	assert.Contains(t, plan.Unplaced[0].Reason, "the ec2 kind has launched its max_servers (2)")

	// A failed launch holding nothing is forgotten; the next one gets a new name.
	inv.Servers[1].State = ServerFailed
	for _, c := range inv.OnServer("m-s2") {
		inv.RemoveContainer(c.ID)
	}
	plan = PlanScale(&inv, cat, "m", Options{})
	require.Len(t, plan.Servers, 1)
	assert.Equal(t, "m-s3", plan.Servers[0].ID)
	assert.Nil(t, inv.Server("m-s2"))
}

func TestPlanScaleOnTheSimulatedKind(t *testing.T) {
	cat := &catalog.Catalog{
		Manager:  catalog.Manager{Kind: catalog.KindSimulated, Simulated: catalog.Simulated{Servers: 2, Slots: 2}},
		Services: []catalog.Service{{Name: "web", Slots: 1, Replicas: catalog.Replicas{Min: 1, Initial: 5, Max: 8}}},
	}
	var inv Inventory
	plan := PlanScale(&inv, cat, "m", Options{})
	require.Len(t, plan.Servers, 2, "servers are launched as needed, up to manager.simulated.servers")
	assert.Equal(t, Server{ID: "m-s1", Slots: 2, Ports: catalog.PortRange{First: 20000, Last: 20001}, State: ServerLaunching}, plan.Servers[0],
		"a port per slot from catalog.SimulatedPorts")
	assert.Len(t, plan.Starts, 4)
	require.Len(t, plan.Unplaced, 1)
	assert.Equal(t, Unplaced{Service: "web", Count: 1, Code: UnplacedMaxServers, Reason: "no server in use has 1 free slot(s) and a free port, and the simulated kind has launched its max_servers (2)"}, plan.Unplaced[0])
}

func TestPlanScaleStopsAtItsLimit(t *testing.T) {
	servers := []catalog.Server{host("h1", 4, 100, 199), host("h2", 4, 200, 299)}
	tests := []struct {
		name          string
		limit         int
		warm          int
		starts, loads int
		capped        bool
	}{
		// web 3 (one of them the waiting container) and api 2, then the
		// pool of 2 refilled: 7 in all.
		{name: "no limit", limit: 0, warm: 2, starts: 6, loads: 1},
		{name: "limit above the demand", limit: 8, warm: 2, starts: 6, loads: 1},
		{name: "limit at the demand", limit: 7, warm: 2, starts: 6, loads: 1},
		{name: "limit inside the services", limit: 3, warm: 2, starts: 2, loads: 1, capped: true},
		{name: "limit inside the pool", limit: 6, warm: 2, starts: 5, loads: 1, capped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cat(tt.warm, servers, svc("web", 3, 1), svc("api", 2, 1))
			inv := Inventory{Servers: []Server{ready(servers[0]), ready(servers[1])},
				Containers: []Container{waiting("m-c1", "h1", 100)}, Seq: 1}
			plan := PlanScale(&inv, c, mgr, Options{Limit: tt.limit})
			assert.Len(t, plan.Starts, tt.starts)
			assert.Len(t, plan.Loads, tt.loads, "the waiting container is taken first")
			assert.Equal(t, tt.capped, plan.Capped)
			assert.Empty(t, plan.Unplaced, "demand left by the limit is not unplaced: it is the next decision's")
			checkInventory(t, &inv, c)
			// The next decision places the rest, and the two together are
			// what one decision without a limit places.
			next := PlanScale(&inv, c, mgr, Options{})
			assert.Equal(t, 7, len(plan.Starts)+len(plan.Loads)+len(next.Starts)+len(next.Loads))
			assert.False(t, next.Capped)
		})
	}
}

func TestUnplacedCodes(t *testing.T) {
	launching := func(slots, most int) *catalog.Catalog {
		c := &catalog.Catalog{
			Manager:  catalog.Manager{Kind: catalog.KindSimulated, Simulated: catalog.Simulated{Servers: most, Slots: slots}},
			Services: []catalog.Service{{Name: "web", Slots: 2, Replicas: catalog.Replicas{Min: 1, Initial: 3, Max: 8}}},
		}
		c.Default()
		return c
	}
	for _, tc := range []struct {
		name string
		cat  *catalog.Catalog
		inv  Inventory
		want string
	}{
		{"listed servers full", cat(0, []catalog.Server{s2}, svc("web", 3, 1)), Inventory{}, UnplacedNoRoom},
		{"launching kind at its max_servers", launching(2, 1), Inventory{}, UnplacedMaxServers},
		{"the kind's servers too small", launching(1, 4), Inventory{}, UnplacedShapeTooSmall},
		{"a broken port book", cat(0, []catalog.Server{b4}, svc("web", 3, 1)), Inventory{
			Servers:    []Server{ready(b4)},
			Containers: []Container{loaded("m-c1", "b4", 20000, "web"), loaded("m-c2", "b4", 20000, "web")},
			Seq:        2,
		}, UnplacedNoRoom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := PlanScale(&tc.inv, tc.cat, mgr, Options{})
			require.NotEmpty(t, plan.Unplaced)
			assert.Equal(t, tc.want, plan.Unplaced[0].Code, plan.Unplaced[0].Reason)
			assert.Contains(t, UnplacedCodes, plan.Unplaced[0].Code)
		})
	}
}

func TestPlanSources(t *testing.T) {
	// A waiting container on b4 loads the first instance, b4's free slots
	// take a new container, and the rest goes to a server the plan
	// launches (s2, listed but not in use).
	c := cat(0, []catalog.Server{b4, s2}, svc("web", 6, 1))
	inv := Inventory{
		Servers:    []Server{ready(b4)},
		Containers: []Container{loaded("m-c1", "b4", 20000, "web"), loaded("m-c2", "b4", 20001, "web"), waiting("m-c3", "b4", 20002)},
		Seq:        3,
	}
	plan := PlanScale(&inv, c, mgr, Options{})
	assert.Equal(t, map[string]map[Source]int{"web": {SourceWarmPool: 1, SourceNewContainer: 1, SourceNewServer: 2}}, plan.Sources(), "%+v", plan)
}
