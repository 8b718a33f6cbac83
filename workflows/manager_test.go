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
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
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
}

func TestManagerSuite(t *testing.T) { suite.Run(t, new(ManagerSuite)) }

func (s *ManagerSuite) SetupTest() {
	s.fake = &tfFleet{}
	s.children = nil
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetTestTimeout(30 * time.Second)
	// Provision signals its parent by the Manager's workflow ID.
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.ManagerID(tfManager)})
	s.env.RegisterWorkflow(workflows.Provision)
	s.fake.register(s.env)
	s.env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, args converter.EncodedValues) {
		var in workflows.ProvisionInput
		s.NoError(args.Get(&in)) // not Require: this runs off the test goroutine
		s.mu.Lock()
		defer s.mu.Unlock()
		s.children = append(s.children, tmChild{ID: info.WorkflowExecution.ID, Input: in})
	})
}

func (s *ManagerSuite) AfterTest(_, _ string) {
	s.env.AssertExpectations(s.T())
}

// provisions returns the Provisions started so far.
func (s *ManagerSuite) provisions() []tmChild {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.children)
}

// at runs fn at d after the Manager starts.
func (s *ManagerSuite) at(d time.Duration, fn func()) { s.env.RegisterDelayedCallback(fn, d) }

func (s *ManagerSuite) signal(d time.Duration, name string, arg any) {
	s.at(d, func() { s.env.SignalWorkflow(name, arg) })
}

// snapshot queries status at d into *st (asserted after the run: a failed
// assertion must not stop the test environment's own goroutine).
func (s *ManagerSuite) snapshot(d time.Duration, st *workflows.Status, err *error) {
	s.at(d, func() {
		v, qerr := s.env.QueryWorkflow(workflows.QueryStatus)
		if qerr == nil {
			qerr = v.Get(st)
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
// the warm-pool container m1-c4 in state warm.
func tmProvisioned(warm fleet.ContainerState) workflows.Status {
	return workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone,
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

// withoutEvents returns st without its events, which carry times.
func withoutEvents(st workflows.Status) workflows.Status {
	st.Events = nil
	return st
}

func eventMessages(evs []workflows.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Message)
	}
	return out
}

// requireUniquePorts asserts that no two live containers on a server share
// a port (invariant 1).
func (s *ManagerSuite) requireUniquePorts(st workflows.Status) {
	seen := map[string]string{}
	for _, c := range st.Containers {
		if c.State == string(fleet.Failed) {
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
		Containers: []workflows.ContainerStatus{}, Services: []workflows.ServiceStatus{}}, before, "nothing happens before the catalog")

	s.Require().NoError(errAfter)
	// The warm-pool container started, but its agent has not registered.
	s.Equal(tmProvisioned(fleet.Starting), withoutEvents(after))
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
	s.Contains(eventMessages(after.Events), "msm/m1/provision/1 done: 4 started, 3 loaded, 0 failed")
}

func (s *ManagerSuite) TestRegisterSignalPutsWarmContainerInThePool() {
	var st workflows.Status
	var err error
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.signal(5*time.Second, workflows.SignalRegister, workflows.RegisterSignal{Container: "m1-c4", Server: "s1", PID: tfAgentPID("m1-c4")})
	s.snapshot(10*time.Second, &st, &err)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().NoError(err)
	s.Equal(tmProvisioned(fleet.Waiting), withoutEvents(st))
	s.Len(s.provisions(), 1, "a registration decides nothing")
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
	s.Equal(tmProvisioned(fleet.Starting), withoutEvents(before))
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
	want := tmProvisioned(fleet.Starting)
	want.Containers = []workflows.ContainerStatus{
		tmContainer("c1", "web", 20000, fleet.Loaded, true),
		tmContainer("c3", "api", 20002, fleet.Loaded, true),
		tmContainer("c4", "", 20003, fleet.Starting, false),
		// Not 20001: the port is blocked; the lowest free one after it.
		tmContainer("c5", "web", 20004, fleet.Loaded, true),
	}
	s.Equal(want, withoutEvents(st))
	s.requireUniquePorts(st)

	ps := s.provisions()
	s.Require().Len(ps, 2, "the blocked container is placed again by a second Provision")
	s.Equal("msm/m1/provision/2", ps[1].ID)
	s.Equal(fleet.Plan{Starts: []fleet.Container{tfStart("c5", "s1", 20004, "web")}}, ps[1].Input.Plan)
	s.Equal([]string{"m1-c1", "m1-c3", "m1-c5"}, s.fake.keys(workflows.ActivityLoadService), "m1-c2 is never loaded")
	_, n := s.fake.input(workflows.ActivityStartContainer, "m1-c2")
	s.Equal(1, n)
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
	want := tmProvisioned(fleet.Starting)
	want.Containers = []workflows.ContainerStatus{
		tmContainer("c1", "web", 20000, fleet.Loaded, true),
		tmContainer("c3", "api", 20002, fleet.Loaded, true),
		tmContainer("c4", "", 20003, fleet.Starting, false),
		// A new ID on the lease m1-c2 released.
		tmContainer("c5", "web", 20001, fleet.Loaded, true),
	}
	s.Equal(want, withoutEvents(st))
	s.requireUniquePorts(st)

	ps := s.provisions()
	s.Require().Len(ps, 2)
	s.Equal("msm/m1/provision/2", ps[1].ID)
	s.Equal(fleet.Plan{Starts: []fleet.Container{tfStart("c5", "s1", 20001, "web")}}, ps[1].Input.Plan)
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
	s.Equal(before, after)
	s.Len(s.provisions(), 1)
}

// tmBigCatalog adds a service no server can take, so that every decision
// leaves an event: a decision that ran is visible.
func tmBigCatalog() workflows.CatalogSignal {
	cat := tfCatalog()
	cat.Services = append(cat.Services, catalog.Service{Name: "big", Command: "big", Slots: 5,
		Replicas: catalog.Replicas{Min: 1, Initial: 1, Max: 1}})
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
	s.at(d, func() {
		s.env.UpdateWorkflow(workflows.UpdateProvision, id, &testsuite.TestUpdateCallback{
			OnAccept: func() { out.accepted = true },
			OnReject: func(err error) { out.rejected = err },
			OnComplete: func(res any, err error) {
				out.done, out.err = true, err
				if r, ok := res.(workflows.ProvisionAccepted); ok {
					out.result = r
				}
			},
		}, u)
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
	s.Contains(unknown.rejected.Error(), "[web api big]")
	s.Equal(before, rejected, "a rejected update changes nothing")
	s.Len(s.provisions(), 1, "a rejected update starts no Provision")

	s.True(valid.accepted)
	s.Require().True(valid.done)
	s.Require().NoError(valid.err)
	s.Equal("provisioning [web] up to its initial replicas and the warm pool", valid.result.Message)
	msgs := eventMessages(accepted.Events)
	s.True(strings.HasPrefix(msgs[len(msgs)-1], tmBigUnplaced), "the accepted update made a decision: %q", msgs[len(msgs)-1])
	s.Len(msgs, len(before.Events)+1)
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
	var next workflows.ManagerInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))

	s.Equal(tfManager, next.Manager)
	s.Equal(100, next.HistoryLimit)
	cat := tfCatalog()
	s.Equal(&cat, next.Catalog)
	s.Equal("catalog.yaml", next.CatalogSource)
	s.Equal(1, next.Ops, "the next Provision must not reuse ID msm/m1/provision/1")
	s.False(next.Pending)
	s.Equal(4, next.Inventory.Seq, "container IDs are never reused")
	s.Equal([]fleet.Server{tfServer(tfS1, fleet.ServerReady)}, next.Inventory.Servers)
	loaded := func(id, service string, port int) fleet.Container {
		return fleet.Container{ID: id, Server: "s1", Port: port, State: fleet.Loaded, Service: service, Healthy: true, PID: tfAgentPID(id)}
	}
	s.Equal([]fleet.Container{
		loaded("m1-c1", "web", 20000), loaded("m1-c2", "web", 20001), loaded("m1-c3", "api", 20002),
		{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Waiting, PID: 4444, Registered: true},
	}, next.Inventory.Containers)
	s.Contains(eventMessages(next.Events), "msm/m1/provision/1 done: 4 started, 3 loaded, 0 failed")
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

func (s *ManagerSuite) TestCatalogSignalsOfTheLastTaskAreCarriedExactly() {
	// Two catalogs arrive in the workflow task that continues as new; the
	// second, for another kind, leaves out fields the first set. The next
	// run must get the second as sent, not a blend of the two.
	first := tmCatalogSignal()
	second := workflows.CatalogSignal{Source: "second.yaml", Catalog: catalog.Catalog{
		Manager:  catalog.Manager{Kind: catalog.KindDocker},
		Services: []catalog.Service{{Name: "web", Image: "web:1", Replicas: catalog.Replicas{Min: 1, Initial: 1, Max: 1}}},
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
	s.Equal([]string{"catalog from catalog.yaml: 2 service(s)", "catalog from second.yaml: 1 service(s)"}, eventMessages(next.Events))
	s.Empty(s.provisions())
}
