package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/version"
	msmworker "github.com/msm-project/msm/worker"
	"github.com/msm-project/msm/workflows"
)

// ManagerSuite runs the Manager entity workflow with its Provision children
// and a fake fleet. The Manager never ends on its own: a test ends it by
// continue-as-new or by cancelling it once it has queried the state.
type ManagerSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite

	env  *testsuite.TestWorkflowEnvironment
	fake *tfFleet

	mu       sync.Mutex
	children []tmChild
}

// tmChild is one Provision the Manager started.
type tmChild struct {
	ID    string
	Input workflows.ProvisionInput
	At    time.Time // workflow time of the start
}

func TestManagerSuite(t *testing.T) { suite.Run(t, new(ManagerSuite)) }

func (s *ManagerSuite) SetupTest() {
	s.fake = &tfFleet{}
	s.children = nil
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetTestTimeout(30 * time.Second)
	// Provision signals its parent by the Manager's workflow ID.
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.ManagerID(tfManager)})
	msmworker.RegisterWorkflows(s.env)
	s.fake.register(s.env)
	s.fake.holdLeases(s.env)
	s.env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, args converter.EncodedValues) {
		var in workflows.ProvisionInput
		s.NoError(args.Get(&in)) // not Require: this runs off the test goroutine
		withoutRevisions(&in)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.children = append(s.children, tmChild{ID: info.WorkflowExecution.ID, Input: in, At: s.env.Now()})
		if len(s.children) == tmRunaway {
			// A Manager that retries without waiting provisions for ever
			// while workflow time stands still, so no delayed callback
			// ends it: end it here, and let the test fail on what it saw.
			s.env.CancelWorkflow()
		}
	})
}

// tmRunaway is more Provisions than any test expects.
const tmRunaway = 50

func (s *ManagerSuite) AfterTest(_, _ string) {
	s.env.AssertExpectations(s.T())
}

// provisions returns the Provisions started so far.
func (s *ManagerSuite) provisions() []tmChild {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.children)
}

// requireRefill asserts that c is the refill numbered n (a Provision that
// only refills the warm pool), with plan: the decision made when an
// extension or a recovery ended.
func (s *ManagerSuite) requireRefill(c tmChild, n int, plan fleet.Plan) {
	id := fmt.Sprintf("msm/m1/refill/%d", n)
	s.Equal(id, c.ID)
	s.Equal(id, c.Input.Op)
	s.Equal(plan, c.Input.Plan, id)
	s.Nil(c.Input.Services, "%s places no service", id)
	for _, st := range plan.Starts {
		s.Empty(st.Service, "%s: a refill starts warm-pool containers only", id)
	}
}

// at runs fn at d after the Manager starts.
func (s *ManagerSuite) at(d time.Duration, fn func()) { s.env.RegisterDelayedCallback(fn, d) }

func (s *ManagerSuite) signal(d time.Duration, name string, arg any) {
	s.at(d, func() { s.env.SignalWorkflow(name, arg) })
}

// getStatus decodes a status query's answer, checks that it names the
// version of the worker that answered (this test binary's), and leaves
// that out, so the tests compare what the Manager decided.
func getStatus(v converter.EncodedValue, st *workflows.Status) error {
	if err := v.Get(st); err != nil {
		return err
	}
	if st.Worker != version.Get() {
		return fmt.Errorf("the status says worker %q, this build is %q", st.Worker, version.Get())
	}
	st.Worker = ""
	return nil
}

// snapshot queries status at d into *st (asserted after the run: a failed
// assertion must not stop the test environment's own goroutine).
func (s *ManagerSuite) snapshot(d time.Duration, st *workflows.Status, err *error) {
	s.at(d, func() {
		v, qerr := s.env.QueryWorkflow(workflows.QueryStatus)
		if qerr == nil {
			qerr = getStatus(v, st)
		}
		*err = qerr
	})
}

// run starts the Manager, and cancels it at end unless it ended before.
func (s *ManagerSuite) run(in workflows.ManagerInput, end time.Duration) {
	s.at(end, func() { s.env.CancelWorkflow() })
	s.env.ExecuteWorkflow(workflows.Manager, in)
	s.Require().True(s.env.IsWorkflowCompleted())
}

// requireCancelled asserts that the Manager ran until the test cancelled it.
func (s *ManagerSuite) requireCancelled() {
	err := s.env.GetWorkflowError()
	var canceled *temporal.CanceledError
	s.Require().True(errors.As(err, &canceled), "the Manager ended by itself: %v", err)
}

func tmCatalogSignal() workflows.CatalogSignal {
	return workflows.CatalogSignal{Catalog: tfCatalog(), Source: "catalog.yaml"}
}

func tmContainer(id, service string, port int, state fleet.ContainerState, healthy bool) workflows.ContainerStatus {
	return workflows.ContainerStatus{ID: tfManager + "-" + id, Server: "s1", State: string(state), Service: service, Port: port, Healthy: healthy}
}

// tmProvisioned is the status after the first Provision of tfCatalog, with
// the warm-pool container m1-c4 in state warm (waiting once its Ready
// answered).
func tmProvisioned(warm fleet.ContainerState) workflows.Status {
	return workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone, WarmPool: 1,
		Servers: []workflows.ServerStatus{{ID: "s1", State: string(fleet.ServerReady), Address: "10.0.0.1", Slots: 4, Used: 4}},
		Containers: []workflows.ContainerStatus{
			tmContainer("c1", "web", 20000, fleet.Loaded, true),
			tmContainer("c2", "web", 20001, fleet.Loaded, true),
			tmContainer("c3", "api", 20002, fleet.Loaded, true),
			tmContainer("c4", "", 20003, warm, false),
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}},
	}
}

// withoutEvents returns st without its events, which carry times, its
// counters and durations (TestDecisionLogAndCounters checks them), and
// without the catalog source, which TestCatalogSourceAndRejectionInStatus
// checks.
func withoutEvents(st workflows.Status) workflows.Status {
	st.Events, st.Counts, st.Durations, st.Ports = nil, nil, nil, nil
	st.CatalogSource = ""
	st.RunSignals, st.SignalLimit = 0, 0
	return st
}

// withoutSignals returns st without the count of the signals its run
// took, which every report moves.
func withoutSignals(st workflows.Status) workflows.Status {
	st.RunSignals = 0
	return st
}

// withoutRevisions clears the revisions an operation's instances carry
// and when they became healthy, for the tables of tests of anything but
// rolls (RollSuite's).
func withoutRevisions(in *workflows.ProvisionInput) {
	plainContainers(in.Plan.Starts)
	plainContainers(in.Plan.Loads)
}

// plainContainers clears each container's revision and ReadyAt.
func plainContainers(list []fleet.Container) []fleet.Container {
	for i := range list {
		list[i].Revision, list[i].ReadyAt = "", time.Time{}
	}
	return list
}

// recordTexts are the decision log's records as the status's events say
// them.
func recordTexts(log []workflows.Record) []string {
	var out []string
	for _, r := range log {
		out = append(out, r.Text())
	}
	return out
}

func eventMessages(evs []workflows.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Message)
	}
	return out
}

// requireUniquePorts asserts that no two containers on a server share a
// port (invariant 1). A failed container that could not be stopped still
// holds its lease and counts; a destroyed one shows port 0.
func (s *ManagerSuite) requireUniquePorts(st workflows.Status) {
	seen := map[string]string{}
	for _, c := range st.Containers {
		if c.Port == 0 {
			s.Require().Equal(string(fleet.Failed), c.State, "%s has no port", c.ID)
			continue
		}
		key := fmt.Sprintf("%s:%d", c.Server, c.Port)
		s.Require().Empty(seen[key], "port %d on %s is leased to %s and %s", c.Port, c.Server, seen[key], c.ID)
		seen[key] = c.ID
	}
}

func (s *ManagerSuite) TestCatalogSignalProvisionsServicesAndWarmPool() {
	var before, after workflows.Status
	var errBefore, errAfter error
	s.snapshot(500*time.Millisecond, &before, &errBefore)
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(10*time.Second, &after, &errAfter)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(errBefore)
	s.Equal(workflows.Status{Manager: tfManager, Servers: []workflows.ServerStatus{},
		Containers: []workflows.ContainerStatus{}, Services: []workflows.ServiceStatus{}, SignalLimit: workflows.DefaultSignalLimit}, before, "nothing happens before the catalog")

	s.Require().NoError(errAfter)
	// The warm-pool container's agent answered Ready: it waits, unregistered.
	s.Equal(tmProvisioned(fleet.Waiting), withoutEvents(after))
	s.requireUniquePorts(after)

	ps := s.provisions()
	s.Require().Len(ps, 1, "one decision, one Provision")
	s.Equal("msm/m1/provision/1", ps[0].ID)
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS1, fleet.ServerLaunching)},
		Starts: []fleet.Container{
			tfStart("c1", "s1", 20000, "web"), tfStart("c2", "s1", 20001, "web"),
			tfStart("c3", "s1", 20002, "api"), tfStart("c4", "s1", 20003, ""),
		},
	}, ps[0].Input.Plan)
	s.Equal([]catalog.Service{tfWeb, tfAPI}, ps[0].Input.Services)
	s.Equal("msm/m1/provision/1", ps[0].Input.Op)
	s.Equal(map[string]string{"s1": "10.0.0.1"}, ps[0].Input.Addresses)
	s.Equal([]string{"m1-c1", "m1-c2", "m1-c3"}, s.fake.keys(workflows.ActivityLoadService))
	s.Equal([]string{"m1-c4"}, s.fake.keys(workflows.ActivityReady))
	s.Empty(s.fake.began(workflows.ActivityStopContainer))
	s.Contains(eventMessages(after.Events), "msm/m1/provision/1 done: 4 started, 3 loaded, 0 failed")
}

func (s *ManagerSuite) TestReadyNotRegisterPutsWarmContainerInThePool() {
	// Ready answers 10s after it is asked (at 1s); the agent registers at 5s.
	s.env.OnActivity(workflows.ActivityReady, mock.Anything, mock.Anything).After(10*time.Second).Return(
		workflows.ReadyResult{PID: tfAgentPID("m1-c4")}, nil)
	var registered, ready workflows.Status
	var err1, err2 error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.signal(5*time.Second, workflows.SignalRegister, workflows.RegisterSignal{Container: "m1-c4", Server: "s1", PID: tfAgentPID("m1-c4")})
	s.snapshot(6*time.Second, &registered, &err1)
	s.snapshot(15*time.Second, &ready, &err2)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(err1)
	s.Require().NoError(err2)
	want := tmProvisioned(fleet.Starting)
	want.Operations = 1
	s.Equal(want, withoutEvents(registered), "registered but not yet ready: still starting")
	s.Equal(tmProvisioned(fleet.Waiting), withoutEvents(ready))
	s.Len(s.provisions(), 1, "neither a registration nor Ready decides anything")
}

func (s *ManagerSuite) TestRegisterFromUnknownContainerChangesNothingButAnEvent() {
	var before, after workflows.Status
	var errBefore, errAfter error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(5*time.Second, &before, &errBefore)
	s.signal(6*time.Second, workflows.SignalRegister, workflows.RegisterSignal{Container: "m1-c99", Server: "s1", PID: 4242})
	s.snapshot(10*time.Second, &after, &errAfter)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(errBefore)
	s.Require().NoError(errAfter)
	s.Equal(tmProvisioned(fleet.Waiting), withoutEvents(before))
	s.Equal(withoutEvents(before), withoutEvents(after))
	s.Equal(append(eventMessages(before.Events), "unknown container m1-c99 registered from server s1 (pid 4242)"),
		eventMessages(after.Events))
	s.Len(s.provisions(), 1)
}

func (s *ManagerSuite) TestPortInUseBlocksThePortAndReplacesTheContainerOnAnotherPort() {
	s.fake.startErr = map[string]error{
		"s1:20001": temporal.NewNonRetryableApplicationError("port 20001 is held by pid 77", workflows.ErrPortInUse, nil),
	}
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(10*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(err)
	want := tmProvisioned(fleet.Waiting)
	want.Containers = []workflows.ContainerStatus{
		tmContainer("c1", "web", 20000, fleet.Loaded, true),
		tmContainer("c3", "api", 20002, fleet.Loaded, true),
		// The waiting container takes web; the pool gets a new one, not on
		// 20001: the port is blocked; the lowest free one after it.
		tmContainer("c4", "web", 20003, fleet.Loaded, true),
		tmContainer("c5", "", 20004, fleet.Waiting, false),
	}
	s.Equal(want, withoutEvents(st))
	s.requireUniquePorts(st)

	ps := s.provisions()
	s.Require().Len(ps, 2, "the blocked container is placed again by a second Provision")
	s.Equal("msm/m1/provision/2", ps[1].ID)
	s.Equal(tmUseWarm("web", "c5", 20004), ps[1].Input.Plan)
	s.Equal([]string{"m1-c1", "m1-c3", "m1-c4"}, s.fake.keys(workflows.ActivityLoadService), "m1-c2 is never loaded")
	s.Equal([]string{"m1-c4", "m1-c5"}, s.fake.keys(workflows.ActivityReady))
	_, n := s.fake.input(workflows.ActivityStartContainer, "m1-c2")
	s.Equal(1, n)
	s.Equal(ps[0].At, ps[1].At, "a blocked port is no failure of the service: no back-off")
	s.Contains(eventMessages(st.Events), "port 20001 on s1 is held by another process: skipped")
}

func (s *ManagerSuite) TestNodeUpWithoutAStartedContainerRemovesAndReprovisionsIt() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	// s1's node restarted and found m1-c2 gone.
	s.signal(5*time.Second, workflows.SignalNodeUp, workflows.NodeUpSignal{Server: "s1", Containers: []string{"m1-c1", "m1-c3", "m1-c4"}})
	s.snapshot(10*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(err)
	want := tmProvisioned(fleet.Waiting)
	want.Containers = []workflows.ContainerStatus{
		tmContainer("c1", "web", 20000, fleet.Loaded, true),
		tmContainer("c3", "api", 20002, fleet.Loaded, true),
		// The waiting container replaces m1-c2; the new pool container gets
		// a new ID on the lease m1-c2 released.
		tmContainer("c4", "web", 20003, fleet.Loaded, true),
		tmContainer("c5", "", 20001, fleet.Waiting, false),
	}
	s.Equal(want, withoutEvents(st))
	s.requireUniquePorts(st)

	ps := s.provisions()
	s.Require().Len(ps, 2)
	s.Equal("msm/m1/provision/2", ps[1].ID)
	s.Equal(tmUseWarm("web", "c5", 20001), ps[1].Input.Plan)
	s.Contains(eventMessages(st.Events), "node s1 restarted without 1 container(s) [m1-c2]: replacing them")
}

func (s *ManagerSuite) TestNodeUpWithEveryContainerChangesNothing() {
	var before, after workflows.Status
	var errBefore, errAfter error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(4*time.Second, &before, &errBefore)
	s.signal(5*time.Second, workflows.SignalNodeUp, workflows.NodeUpSignal{Server: "s1", Containers: []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"}})
	s.snapshot(10*time.Second, &after, &errAfter)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(errBefore)
	s.Require().NoError(errAfter)
	s.Equal(before.RunSignals+1, after.RunSignals, "node-up counted")
	after.RunSignals = before.RunSignals
	s.Equal(before, after)
	s.Len(s.provisions(), 1)
}

// tmBigCatalog adds a service no server can take, so that every decision
// leaves an event: a decision that ran is visible. The catalog is valid
// (its services need the 8 slots the servers have), but placed in catalog
// order web and api leave s1 one slot, wide leaves s2 one, and big needs
// two on one server.
func tmBigCatalog() workflows.CatalogSignal {
	cat := tfCatalog()
	cat.Manager.WarmPool = 0
	cat.Services = append(cat.Services,
		catalog.Service{Name: "wide", Command: "wide", Slots: 3, Replicas: catalog.Replicas{Min: 1, Initial: 1, Max: 1}},
		catalog.Service{Name: "big", Command: "big", Slots: 2, Replicas: catalog.Replicas{Min: 1, Initial: 1, Max: 1}})
	return workflows.CatalogSignal{Catalog: cat, Source: "catalog.yaml"}
}

// tmBigUnplaced starts the event of a decision that could not place big
// (the reason is placement's to word).
const tmBigUnplaced = "cannot place 1 instance(s) of service big: "

// tmUpdate records what became of one update.
type tmUpdate struct {
	accepted bool
	rejected error
	result   workflows.ProvisionAccepted
	err      error
	done     bool
}

func (s *ManagerSuite) update(d time.Duration, id string, u workflows.ProvisionUpdate, out *tmUpdate) {
	s.updateNamed(d, workflows.UpdateProvision, id, u, out)
}

// updateNamed sends update name with arg at d, recording what became of it.
func (s *ManagerSuite) updateNamed(d time.Duration, name, id string, arg any, out *tmUpdate) {
	s.at(d, func() {
		s.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
			OnAccept: func() { out.accepted = true },
			OnReject: func(err error) { out.rejected = err },
			OnComplete: func(res any, err error) {
				out.done, out.err = true, err
				if r, ok := res.(workflows.ProvisionAccepted); ok {
					out.result = r
				}
			},
		}, arg)
	})
}

func (s *ManagerSuite) TestProvisionUpdateValidatorRejectsUnknownService() {
	var unknown, valid tmUpdate
	var before, rejected, accepted workflows.Status
	var err1, err2, err3 error
	s.signal(time.Second, workflows.SignalCatalog, tmBigCatalog())
	s.snapshot(5*time.Second, &before, &err1)
	s.update(6*time.Second, "u-unknown", workflows.ProvisionUpdate{Services: []string{"web", "nope"}}, &unknown)
	s.snapshot(10*time.Second, &rejected, &err2)
	// The same request with a known service does get a decision: the check
	// above can tell.
	s.update(11*time.Second, "u-valid", workflows.ProvisionUpdate{Services: []string{"web"}}, &valid)
	s.snapshot(15*time.Second, &accepted, &err3)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err1)
	s.Require().NoError(err2)
	s.Require().NoError(err3)

	s.False(unknown.accepted)
	s.False(unknown.done, "a rejected update never runs its handler")
	s.Require().Error(unknown.rejected)
	s.Contains(unknown.rejected.Error(), `unknown service "nope"`)
	s.Contains(unknown.rejected.Error(), "[web api wide big]")
	s.Equal(before, rejected, "a rejected update changes nothing")
	s.Len(s.provisions(), 1, "a rejected update starts no Provision")

	s.True(valid.accepted)
	s.Require().True(valid.done)
	s.Require().NoError(valid.err)
	s.Equal("provisioning every service up to its initial replicas and the warm pool; back-off lifted for [web]", valid.result.Message)
	msgs := eventMessages(accepted.Events)
	s.True(strings.HasPrefix(msgs[len(msgs)-1], tmBigUnplaced), "the accepted update made a decision: %q", msgs[len(msgs)-1])
	s.Len(msgs, len(before.Events)+1)
}

// TestInvalidCatalogSignalsAreRejected: a catalog signal the validator of
// msm catalog validate refuses (an empty one, one whose service may not
// scale as far as it starts, one that names no server) is rejected with its problems, each
// prefixed by the source it names; the catalog in force, its containers and
// its operations stay as they were.
func (s *ManagerSuite) TestInvalidCatalogSignalsAreRejected() {
	noMax := tfCatalog()
	noMax.Services = slices.Clone(noMax.Services)
	noMax.Services[1].Replicas = catalog.Replicas{Min: 2, Initial: 2, Max: 1}
	noServers := tfCatalog()
	noServers.Manager.Servers = nil
	for _, tc := range []struct {
		name string
		cat  catalog.Catalog
		want []string
	}{
		{"empty", catalog.Catalog{}, []string{"forged.yaml: manager.servers: the standalone kind needs at least one server", "forged.yaml: services: "}},
		{"max below min", noMax, []string{"forged.yaml: services[1].replicas: min 2 is greater than max 1"}},
		{"no servers", noServers, []string{"forged.yaml: manager.servers: the standalone kind needs at least one server"}},
	} {
		s.Run(tc.name, func() {
			s.SetupTest()
			var before, after workflows.Status
			var err1, err2 error
			s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
			s.snapshot(5*time.Second, &before, &err1)
			s.signal(6*time.Second, workflows.SignalCatalog, workflows.CatalogSignal{Catalog: tc.cat, Source: "forged.yaml"})
			s.snapshot(20*time.Second, &after, &err2)
			s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
			s.requireCancelled()
			s.Require().NoError(err1)
			s.Require().NoError(err2)

			for _, w := range tc.want {
				s.Contains(after.CatalogError, w)
			}
			msgs := eventMessages(after.Events)
			s.Require().Len(msgs, len(before.Events)+1, "one event, the rejection")
			s.True(strings.HasPrefix(msgs[len(msgs)-1], "catalog change from forged.yaml rejected, the catalog in force stays: forged.yaml: "), msgs[len(msgs)-1])
			s.Contains(after.Counts, workflows.Count{Metric: workflows.CountCatalog, Labels: []string{"rejected"}, N: 1})
			after.CatalogError, after.Events, after.Counts, after.RunSignals = "", before.Events, before.Counts, before.RunSignals
			s.Equal(before, after, "the catalog in force, its services and containers stay")
			s.Len(s.provisions(), 1, "no operation for the rejected catalog")
		})
	}
}

func (s *ManagerSuite) TestProvisionUpdateValidatorRejectsBeforeAnyCatalog() {
	var u tmUpdate
	s.update(time.Second, "u-early", workflows.ProvisionUpdate{}, &u)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.False(u.accepted)
	s.Require().Error(u.rejected)
	s.Contains(u.rejected.Error(), "no catalog yet")
	s.Empty(s.provisions())
}

func (s *ManagerSuite) TestContinuesAsNewWithItsStateWhenHistoryPassesTheLimit() {
	start := s.env.Now()
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.at(5*time.Second, func() {
		// The history passes the limit with the workflow task that brings
		// this signal, as it does on a server: the test environment runs
		// a task for the timer of this callback first, so the length is
		// set by a callback queued behind it and before the signal. The
		// signal must not be lost with the run.
		s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(150) }, 0)
		s.env.SignalWorkflow(workflows.SignalRegister, workflows.RegisterSignal{Container: "m1-c4", Server: "s1", PID: 4444})
	})
	s.run(workflows.ManagerInput{Manager: tfManager, HistoryLimit: 100}, time.Minute)
	s.Equal(5*time.Second, s.env.Now().Sub(start), "continued as new with the signal")

	err := s.env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(err, &can), "want continue-as-new, got %v", err)
	s.Equal("Manager", can.WorkflowType.Name)
	s.Equal(catalog.DefaultTaskTimeout, can.WorkflowTaskTimeout, "the next run's task timeout is the catalog's (its default)")
	var next workflows.ManagerInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))

	s.Equal(tfManager, next.Manager)
	s.Equal(100, next.HistoryLimit)
	cat := tfCatalog()
	s.Equal(&cat, next.Catalog)
	s.Equal("catalog.yaml", next.CatalogSource)
	s.Equal(1, next.Ops, "the next Provision must not reuse ID msm/m1/provision/1")
	s.False(next.Pending)
	s.Empty(next.Backoffs)
	s.Empty(next.Inventory.Failed)
	s.Equal(4, next.Inventory.Seq, "container IDs are never reused")
	seen := tfServer(tfS1, fleet.ServerReady)
	seen.NodeSeen = true // it started containers
	s.Equal([]fleet.Server{seen}, next.Inventory.Servers)
	// Each instance carries the revision it was loaded with into the next
	// run.
	loaded := func(id, service string, port int) fleet.Container {
		rev := map[string]string{"web": tfWeb.Revision(), "api": tfAPI.Revision()}[service]
		return fleet.Container{ID: id, Server: "s1", Port: port, State: fleet.Loaded, Service: service, Healthy: true, PID: tfAgentPID(id), Revision: rev}
	}
	s.Equal(fleet.ContainerList{
		loaded("m1-c1", "web", 20000), loaded("m1-c2", "web", 20001), loaded("m1-c3", "api", 20002),
		{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Waiting, PID: 4444, Registered: true},
	}, next.Inventory.Containers)
	s.Contains(recordTexts(next.Log), "msm/m1/provision/1 done: 4 started, 3 loaded, 0 failed")
	s.Len(s.provisions(), 1)
}

func (s *ManagerSuite) TestDoesNotContinueAsNewBelowTheDefaultLimit() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.at(5*time.Second, func() {
		s.env.SetCurrentHistoryLength(150)
		s.env.SignalWorkflow(workflows.SignalRegister, workflows.RegisterSignal{Container: "m1-c4", Server: "s1", PID: 4444})
	})
	s.snapshot(10*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err)
	s.Equal(tmProvisioned(fleet.Waiting), withoutEvents(st))
}

func (s *ManagerSuite) TestDoesNotContinueAsNewWhileAProvisionRuns() {
	// Loads take 10s, so Provision 1 runs from 1s to 11s; the limit is
	// passed at 5s. The run must wait for the Provision and carry its
	// outcome, not half-done containers whose results would go nowhere.
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.Anything).After(10 * time.Second).Return(
		func(_ context.Context, in workflows.LoadServiceInput) (workflows.LoadServiceResult, error) {
			return workflows.LoadServiceResult{PID: tfServicePID(in.Container), Healthy: true}, nil
		})
	var during workflows.Status
	var errDuring error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.at(5*time.Second, func() {
		s.env.SetCurrentHistoryLength(150)
		s.env.SignalWorkflow(workflows.SignalRegister, workflows.RegisterSignal{Container: "m1-c4", Server: "s1", PID: 4444})
	})
	s.snapshot(6*time.Second, &during, &errDuring)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager, HistoryLimit: 100}, time.Minute)

	s.Require().NoError(errDuring)
	s.Equal(1, during.Operations, "still running at 6s")
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &can), "want continue-as-new, got %v", s.env.GetWorkflowError())
	s.GreaterOrEqual(s.env.Now().Sub(start), 11*time.Second, "continued as new before the Provision ended")
	var next workflows.ManagerInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	var states []string
	for _, c := range next.Inventory.Containers {
		states = append(states, fmt.Sprintf("%s %s healthy=%v", c.ID, c.State, c.Healthy))
	}
	s.Equal([]string{"m1-c1 loaded healthy=true", "m1-c2 loaded healthy=true", "m1-c3 loaded healthy=true", "m1-c4 waiting healthy=false"}, states)
	// The ended Provision asks for another look, which the next run takes.
	s.True(next.Pending)
	s.Equal(1, next.Ops)
}

// TestStartsNoOperationOnceTheHistoryIsFull: operations side by side
// would always leave one running, and the run would never end; once the
// history passes the limit, api's extension waits for web's to end, and
// the next run starts it.
func (s *ManagerSuite) TestStartsNoOperationOnceTheHistoryIsFull() {
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.Anything).After(10 * time.Second).Return(
		func(_ context.Context, in workflows.LoadServiceInput) (workflows.LoadServiceResult, error) {
			return workflows.LoadServiceResult{PID: tfServicePID(in.Container), Healthy: true}, nil
		})
	cat := tfCatalog()
	cat.Manager.WarmPool = 0
	on := func(id, service string, port int) fleet.Container {
		return fleet.Container{ID: id, Server: "s1", Port: port, State: fleet.Loaded, Service: service, Healthy: true, PID: tfAgentPID(id)}
	}
	seen := tfServer(tfS1, fleet.ServerReady)
	seen.NodeSeen = true
	in := workflows.ManagerInput{Manager: tfManager, HistoryLimit: 100, Catalog: &cat, Inventory: fleet.Inventory{Seq: 3,
		Servers: []fleet.Server{seen}, Containers: []fleet.Container{on("m1-c1", "web", 20000), on("m1-c2", "web", 20001), on("m1-c3", "api", 20002)}}}
	extend := func(d time.Duration, service string) {
		s.at(d, func() {
			s.env.UpdateWorkflow(workflows.UpdateExtend, "u-"+service, &testsuite.TestUpdateCallback{
				OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {},
			}, workflows.ExtendUpdate{Service: service, Count: 1})
		})
	}
	extend(2*time.Second, "web")
	s.at(5*time.Second, func() { s.env.SetCurrentHistoryLength(150) })
	extend(6*time.Second, "api")
	start := s.env.Now()
	s.run(in, time.Minute)

	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &can), "want continue-as-new, got %v", s.env.GetWorkflowError())
	s.GreaterOrEqual(s.env.Now().Sub(start), 12*time.Second, "web's extension ended first")
	s.Equal([]string{"msm/m1/extend/web/1"}, tmIDs(s.provisions()), "api's extension did not start beside web's")
	var next workflows.ManagerInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.True(next.Pending, "the next run decides api's extension")
	s.Equal([]string{"api"}, next.Extending)
}

func tmIDs(cs []tmChild) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func (s *ManagerSuite) TestCatalogSignalsOfTheLastTaskAreCarriedExactly() {
	// Two catalogs arrive in the workflow task that continues as new; the
	// second, for another kind, leaves out fields the first set. The next
	// run must get the second as sent, not a blend of the two.
	first := tmCatalogSignal()
	second := workflows.CatalogSignal{Source: "second.yaml", Catalog: catalog.Catalog{
		Manager: catalog.Manager{Kind: catalog.KindDocker, Node: catalog.NodeBoot{Temporal: "host.docker.internal:7233"},
			Servers: []catalog.Server{{Name: "local", Address: "127.0.0.1", Slots: 2, Ports: catalog.PortRange{First: 30000, Last: 30009}}}},
		Services: []catalog.Service{{Name: "web", Command: "web", Replicas: catalog.Replicas{Min: 1, Initial: 1, Max: 1}}},
	}}
	s.at(5*time.Second, func() {
		s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(150) }, 0)
		s.env.SignalWorkflowSkippingWorkflowTask(workflows.SignalCatalog, first)
		s.env.SignalWorkflow(workflows.SignalCatalog, second)
	})
	s.run(workflows.ManagerInput{Manager: tfManager, HistoryLimit: 100}, time.Minute)

	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &can), "want continue-as-new, got %v", s.env.GetWorkflowError())
	var next workflows.ManagerInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.Equal(&second.Catalog, next.Catalog)
	s.Equal("second.yaml", next.CatalogSource)
	s.True(next.Pending, "the next run decides for the new catalog")
	s.Equal([]string{"catalog from catalog.yaml: 2 service(s)", "catalog from second.yaml: 1 service(s)"}, recordTexts(next.Log))
	s.Empty(s.provisions())
}

// tmLoadFailed is the agent's answer when a service's command exits.
func tmLoadFailed(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, workflows.ErrLoadFailed, nil)
}

// tmService returns the status of one catalog service.
func (s *ManagerSuite) tmService(st workflows.Status, name string) workflows.ServiceStatus {
	i := slices.IndexFunc(st.Services, func(ss workflows.ServiceStatus) bool { return ss.Name == name })
	s.Require().GreaterOrEqual(i, 0, "no service %s in status", name)
	return st.Services[i]
}

// eventAt returns the time of the first event with the message.
func (s *ManagerSuite) eventAt(st workflows.Status, msg string) time.Time {
	i := slices.IndexFunc(st.Events, func(e workflows.Event) bool { return e.Message == msg })
	s.Require().GreaterOrEqual(i, 0, "no event %q in %v", msg, eventMessages(st.Events))
	return st.Events[i].Time
}

// startedAt returns when each Provision started, as offsets from start.
func (s *ManagerSuite) startedAt(start time.Time) []time.Duration {
	var out []time.Duration
	for _, p := range s.provisions() {
		out = append(out, p.At.Sub(start))
	}
	return out
}

// tmUseWarm is the plan that gives the waiting m1-c4 (on 20003) to service
// and starts a new warm-pool container id on port: a replacement takes a
// waiting container first.
func tmUseWarm(service, id string, port int) fleet.Plan {
	return tmUseWarmOf("c4", 20003, service, id, port)
}

// tmUseWarmOf is tmUseWarm for another waiting container, warm on s1's
// warmPort.
func tmUseWarmOf(warm string, warmPort int, service, id string, port int) fleet.Plan {
	warm = tfManager + "-" + warm
	return fleet.Plan{
		Starts: []fleet.Container{tfStart(id, "s1", port, "")},
		Loads:  []fleet.Container{{ID: warm, Server: "s1", Port: warmPort, State: fleet.Loaded, Service: service, PID: tfAgentPID(warm)}},
	}
}

// tmGone is a failed container as status shows it once it was destroyed:
// no port, since its lease was released.
func tmGone(id, service, why string) workflows.ContainerStatus {
	return workflows.ContainerStatus{ID: tfManager + "-" + id, Server: "s1", State: string(fleet.Failed), Service: service, Error: why}
}

const (
	tmAPIExit    = "api exited with status 1"
	tmAPIFailed  = "failed to load api: " + tmAPIExit
	tmAPIFailEvt = "container m1-c3 on s1 " + tmAPIFailed
)

// tmAPIFailEvt2 is the failure of api's first replacement, on the waiting
// m1-c4.
const tmAPIFailEvt2 = "container m1-c4 on s1 " + tmAPIFailed

func (s *ManagerSuite) TestFailedContainerIsReplacedAfterBackOff() {
	// api's load fails on m1-c3 and again on its replacement m1-c4: the
	// first failure is replaced at once, the second after a back-off.
	s.fake.loadErr = map[string]error{"m1-c3": tmLoadFailed(tmAPIExit), "m1-c4": tmLoadFailed(tmAPIExit)}
	var failed, replaced workflows.Status
	var err1, err2 error
	var within []tmChild
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(1500*time.Millisecond, &failed, &err1)
	s.at(2*time.Second-time.Millisecond, func() { within = s.provisions() })
	s.snapshot(10*time.Second, &replaced, &err2)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err1)
	s.Require().NoError(err2)

	firstAt := s.eventAt(failed, tmAPIFailEvt)
	s.Equal(time.Second, firstAt.Sub(start))
	failedAt := s.eventAt(failed, tmAPIFailEvt2)
	s.Equal(time.Second, failedAt.Sub(start))
	api := s.tmService(failed, "api")
	s.Require().NotNil(api.RetryAt, "api is in back-off")
	s.Equal(time.Second, api.RetryAt.Sub(failedAt), "the back-off after the second failure is 1s")
	want := tmProvisioned(fleet.Waiting)
	want.Servers[0].Used = 3 // m1-c3 and m1-c4 were stopped: their slots are free
	want.Containers = []workflows.ContainerStatus{
		tmContainer("c1", "web", 20000, fleet.Loaded, true),
		tmContainer("c2", "web", 20001, fleet.Loaded, true),
		tmContainer("c5", "", 20002, fleet.Waiting, false),
		tmGone("c3", "api", tmAPIFailed),
		tmGone("c4", "api", tmAPIFailed),
	}
	want.Services = []workflows.ServiceStatus{
		{Name: "web", Desired: 2, Ready: 2},
		{Name: "api", Desired: 1, Ready: 0, Failures: 2, LastError: tmAPIExit, RetryAt: api.RetryAt},
	}
	s.Equal(want, withoutEvents(failed))
	s.Equal([]string{"m1-c3", "m1-c4"}, s.fake.keys(workflows.ActivityStopContainer))

	s.Require().Len(within, 2, "no new Provision within the back-off")
	s.Equal(time.Duration(0), within[1].At.Sub(firstAt), "the first failure is replaced at once")
	s.Equal(tmUseWarm("api", "c5", 20002), within[1].Input.Plan, "the new pool container gets the lease m1-c3 released")
	ps := s.provisions()
	s.Require().Len(ps, 3)
	s.Equal(time.Duration(0), ps[2].At.Sub(*api.RetryAt), "replaced as soon as the back-off ended")
	s.Equal(tmUseWarmOf("c5", 20002, "api", "c6", 20003), ps[2].Input.Plan, "the new pool container gets the lease m1-c4 released")

	want.Servers[0].Used = 4
	want.Containers = []workflows.ContainerStatus{
		tmContainer("c1", "web", 20000, fleet.Loaded, true),
		tmContainer("c2", "web", 20001, fleet.Loaded, true),
		tmContainer("c5", "api", 20002, fleet.Loaded, true),
		tmContainer("c6", "", 20003, fleet.Waiting, false),
		tmGone("c3", "api", tmAPIFailed),
		tmGone("c4", "api", tmAPIFailed),
	}
	want.Services = []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}
	s.Equal(want, withoutEvents(replaced), "a successful load ends the back-off")
	s.requireUniquePorts(replaced)
}

func (s *ManagerSuite) TestBackOffGrowsWhileLoadsKeepFailing() {
	const webExit = "web exited with status 2"
	s.fake.serviceErr = map[string]error{"web": tmLoadFailed(webExit)}
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(9*time.Second, &st, &err) // after the 5th attempt, at 8s
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, 25*time.Minute)
	s.requireCancelled()
	s.Require().NoError(err)

	// Both web containers of an attempt fail together: one failure each
	// time, so no wait after the first, then 1s, 2s, 4s … between
	// attempts, capped at 5 min.
	s.Equal([]time.Duration{
		1 * time.Second, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 512 * time.Second,
		812 * time.Second, 1112 * time.Second, 1412 * time.Second,
	}, s.startedAt(start))
	// Each retry places web's two instances again (the waiting container
	// first) and refills the pool with a new container; api is left alone.
	for _, p := range s.provisions()[1:] {
		var got []string
		for _, c := range slices.Concat(p.Input.Plan.Loads, p.Input.Plan.Starts) {
			got = append(got, fmt.Sprintf("%s %q", c.State, c.Service))
		}
		s.Equal([]string{`loaded "web"`, `starting "web"`, `starting ""`}, got, p.ID)
		s.Empty(p.Input.Plan.Servers, p.ID)
	}

	web := s.tmService(st, "web")
	s.Equal(5, web.Failures)
	s.Equal(webExit, web.LastError)
	s.Require().NotNil(web.RetryAt)
	s.Equal(16*time.Second, web.RetryAt.Sub(start))
	s.Equal(workflows.ServiceStatus{Name: "api", Desired: 1, Ready: 1}, s.tmService(st, "api"), "api is not held back by web")
}

func (s *ManagerSuite) TestCatalogSignalClearsBackOff() {
	// api fails twice at 1s (m1-c3, then its immediate replacement m1-c4):
	// the second failure holds it back until 2s.
	s.fake.loadErr = map[string]error{"m1-c3": tmLoadFailed(tmAPIExit), "m1-c4": tmLoadFailed(tmAPIExit)}
	var held, cleared workflows.Status
	var err1, err2 error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(1200*time.Millisecond, &held, &err1)
	// A changed catalog (a fix to the file, say) before the back-off ends.
	s.signal(1500*time.Millisecond, workflows.SignalCatalog, tmCatalogFixed())
	s.snapshot(1700*time.Millisecond, &cleared, &err2)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err1)
	s.Require().NoError(err2)

	api := s.tmService(held, "api")
	s.Equal(2, api.Failures)
	s.Require().NotNil(api.RetryAt)
	s.Equal(2*time.Second, api.RetryAt.Sub(start))

	s.Equal([]time.Duration{time.Second, time.Second, 1500 * time.Millisecond}, s.startedAt(start),
		"the first failure retried at once, the second at the catalog, not at 2s")
	s.Equal(tmUseWarm("api", "c5", 20002), s.provisions()[1].Input.Plan)
	s.Equal(tmUseWarmOf("c5", 20002, "api", "c6", 20003), s.provisions()[2].Input.Plan)
	s.Equal(workflows.ServiceStatus{Name: "api", Desired: 1, Ready: 1}, s.tmService(cleared, "api"))
}

// TestSameCatalogAgainChangesNothing: every worker hands the Manager the
// catalog when it starts, so with several workers (or one restarted) the
// catalog in force arrives again: it is not installed again (no record,
// the back-off stays).
func (s *ManagerSuite) TestSameCatalogAgainChangesNothing() {
	s.fake.loadErr = map[string]error{"m1-c3": tmLoadFailed(tmAPIExit), "m1-c4": tmLoadFailed(tmAPIExit)}
	var held, after workflows.Status
	var err1, err2 error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(1200*time.Millisecond, &held, &err1)
	s.signal(1500*time.Millisecond, workflows.SignalCatalog, tmCatalogSignal())
	s.signal(1600*time.Millisecond, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(1700*time.Millisecond, &after, &err2)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err1)
	s.Require().NoError(err2)

	s.Equal(held.Events, after.Events, "no record of the repeats")
	api := s.tmService(after, "api")
	s.Require().NotNil(api.RetryAt, "the back-off stays")
	s.Equal(2*time.Second, api.RetryAt.Sub(start))
	s.Equal([]time.Duration{time.Second, time.Second, 2 * time.Second}, s.startedAt(start),
		"the second failure retried at the end of its back-off, not at a repeat")
}

// tmCatalogFixed is tmCatalogSignal's catalog changed: api may grow to 4.
func tmCatalogFixed() workflows.CatalogSignal {
	sig := tmCatalogSignal()
	for i := range sig.Catalog.Services {
		if sig.Catalog.Services[i].Name == "api" {
			sig.Catalog.Services[i].Replicas.Max = 4
		}
	}
	return sig
}

func (s *ManagerSuite) TestProvisionUpdateSkipsTheBackOffOfTheNamedService() {
	// Both web containers fail: with one loaded, web would not be held.
	// Web and api fail at 1s, and again in their immediate replacement
	// (web on m1-c4 and m1-c5, api on m1-c6): both are held until 2s.
	const webExit = "web exited with status 2"
	s.fake.loadErr = map[string]error{
		"m1-c1": tmLoadFailed(webExit), "m1-c2": tmLoadFailed(webExit), "m1-c3": tmLoadFailed(tmAPIExit),
		"m1-c4": tmLoadFailed(webExit), "m1-c5": tmLoadFailed(webExit), "m1-c6": tmLoadFailed(tmAPIExit),
	}
	var u tmUpdate
	var held, after workflows.Status
	var err1, err2 error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(1200*time.Millisecond, &held, &err1)
	s.update(1500*time.Millisecond, "u-api", workflows.ProvisionUpdate{Services: []string{"api"}}, &u)
	s.snapshot(1700*time.Millisecond, &after, &err2)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err1)
	s.Require().NoError(err2)

	for _, name := range []string{"web", "api"} {
		ss := s.tmService(held, name)
		s.Equal(2, ss.Failures, name)
		s.Require().NotNil(ss.RetryAt, name)
		s.Equal(2*time.Second, ss.RetryAt.Sub(start), name)
	}
	s.True(u.accepted)
	s.Require().True(u.done)
	s.Require().NoError(u.err)
	s.Equal("provisioning every service up to its initial replicas and the warm pool; back-off lifted for [api]", u.result.Message)

	s.Equal([]time.Duration{time.Second, time.Second, 1500 * time.Millisecond, 2 * time.Second}, s.startedAt(start),
		"both retried at once after their first failure; after the second, api at the update, web when its back-off ends")
	ps := s.provisions()
	s.Require().Len(ps, 4)
	s.Equal(fleet.Plan{
		Starts: []fleet.Container{tfStart("c5", "s1", 20000, "web"), tfStart("c6", "s1", 20001, "api"), tfStart("c7", "s1", 20002, "")},
		Loads:  []fleet.Container{{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c4")}},
	}, ps[1].Input.Plan)
	s.Equal(tmUseWarmOf("c7", 20002, "api", "c8", 20000), ps[2].Input.Plan)
	s.Equal(fleet.Plan{
		Starts: []fleet.Container{tfStart("c9", "s1", 20001, "web"), tfStart("c10", "s1", 20003, "")},
		Loads:  []fleet.Container{{ID: "m1-c8", Server: "s1", Port: 20000, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c8")}},
	}, ps[3].Input.Plan)
	s.Equal(workflows.ServiceStatus{Name: "api", Desired: 1, Ready: 1}, s.tmService(after, "api"))
	web := s.tmService(after, "web")
	s.Equal(2, web.Failures, "web's back-off is untouched")
	s.Require().NotNil(web.RetryAt)
	s.Equal(2*time.Second, web.RetryAt.Sub(start))
}

func (s *ManagerSuite) TestProvisionUpdateWithoutServicesSkipsEveryBackOff() {
	// Web and api fail at 1s, and again in their immediate replacement:
	// both are held until 2s.
	const webExit = "web exited with status 2"
	s.fake.loadErr = map[string]error{
		"m1-c1": tmLoadFailed(webExit), "m1-c2": tmLoadFailed(webExit), "m1-c3": tmLoadFailed(tmAPIExit),
		"m1-c4": tmLoadFailed(webExit), "m1-c5": tmLoadFailed(webExit), "m1-c6": tmLoadFailed(tmAPIExit),
	}
	var held workflows.Status
	var errHeld error
	s.snapshot(1200*time.Millisecond, &held, &errHeld)
	var u tmUpdate
	var after workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.update(1500*time.Millisecond, "u-all", workflows.ProvisionUpdate{}, &u)
	s.snapshot(1700*time.Millisecond, &after, &err)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err)

	s.Require().NoError(errHeld)
	for _, name := range []string{"web", "api"} {
		ss := s.tmService(held, name)
		s.Equal(2, ss.Failures, name)
		s.Require().NotNil(ss.RetryAt, name)
		s.Equal(2*time.Second, ss.RetryAt.Sub(start), name)
	}
	s.Require().True(u.done)
	s.Require().NoError(u.err)
	s.Equal("provisioning every service up to its initial replicas and the warm pool; back-off lifted for every service", u.result.Message)
	s.Equal([]time.Duration{time.Second, time.Second, 1500 * time.Millisecond}, s.startedAt(start),
		"retried at once after the first failure, at the update after the second")
	ps := s.provisions()
	s.Require().Len(ps, 3)
	s.Equal(fleet.Plan{
		Starts: []fleet.Container{tfStart("c5", "s1", 20000, "web"), tfStart("c6", "s1", 20001, "api"), tfStart("c7", "s1", 20002, "")},
		Loads:  []fleet.Container{{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c4")}},
	}, ps[1].Input.Plan)
	s.Equal(fleet.Plan{
		Starts: []fleet.Container{tfStart("c8", "s1", 20000, "web"), tfStart("c9", "s1", 20001, "api"), tfStart("c10", "s1", 20003, "")},
		Loads:  []fleet.Container{{ID: "m1-c7", Server: "s1", Port: 20002, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c7")}},
	}, ps[2].Input.Plan)
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, after.Services)
}

func (s *ManagerSuite) TestUndestroyedFailureKeepsItsLease() {
	// s1 has a fifth slot, so the replacement lands beside the failed
	// container: on the same server, it must not get its port.
	cat := tfCatalog()
	cat.Manager.Servers[0].Slots = 5
	s.fake.loadErr = map[string]error{"m1-c3": tmLoadFailed(tmAPIExit)}
	s.fake.stopErr = map[string]error{"m1-c3": errors.New("node s1 cannot signal pid 1003")}
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, workflows.CatalogSignal{Catalog: cat, Source: "catalog.yaml"})
	s.snapshot(30*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err)

	_, stops := s.fake.input(workflows.ActivityStopContainer, "m1-c3")
	s.Equal(tfStopAttempts, stops, "the stop was retried, then given up")
	want := workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone, WarmPool: 1,
		Servers: []workflows.ServerStatus{{ID: "s1", State: string(fleet.ServerReady), Address: "10.0.0.1", Slots: 5, Used: 5}},
		Containers: []workflows.ContainerStatus{
			tmContainer("c1", "web", 20000, fleet.Loaded, true),
			tmContainer("c2", "web", 20001, fleet.Loaded, true),
			// Still in the inventory, holding its port and its slot.
			{ID: "m1-c3", Server: "s1", State: string(fleet.Failed), Service: "api", Port: 20002, Error: tmAPIFailed},
			tmContainer("c4", "api", 20003, fleet.Loaded, true),
			tmContainer("c5", "", 20004, fleet.Waiting, false), // not on 20002
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}},
	}
	s.Equal(want, withoutEvents(st))
	s.requireUniquePorts(st)

	ps := s.provisions()
	s.Require().Len(ps, 2)
	s.Equal(tmUseWarm("api", "c5", 20004), ps[1].Input.Plan)
	s.Equal(time.Duration(0), ps[1].At.Sub(s.eventAt(st, tmAPIFailEvt)), "replaced at once all the same: a first failure has no back-off")
}

func (s *ManagerSuite) TestPortInUseOnLoadBlocksThePortWithoutBackOff() {
	s.fake.loadErr = map[string]error{
		"m1-c2": temporal.NewNonRetryableApplicationError("port 20001 is held by pid 77", workflows.ErrPortInUse, nil),
	}
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(10*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err)

	s.Equal([]string{"m1-c2"}, s.fake.keys(workflows.ActivityStopContainer))
	want := tmProvisioned(fleet.Waiting)
	want.Containers = []workflows.ContainerStatus{
		tmContainer("c1", "web", 20000, fleet.Loaded, true),
		tmContainer("c3", "api", 20002, fleet.Loaded, true),
		tmContainer("c4", "web", 20003, fleet.Loaded, true),
		tmContainer("c5", "", 20004, fleet.Waiting, false), // not on the blocked 20001
	}
	s.Equal(want, withoutEvents(st), "no failure recorded, no back-off")
	s.requireUniquePorts(st)
	ps := s.provisions()
	s.Require().Len(ps, 2)
	s.Equal(ps[0].At, ps[1].At, "re-placed at once")
	s.Equal(tmUseWarm("web", "c5", 20004), ps[1].Input.Plan)
	s.Contains(eventMessages(st.Events), "port 20001 on s1 is held by another process: skipped")
}

func (s *ManagerSuite) TestWarmContainerThatNeverAnswersIsReplacedAfterBackOff() {
	// m1-c4 never answers, nor does m1-c5, its immediate replacement: the
	// pool's second failure holds it back.
	never := temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil)
	s.fake.readyErr = map[string]error{"m1-c4": never, "m1-c5": never}
	var held, after workflows.Status
	var err1, err2 error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.snapshot(1500*time.Millisecond, &held, &err1)
	s.snapshot(10*time.Second, &after, &err2)
	// The pool's back-off is not in status: continue as new to see it.
	s.at(11*time.Second, func() {
		s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(150) }, 0)
		s.env.SignalWorkflow(workflows.SignalRegister, workflows.RegisterSignal{Container: "m1-c6", Server: "s1", PID: tfAgentPID("m1-c6")})
	})
	s.run(workflows.ManagerInput{Manager: tfManager, HistoryLimit: 100}, time.Minute)
	s.Require().NoError(err1)
	s.Require().NoError(err2)
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &can), "want continue-as-new, got %v", s.env.GetWorkflowError())
	var next workflows.ManagerInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.Empty(next.Backoffs, "a Ready that answered ends the pool's back-off")

	why := func(id string) string {
		return "failed to come up: container " + id + " did not come up on s1 within 30s: its `msm agent` process never polled " +
			"msm-container-" + id + "; see the node agent's log"
	}
	want := tmProvisioned(fleet.Waiting)
	want.Servers[0].Used = 3
	want.Containers = []workflows.ContainerStatus{
		tmContainer("c1", "web", 20000, fleet.Loaded, true),
		tmContainer("c2", "web", 20001, fleet.Loaded, true),
		tmContainer("c3", "api", 20002, fleet.Loaded, true),
		tmGone("c4", "", why("m1-c4")),
		tmGone("c5", "", why("m1-c5")),
	}
	s.Equal(want, withoutEvents(held), "the warm pool waits out its back-off")

	ps := s.provisions()
	s.Require().Len(ps, 3)
	s.Equal(time.Duration(0), ps[1].At.Sub(s.eventAt(held, "container m1-c4 on s1 "+why("m1-c4"))), "the first failure is replaced at once")
	s.Equal(fleet.Plan{Starts: []fleet.Container{tfStart("c5", "s1", 20003, "")}}, ps[1].Input.Plan)
	s.Equal(time.Second, ps[2].At.Sub(s.eventAt(held, "container m1-c5 on s1 "+why("m1-c5"))))
	s.Equal(fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s1", 20003, "")}}, ps[2].Input.Plan)
	want.Servers[0].Used = 4
	want.Containers = []workflows.ContainerStatus{
		tmContainer("c1", "web", 20000, fleet.Loaded, true),
		tmContainer("c2", "web", 20001, fleet.Loaded, true),
		tmContainer("c3", "api", 20002, fleet.Loaded, true),
		tmContainer("c6", "", 20003, fleet.Waiting, false),
		tmGone("c4", "", why("m1-c4")),
		tmGone("c5", "", why("m1-c5")),
	}
	s.Equal(want, withoutEvents(after))
	s.Len(s.provisions(), 3)
}

func (s *ManagerSuite) TestBackOffIsCarriedAcrossContinueAsNew() {
	// api fails twice at 1s (m1-c3, then its immediate replacement m1-c4):
	// the second failure holds it back until 2s.
	s.fake.loadErr = map[string]error{"m1-c3": tmLoadFailed(tmAPIExit), "m1-c4": tmLoadFailed(tmAPIExit)}
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.at(1500*time.Millisecond, func() {
		s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(150) }, 0)
		s.env.SignalWorkflow(workflows.SignalRegister, workflows.RegisterSignal{Container: "m1-c1", Server: "s1", PID: tfAgentPID("m1-c1")})
	})
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager, HistoryLimit: 100}, time.Minute)
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &can), "want continue-as-new, got %v", s.env.GetWorkflowError())
	ended := s.env.Now()
	s.Equal(1500*time.Millisecond, ended.Sub(start), "continued as new within the back-off")
	var next workflows.ManagerInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.Require().Len(next.Backoffs, 1)
	b := next.Backoffs[0]
	s.Equal(2*time.Second, b.RetryAt.Sub(start))
	b.RetryAt = time.Time{}
	s.Equal(workflows.Backoff{Service: "api", Failures: 2, LastError: tmAPIExit}, b)
	s.Equal([]fleet.Container{
		{ID: "m1-c3", Server: "s1", Port: 20002, State: fleet.Failed, Service: "api", PID: tfAgentPID("m1-c3"), Error: tmAPIFailed},
		{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Failed, Service: "api", PID: tfAgentPID("m1-c4"), Error: tmAPIFailed},
	}, plainContainers(next.Inventory.Failed))
	s.Equal(2, next.Ops, "the immediate retry was the second Provision")

	// The next run honours the back-off it was given.
	retryAt := next.Backoffs[0].RetryAt
	s.SetupTest()
	s.env.SetStartTime(ended)
	var st workflows.Status
	var err error
	s.snapshot(2*time.Second, &st, &err)
	s.run(next, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err)
	ps := s.provisions()
	s.Require().Len(ps, 1)
	s.Equal("msm/m1/provision/3", ps[0].ID)
	s.Equal(time.Duration(0), ps[0].At.Sub(retryAt), "not before the back-off ends, nor later")
	s.Equal(tmUseWarmOf("c5", 20002, "api", "c6", 20003), ps[0].Input.Plan)
	s.Equal(workflows.ServiceStatus{Name: "api", Desired: 1, Ready: 1}, s.tmService(st, "api"))
	s.Contains(st.Containers, tmGone("c3", "api", tmAPIFailed), "the destroyed containers are still shown")
	s.Contains(st.Containers, tmGone("c4", "api", tmAPIFailed), "the destroyed containers are still shown")
}
