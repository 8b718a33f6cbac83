package fleet

import (
	"fmt"
	"testing"

	"github.com/msm-project/msm/catalog"
)

// atScale is a fleet of n loaded, healthy containers, 20 per server, over
// 50 services (the shape of the measurements), on the standalone
// kind with every server listed and in use.
func atScale(n int) (*Inventory, *catalog.Catalog) {
	const perServer, services = 20, 50
	c := &catalog.Catalog{Manager: catalog.Manager{Kind: catalog.KindStandalone}}
	inv := &Inventory{}
	for i := range (n + perServer - 1) / perServer {
		cs := catalog.Server{Name: fmt.Sprintf("s%d", i+1), Address: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1),
			Slots: perServer, Ports: catalog.PortRange{First: 20000, Last: 20099}}
		c.Manager.Servers = append(c.Manager.Servers, cs)
		inv.AddServer(Server{ID: cs.Name, Address: cs.Address, Slots: cs.Slots, Ports: cs.Ports, State: ServerReady, NodeSeen: true})
	}
	per := n / services
	for i := range services {
		c.Services = append(c.Services, catalog.Service{Name: fmt.Sprintf("svc%02d", i), Command: "/bin/svc", Slots: 1,
			Replicas: catalog.Replicas{Min: 0, Initial: per, Max: 2 * per}})
	}
	c.Default()
	for i := range n {
		s := i / perServer
		id := inv.NextContainerID("m")
		inv.Containers = append(inv.Containers, Container{ID: id, Server: fmt.Sprintf("s%d", s+1), Port: 20000 + i%perServer,
			State: Loaded, Service: fmt.Sprintf("svc%02d", i%services), Healthy: true, PID: 1000 + i, Registered: true})
	}
	return inv, c
}

func cloneInv(inv *Inventory) *Inventory {
	c := cloneInventory(*inv)
	return &c
}

var scales = []int{1000, 10000, 50000}

func BenchmarkPlanProvision(b *testing.B) {
	for _, n := range scales {
		inv, c := atScale(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				PlanProvision(cloneInv(inv), c, "m")
			}
		})
	}
}

func BenchmarkPlanShrink(b *testing.B) {
	for _, n := range scales {
		inv, c := atScale(n)
		// One fewer instance of each of the 50 services: 50 removals.
		desired := func(s catalog.Service) int { return s.Replicas.Initial - 1 }
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				p := PlanShrink(cloneInv(inv), c, desired)
				if len(p.Destroys) != 50 {
					b.Fatalf("%d destroys, want 50", len(p.Destroys))
				}
			}
		})
	}
}
