package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/suite"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows"
)

// MonitorSuite checks what the Manager makes of its agents' and nodes'
// load reports: idle reports, usage summaries in status, the CPU-target
// autoscaler (tolerance, stabilization window, cooldown), and catalog
// rejections. It runs on shrink_test.go's harness.
type MonitorSuite struct{ shBase }

func TestMonitorSuite(t *testing.T) { suite.Run(t, new(MonitorSuite)) }

func (s *MonitorSuite) idle(d time.Duration, container, service, reason string) {
	s.signal(d, workflows.SignalIdle, workflows.IdleSignal{Container: container, Service: service, Reason: reason})
}

// usage sends a node's report (s1's: the Manager keys container usage by
// container, not by server) with each listed container at cpu percent.
func (s *MonitorSuite) usage(d time.Duration, cpu int, containers ...string) {
	u := workflows.UsageSignal{Server: "s1", CPU: cpu / 2, Memory: 40}
	for _, c := range containers {
		u.Containers = append(u.Containers, workflows.ContainerUsage{Container: c, CPU: cpu})
	}
	s.signal(d, workflows.SignalUsage, u)
}

// moWeb is web under a CPU target of 50% of a core, within 10%.
func moWeb(r catalog.Replicas, sc catalog.Scaling) catalog.Service {
	web := tfWeb
	web.Replicas = r
	sc.Target, sc.Tolerance = 50, 10
	web.Scaling = sc
	return web
}

// moCatalog is tfCatalog with web replaced.
func moCatalog(web catalog.Service) catalog.Catalog {
	cat := tfCatalog()
	cat.Services = []catalog.Service{web, tfAPI}
	return cat
}

// web returns a status's desired and ready instances of web.
func (s *MonitorSuite) web(snap *scSnap) workflows.ServiceStatus {
	st := s.status(snap)
	s.Require().NotEmpty(st.Services)
	s.Require().Equal("web", st.Services[0].Name)
	return st.Services[0]
}

func (s *MonitorSuite) TestIdleReportShrinksByOneDownToInitial() {
	cat := tfCatalog()
	cat.Services[0].Scaling.Cooldown = 10 * time.Second // web's own
	s.catalog(time.Second, cat)
	up := s.scale(5*time.Second, "web", 4) // cooldown until 15s
	s.idle(15*time.Second-time.Millisecond, "m1-c1", "web", "")
	before := s.snapshot(15*time.Second - time.Millisecond/2)
	s.idle(15*time.Second, "m1-c5", "web", "cpu below 10% for 5m") // 3, cooldown until 25s
	s.idle(20*time.Second, "m1-c1", "web", "")
	once := s.snapshot(24 * time.Second)
	s.idle(25*time.Second, "m1-c2", "web", "") // 2, its initial
	twice := s.snapshot(30 * time.Second)
	s.idle(36*time.Second, "m1-c1", "web", "")
	s.idle(50*time.Second, "m1-c2", "web", "")
	s.idle(60*time.Second, "m1-c3", "api", "")
	after := s.snapshot(65 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, 90*time.Second)
	s.requireCancelled()
	s.requireAccepted(up, "scaling web from 2 to 4 instance(s)")

	s.Equal(scWebTwice(), scShape(s.status(before)), "a report inside the extension's cooldown does nothing")
	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/refill/3", "msm/m1/shrink/web/4", "msm/m1/shrink/web/5"}, s.ids())
	s.requireRefill("msm/m1/refill/3", fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})

	c := s.requireShrink("msm/m1/shrink/web/4", []string{"web"},
		fleet.ShrinkPlan{Destroys: []fleet.Container{shDraining("c5", "s2", 21000, "web")}})
	s.Equal(15*time.Second, c.At)
	st := s.status(once)
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 3, Ready: 3}, st.Services[0])
	s.Contains(eventMessages(st.Events), "shrink web from 4 to 3 instance(s) (idle reported by m1-c5: cpu below 10% for 5m)")
	s.Equal(1, scCountEvents(st, "shrink web from"), "the report at 20s fell in the cooldown")

	c = s.requireShrink("msm/m1/shrink/web/5", []string{"web"},
		fleet.ShrinkPlan{Destroys: []fleet.Container{shDraining("c4", "s1", 20003, "web")}})
	s.Equal(25*time.Second, c.At, "one more at the end of the cooldown")
	st = s.status(twice)
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 2, Ready: 2}, st.Services[0])
	s.Contains(eventMessages(st.Events), "shrink web from 3 to 2 instance(s) (idle reported by m1-c2)")

	// At its initial replicas, web stays; so does api, at its own.
	st = s.status(after)
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
	s.Equal(2, scCountEvents(st, "shrink "))
	s.Equal(scShape(s.status(twice)), scShape(st))
}

func (s *MonitorSuite) TestIdleInCooldownDoesNothing() {
	s.catalog(time.Second, tfCatalog())
	s.signal(5*time.Second, workflows.SignalOverload, workflows.OverloadSignal{Container: "m1-c1", Service: "web"}) // 3, cooldown until 35s
	before := s.snapshot(9 * time.Second)
	s.idle(10*time.Second, "m1-c1", "web", "")
	s.idle(20*time.Second, "m1-c4", "web", "")
	s.idle(35*time.Second-time.Millisecond, "m1-c2", "web", "")
	within := s.snapshot(35*time.Second - time.Millisecond/2)
	// The first report after the cooldown does shrink: the test can tell.
	s.idle(35*time.Second, "m1-c2", "web", "")
	after := s.snapshot(40 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Equal(scWebExtended(), scShape(s.status(before)))
	s.Equal(withoutSignals(s.status(before)), withoutSignals(s.status(within)), "nothing changed, not even the event log")
	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/refill/3", "msm/m1/shrink/web/4"}, s.ids())
	s.requireRefill("msm/m1/refill/3", scWebRefillPlan())
	s.Equal(35*time.Second, s.child("msm/m1/shrink/web/4").At)
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 2, Ready: 2}, s.web(after))
}

func (s *MonitorSuite) TestUsageReportsShowInStatus() {
	s.catalog(time.Second, tfCatalog())
	before := s.snapshot(4 * time.Second)
	s.signal(5*time.Second, workflows.SignalUsage, workflows.UsageSignal{Server: "s1", CPU: 37, Memory: 52,
		Containers: []workflows.ContainerUsage{{Container: "m1-c1", CPU: 80}, {Container: "m1-c3", CPU: 12}}})
	first := s.snapshot(6 * time.Second)
	s.signal(10*time.Second, workflows.SignalUsage, workflows.UsageSignal{Server: "s1", CPU: 61, Memory: 55,
		Containers: []workflows.ContainerUsage{
			{Container: "m1-c1", CPU: 95}, {Container: "m1-c2", CPU: 40}, {Container: "m1-c3", CPU: 14}, {Container: "m1-c4", CPU: 1},
		}})
	second := s.snapshot(11 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	want := scShape(tmProvisioned(fleet.Waiting))
	s.Equal(want, scShape(s.status(before)), "no usage before the first report")
	want.Servers[0].CPU, want.Servers[0].Memory = 37, 52
	want.Containers[0].CPU, want.Containers[2].CPU = 80, 12
	st := s.status(first)
	s.Equal(want, scShape(st))
	s.Equal(s.status(before).Events, st.Events, "a usage report is no event")

	want.Servers[0].CPU, want.Servers[0].Memory = 61, 55
	want.Containers[0].CPU, want.Containers[1].CPU, want.Containers[2].CPU, want.Containers[3].CPU = 95, 40, 14, 1
	s.Equal(want, scShape(s.status(second)))
	s.Equal([]string{"msm/m1/provision/1"}, s.ids(), "no target: no decision")
}

func (s *MonitorSuite) TestAutoscaleOutAboveTargetBeyondTolerance() {
	// web: 1 instance (m1-c1), then api (m1-c2) and the pool (m1-c3).
	s.catalog(time.Second, moCatalog(moWeb(catalog.Replicas{Min: 1, Initial: 1, Max: 4}, catalog.Scaling{})))
	before := s.snapshot(4 * time.Second)
	s.usage(5*time.Second, 100, "m1-c1", "m1-c2") // api has no target
	after := s.snapshot(6 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 1, Ready: 1}, s.web(before))
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 2, Ready: 2}, s.web(after), "100% against 50%: twice the instances")
	s.Contains(eventMessages(s.status(after).Events),
		"extend web from 1 to 2 instance(s) (monitoring: 1 instance(s) at 100% CPU on average, target 50%)")

	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/refill/3"}, s.ids())
	c := s.child("msm/m1/extend/web/2")
	s.Equal(workflows.WorkflowExtend, c.Type)
	s.Equal("extend", c.Operation)
	s.Equal([]string{"web"}, c.Services)
	s.Equal(5*time.Second, c.At, "at once: scaling out waits for no window")
	s.Equal(fleet.Plan{
		Loads: []fleet.Container{{ID: "m1-c3", Server: "s1", Port: 20002, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c3")}},
	}, c.Place.Plan)
	c = s.requireRefill("msm/m1/refill/3", fleet.Plan{Starts: []fleet.Container{tfStart("c4", "s1", 20003, "")}})
	s.Equal(5*time.Second, c.At, "the pool's refill follows the extension at once")
}

func (s *MonitorSuite) TestAutoscaleWithinToleranceDoesNothing() {
	s.catalog(time.Second, moCatalog(moWeb(tfWeb.Replicas, catalog.Scaling{}))) // web ×2: m1-c1, m1-c2
	before := s.snapshot(4 * time.Second)
	s.usage(5*time.Second, 54, "m1-c1", "m1-c2")  // 8% above the target
	s.usage(10*time.Second, 46, "m1-c1", "m1-c2") // 8% below
	s.signal(15*time.Second, workflows.SignalUsage, workflows.UsageSignal{Server: "s1",
		Containers: []workflows.ContainerUsage{{Container: "m1-c1", CPU: 53}, {Container: "m1-c2", CPU: 56}}}) // 54 on average
	within := s.snapshot(19 * time.Second)
	// Beyond the tolerance the same report does extend: the test can tell.
	s.usage(20*time.Second, 60, "m1-c1", "m1-c2")
	after := s.snapshot(25 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Equal(s.status(before).Services, s.status(within).Services)
	s.Equal(s.status(before).Events, s.status(within).Events, "no decision, no event")
	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/refill/3"}, s.ids())
	s.Equal(20*time.Second, s.child("msm/m1/extend/web/2").At)
	s.Equal(20*time.Second, s.requireRefill("msm/m1/refill/3", scWebRefillPlan()).At)
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 3, Ready: 3}, s.web(after), "ceil(2 × 60/50)")
}

func (s *MonitorSuite) TestAutoscaleInWaitsForAWholeStabilizationWindow() {
	// s1 alone with 8 slots; web at least 2, scaled to 4 by an operator.
	cat := moCatalog(moWeb(catalog.Replicas{Min: 2, Initial: 2, Max: 4},
		catalog.Scaling{Stabilization: time.Minute, Cooldown: 10 * time.Second}))
	s1 := tfS1
	s1.Slots = 8
	cat.Manager.Servers = []catalog.Server{s1}
	web := []string{"m1-c1", "m1-c2", "m1-c4", "m1-c5"}
	s.catalog(time.Second, cat)
	up := s.scale(5*time.Second, "web", 4) // m1-c4 (was waiting) and m1-c5, then the pool's m1-c6; cooldown until 15s
	s.usage(20*time.Second, 10, web...)    // recommends 2 (1, but web's min is 2): the window starts
	s.usage(50*time.Second, 10, web...)
	s.usage(60*time.Second, 50, web...) // busy: recommends 4
	s.usage(79*time.Second, 10, web...)
	early := s.snapshot(79*time.Second + 500*time.Millisecond)
	s.usage(80*time.Second, 10, web...) // a whole window, but 4 was recommended in it
	busy := s.snapshot(81 * time.Second)
	s.usage(90*time.Second, 35, web...) // recommends 3
	s.usage(100*time.Second, 10, web...)
	s.usage(121*time.Second, 10, web...) // 60s is out of the window; 3 (at 90s) is the highest left
	once := s.snapshot(125 * time.Second)
	s.usage(151*time.Second, 10, web...) // 90s is out too; 1 would do, web's min is 2
	twice := s.snapshot(155 * time.Second)
	s.usage(200*time.Second, 10, web...)
	after := s.snapshot(205 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, 4*time.Minute)
	s.requireCancelled()
	s.requireAccepted(up, "scaling web from 2 to 4 instance(s)")

	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 4, Ready: 4}, s.web(early), "not before a whole window since the first recommendation")
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 4, Ready: 4}, s.web(busy), "one busy report in the window keeps the instances")
	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/refill/3", "msm/m1/shrink/web/4", "msm/m1/shrink/web/5"}, s.ids())
	s.Equal(fleet.Plan{
		Starts: []fleet.Container{tfStart("c5", "s1", 20004, "web")},
		Loads:  []fleet.Container{{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c4")}},
	}, s.child("msm/m1/extend/web/2").Place.Plan)
	s.requireRefill("msm/m1/refill/3", fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s1", 20005, "")}})

	c := s.requireShrink("msm/m1/shrink/web/4", []string{"web"},
		fleet.ShrinkPlan{Destroys: []fleet.Container{shDraining("c5", "s1", 20004, "web")}})
	s.Equal(121*time.Second, c.At)
	st := s.status(once)
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 3, Ready: 3}, st.Services[0], "to the highest recommendation of the window")
	s.Contains(eventMessages(st.Events),
		"shrink web from 4 to 3 instance(s) (monitoring: 4 instance(s) at 10% CPU on average, target 50%, for 1m0s)")

	c = s.requireShrink("msm/m1/shrink/web/5", []string{"web"},
		fleet.ShrinkPlan{Destroys: []fleet.Container{shDraining("c4", "s1", 20003, "web")}})
	s.Equal(151*time.Second, c.At)
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 2, Ready: 2}, s.web(twice), "not below min")
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 2, Ready: 2}, s.web(after))
}

func (s *MonitorSuite) TestAutoscaleRespectsCooldown() {
	s.catalog(time.Second, moCatalog(moWeb(catalog.Replicas{Min: 1, Initial: 1, Max: 4}, catalog.Scaling{Cooldown: 20 * time.Second})))
	s.usage(5*time.Second, 100, "m1-c1") // 2, cooldown until 25s
	s.usage(10*time.Second, 100, "m1-c1", "m1-c3")
	s.usage(25*time.Second-time.Millisecond, 100, "m1-c1", "m1-c3")
	outWithin := s.snapshot(25*time.Second - time.Millisecond/2)
	s.usage(25*time.Second, 100, "m1-c1", "m1-c3") // 4, cooldown until 45s
	out := s.snapshot(30 * time.Second)
	s.usage(35*time.Second, 5, "m1-c1", "m1-c3", "m1-c4", "m1-c5")
	s.usage(45*time.Second-time.Millisecond, 5, "m1-c1", "m1-c3", "m1-c4", "m1-c5")
	inWithin := s.snapshot(45*time.Second - time.Millisecond/2)
	s.usage(45*time.Second, 5, "m1-c1", "m1-c3", "m1-c4", "m1-c5") // 1
	in := s.snapshot(50 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 2, Ready: 2}, s.web(outWithin), "no scale-out inside the cooldown")
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 4, Ready: 4}, s.web(out))
	s.Contains(eventMessages(s.status(out).Events),
		"extend web from 2 to 4 instance(s) (monitoring: 2 instance(s) at 100% CPU on average, target 50%)")
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 4, Ready: 4}, s.web(inWithin), "no scale-in inside the cooldown")
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 1, Ready: 1}, s.web(in))

	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/refill/3", "msm/m1/extend/web/4", "msm/m1/refill/5",
		"msm/m1/shrink/web/6"}, s.ids())
	s.requireRefill("msm/m1/refill/3", fleet.Plan{Starts: []fleet.Container{tfStart("c4", "s1", 20003, "")}})
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c5", "s2", 21000, "web")},
		Loads:   []fleet.Container{{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c4")}},
	}, s.child("msm/m1/extend/web/4").Place.Plan)
	s.requireRefill("msm/m1/refill/5", fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})
	var at []time.Duration
	for _, c := range s.started()[1:] {
		at = append(at, c.At)
	}
	s.Equal([]time.Duration{5 * time.Second, 5 * time.Second, 25 * time.Second, 25 * time.Second, 45 * time.Second}, at,
		"each decision when the cooldown before it ended, each extension's refill at once after it")
}

func (s *MonitorSuite) TestCatalogRejectionShowsInStatusUntilAValidCatalog() {
	const (
		bad   = "catalog.yaml:12: services[1] (api): replicas: max 0 is below min 1"
		worse = "catalog.yaml:3: manager: warm_pool: -1 is negative"
	)
	s.catalog(time.Second, tfCatalog())
	before := s.snapshot(4 * time.Second)
	s.signal(5*time.Second, workflows.SignalCatalogRejected, workflows.CatalogRejectedSignal{Source: "catalog.yaml", Error: bad})
	rejected := s.snapshot(6 * time.Second)
	s.signal(7*time.Second, workflows.SignalCatalogRejected, workflows.CatalogRejectedSignal{Source: "catalog.yaml", Error: worse})
	again := s.snapshot(8 * time.Second)
	fixed := tfCatalog()
	fixed.Services[0].Replicas.Max = 5
	s.catalog(10*time.Second, fixed)
	valid := s.snapshot(11 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	st0 := s.status(before)
	s.Empty(st0.CatalogError)
	s.Equal("catalog.yaml", st0.CatalogSource)

	st := s.status(rejected)
	s.Equal(bad, st.CatalogError)
	s.Equal("catalog.yaml", st.CatalogSource)
	s.Equal(scShape(st0), scShape(st), "the catalog in force stays, and what it placed")
	s.Equal(append(eventMessages(st0.Events), "catalog change from catalog.yaml rejected, the catalog in force stays: "+bad),
		eventMessages(st.Events))

	st = s.status(again)
	s.Equal(worse, st.CatalogError, "the latest rejection")
	s.Equal(scShape(st0), scShape(st))
	s.Equal([]string{"msm/m1/provision/1"}, s.ids(), "a rejection decides nothing")

	st = s.status(valid)
	s.Empty(st.CatalogError, "a valid catalog clears it")
	s.Equal(scShape(st0), scShape(st))
	s.Equal("catalog from catalog.yaml: 2 service(s)", st.Events[len(st.Events)-1].Message)
}
