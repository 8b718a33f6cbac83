// Package fleettest builds fleets at scale for tests and benchmarks: the
// same shape everywhere a figure is measured, so the figures compare.
package fleettest

import (
	"fmt"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
)

// Loaded is a fleet of n loaded, healthy containers of manager, 20 per
// server, over 50 services (svc00…svc49, n/50 instances each, up to twice
// that), on the standalone kind with every server (s1…) listed, ready and
// holding spare slots beyond its 20.
func Loaded(n, spare int, manager string) (fleet.Inventory, *catalog.Catalog) {
	const perServer, services = 20, 50
	cat := &catalog.Catalog{Manager: catalog.Manager{Kind: catalog.KindStandalone}}
	inv := fleet.Inventory{}
	for i := range (n + perServer - 1) / perServer {
		cs := catalog.Server{Name: fmt.Sprintf("s%d", i+1), Address: fmt.Sprintf("10.1.%d.%d", i/250, i%250+1),
			Slots: perServer + spare, Ports: catalog.PortRange{First: 20000, Last: 20099}}
		cat.Manager.Servers = append(cat.Manager.Servers, cs)
		inv.AddServer(fleet.Server{ID: cs.Name, Address: cs.Address, Slots: cs.Slots, Ports: cs.Ports, State: fleet.ServerReady, NodeSeen: true})
	}
	for i := range services {
		cat.Services = append(cat.Services, catalog.Service{Name: fmt.Sprintf("svc%02d", i), Command: "/bin/svc", Slots: 1,
			Replicas: catalog.Replicas{Min: 0, Initial: n / services, Max: 2 * n / services}})
	}
	cat.Default()
	for i := range n {
		id := inv.NextContainerID(manager)
		inv.Containers = append(inv.Containers, fleet.Container{ID: id, Server: cat.Manager.Servers[i/perServer].Name,
			Port: 20000 + i%perServer, State: fleet.Loaded, Service: cat.Services[i%services].Name, Healthy: true, PID: 100000 + i})
	}
	return inv, cat
}
