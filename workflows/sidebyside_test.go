package workflows_test

import (
	"strings"
	"time"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows"
)

// TestRecoveryDoesNotWaitForASlowDrain: web's old instances on s1 are
// drained for a minute (their service's drain period) while api, which
// has nothing on s1, crashes on s2: its Recover starts at the report, beside
// the Shrink, not when the drain ends.
func (s *ShrinkSuite) TestRecoveryDoesNotWaitForASlowDrain() {
	big := catalog.Server{Name: "s2", Address: "10.0.0.2", Slots: 8, Ports: catalog.PortRange{First: 21000, Last: 21009}}
	cat := catalog.Catalog{
		Manager:  catalog.Manager{Kind: catalog.KindStandalone, Servers: []catalog.Server{tfS1, big}},
		Services: []catalog.Service{tfWeb, tfAPI},
	}
	cat.Services[0].Drain = time.Minute
	on := func(id, server string, port int, service string) fleet.Container {
		return fleet.Container{ID: id, Server: server, Port: port, State: fleet.Loaded, Service: service, Healthy: true, PID: tfAgentPID(id)}
	}
	in := workflows.ManagerInput{Manager: tfManager, Catalog: &cat, CatalogSource: "catalog.yaml", Inventory: fleet.Inventory{
		Seq: 3,
		Servers: []fleet.Server{
			{ID: "s1", Address: tfS1.Address, Slots: tfS1.Slots, Ports: tfS1.Ports, State: fleet.ServerReady, NodeSeen: true},
			{ID: "s2", Address: big.Address, Slots: big.Slots, Ports: big.Ports, State: fleet.ServerReady, NodeSeen: true},
		},
		Containers: []fleet.Container{on("m1-c1", "s1", 20000, "web"), on("m1-c2", "s1", 20001, "web"), on("m1-c3", "s2", 21000, "api")},
	}}
	d := s.drain(5*time.Second, "u-drain", workflows.DrainUpdate{Server: "s1"})
	s.signal(10*time.Second, workflows.SignalErrorReport, workflows.ErrorReport{Container: "m1-c3", Service: "api", Reason: "api exited with status 1"})
	during := s.snapshot(20 * time.Second)
	after := s.snapshot(2 * time.Minute)
	s.run(in, 3*time.Minute)
	s.requireCancelled()
	s.Require().NoError(d.rejected)

	var drainShrink, recovery shChild
	for _, c := range s.started() {
		switch {
		case strings.HasPrefix(c.ID, "msm/m1/shrink/web/"):
			drainShrink = c
		case strings.HasPrefix(c.ID, "msm/m1/recover/api/"):
			recovery = c
		}
	}
	s.Require().NotEmpty(drainShrink.ID, "web's old instances were drained: %v", s.ids())
	s.Require().NotEmpty(recovery.ID, "api was recovered: %v", s.ids())
	s.Less(drainShrink.At, 10*time.Second, "the drain's removal began before the crash")
	s.Equal(time.Minute, drainShrink.Shrink.Drain)
	s.Equal(10*time.Second, recovery.At, "the recovery began at the report, while the drain ran")
	s.requireOnlyOn(recovery.Place.Plan, "s2")

	st := s.status(during)
	s.Equal(1, st.Operations, "at 20 s only the drain still runs: the recovery is done")
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, scServices(st))
	st = s.status(after)
	s.Equal([]workflows.ServerStatus{{ID: "s2", State: string(fleet.ServerReady), Address: big.Address, Slots: 8, Used: 3}}, st.Servers, "s1 released once drained")
	s.Zero(st.Operations)
}
