package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stretchr/testify/mock"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

func (s *ManagerSuite) TestLostServerIsRecoveredOnTheOthersAndFencedWhenItComesBack() {
	var during, after workflows.Status
	var errDuring, errAfter error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	// s1's node goes silent: its lease times out 10s after it began, and
	// the node answers the fence 30s later, stopping the four stale ones.
	stale := []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"}
	s.fake.loseServer(s.env, "s1", 10*time.Second, 30*time.Second, stale)
	s.snapshot(20*time.Second, &during, &errDuring)
	s.snapshot(time.Minute, &after, &errAfter)
	s.run(workflows.ManagerInput{Manager: tfManager}, 2*time.Minute)
	s.requireCancelled()

	s.Require().NoError(errDuring)
	why := "server s1 lost: its node agent was unheard for 5s"
	failed := func(id, service string, port int) workflows.ContainerStatus {
		c := tmContainer(id, service, port, fleet.Failed, false)
		c.Error = why
		return c
	}
	s.Equal([]workflows.ServerStatus{
		{ID: "s1", State: string(fleet.ServerLost), Address: "10.0.0.1", Slots: 4, Used: 4},
		{ID: "s2", State: string(fleet.ServerReady), Address: "10.0.0.2", Slots: 4, Used: 4},
	}, during.Servers)
	s.Equal([]workflows.ContainerStatus{
		// Failed, but holding their leases until s1 is fenced.
		failed("c1", "web", 20000), failed("c2", "web", 20001), failed("c3", "api", 20002), failed("c4", "", 20003),
		onS2(tmContainer("c5", "web", 21000, fleet.Loaded, true)),
		onS2(tmContainer("c6", "web", 21001, fleet.Loaded, true)),
		onS2(tmContainer("c7", "api", 21002, fleet.Loaded, true)),
		onS2(tmContainer("c8", "", 21003, fleet.Waiting, false)),
	}, during.Containers)
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, during.Services)
	s.Contains(eventMessages(during.Events),
		why+"; recovering its 4 container(s) [m1-c1 m1-c2 m1-c3 m1-c4] on the other servers, to be fenced when it comes back")

	ps := s.provisions()
	s.Require().Len(ps, 3)
	s.Equal("msm/m1/recover/web+api/2", ps[1].ID, "named as a recovery")
	s.Equal([]string{"s2"}, serverIDs(ps[1].Input.Plan.Servers), "s2 is launched for it")
	s.Equal(tmRecoveredOnS2(), ps[1].Input.Plan.Starts, "the services' instances only: the pool waits for the next decision")
	s.Empty(ps[1].Input.Plan.Loads)
	s.requireRefill(ps[2], 3, fleet.Plan{Starts: []fleet.Container{tfStart("c8", "s2", 21003, "")}})
	s.Equal(ps[1].At, ps[2].At, "the refill follows the recovery at once")

	// Back: fenced with nothing kept, the leases released, s1 ready.
	s.Require().NoError(errAfter)
	in, n := s.fake.input(workflows.ActivityReconcile, "s1")
	s.Require().Equal(2, n, "its node was asked its version when it first started a container, then fenced")
	s.Empty(in.(workflows.ReconcileInput).Keep)
	s.Equal(string(fleet.ServerReady), after.Servers[0].State)
	s.Zero(after.Servers[0].Used)
	for _, c := range after.Containers {
		if c.Server == "s1" {
			s.Equal(string(fleet.Failed), c.State, "only the record of what failed is left on s1: %+v", c)
			s.Zero(c.Port, "its lease is released")
		}
	}
	s.Contains(eventMessages(after.Events),
		"server s1 is back: its node stopped 4 stale container(s) [m1-c1 m1-c2 m1-c3 m1-c4]; 4 lease(s) released, the server takes containers again")
	s.requireUniquePorts(after)
}

func (s *ManagerSuite) TestNodeUpReconcilesKeepingWhatTheManagerKeeps() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.signal(5*time.Second, workflows.SignalNodeUp, workflows.NodeUpSignal{Server: "s1", Containers: []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"}})
	s.snapshot(10*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err)
	s.Equal(tmProvisioned(fleet.Waiting), withoutEvents(st))
	in, n := s.fake.input(workflows.ActivityReconcile, "s1")
	s.Require().Equal(2, n, "its node was asked its version when it first started a container, then collected after its restart")
	s.Equal(workflows.ReconcileInput{Manager: tfManager, Server: "s1", Keep: []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"}, Seq: 4}, in)
}

// TestNodesAndAgentsVersionsAreShown: a node says its msm version when it
// comes up (its Reconcile answer): status shows it for its server. A
// container's agent is its node's: started on a server whose node said its
// version, it carries it from the start; started on a new server before
// its node answered, it gets the version when the node does; adopted by a
// restarted node, it keeps what it had (unknown when started before
// versions were said). A node that comes back with another version is said
// in an event, and one speaking a newer wire contract than the Manager is
// warned of.
func (s *ManagerSuite) TestNodesAndAgentsVersionsAreShown() {
	var before, known, after workflows.Status
	var err1, err2, err3 error
	olds := []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"}
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(4*time.Second, &before, &err1)
	s.at(4500*time.Millisecond, func() { s.fake.upgradeNode("s1", "v1", agentapi.Wire); s.fake.upgradeNode("s2", "v1", agentapi.Wire) })
	s.signal(5*time.Second, workflows.SignalNodeUp, workflows.NodeUpSignal{Server: "s1", Containers: olds})
	var ext1, ext2 tmUpdate
	// s1 said v1: the waiting m1-c4 (its agent unknown) is replaced
	// through the pool; web's extension does not take it.
	s.updateNamed(7*time.Second, workflows.UpdateExtend, "u1", workflows.ExtendUpdate{Service: "web", Count: 1}, &ext1)
	s.signal(8*time.Second, workflows.SignalNodeUp, workflows.NodeUpSignal{Server: "s2", Containers: []string{}})
	s.snapshot(9*time.Second, &known, &err2)
	s.at(9500*time.Millisecond, func() { s.fake.upgradeNode("s1", "v2", agentapi.Wire+1) })
	s.signal(10*time.Second, workflows.SignalNodeUp, workflows.NodeUpSignal{Server: "s1", Containers: olds})
	// s1 says v2: what waits there is replaced on s2, whose node said v1.
	s.updateNamed(11*time.Second, workflows.UpdateExtend, "u2", workflows.ExtendUpdate{Service: "web", Count: 1}, &ext2)
	s.snapshot(13*time.Second, &after, &err3)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err1)
	s.Require().NoError(err2)
	s.Require().NoError(err3)
	s.Require().NoError(ext1.err)
	s.Require().NoError(ext2.err)

	agents := func(st workflows.Status) map[string]string {
		out := map[string]string{}
		for _, c := range st.Containers {
			out[c.ID+"@"+c.Server] = c.Agent
		}
		return out
	}
	nodes := func(st workflows.Status) map[string]string {
		out := map[string]string{}
		for _, srv := range st.Servers {
			out[srv.ID] = srv.Node
		}
		return out
	}
	s.Equal(map[string]string{"s1": ""}, nodes(before), "not said yet")
	s.Equal(map[string]string{"s1": "v1", "s2": "v1"}, nodes(known))
	s.Equal(map[string]string{"m1-c1@s1": "", "m1-c2@s1": "", "m1-c3@s1": "", "m1-c5@s1": "v1", "m1-c7@s2": "v1"}, agents(known),
		"s1's loaded ones were started before its node said its version; the waiting m1-c4, its agent not s1's node's, was replaced through the pool (m1-c5, of s1's node)")
	s.Equal(map[string]string{"s1": "v2", "s2": "v1"}, nodes(after))
	s.Equal(map[string]string{"m1-c1@s1": "", "m1-c2@s1": "", "m1-c3@s1": "", "m1-c7@s2": "v1", "m1-c8@s2": "v1", "m1-c9@s2": "v1"}, agents(after),
		"adopted agents that serve keep their version; the waiting ones are of their node's from their start")
	s.Contains(eventMessages(after.Events), "node s1 now runs msm v2 (was v1)")
	s.Contains(eventMessages(after.Events), fmt.Sprintf(
		"node s1 (msm v2) speaks wire contract %d, newer than this Manager's %d: upgrade the Manager's workers before its nodes (docs/operations.md)",
		agentapi.Wire+1, agentapi.Wire))
}

// tmRecoveredOnS2 are the starts that recover tfCatalog's services on s2
// once s1 is lost.
func tmRecoveredOnS2() []fleet.Container {
	return []fleet.Container{tfStart("c5", "s2", 21000, "web"), tfStart("c6", "s2", 21001, "web"), tfStart("c7", "s2", 21002, "api")}
}

func serverIDs(ss []fleet.Server) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}

func onS2(c workflows.ContainerStatus) workflows.ContainerStatus {
	c.Server = "s2"
	return c
}

func (s *ManagerSuite) TestServerLostDuringAnOperationEndsItsStepsThere() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	// m1-c2's load on s1 would take an hour; s1 is lost 10s into its lease.
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.MatchedBy(func(in workflows.LoadServiceInput) bool {
		return in.Container == "m1-c2"
	})).After(time.Hour).Return(workflows.LoadServiceResult{Healthy: true}, nil).Maybe()
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.Anything).Return(s.fake.LoadService).Maybe()
	s.fake.loseServer(s.env, "s1", 10*time.Second, time.Hour, nil)
	s.snapshot(30*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(err)
	ps := s.provisions()
	s.Require().Len(ps, 3)
	s.Equal("msm/m1/recover/web+api/2", ps[1].ID)
	s.Less(ps[1].At.Sub(ps[0].At), 15*time.Second, "the recovery does not wait for the stuck load")
	s.Equal(tmRecoveredOnS2(), ps[1].Input.Plan.Starts)
	s.requireRefill(ps[2], 3, fleet.Plan{Starts: []fleet.Container{tfStart("c8", "s2", 21003, "")}})
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
	var c2 *workflows.ContainerStatus
	for i := range st.Containers {
		if st.Containers[i].ID == "m1-c2" {
			c2 = &st.Containers[i]
		}
	}
	s.Require().NotNil(c2)
	s.Equal(string(fleet.Failed), c2.State)
	s.Equal(20001, c2.Port, "it keeps its lease until s1 is fenced")
	s.Contains(eventMessages(st.Events), "container m1-c2 on s1 failed to load web: server s1 lost while the step ran")
	s.Empty(st.Services[0].LastError, "the loss counted as web's failure (m1-c2 was loading there), and its recovery on s2 loaded: no back-off left")
}

// TestServersLostWhileAServiceStartsBackItOff: a service whose instances
// take their servers down as they start (here web's loads hang, and each
// server it starts on is lost) counts each loss as a failure of its own,
// so it backs off like a service that crashes instead of taking down the
// next server at once.
func (s *ManagerSuite) TestServersLostWhileAServiceStartsBackItOff() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.MatchedBy(func(in workflows.LoadServiceInput) bool {
		return in.Container != "m1-c1" && in.Service.Name == "web"
	})).After(time.Hour).Return(workflows.LoadServiceResult{Healthy: true}, nil).Maybe()
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.Anything).Return(s.fake.LoadService).Maybe()
	s.fake.loseServer(s.env, "s1", 10*time.Second, time.Hour, nil)
	s.fake.loseServer(s.env, "s2", 10*time.Second, time.Hour, nil)
	s.snapshot(40*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(err)
	web := s.tmService(st, "web")
	s.Equal(2, web.Failures, "one failure per server lost while web started there: %v", eventMessages(st.Events))
	s.Contains(web.LastError, "server s2 lost: its node agent was unheard for 5s while an instance of web was starting there")
	s.Require().NotNil(web.RetryAt, "web backs off")
	api := s.tmService(st, "api")
	s.Zero(api.Failures, "api was loaded on s1, not starting: its loss is no failure of api")
}

// TestPlacementPastItsTimeoutIsFailedAndReplaced: an operation that outlives
// PlacementTimeout (here m1-c2's load never returns) is ended; what it left
// unfinished is failed and the next decision replaces it.
func (s *ManagerSuite) TestPlacementPastItsTimeoutIsFailedAndReplaced() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.MatchedBy(func(in workflows.LoadServiceInput) bool {
		return in.Container == "m1-c2"
	})).After(3*time.Hour).Return(workflows.LoadServiceResult{Healthy: true}, nil).Maybe()
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.Anything).Return(s.fake.LoadService).Maybe()
	s.snapshot(workflows.PlacementTimeout+10*time.Minute, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, workflows.PlacementTimeout+time.Hour)
	s.requireCancelled()

	s.Require().NoError(err)
	ps := s.provisions()
	s.Require().GreaterOrEqual(len(ps), 2, "a decision after the timeout")
	s.Equal(workflows.PlacementTimeout, ps[1].At.Sub(ps[0].At).Round(time.Minute), "decided when the first operation timed out")
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
	s.Contains(strings.Join(eventMessages(st.Events), "\n"), "msm/m1/provision/1 failed")
}

// TestLostServerIsForgottenAfterForgetAfter (issue 16): s1's node goes
// silent and never comes back; once lost for manager.forget_after its
// failed containers and their ports are released and it leaves the status,
// and the decision log says so.
func (s *ManagerSuite) TestLostServerIsForgottenAfterForgetAfter() {
	var lost, forgotten workflows.Status
	var errLost, errForgotten error
	cat := tfCatalog()
	cat.Manager.ForgetAfter = 20 * time.Second
	s.signal(time.Second, workflows.SignalCatalog, workflows.CatalogSignal{Catalog: cat, Source: "catalog.yaml"})
	s.fake.loseServer(s.env, "s1", 10*time.Second, time.Hour, nil)
	s.snapshot(20*time.Second, &lost, &errLost)
	s.snapshot(40*time.Second, &forgotten, &errForgotten)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(errLost)
	s.Require().NoError(errForgotten)

	s.Equal(string(fleet.ServerLost), lost.Servers[0].State)
	s.Equal([]workflows.ServerStatus{{ID: "s2", State: string(fleet.ServerReady), Address: "10.0.0.2", Slots: 4, Used: 4}}, forgotten.Servers)
	for _, c := range forgotten.Containers {
		s.NotEqual("s1", c.Server, "nothing of s1 is kept: %+v", c)
	}
	s.Equal([]workflows.PortUse{{Server: "s2", Range: 10, Leased: 4}}, forgotten.Ports)
	var msg string
	for _, e := range forgotten.Events {
		if strings.HasPrefix(e.Message, "server s1 forgotten") {
			msg = e.Message
		}
	}
	s.Contains(msg, "more than manager.forget_after (20s); its 4 container(s) and their ports released")
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, forgotten.Services)
}

// TestOperatorForgetsALostServer: msm forget releases a lost server at
// once; a server in use is refused, with what to do instead.
func (s *ManagerSuite) TestOperatorForgetsALostServer() {
	var forgotten workflows.Status
	var errForgotten error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal()) // forget_after: the default 10m
	s.fake.loseServer(s.env, "s1", 10*time.Second, time.Hour, nil)
	early := s.forgetAt(5*time.Second, "u-early", "s1")
	late := s.forgetAt(25*time.Second, "u-late", "s1")
	unknown := s.forgetAt(26*time.Second, "u-s9", "s9")
	inUse := s.forgetAt(27*time.Second, "u-s2", "s2")
	s.snapshot(30*time.Second, &forgotten, &errForgotten)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(errForgotten)

	s.ErrorContains(early.rejected, "server s1 is ready, not lost: only a lost server is forgotten; `msm drain s1` empties and releases one in use")
	s.Require().NoError(late.rejected)
	s.Equal("forgetting s1: its containers and their ports are released; a node that comes back there is fenced", late.result.Message)
	s.ErrorContains(unknown.rejected, `unknown server "s9"`)
	s.ErrorContains(inUse.rejected, "server s2 is ready, not lost")
	s.Equal([]workflows.ServerStatus{{ID: "s2", State: string(fleet.ServerReady), Address: "10.0.0.2", Slots: 4, Used: 4}}, forgotten.Servers)
	s.Contains(strings.Join(eventMessages(forgotten.Events), "\n"), "forgotten by an operator (msm forget); its 4 container(s) and their ports released")
}

// forgetAt sends an msm forget update at d.
func (s *ManagerSuite) forgetAt(d time.Duration, id, server string) *tmUpdate {
	out := &tmUpdate{}
	s.updateNamed(d, workflows.UpdateForget, id, workflows.ForgetUpdate{Server: server}, out)
	return out
}

// TestLostServerRemovedFromTheCatalogIsForgotten: a lost server the next
// catalog no longer lists is forgotten at once, not after forget_after (a
// dev setup started with other servers than the last run's).
func (s *ManagerSuite) TestLostServerRemovedFromTheCatalogIsForgotten() {
	var forgotten workflows.Status
	var errForgotten error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.fake.loseServer(s.env, "s1", 10*time.Second, time.Hour, nil)
	without := tfCatalog()
	without.Manager.Servers = []catalog.Server{tfS2}
	s.signal(25*time.Second, workflows.SignalCatalog, workflows.CatalogSignal{Catalog: without, Source: "other.yaml"})
	s.snapshot(26*time.Second, &forgotten, &errForgotten)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(errForgotten)
	s.Equal([]workflows.ServerStatus{{ID: "s2", State: string(fleet.ServerReady), Address: "10.0.0.2", Slots: 4, Used: 4}}, forgotten.Servers)
	s.Contains(strings.Join(eventMessages(forgotten.Events), "\n"), "server s1 forgotten: lost since")
	s.Contains(strings.Join(eventMessages(forgotten.Events), "\n"), "and removed from the catalog (other.yaml); its 4 container(s) and their ports released")
}

// outage makes server's lease time out after `after`, its node's last
// heartbeat sent one second into the lease: as when Temporal (or the
// Manager) comes back from an outage longer than the window and every
// overdue timeout fires at once. The next lease of server (the Manager's
// wait for its node) ends after probeAfter with probeErr; leases after
// that are held.
func (f *tfFleet) outage(env *testsuite.TestWorkflowEnvironment, server string, after, probeAfter time.Duration, probeErr error) {
	f.mu.Lock()
	if f.losing == nil {
		f.losing, f.fencing = map[string]bool{}, map[string]bool{}
	}
	f.losing[server] = true
	f.mu.Unlock()
	isServer := mock.MatchedBy(func(in workflows.LeaseInput) bool { return in.Server == server })
	env.OnActivity(workflows.ActivityLease, mock.Anything, isServer).After(after).
		Return(func(context.Context, workflows.LeaseInput) error {
			// This runs once the lease has lasted after.
			return temporal.NewHeartbeatTimeoutError(workflows.LeaseBeat{At: env.Now().Add(time.Second - after)})
		}).Once()
	env.OnActivity(workflows.ActivityLease, mock.Anything, isServer).After(probeAfter).Return(probeErr).Once().
		Run(func(mock.Arguments) { f.mu.Lock(); f.losing[server] = false; f.mu.Unlock() })
}

// TestLeaseTimedOutByAnOutageWaitsForItsNode (issue 17): s1's lease times
// out 29s after its node's last heartbeat, where a silent node's would
// after the 5s window: Temporal or the Manager was away, not the node. The
// Manager recovers nothing: it says why it waits, shows s1 unheard, and
// its node leasing again (it holds a lease of one window's term) ends the
// wait with every container kept.
func (s *ManagerSuite) TestLeaseTimedOutByAnOutageWaitsForItsNode() {
	var during, after workflows.Status
	var errDuring, errAfter error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.fake.outage(s.env, "s1", 30*time.Second, 5*time.Second, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_START_TO_CLOSE, nil))
	s.snapshot(33*time.Second, &during, &errDuring)
	s.snapshot(time.Minute, &after, &errAfter)
	s.run(workflows.ManagerInput{Manager: tfManager}, 2*time.Minute)
	s.requireCancelled()

	s.Require().NoError(errDuring)
	s.Require().Len(during.Servers, 1)
	s.Equal(string(fleet.ServerReady), during.Servers[0].State)
	s.Require().NotNil(during.Servers[0].UnheardUntil, "status shows s1 waiting for its node")
	msgs := eventMessages(during.Events)
	s.Contains(msgs, "server s1's lease timed out 29s after its node's last heartbeat, where a silent node's times out after the liveness window (5s): "+
		"Temporal or this Manager was away, not its node; waiting up to 30s (manager.outage_grace) for its node to lease again before recovering anything")
	s.Equal(tmProvisioned(fleet.Waiting), withoutEvents(withoutUnheard(during)), "nothing failed, nothing recovered")

	s.Require().NoError(errAfter)
	s.Nil(after.Servers[0].UnheardUntil)
	s.Contains(eventMessages(after.Events), "server s1's node leased again after the outage, 5s after its lease timed out: nothing was recovered, its 4 container(s) kept")
	s.Equal(tmProvisioned(fleet.Waiting), withoutEvents(after))
	s.Len(s.provisions(), 1, "no recovery")
	for _, c := range s.fake.began(workflows.ActivityReconcile) {
		s.NotEmpty(c.Input.(workflows.ReconcileInput).Keep, "no fence: nothing of s1 is stopped (a Reconcile keeping its containers asked its node's version)")
	}
	for _, e := range after.Events {
		s.NotContains(e.Message, "lost")
	}
}

// TestNodeNotBackWithinTheOutageGraceIsLost: after the same outage, s1's
// node never takes the lease it is waited with: once manager.outage_grace
// (30s, three windows and at least 30s) passes, s1 is lost as any silent
// server (recovered on s2, fenced when it comes back), and the events say
// why it was waited for and why it is lost.
func (s *ManagerSuite) TestNodeNotBackWithinTheOutageGraceIsLost() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.fake.outage(s.env, "s1", 30*time.Second, 30*time.Second, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil))
	s.fake.mu.Lock()
	s.fake.fencing["s1"] = true
	s.fake.mu.Unlock()
	s.env.OnActivity(workflows.ActivityReconcile, mock.Anything, mock.MatchedBy(func(in workflows.ReconcileInput) bool { return in.Server == "s1" })).
		After(time.Hour).Return(workflows.ReconcileResult{}, nil).Maybe()
	s.snapshot(80*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, 2*time.Minute)
	s.requireCancelled()

	s.Require().NoError(err)
	msgs := strings.Join(eventMessages(st.Events), "\n")
	s.Contains(msgs, "waiting up to 30s (manager.outage_grace) for its node to lease again before recovering anything")
	s.Contains(msgs, "server s1 lost: its node did not lease again within 30s (manager.outage_grace) after Temporal or this Manager came back; "+
		"recovering its 4 container(s) [m1-c1 m1-c2 m1-c3 m1-c4] on the other servers, to be fenced when it comes back")
	s.Equal(string(fleet.ServerLost), st.Servers[0].State)
	s.Nil(st.Servers[0].UnheardUntil)
	ps := s.provisions()
	s.Require().GreaterOrEqual(len(ps), 2)
	s.Equal("msm/m1/recover/web+api/2", ps[1].ID)
	s.GreaterOrEqual(ps[1].At.Sub(ps[0].At), 55*time.Second, "recovered only once the grace passed")
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
}

func withoutUnheard(st workflows.Status) workflows.Status {
	st.Servers = slices.Clone(st.Servers)
	for i := range st.Servers {
		st.Servers[i].UnheardUntil = nil
	}
	return st
}

// TestLeaseTimedOutWithinAWindowOfDueIsLostAtOnce: a timeout that comes
// less than a window past due (the node's last beat 9s before it, the
// window 5s: the slack a loaded Temporal or worker may add) is a silent
// node's: s1 is lost and recovered at once, as before.
func (s *ManagerSuite) TestLeaseTimedOutWithinAWindowOfDueIsLostAtOnce() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.fake.mu.Lock()
	s.fake.losing, s.fake.fencing = map[string]bool{"s1": true}, map[string]bool{"s1": true}
	s.fake.mu.Unlock()
	isS1 := mock.MatchedBy(func(in workflows.LeaseInput) bool { return in.Server == "s1" })
	s.env.OnActivity(workflows.ActivityLease, mock.Anything, isS1).After(10 * time.Second).
		Return(func(context.Context, workflows.LeaseInput) error {
			return temporal.NewHeartbeatTimeoutError(workflows.LeaseBeat{At: s.env.Now().Add(-9 * time.Second)})
		}).Once()
	s.env.OnActivity(workflows.ActivityReconcile, mock.Anything, mock.MatchedBy(func(in workflows.ReconcileInput) bool { return in.Server == "s1" })).
		After(time.Hour).Return(workflows.ReconcileResult{}, nil).Maybe()
	s.snapshot(30*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(err)
	s.Equal(string(fleet.ServerLost), st.Servers[0].State)
	s.Contains(strings.Join(eventMessages(st.Events), "\n"), "server s1 lost: its node agent was unheard for 5s; recovering its 4 container(s)")
	s.NotContains(strings.Join(eventMessages(st.Events), "\n"), "was away")
	ps := s.provisions()
	s.Require().GreaterOrEqual(len(ps), 2)
	s.Less(ps[1].At.Sub(ps[0].At), 15*time.Second, "recovered at once")
}

// TestOutageDuringTheGraceWaitsAgain: s1's node has 30s to lease again
// after an outage, and the timeout of that lease comes 30s late itself
// (Temporal away again meanwhile): s1 is waited for once more, not lost.
func (s *ManagerSuite) TestOutageDuringTheGraceWaitsAgain() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.fake.outage(s.env, "s1", 30*time.Second, time.Minute, temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil))
	s.snapshot(100*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, 2*time.Minute)
	s.requireCancelled()

	s.Require().NoError(err)
	msgs := strings.Join(eventMessages(st.Events), "\n")
	s.Contains(msgs, "server s1's lease, not taken, timed out 30s late: Temporal or this Manager was away, not its node; waiting up to 30s")
	s.NotContains(msgs, "lost")
	s.Equal(string(fleet.ServerReady), st.Servers[0].State)
	s.NotNil(st.Servers[0].UnheardUntil)
	s.Len(s.provisions(), 1, "no recovery")
}

// TestNodeRestartedWithinTheWindowTakesANewLease: s1's node is replaced (an
// upgrade) 4s into its lease; its predecessor's lease would time out at
// 10s. The new node says it is up with every container: it takes a new
// lease at once, and s1 is never lost (before, the old lease's timeout
// lost it, and its instances were recovered elsewhere and fenced).
func (s *ManagerSuite) TestNodeRestartedWithinTheWindowTakesANewLease() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	// s1's first lease is the old node's: it times out at 10s; the
	// next is the new node's, and holds.
	s.fake.mu.Lock()
	s.fake.losing = map[string]bool{"s1": true}
	s.fake.mu.Unlock()
	isS1 := mock.MatchedBy(func(in workflows.LeaseInput) bool { return in.Server == "s1" })
	s.env.OnActivity(workflows.ActivityLease, mock.Anything, isS1).After(10 * time.Second).
		Return(temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil)).Once()
	s.env.OnActivity(workflows.ActivityLease, mock.Anything, isS1).After(tfLeaseTerm).Return(nil).Once()
	s.signal(5*time.Second, workflows.SignalNodeUp, workflows.NodeUpSignal{Server: "s1", Containers: []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"}})
	s.snapshot(30*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(err)
	s.Equal(string(fleet.ServerReady), st.Servers[0].State)
	s.NotContains(strings.Join(eventMessages(st.Events), "\n"), "lost")
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
	s.Len(s.provisions(), 1, "nothing recovered")
}
