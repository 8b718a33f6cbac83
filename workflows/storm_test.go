package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"

	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Back-pressure (issue 17, acceptance 4): storms of reports, the signal
// bound of a run, the hand-over of running operations and the nodes'
// summaries.

// stFleet is a fleet already provisioned, the input of these tests: web
// on m1-c1 and m1-c2, api on m1-c3, all on s1 (8 slots), no warm pool.
func stFleet() workflows.ManagerInput {
	cat := tfCatalog()
	cat.Manager.WarmPool = 0
	cat.Manager.Servers = slices.Clone(cat.Manager.Servers)
	cat.Manager.Servers[0].Slots = 8
	on := func(id, service string, port int) fleet.Container {
		return fleet.Container{ID: id, Server: "s1", Port: port, State: fleet.Loaded, Service: service, Healthy: true, PID: tfAgentPID(id)}
	}
	s1 := tfServer(cat.Manager.Servers[0], fleet.ServerReady)
	s1.NodeSeen = true
	return workflows.ManagerInput{Manager: tfManager, Catalog: &cat, Inventory: fleet.Inventory{Seq: 3,
		Servers: []fleet.Server{s1}, Containers: []fleet.Container{on("m1-c1", "web", 20000), on("m1-c2", "web", 20001), on("m1-c3", "api", 20002)}}}
}

// slowLoads makes every load take d.
func (s *ScaleSuite) slowLoads(d time.Duration) {
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.Anything).After(d).Return(
		func(_ context.Context, in workflows.LoadServiceInput) (workflows.LoadServiceResult, error) {
			return workflows.LoadServiceResult{PID: tfServicePID(in.Container), Healthy: true}, nil
		})
}

// storm sends n overload reports, one every gap from at, round web's and
// api's instances, each in a workflow task of its own. Each report's
// callback registers the next one's: the environment holds only so many
// callbacks registered before the run starts.
func (s *ScaleSuite) storm(at time.Duration, n int, gap time.Duration) {
	reporters := [][2]string{{"m1-c1", "web"}, {"m1-c3", "api"}, {"m1-c2", "web"}}
	var send func(i int)
	send = func(i int) {
		r := reporters[i%len(reporters)]
		s.env.SignalWorkflow(workflows.SignalOverload, workflows.OverloadSignal{Container: r[0], Service: r[1], Reason: fmt.Sprintf("storm report %d", i)})
		if i+1 < n {
			s.at(gap, func() { send(i + 1) })
		}
	}
	s.at(at, func() { send(0) })
}

// stDecisions counts the extension decisions of a service in a log (not
// the operations' records, which name their operation).
func stDecisions(log []workflows.Record, service string) int {
	n := 0
	for _, r := range log {
		if r.Kind == workflows.RecordExtend && r.Op == "" && slices.Contains(r.Services, service) {
			n++
		}
	}
	return n
}

func stTarget(in workflows.ManagerInput, service string) int {
	for _, t := range in.Targets {
		if t.Service == service {
			return t.Desired
		}
	}
	return 0
}

// TestSignalStormContinuesAsNewAtItsSignalLimit: 3,000 overload reports,
// each in a workflow task of its own, reach a Manager whose run takes
// at most 1,000 signals (the server refuses any past 10,000). The run
// continues as new once it took 1,000, not later, whatever its history
// length says, and each service was extended once: every other report
// fell in its cooldown or into its running extension.
func (s *ScaleSuite) TestSignalStormContinuesAsNewAtItsSignalLimit() {
	const limit, reports = 1000, 3000
	in := stFleet()
	in.SignalLimit = limit
	s.storm(2*time.Second, reports, time.Millisecond)
	start := s.env.Now()
	s.run(in, time.Minute)

	next := s.continuedAs()
	took := s.env.Now().Sub(start)
	// The storm's signals taken, and the operations' results besides.
	delivered := int((took-2*time.Second)/time.Millisecond) + 1
	s.LessOrEqual(delivered, limit, "continued as new after %d of the storm's signals", delivered)
	s.Greater(delivered, limit-20, "continued as new after only %d of the storm's signals", delivered)
	s.Equal(3, stTarget(next, "web"), "web extended once")
	s.Equal(2, stTarget(next, "api"), "api extended once (its max)")
	s.Equal(1, stDecisions(next.Log, "web"), "%v", next.Log)
	s.Equal(1, stDecisions(next.Log, "api"))
	s.Greater(next.Suppressed["web"], 300, "web's other reports folded")
	s.Empty(next.Handed, "the extensions were over: nothing to hand over")
}

// TestSignalStormDuringALongOperationHandsItOver: the extensions of web
// and api take a minute (their loads do) and the history is full, so the
// run may not start operations and would wait for these before it
// continues as new; 1,500 reports come meanwhile. Once it took its 500
// signals it continues as new at once, handing both extensions over with
// what they hold. The next run holds them as running (no second
// extension, nothing placed for their services), awaits their ends with
// AwaitOperation and records them: their instances loaded, the fleet
// settled, each service extended once.
func (s *ScaleSuite) TestSignalStormDuringALongOperationHandsItOver() {
	s.slowLoads(time.Minute)
	in := stFleet()
	in.SignalLimit, in.HistoryLimit = 500, 100
	s.overload(2*time.Second, "m1-c1", "web", "cpu above 80% for 60s")
	s.overload(2*time.Second, "m1-c3", "api", "cpu above 80% for 60s")
	s.at(3*time.Second, func() { s.env.SetCurrentHistoryLength(150) })
	s.storm(4*time.Second, 1500, time.Millisecond)
	closed := false
	s.at(5*time.Second, func() { closed = s.env.IsWorkflowCompleted() })
	start := s.env.Now()
	s.run(in, 2*time.Minute)

	next := s.continuedAs()
	s.True(closed, "continued as new within 5 s, before the loads ended")
	var ids []string
	for _, c := range s.started() {
		ids = append(ids, c.ID)
	}
	s.Equal([]string{"msm/m1/extend/web/1", "msm/m1/extend/api/2"}, ids)
	s.Require().Len(next.Handed, 2)
	web, api := next.Handed[0], next.Handed[1]
	if web.ID != ids[0] {
		web, api = api, web
	}
	s.True(web.Start.Equal(start.Add(2*time.Second)), "begun at %s", web.Start)
	web.Start = time.Time{}
	s.Equal(workflows.HandedOp{ID: "msm/m1/extend/web/1", Kind: "extend",
		Keys: fleet.Keys{Services: []string{"web"}, On: []string{"s1"}}, Containers: []string{"m1-c4"}}, web)
	s.Equal([]string{"m1-c5"}, api.Containers)
	s.Equal(3, stTarget(next, "web"))
	s.Equal(2, stTarget(next, "api"))
	s.Equal(1, stDecisions(next.Log, "web"))
	s.Equal(1, stDecisions(next.Log, "api"))
	for _, id := range []string{"m1-c4", "m1-c5"} {
		c := next.Inventory.Container(id)
		s.Require().NotNil(c, id)
		s.Contains([]fleet.ContainerState{fleet.Starting, fleet.Loaded}, c.State, "%s placed, its load under way", id)
		s.False(c.Healthy, id)
	}

	// The next run, on the state handed over: both extensions end 10 s
	// into it.
	s.SetupTest()
	s.fake.awaited = map[string]workflows.AwaitOperationResult{}
	for _, h := range next.Handed {
		c := h.Containers[0]
		s.fake.awaited[h.ID] = workflows.AwaitOperationResult{Loaded: 1, Steps: []workflows.StepResult{
			{Op: h.ID, Step: workflows.StepLoad, Server: "s1", Container: c, PID: tfServicePID(c), OK: true}}}
	}
	s.env.OnActivity(workflows.ActivityAwaitOperation, mock.Anything, mock.Anything).After(10 * time.Second).Return(s.fake.AwaitOperation)
	s.storm(2*time.Second, 30, 100*time.Millisecond)
	during := s.snapshot(5 * time.Second)
	after := s.snapshot(20 * time.Second)
	s.run(next, time.Minute)
	s.requireCancelled()

	st := s.status(during)
	s.Equal(2, st.Operations, "the handed-over extensions run")
	st = s.status(after)
	s.Zero(st.Operations)
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "api", Desired: 2, Ready: 2}}, st.Services)
	s.Empty(s.started(), "nothing placed again")
	var awaited []string
	for _, c := range s.fake.calls {
		if c.Activity == workflows.ActivityAwaitOperation {
			awaited = append(awaited, c.Key)
		}
	}
	slices.Sort(awaited)
	s.Equal([]string{"msm/m1/extend/api/2", "msm/m1/extend/web/1"}, awaited)
	done := 0
	for _, e := range st.Events {
		if strings.HasPrefix(e.Message, "msm/m1/extend/") && strings.Contains(e.Message, " done: ") {
			done++
		}
	}
	s.Equal(2, done, "both ends recorded: %v", eventMessages(st.Events))
	s.Equal(1, scCountEvents(st, "extend web from "), "no other extension: %v", eventMessages(st.Events))
	s.Equal(1, scCountEvents(st, "extend api from "), "no other extension: %v", eventMessages(st.Events))
}

// TestAHandedOverOperationThatFailedIsReplaced: an operation handed over
// that failed meanwhile leaves its instances failed, and the next
// decision places them again.
func (s *ScaleSuite) TestAHandedOverOperationThatFailedIsReplaced() {
	in := stFleet()
	in.Targets = []workflows.Target{{Service: "web", Desired: 3}}
	in.Inventory.Seq = 4
	in.Inventory.Containers = append(in.Inventory.Containers,
		fleet.Container{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c4")})
	in.Handed = []workflows.HandedOp{{ID: "msm/m1/extend/web/1", Kind: "extend", Keys: fleet.Keys{Services: []string{"web"}, On: []string{"s1"}},
		Containers: []string{"m1-c4"}}}
	in.Ops = 1
	s.fake.awaited = map[string]workflows.AwaitOperationResult{"msm/m1/extend/web/1": {Error: "activity LoadService timed out"}}
	after := s.snapshot(30 * time.Second)
	s.run(in, time.Minute)
	s.requireCancelled()

	st := s.status(after)
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
	s.Contains(eventMessages(st.Events), "msm/m1/extend/web/1 failed: activity LoadService timed out")
	s.Require().NotEmpty(s.started())
	s.Contains(s.started()[0].Services, "web", "web's instance placed again")
}

// TestOverloadsDuringALongExtensionMakeOneDecision: web's extension
// takes a minute and its instances keep reporting overload every 5 s.
// The reports after the cooldown (30 s) fold into the extension under
// way instead of deciding another; once it ended, the next report
// decides the next one.
func (s *ScaleSuite) TestOverloadsDuringALongExtensionMakeOneDecision() {
	s.slowLoads(time.Minute)
	for d := 2 * time.Second; d <= 100*time.Second; d += 5 * time.Second {
		s.overload(d, "m1-c1", "web", "cpu above 80% for 60s")
	}
	during := s.snapshot(61 * time.Second)
	after := s.snapshot(90 * time.Second)
	s.run(stFleet(), 2*time.Minute)
	s.requireCancelled()

	st := s.status(during)
	s.Equal(1, scCountEvents(st, "extend web from "), "%v", eventMessages(st.Events))
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 3, Ready: 2}, st.Services[0])
	st = s.status(after)
	s.Equal(1, scCountEvents(st, "extend web from 3 to 4 instance(s) (overload reported by m1-c1: cpu above 80% for 60s; "), "%v", eventMessages(st.Events))
}

// TestNodeSummariesAreActedOnForItsOwnContainers: a node's summary of its
// agents' reports is acted on as their own signals would be (one
// extension for two overloaded instances of web), and only when its node
// signed it and speaks of its own server's containers, each running the
// service it names.
func (s *ScaleSuite) TestNodeSummariesAreActedOnForItsOwnContainers() {
	ring, err := trust.NewRing(trRoot)
	s.Require().NoError(err)
	s.env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{workflows.TrustInterceptor(ring)}})
	sign := func(server string, r workflows.ReportsSignal) workflows.ReportsSignal {
		r.Auth = trust.Sign(trust.ServerKey(trRoot, tfManager, server), r.Fields()...)
		return r
	}
	overload := func(c, svc string) agentapi.Report {
		return agentapi.Report{Kind: agentapi.SignalOverload, Container: c, Service: svc, Reason: "cpu above 80% for 60s"}
	}
	forged := []workflows.ReportsSignal{
		{Server: "s1", Reports: []agentapi.Report{overload("m1-c3", "api")}},                                    // no tag
		sign("s2", workflows.ReportsSignal{Server: "s2", Reports: []agentapi.Report{overload("m1-c3", "api")}}), // not s2's container
		sign("s1", workflows.ReportsSignal{Server: "s1", Reports: []agentapi.Report{overload("m1-c3", "web")}}), // m1-c3 runs api
		sign("s1", workflows.ReportsSignal{Server: "s1", Reports: []agentapi.Report{{Kind: "shrink", Container: "m1-c3", Service: "api"}}}),
	}
	for i, f := range forged {
		s.signal(2*time.Second+time.Duration(i)*time.Second, workflows.SignalReports, f)
	}
	in := stFleet()
	in.Inventory.Servers = append(in.Inventory.Servers, tfServer(tfS2, fleet.ServerReady))
	forgedDone := s.snapshot(8 * time.Second)
	s.signal(10*time.Second, workflows.SignalReports, sign("s1", workflows.ReportsSignal{Server: "s1", Reports: []agentapi.Report{
		overload("m1-c1", "web"), overload("m1-c2", "web"), {Kind: agentapi.SignalIdle, Container: "m1-c3", Service: "api", Reason: "cpu 1% below 10%"}}}))
	after := s.snapshot(20 * time.Second)
	s.run(in, time.Minute)
	s.requireCancelled()

	st := s.status(forgedDone)
	s.Equal(len(forged), st.Rejected, "%v", eventMessages(st.Events))
	s.Zero(scCountEvents(st, "extend "))
	st = s.status(after)
	s.Equal(len(forged), st.Rejected)
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
	s.Equal(1, scCountEvents(st, "extend web from 2 to 3 instance(s) (overload reported by m1-c1: cpu above 80% for 60s)"), "%v", eventMessages(st.Events))
	s.Equal(1, scCountEvents(st, "extend "))
}
