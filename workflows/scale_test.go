package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
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
	msmworker "github.com/msm-project/msm/worker"
	"github.com/msm-project/msm/workflows"
)

// ScaleSuite runs the Manager against the fake fleet with its operations
// registered as the worker registers them (Provision, and the same code as
// Extend), and checks the scaling rules: extend, scale, overload, and the
// per-service desired instances and cooldowns.
type ScaleSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite

	env  *testsuite.TestWorkflowEnvironment
	fake *tfFleet

	mu       sync.Mutex
	children []scChild
}

// scChild is one operation the Manager started, as the child saw itself.
type scChild struct {
	ID        string
	Type      string
	Operation string   // search attribute MsmOperation
	Services  []string // search attribute MsmService
	Manager   string   // search attribute MsmManager
	Input     workflows.ProvisionInput
	At        time.Time // workflow time of the start
}

func TestScaleSuite(t *testing.T) { suite.Run(t, new(ScaleSuite)) }

func (s *ScaleSuite) SetupTest() {
	s.fake = &tfFleet{}
	s.mu.Lock()
	s.children = nil
	s.mu.Unlock()
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetTestTimeout(30 * time.Second)
	// Operations signal their parent by the Manager's workflow ID.
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.ManagerID(tfManager)})
	// The worker's own list, so an operation type the worker does not
	// register (Extend is Provision under another name) fails here too.
	msmworker.RegisterWorkflows(s.env)
	s.fake.register(s.env)
	s.fake.holdLeases(s.env)
	s.env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, ctx workflow.Context, args converter.EncodedValues) {
		c := scChild{ID: info.WorkflowExecution.ID, Type: info.WorkflowType.Name, At: s.env.Now()}
		sa := workflow.GetTypedSearchAttributes(ctx)
		c.Operation, _ = sa.GetKeyword(workflows.AttrOperation)
		c.Manager, _ = sa.GetKeyword(workflows.AttrManager)
		c.Services, _ = sa.GetKeywordList(workflows.AttrService)
		if c.Type == workflows.WorkflowProvision || c.Type == workflows.WorkflowExtend || c.Type == workflows.WorkflowRecover || c.Type == workflows.WorkflowRoll {
			s.NoError(args.Get(&c.Input)) // not Require: this runs off the test goroutine
			withoutRevisions(&c.Input)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.children = append(s.children, c)
		if len(s.children) == tmRunaway {
			s.env.CancelWorkflow()
		}
	})
}

func (s *ScaleSuite) AfterTest(_, _ string) {
	s.env.AssertExpectations(s.T())
}

// placements returns the operations started so far that place instances
// (Provision and Extend), in order. Shrink is another rule's.
func (s *ScaleSuite) placements() []scChild {
	var out []scChild
	for _, c := range s.started() {
		if c.Type == workflows.WorkflowProvision || c.Type == workflows.WorkflowExtend {
			out = append(out, c)
		}
	}
	return out
}

// opNumber is the Manager's number of an operation: the last part of its ID.
func opNumber(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndex(id, "/")+1:])
	return n
}

// started returns every child the Manager started, of any type.
// Children started in one workflow task run side by side in the test
// environment, so their listeners run in any order: they are sorted by the
// number the Manager gave them, the order it started them in.
func (s *ScaleSuite) started() []scChild {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.children)
	slices.SortStableFunc(out, func(a, b scChild) int { return opNumber(a.ID) - opNumber(b.ID) })
	return out
}

func (s *ScaleSuite) at(d time.Duration, fn func()) { s.env.RegisterDelayedCallback(fn, d) }

func (s *ScaleSuite) signal(d time.Duration, name string, arg any) {
	s.at(d, func() { s.env.SignalWorkflow(name, arg) })
}

func (s *ScaleSuite) overload(d time.Duration, container, service, reason string) {
	s.signal(d, workflows.SignalOverload, workflows.OverloadSignal{Container: container, Service: service, Reason: reason})
}

// overloadBurst sends n overload reports that the Manager takes in one
// workflow task.
func (s *ScaleSuite) overloadBurst(d time.Duration, n int, service string) {
	s.at(d, func() {
		for i := range n {
			o := workflows.OverloadSignal{Container: fmt.Sprintf("m1-c%d", 1+i%2), Service: service, Reason: "cpu above 80% for 60s"}
			if i < n-1 {
				s.env.SignalWorkflowSkippingWorkflowTask(workflows.SignalOverload, o)
			} else {
				s.env.SignalWorkflow(workflows.SignalOverload, o)
			}
		}
	})
}

// scSnap is a status query's answer, taken during the run and asserted
// after it: a failed assertion must not stop the environment's goroutine.
type scSnap struct {
	st    workflows.Status
	err   error
	taken bool
}

func (s *ScaleSuite) snapshot(d time.Duration) *scSnap {
	snap := &scSnap{}
	s.at(d, func() {
		v, err := s.env.QueryWorkflow(workflows.QueryStatus)
		if err == nil {
			err = getStatus(v, &snap.st)
		}
		snap.err, snap.taken = err, true
	})
	return snap
}

func (s *ScaleSuite) status(snap *scSnap) workflows.Status {
	s.Require().True(snap.taken, "the status was never queried")
	s.Require().NoError(snap.err)
	return snap.st
}

// update sends an update at d and records what became of it.
func (s *ScaleSuite) update(d time.Duration, name, id string, arg any) *tmUpdate {
	out := &tmUpdate{}
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
	return out
}

func (s *ScaleSuite) extend(d time.Duration, id string, u workflows.ExtendUpdate) *tmUpdate {
	return s.update(d, workflows.UpdateExtend, id, u)
}

func (s *ScaleSuite) scale(d time.Duration, id string, u workflows.ScaleUpdate) *tmUpdate {
	return s.update(d, workflows.UpdateScale, id, u)
}

func (s *ScaleSuite) requireAccepted(u *tmUpdate, message string) {
	s.Require().NoError(u.rejected)
	s.Require().True(u.accepted, "not accepted")
	s.Require().True(u.done, "not completed")
	s.Require().NoError(u.err)
	s.Equal(message, u.result.Message)
}

func (s *ScaleSuite) requireRejected(u *tmUpdate, message string) {
	s.Require().Error(u.rejected, "not rejected")
	s.EqualError(u.rejected, message)
	s.False(u.accepted, "a rejected update is not accepted")
	s.False(u.done, "a rejected update never runs its handler")
}

// run starts the Manager and cancels it at end unless it ended before.
func (s *ScaleSuite) run(in workflows.ManagerInput, end time.Duration) {
	s.at(end, func() { s.env.CancelWorkflow() })
	s.env.ExecuteWorkflow(workflows.Manager, in)
	s.Require().True(s.env.IsWorkflowCompleted())
}

func (s *ScaleSuite) requireCancelled() {
	err := s.env.GetWorkflowError()
	var canceled *temporal.CanceledError
	s.Require().True(errors.As(err, &canceled), "the Manager ended by itself: %v", err)
}

// continuedAs returns the input of the run the Manager continued as.
func (s *ScaleSuite) continuedAs() workflows.ManagerInput {
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &can), "want continue-as-new, got %v", s.env.GetWorkflowError())
	var next workflows.ManagerInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	return next
}

func (s *ScaleSuite) catalog(d time.Duration, cat catalog.Catalog) {
	s.signal(d, workflows.SignalCatalog, workflows.CatalogSignal{Catalog: cat, Source: "catalog.yaml"})
}

// scCountEvents counts the events that start with prefix.
func scCountEvents(st workflows.Status, prefix string) int {
	n := 0
	for _, e := range st.Events {
		if strings.HasPrefix(e.Message, prefix) {
			n++
		}
	}
	return n
}

// scShape is what these rules decide of a status: servers, containers,
// services, unplaced demand and operations in flight; not the event log,
// whose lines carry times, nor the catalog's source.
func scShape(st workflows.Status) workflows.Status {
	return workflows.Status{Manager: st.Manager, Kind: st.Kind, Servers: st.Servers, Containers: st.Containers,
		Services: st.Services, Unplaced: st.Unplaced, Operations: st.Operations}
}

func scContainer(id, server string, port int, service string, state fleet.ContainerState) workflows.ContainerStatus {
	return workflows.ContainerStatus{ID: tfManager + "-" + id, Server: server, State: string(state), Service: service,
		Port: port, Healthy: state == fleet.Loaded}
}

func scServer(cs catalog.Server, used int) workflows.ServerStatus {
	return workflows.ServerStatus{ID: cs.Name, State: string(fleet.ServerReady), Address: cs.Address, Slots: cs.Slots, Used: used}
}

// scWarmLoad is the waiting container m1-c4 (s1:20003) in a plan that gives
// it to service.
func scWarmLoad(service string) fleet.Container {
	return fleet.Container{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Loaded, Service: service, PID: tfAgentPID("m1-c4")}
}

// scWebExtended is tfCatalog after one more web instance: the waiting m1-c4
// took web, and the provision after the extension gave the pool m1-c5 on
// s2, launched for it.
func scWebExtended() workflows.Status {
	return workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone,
		Servers: []workflows.ServerStatus{scServer(tfS1, 4), scServer(tfS2, 1)},
		Containers: []workflows.ContainerStatus{
			scContainer("c1", "s1", 20000, "web", fleet.Loaded),
			scContainer("c2", "s1", 20001, "web", fleet.Loaded),
			scContainer("c3", "s1", 20002, "api", fleet.Loaded),
			scContainer("c4", "s1", 20003, "web", fleet.Loaded),
			scContainer("c5", "s2", 21000, "", fleet.Waiting),
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "api", Desired: 1, Ready: 1}},
	}
}

// scWebExtendedPlan is the plan of that extension: one load, of the
// waiting m1-c4. The pool's refill is the next decision's.
func scWebExtendedPlan() fleet.Plan {
	return fleet.Plan{Loads: []fleet.Container{scWarmLoad("web")}}
}

// scWebRefillPlan is the plan of the provision that follows that extension:
// the pool gets m1-c5 on s2, launched for it (s1 is full).
func scWebRefillPlan() fleet.Plan {
	return fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c5", "s2", 21000, "")},
	}
}

// scWebTwice is scWebExtended after a second extension of web: the waiting
// m1-c5 took web, the next provision gave the pool m1-c6 beside it.
func scWebTwice() workflows.Status {
	st := scWebExtended()
	st.Servers[1].Used = 2
	st.Containers[4] = scContainer("c5", "s2", 21000, "web", fleet.Loaded)
	st.Containers = append(st.Containers, scContainer("c6", "s2", 21001, "", fleet.Waiting))
	st.Services[0] = workflows.ServiceStatus{Name: "web", Desired: 4, Ready: 4}
	return st
}

func (s *ScaleSuite) requireExtendOf(c scChild, service string, n int) {
	id := fmt.Sprintf("msm/m1/extend/%s/%d", service, n)
	s.Equal(id, c.ID)
	s.Equal(workflows.WorkflowExtend, c.Type, c.ID)
	s.Equal("extend", c.Operation, c.ID)
	s.Equal([]string{service}, c.Services, c.ID)
	s.Equal(id, c.Input.Op, "the operation reports its steps under its own ID")
}

// requireRefillOf asserts that c is the refill numbered n (a Provision
// that only refills the warm pool), with plan: the decision after an
// extension or a recovery, which left the pool to it.
func (s *ScaleSuite) requireRefillOf(c scChild, n int, plan fleet.Plan) {
	id := fmt.Sprintf("msm/m1/refill/%d", n)
	s.Equal(id, c.ID)
	s.Equal(workflows.WorkflowProvision, c.Type, c.ID)
	s.Equal("refill", c.Operation, c.ID)
	s.Nil(c.Services, "%s places no service", c.ID)
	s.Equal(id, c.Input.Op)
	s.Equal(plan, c.Input.Plan, c.ID)
	s.Nil(c.Input.Services, c.ID)
	for _, st := range plan.Starts {
		s.Empty(st.Service, "%s: a refill starts warm-pool containers only", c.ID)
	}
}

func (s *ScaleSuite) TestExtendLoadsAWaitingContainerFirst() {
	s.catalog(time.Second, tfCatalog())
	before := s.snapshot(4 * time.Second)
	u := s.extend(5*time.Second, "u-web", workflows.ExtendUpdate{Service: "web", Count: 1, Reason: "load test"})
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Equal(scShape(tmProvisioned(fleet.Waiting)), scShape(s.status(before)), "m1-c4 waits on s1, which is full")
	s.requireAccepted(u, "extending web from 2 to 3 instance(s)")
	st := s.status(after)
	s.Equal(scWebExtended(), scShape(st))
	s.Contains(eventMessages(st.Events), "extend web from 2 to 3 instance(s) (operator: load test)")

	ps := s.placements()
	s.Require().Len(ps, 3)
	s.requireExtendOf(ps[1], "web", 2)
	s.Equal(scWebExtendedPlan(), ps[1].Input.Plan, "web gets the waiting container, not a new process")
	s.requireRefillOf(ps[2], 3, scWebRefillPlan())
	load, n := s.fake.input(workflows.ActivityLoadService, "m1-c4")
	s.Require().Equal(1, n)
	s.Equal(workflows.LoadServiceInput{Container: "m1-c4", Server: "s1", Address: "10.0.0.1", Port: 20003, Service: tfWeb}, load)
	s.Equal([]string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"}, s.fake.keys(workflows.ActivityLoadService))
	// The only new process is the pool's refill, which no one loads.
	s.Equal([]string{"m1-c1", "m1-c2", "m1-c3", "m1-c4", "m1-c5"}, s.fake.keys(workflows.ActivityStartContainer))
	s.Equal([]string{"m1-c4", "m1-c5"}, s.fake.keys(workflows.ActivityReady))
	s.Greater(s.fake.index(workflows.ActivityLaunchServer, "s2", false),
		s.fake.index(workflows.ActivityLoadService, "m1-c4", true), "the refill began after the extension's load returned")
}

// An extension only loads waiting containers; the warm pool's refill is the
// decision made when the extension ends, a provision of its own.
func (s *ScaleSuite) TestExtendLeavesThePoolRefillToTheNextDecision() {
	cat := tfCatalog()
	cat.Manager.WarmPool = 2 // m1-c4 waits on s1, m1-c5 on s2
	s.catalog(time.Second, cat)
	u := s.extend(5*time.Second, "u-web", workflows.ExtendUpdate{Service: "web", Count: 2})
	after := s.snapshot(10 * time.Second)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(u, "extending web from 2 to 4 instance(s)")

	all := s.started()
	s.Require().Len(all, 3)
	s.Equal("msm/m1/provision/1", all[0].ID)
	s.Equal([]string{"s1", "s2"}, s.fake.keys(workflows.ActivityLaunchServer), "the first provision launched both servers")

	ext := all[1]
	s.requireExtendOf(ext, "web", 2)
	s.Equal(fleet.Plan{Loads: []fleet.Container{
		scWarmLoad("web"),
		{ID: "m1-c5", Server: "s2", Port: 21000, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c5")},
	}}, ext.Input.Plan, "the extension loads the two waiting containers and starts nothing")

	// The very next operation refills the pool: exactly the two containers
	// the extension took, on s2, the server with room.
	refill := all[2]
	s.requireRefillOf(refill, 3, fleet.Plan{Starts: []fleet.Container{
		tfStart("c6", "s2", 21001, ""), tfStart("c7", "s2", 21002, ""),
	}})
	s.Equal(5*time.Second, ext.At.Sub(start))
	s.Equal(5*time.Second, refill.At.Sub(start), "at once, when the extension ends")
	for _, c := range []string{"m1-c4", "m1-c5"} {
		s.Greater(s.fake.index(workflows.ActivityStartContainer, "m1-c6", false), s.fake.index(workflows.ActivityLoadService, c, true),
			"the refill began after the extension's load of %s returned", c)
	}
	s.Equal([]string{"m1-c1", "m1-c2", "m1-c3", "m1-c4", "m1-c5", "m1-c6", "m1-c7"}, s.fake.keys(workflows.ActivityStartContainer))
	s.Equal([]string{"m1-c1", "m1-c2", "m1-c3", "m1-c4", "m1-c5"}, s.fake.keys(workflows.ActivityLoadService))

	st := s.status(after)
	msgs := eventMessages(st.Events)
	done := slices.Index(msgs, "msm/m1/extend/web/2 done: 0 started, 2 loaded, 0 failed")
	planned := slices.Index(msgs, "msm/m1/refill/3: 0 server(s) to launch, 2 container(s) to start, 0 to load (warm pool 0 below its size 2)")
	s.Contains(msgs, "msm/m1/extend/web/2: 0 server(s) to launch, 0 container(s) to start, 2 to load (web: 2 instance(s) below its desired 4; 2 from the warm pool)")
	s.NotEqual(-1, done, msgs)
	s.Greater(planned, done, "the refill is decided after the extension ended")
	s.Contains(msgs, "msm/m1/refill/3 done: 2 started, 0 loaded, 0 failed")
	s.Equal(workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone,
		Servers: []workflows.ServerStatus{scServer(tfS1, 4), scServer(tfS2, 3)},
		Containers: []workflows.ContainerStatus{
			scContainer("c1", "s1", 20000, "web", fleet.Loaded),
			scContainer("c2", "s1", 20001, "web", fleet.Loaded),
			scContainer("c3", "s1", 20002, "api", fleet.Loaded),
			scContainer("c4", "s1", 20003, "web", fleet.Loaded),
			scContainer("c5", "s2", 21000, "web", fleet.Loaded),
			scContainer("c6", "s2", 21001, "", fleet.Waiting),
			scContainer("c7", "s2", 21002, "", fleet.Waiting),
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 4, Ready: 4}, {Name: "api", Desired: 1, Ready: 1}},
	}, scShape(st))
}

// A crash reported while another service is extended makes one provision
// of both, not a recovery: the crashed service stays among those recovering
// after it, and a decision for them leaves the pool to the next one. That
// next decision has nothing else to do, so it refills the pool itself
// rather than hold it again and run nothing, which would leave the pool
// short for good.
func (s *ScaleSuite) TestPoolIsRefilledAfterARecoveryAndAnExtensionDecidedTogether() {
	// The first Provision runs from 1s to 11s (the pool's Ready is slow):
	// the crash and the extension wait for it and are decided together,
	// as a Recover of web and an Extend of api side by side.
	s.slowFirstProvision()
	s.catalog(time.Second, tfCatalog())
	s.signal(5*time.Second, workflows.SignalErrorReport, workflows.ErrorReport{Container: "m1-c1", Service: "web", Reason: "web exited"})
	api := s.extend(6*time.Second, "u-api", workflows.ExtendUpdate{Service: "api", Count: 1})
	after := s.snapshot(50 * time.Second)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(api, "extending api from 1 to 2 instance(s)")

	ps := s.started()
	var ids []string
	for _, c := range ps {
		ids = append(ids, c.ID)
	}
	s.Require().Equal([]string{"msm/m1/provision/1", "msm/m1/recover/web/2", "msm/m1/extend/api/3", "msm/m1/shrink/web/4", "msm/m1/refill/5"}, ids,
		"the crashed m1-c1 is destroyed beside them")
	s.Equal("msm/m1/recover/web/2", ps[1].ID)
	s.Equal(workflows.WorkflowRecover, ps[1].Type)
	s.Equal(fleet.Plan{Loads: []fleet.Container{scWarmLoad("web")}}, ps[1].Input.Plan, "web's replacement takes the waiting m1-c4")
	s.requireExtendOf(ps[2], "api", 3)
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c5", "s2", 21000, "api")},
	}, ps[2].Input.Plan, "the recovery comes first; api's extension starts a container beside it")
	s.Equal(11*time.Second, ps[1].At.Sub(start), "when the provision ended")
	s.Equal(ps[1].At, ps[2].At, "side by side")
	s.requireRefillOf(ps[4], 5, fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})

	st := s.status(after)
	s.Contains(st.Containers, scContainer("c6", "s2", 21001, "", fleet.Waiting), "the pool is full again")
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 2, Ready: 2}}, st.Services)
}

// TestExtensionsOfTwoServicesRunSideBySide: web's extension takes the
// waiting container and loads it for 3 s; api's, asked meanwhile, starts at
// once beside it (a new container on s2, the pool's refill waiting until
// web's load is done), and the pool is refilled once both have ended and
// freed what they held.
func (s *ScaleSuite) TestExtensionsOfTwoServicesRunSideBySide() {
	after, start := s.extendWebThenAPI()

	all := s.started()
	s.Require().Len(all, 4)
	s.requireExtendOf(all[1], "web", 2)
	s.Equal(fleet.Plan{Loads: []fleet.Container{scWarmLoad("web")}}, all[1].Input.Plan, "web's extension holds the pool")
	s.requireExtendOf(all[2], "api", 3)
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c5", "s2", 21000, "api")},
	}, all[2].Input.Plan, "api's extension, beside web's, leaves the refill until web's load is done")
	s.Equal(11*time.Second, all[2].At.Sub(start), "at once, not when web's extension ended (13 s)")
	s.requireRefillOf(all[3], 4, fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})
	s.Equal(14*time.Second, all[3].At.Sub(start), "when api's extension, launching s2, ended")

	st := s.status(after)
	s.Contains(st.Containers, scContainer("c6", "s2", 21001, "", fleet.Waiting), "the pool is full again")
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "api", Desired: 2, Ready: 2}}, st.Services)
	s.Empty(st.Unplaced, "waiting for s2 was no lack of room")
	s.Zero(scCountEvents(st, "cannot place"), "waiting for s2 was no lack of room")
}

// extendWebThenAPI runs the Manager with loads that take 3 s: web extended
// at 10 s, api at 11 s, both accepted. It returns the status at 50 s and
// the Manager's start.
func (s *ScaleSuite) extendWebThenAPI() (*scSnap, time.Time) {
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.Anything).After(3 * time.Second).Return(
		func(_ context.Context, in workflows.LoadServiceInput) (workflows.LoadServiceResult, error) {
			return workflows.LoadServiceResult{PID: tfAgentPID(in.Container), Healthy: true}, nil
		})
	s.catalog(time.Second, tfCatalog())
	web := s.extend(10*time.Second, "u-web", workflows.ExtendUpdate{Service: "web", Count: 1})
	api := s.extend(11*time.Second, "u-api", workflows.ExtendUpdate{Service: "api", Count: 1})
	after := s.snapshot(50 * time.Second)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(web, "extending web from 2 to 3 instance(s)")
	s.requireAccepted(api, "extending api from 1 to 2 instance(s)")
	return after, start
}

// In runs begun before operations ran side by side, api's extension asked
// while web's runs is decided when web's ends, and refills the pool then.
func (s *ScaleSuite) TestExtensionRightAfterAHeldOneRefillsThePoolInRunsBeforeParallelOps() {
	s.env.OnGetVersion("parallel-ops", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	// The extension of web loads for 3 s: api's, asked meanwhile, is decided
	// when it ends.
	after, start := s.extendWebThenAPI()

	all := s.started()
	s.Require().Len(all, 3, "no operation of its own for the pool")
	s.requireExtendOf(all[1], "web", 2)
	s.Equal(fleet.Plan{Loads: []fleet.Container{scWarmLoad("web")}}, all[1].Input.Plan, "web's extension holds the pool")
	s.requireExtendOf(all[2], "api", 3)
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c5", "s2", 21000, "api"), tfStart("c6", "s2", 21001, "")},
	}, all[2].Input.Plan, "api's extension, right after, refills the pool too")
	s.Equal(13*time.Second, all[2].At.Sub(start), "when web's extension ended")

	st := s.status(after)
	s.Contains(st.Containers, scContainer("c6", "s2", 21001, "", fleet.Waiting), "the pool is full again")
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "api", Desired: 2, Ready: 2}}, st.Services)
}

// Runs begun before the change (GetVersion answers DefaultVersion) keep
// refilling the pool in the extension itself, as their histories recorded.
func (s *ScaleSuite) TestExtendOfARunBeforeRefillPoolAfterRefillsInTheSameOperation() {
	s.env.OnGetVersion("decide-ops", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.env.OnGetVersion("refill-pool-after", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.catalog(time.Second, tfCatalog())
	u := s.extend(5*time.Second, "u-web", workflows.ExtendUpdate{Service: "web", Count: 1})
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(u, "extending web from 2 to 3 instance(s)")

	s.Equal(scWebExtended(), scShape(s.status(after)))
	all := s.started()
	s.Require().Len(all, 2, "no refill of its own")
	s.requireExtendOf(all[1], "web", 2)
	s.Equal(fleet.Plan{
		Servers: scWebRefillPlan().Servers,
		Starts:  scWebRefillPlan().Starts,
		Loads:   scWebExtendedPlan().Loads,
	}, all[1].Input.Plan, "the load and the pool's start in one operation")
}

func (s *ScaleSuite) TestExtendStartsANewContainerOnAServerWithRoomWhenNoneIsWaiting() {
	cat := tfCatalog()
	cat.Manager.WarmPool = 0 // nothing waits; s1 keeps a free slot
	s.catalog(time.Second, cat)
	before := s.snapshot(4 * time.Second)
	u := s.extend(5*time.Second, "u-web", workflows.ExtendUpdate{Service: "web", Count: 1})
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	want := workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone,
		Servers: []workflows.ServerStatus{scServer(tfS1, 3)},
		Containers: []workflows.ContainerStatus{
			scContainer("c1", "s1", 20000, "web", fleet.Loaded),
			scContainer("c2", "s1", 20001, "web", fleet.Loaded),
			scContainer("c3", "s1", 20002, "api", fleet.Loaded),
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}},
	}
	s.Equal(want, scShape(s.status(before)))
	s.requireAccepted(u, "extending web from 2 to 3 instance(s)")

	want.Servers = []workflows.ServerStatus{scServer(tfS1, 4)}
	want.Containers = append(want.Containers, scContainer("c4", "s1", 20003, "web", fleet.Loaded))
	want.Services[0] = workflows.ServiceStatus{Name: "web", Desired: 3, Ready: 3}
	s.Equal(want, scShape(s.status(after)))

	ps := s.placements()
	s.Require().Len(ps, 2)
	s.requireExtendOf(ps[1], "web", 2)
	s.Equal(fleet.Plan{Starts: []fleet.Container{tfStart("c4", "s1", 20003, "web")}}, ps[1].Input.Plan,
		"a new process on s1, which has room: no server launched")
	s.Equal([]string{"s1"}, s.fake.keys(workflows.ActivityLaunchServer))
	start, n := s.fake.input(workflows.ActivityStartContainer, "m1-c4")
	s.Require().Equal(1, n)
	s.Equal(workflows.StartContainerInput{Manager: tfManager, Container: "m1-c4", Server: "s1", Port: 20003}, start)
	load, n := s.fake.input(workflows.ActivityLoadService, "m1-c4")
	s.Require().Equal(1, n)
	s.Equal(workflows.LoadServiceInput{Container: "m1-c4", Server: "s1", Address: "10.0.0.1", Port: 20003, Service: tfWeb}, load)
	s.Empty(s.fake.began(workflows.ActivityReady))
}

func (s *ScaleSuite) TestExtendLaunchesANewServerWhenNoServerHasRoom() {
	cat := tfCatalog()
	cat.Manager.WarmPool = 0
	cat.Manager.Servers[0].Slots = 3 // web ×2 and api fill s1
	s1 := cat.Manager.Servers[0]
	s.catalog(time.Second, cat)
	before := s.snapshot(4 * time.Second)
	u := s.extend(5*time.Second, "u-web", workflows.ExtendUpdate{Service: "web", Count: 1})
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	want := workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone,
		Servers: []workflows.ServerStatus{scServer(s1, 3)},
		Containers: []workflows.ContainerStatus{
			scContainer("c1", "s1", 20000, "web", fleet.Loaded),
			scContainer("c2", "s1", 20001, "web", fleet.Loaded),
			scContainer("c3", "s1", 20002, "api", fleet.Loaded),
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}},
	}
	s.Equal(want, scShape(s.status(before)))
	s.requireAccepted(u, "extending web from 2 to 3 instance(s)")

	want.Servers = append(want.Servers, scServer(tfS2, 1))
	want.Containers = append(want.Containers, scContainer("c4", "s2", 21000, "web", fleet.Loaded))
	want.Services[0] = workflows.ServiceStatus{Name: "web", Desired: 3, Ready: 3}
	s.Equal(want, scShape(s.status(after)))

	ps := s.placements()
	s.Require().Len(ps, 2)
	s.requireExtendOf(ps[1], "web", 2)
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c4", "s2", 21000, "web")},
	}, ps[1].Input.Plan)
	s.Equal(map[string]string{"s1": "10.0.0.1", "s2": "10.0.0.2"}, ps[1].Input.Addresses)
	launches := s.fake.began(workflows.ActivityLaunchServer)
	s.Require().Len(launches, 2)
	s.Equal(workflows.LaunchServerInput{Manager: tfManager, Kind: catalog.KindStandalone, Key: "m1/s2",
		Server: tfServer(tfS2, fleet.ServerLaunching)}, launches[1].Input)
	s.Greater(s.fake.index(workflows.ActivityStartContainer, "m1-c4", false),
		s.fake.index(workflows.ActivityLaunchServer, "s2", true), "m1-c4 started before s2 was launched")
	load, n := s.fake.input(workflows.ActivityLoadService, "m1-c4")
	s.Require().Equal(1, n)
	s.Equal(workflows.LoadServiceInput{Container: "m1-c4", Server: "s2", Address: "10.0.0.2", Port: 21000, Service: tfWeb}, load)
}

func (s *ScaleSuite) TestExtendRunsAsAnExtendOperationNamedForTheService() {
	s.catalog(time.Second, tfCatalog())
	u := s.extend(5*time.Second, "u-api", workflows.ExtendUpdate{Service: "api", Count: 1})
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(u, "extending api from 1 to 2 instance(s)")

	all := s.started()
	s.Require().Len(all, 3)
	first := all[0]
	s.Equal("msm/m1/provision/1", first.ID)
	s.Equal(workflows.WorkflowProvision, first.Type, "the catalog's needs are a provision")
	s.Equal("provision", first.Operation)
	s.Equal([]string{"web", "api"}, first.Services)

	ext := all[1]
	s.requireExtendOf(ext, "api", 2)
	s.Equal(tfManager, ext.Manager)
	s.Equal(workflows.ProvisionInput{
		Op: "msm/m1/extend/api/2", Manager: tfManager, Kind: catalog.KindStandalone,
		Plan:      fleet.Plan{Loads: []fleet.Container{scWarmLoad("api")}},
		Services:  []catalog.Service{tfAPI},
		Addresses: map[string]string{"s1": "10.0.0.1"},
	}, ext.Input, "one load: the pool's refill is the next decision's")
	s.requireRefillOf(all[2], 3, scWebRefillPlan())
	s.Equal(tfManager, all[2].Manager)
	s.Equal(map[string]string{"s1": "10.0.0.1", "s2": "10.0.0.2"}, all[2].Input.Addresses)

	st := s.status(after)
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 2, Ready: 2}}, st.Services)
	msgs := eventMessages(st.Events)
	s.Contains(msgs, "extend api from 1 to 2 instance(s) (operator: extend)")
	s.Contains(msgs, "msm/m1/extend/api/2: 0 server(s) to launch, 0 container(s) to start, 1 to load (api: 1 instance(s) below its desired 2; 1 from the warm pool)")
	// The Manager recorded the steps the Extend reported: m1-c4 is api's.
	s.Contains(msgs, "msm/m1/extend/api/2 done: 0 started, 1 loaded, 0 failed")
	s.Contains(msgs, "msm/m1/refill/3: 1 server(s) to launch, 1 container(s) to start, 0 to load (warm pool 0 below its size 1)")
	s.Contains(msgs, "msm/m1/refill/3 done: 1 started, 0 loaded, 0 failed")
	s.Contains(st.Containers, scContainer("c4", "s1", 20003, "api", fleet.Loaded))
	s.Contains(st.Containers, scContainer("c5", "s2", 21000, "", fleet.Waiting))
}

// TestExtendOfTwoServicesInOneDecisionOfARunBeforeDecideOpsRunsAsAProvision:
// runs begun before decide-ops made one placement of a decision's
// extensions, named a provision.
func (s *ScaleSuite) TestExtendOfTwoServicesInOneDecisionOfARunBeforeDecideOpsRunsAsAProvision() {
	s.env.OnGetVersion("decide-ops", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	// The first Provision runs from 1s to 11s (the pool's Ready is slow):
	// both extensions wait for it and are decided together.
	web, api := s.extendBothDuringTheFirstProvision()
	var during []scChild
	s.at(10*time.Second, func() { during = s.placements() })
	after := s.snapshot(30 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(web, "extending web from 2 to 3 instance(s)")
	s.requireAccepted(api, "extending api from 1 to 2 instance(s)")

	s.Len(during, 1, "no operation starts while the first one runs")
	ps := s.placements()
	s.Require().Len(ps, 3)
	s.Equal("msm/m1/provision/2", ps[1].ID)
	s.Equal(workflows.WorkflowProvision, ps[1].Type)
	s.Equal("provision", ps[1].Operation)
	s.Equal([]string{"web", "api"}, ps[1].Services)
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c5", "s2", 21000, "api")},
		Loads:   []fleet.Container{scWarmLoad("web")},
	}, ps[1].Input.Plan, "a decision for extensions leaves the pool to the next")
	s.Equal("msm/m1/provision/3", ps[2].ID, "the refill, named a provision")
	s.Equal(fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}}, ps[2].Input.Plan)
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "api", Desired: 2, Ready: 2}},
		s.status(after).Services)
}

// slowFirstProvision makes the pool's Ready take 10 s, so that the first
// Provision runs from 1 s to 11 s and what is asked meanwhile waits for
// one decision.
func (s *ScaleSuite) slowFirstProvision() {
	s.env.OnActivity(workflows.ActivityReady, mock.Anything, mock.Anything).After(10 * time.Second).Return(
		func(_ context.Context, id string) (workflows.ReadyResult, error) {
			return workflows.ReadyResult{PID: tfAgentPID(id)}, nil
		})
}

// extendBothDuringTheFirstProvision extends web (at 5 s) and api (at 6 s)
// while the first Provision runs, so both are decided together at 11 s.
func (s *ScaleSuite) extendBothDuringTheFirstProvision() (web, api *tmUpdate) {
	s.slowFirstProvision()
	s.catalog(time.Second, tfCatalog())
	web = s.extend(5*time.Second, "u-web", workflows.ExtendUpdate{Service: "web", Count: 1})
	api = s.extend(6*time.Second, "u-api", workflows.ExtendUpdate{Service: "api", Count: 1})
	return web, api
}

// TestExtensionsOfTwoServicesDecidedTogetherRunAsTwoExtends: two extensions
// that wait for the same decision are two Extend operations, each named
// for its service and started side by side; the pool's refill follows
// once both ended.
func (s *ScaleSuite) TestExtensionsOfTwoServicesDecidedTogetherRunAsTwoExtends() {
	// The first Provision runs from 1s to 11s (the pool's Ready is slow):
	// both extensions wait for it and are decided together.
	web, api := s.extendBothDuringTheFirstProvision()
	after := s.snapshot(40 * time.Second)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(web, "extending web from 2 to 3 instance(s)")
	s.requireAccepted(api, "extending api from 1 to 2 instance(s)")

	ps := s.placements()
	s.Require().Len(ps, 4)
	s.requireExtendOf(ps[1], "web", 2)
	s.Equal(fleet.Plan{Loads: []fleet.Container{scWarmLoad("web")}}, ps[1].Input.Plan, "web takes the waiting container")
	s.requireExtendOf(ps[2], "api", 3)
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c5", "s2", 21000, "api")},
	}, ps[2].Input.Plan, "api's own extension launches s2")
	s.Equal(ps[1].At, ps[2].At, "side by side, in one decision")
	s.Equal(11*time.Second, ps[1].At.Sub(start), "when the first provision ended")
	s.requireRefillOf(ps[3], 4, fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "api", Desired: 2, Ready: 2}},
		s.status(after).Services)
}

func (s *ScaleSuite) TestOnlyAnExtensionRunsAsExtend() {
	// api's first load fails: its replacement, at once (a first failure
	// has no back-off), places one service but extends nothing.
	s.fake.loadErr = map[string]error{"m1-c3": tmLoadFailed(tmAPIExit)}
	s.catalog(time.Second, tfCatalog())
	u := s.extend(10*time.Second, "u-api", workflows.ExtendUpdate{Service: "api", Count: 1})
	after := s.snapshot(15 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(u, "extending api from 1 to 2 instance(s)")

	ps := s.placements()
	s.Require().Len(ps, 4)
	s.Equal("msm/m1/provision/2", ps[1].ID)
	s.Equal(workflows.WorkflowProvision, ps[1].Type)
	s.Equal("provision", ps[1].Operation)
	s.Equal([]string{"api"}, ps[1].Services)
	s.Equal(tmUseWarm("api", "c5", 20002), ps[1].Input.Plan, "a replacement after a failed load is no recovery: it refills the pool")
	s.requireExtendOf(ps[2], "api", 3)
	s.Equal(fleet.Plan{
		Loads: []fleet.Container{{ID: "m1-c5", Server: "s1", Port: 20002, State: fleet.Loaded, Service: "api", PID: tfAgentPID("m1-c5")}},
	}, ps[2].Input.Plan)
	s.requireRefillOf(ps[3], 4, fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c6", "s2", 21000, "")},
	})
	s.Equal(workflows.ServiceStatus{Name: "api", Desired: 2, Ready: 2}, s.status(after).Services[1])
}

func (s *ScaleSuite) TestExtendIsCappedAtMaxAndSaysSo() {
	s.catalog(time.Second, tfCatalog())
	web := s.extend(5*time.Second, "u-web", workflows.ExtendUpdate{Service: "web", Count: 5})
	// A count that would overflow is capped all the same.
	api := s.extend(10*time.Second, "u-api", workflows.ExtendUpdate{Service: "api", Count: math.MaxInt})
	after := s.snapshot(15 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.requireAccepted(web, "extending web from 2 to 4 instance(s) (capped at its max of 4)")
	s.requireAccepted(api, "extending api from 1 to 2 instance(s) (capped at its max of 2)")
	st := s.status(after)
	s.Equal(workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone,
		Servers: []workflows.ServerStatus{scServer(tfS1, 4), scServer(tfS2, 3)},
		Containers: []workflows.ContainerStatus{
			scContainer("c1", "s1", 20000, "web", fleet.Loaded),
			scContainer("c2", "s1", 20001, "web", fleet.Loaded),
			scContainer("c3", "s1", 20002, "api", fleet.Loaded),
			scContainer("c4", "s1", 20003, "web", fleet.Loaded),
			scContainer("c5", "s2", 21000, "web", fleet.Loaded),
			scContainer("c6", "s2", 21001, "api", fleet.Loaded),
			scContainer("c7", "s2", 21002, "", fleet.Waiting),
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 4, Ready: 4}, {Name: "api", Desired: 2, Ready: 2}},
	}, scShape(st))
	msgs := eventMessages(st.Events)
	s.Contains(msgs, "extend web from 2 to 4 instance(s) (operator: extend)")
	s.Contains(msgs, "extend api from 1 to 2 instance(s) (operator: extend)")

	ps := s.placements()
	s.Require().Len(ps, 5)
	s.requireExtendOf(ps[1], "web", 2)
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c5", "s2", 21000, "web")},
		Loads:   []fleet.Container{scWarmLoad("web")},
	}, ps[1].Input.Plan, "two more web, not five")
	s.requireRefillOf(ps[2], 3, fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})
	s.requireExtendOf(ps[3], "api", 4)
	s.Equal(fleet.Plan{
		Loads: []fleet.Container{{ID: "m1-c6", Server: "s2", Port: 21001, State: fleet.Loaded, Service: "api", PID: tfAgentPID("m1-c6")}},
	}, ps[3].Input.Plan)
	s.requireRefillOf(ps[4], 5, fleet.Plan{Starts: []fleet.Container{tfStart("c7", "s2", 21002, "")}})
}

func (s *ScaleSuite) TestExtendValidatorRejectsUnknownServiceZeroCountAndAtMax() {
	early := s.extend(500*time.Millisecond, "u-early", workflows.ExtendUpdate{Service: "web", Count: 1})
	s.catalog(time.Second, tfCatalog())
	before := s.snapshot(4 * time.Second)
	unknown := s.extend(5*time.Second, "u-unknown", workflows.ExtendUpdate{Service: "nope", Count: 1})
	unnamed := s.extend(5*time.Second, "u-unnamed", workflows.ExtendUpdate{Count: 1})
	zero := s.extend(5*time.Second, "u-zero", workflows.ExtendUpdate{Service: "web"})
	negative := s.extend(5*time.Second, "u-negative", workflows.ExtendUpdate{Service: "web", Count: -1})
	rejected := s.snapshot(9 * time.Second)
	var beforeMax []scChild
	s.at(9*time.Second, func() { beforeMax = s.started() })
	// api goes to its max of 2; then it cannot be extended.
	toMax := s.extend(10*time.Second, "u-api", workflows.ExtendUpdate{Service: "api", Count: 1})
	atMax := s.snapshot(15 * time.Second)
	again := s.extend(20*time.Second, "u-api-again", workflows.ExtendUpdate{Service: "api", Count: 1})
	after := s.snapshot(25 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.requireRejected(early, "the Manager has no catalog yet: start `msm worker --catalog FILE` first")
	s.requireRejected(unknown, `unknown service "nope": the catalog has [web api]`)
	s.requireRejected(unnamed, "no service named: give one of [web api]")
	s.requireRejected(zero, "count 0: extend adds at least 1 instance")
	s.requireRejected(negative, "count -1: extend adds at least 1 instance")
	s.Equal(s.status(before), s.status(rejected), "rejected updates change nothing, not even the event log")
	s.Equal(scShape(tmProvisioned(fleet.Waiting)), scShape(s.status(rejected)))
	s.Len(beforeMax, 1, "rejected updates start no operation")

	s.requireAccepted(toMax, "extending api from 1 to 2 instance(s)")
	s.requireRejected(again, "api already has its max of 2 instance(s); raise replicas.max in the catalog to extend it")
	s.Equal(workflows.ServiceStatus{Name: "api", Desired: 2, Ready: 2}, s.status(atMax).Services[1])
	s.Equal(s.status(atMax), s.status(after))
	all := s.started()
	s.Require().Len(all, 3, "only the accepted extension started an operation, and the pool's refill after it")
	s.Equal("msm/m1/provision/1", all[0].ID)
	s.requireExtendOf(all[1], "api", 2)
	s.Equal(fleet.Plan{Loads: []fleet.Container{scWarmLoad("api")}}, all[1].Input.Plan)
	s.requireRefillOf(all[2], 3, scWebRefillPlan())
}

func (s *ScaleSuite) TestScaleValidatorRejectsOutsideMinMax() {
	early := s.scale(500*time.Millisecond, "u-early", workflows.ScaleUpdate{Service: "web", Replicas: 2})
	s.catalog(time.Second, tfCatalog())
	before := s.snapshot(4 * time.Second)
	below := s.scale(5*time.Second, "u-below", workflows.ScaleUpdate{Service: "web", Replicas: 0})
	above := s.scale(5*time.Second, "u-above", workflows.ScaleUpdate{Service: "web", Replicas: 5})
	apiAbove := s.scale(5*time.Second, "u-api-above", workflows.ScaleUpdate{Service: "api", Replicas: 3})
	unknown := s.scale(5*time.Second, "u-unknown", workflows.ScaleUpdate{Service: "nope", Replicas: 1})
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.requireRejected(early, "the Manager has no catalog yet: start `msm worker --catalog FILE` first")
	s.requireRejected(below, "0 instance(s) of web is outside its replicas 1..4; pick a number in that range or change the catalog")
	s.requireRejected(above, "5 instance(s) of web is outside its replicas 1..4; pick a number in that range or change the catalog")
	s.requireRejected(apiAbove, "3 instance(s) of api is outside its replicas 1..2; pick a number in that range or change the catalog")
	s.requireRejected(unknown, `unknown service "nope": the catalog has [web api]`)
	s.Equal(s.status(before), s.status(after), "rejected updates change nothing")
	s.Equal(scShape(tmProvisioned(fleet.Waiting)), scShape(s.status(after)))
	s.Len(s.started(), 1, "rejected updates start no operation")
}

func (s *ScaleSuite) TestScaleUpExtends() {
	s.catalog(time.Second, tfCatalog())
	u := s.scale(5*time.Second, "u-web", workflows.ScaleUpdate{Service: "web", Replicas: 4}) // its max
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.requireAccepted(u, "scaling web from 2 to 4 instance(s)")
	st := s.status(after)
	s.Equal(scWebTwice(), scShape(st))
	s.Contains(eventMessages(st.Events), "extend web from 2 to 4 instance(s) (operator: scale)")
	ps := s.placements()
	s.Require().Len(ps, 3)
	s.requireExtendOf(ps[1], "web", 2)
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c5", "s2", 21000, "web")},
		Loads:   []fleet.Container{scWarmLoad("web")},
	}, ps[1].Input.Plan)
	s.requireRefillOf(ps[2], 3, fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})
}

func (s *ScaleSuite) TestScaleDownLowersDesiredOnly() {
	s.catalog(time.Second, tfCatalog())
	before := s.snapshot(4 * time.Second)
	u := s.scale(5*time.Second, "u-web", workflows.ScaleUpdate{Service: "web", Replicas: 1}) // its min
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Equal(scShape(tmProvisioned(fleet.Waiting)), scShape(s.status(before)))
	s.requireAccepted(u, "scaling web from 2 to 1 instance(s)")
	st := s.status(after)
	// Ready is not asserted: removing the surplus instance is Shrink's
	// rule, not this one.
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 1, Ready: st.Services[0].Ready}, {Name: "api", Desired: 1, Ready: 1}},
		st.Services)
	// Nothing is added: no operation places anything, no process starts,
	// no container loads, the waiting one keeps waiting.
	s.Len(s.placements(), 1)
	s.Equal([]string{"s1"}, s.fake.keys(workflows.ActivityLaunchServer))
	s.Equal([]string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"}, s.fake.keys(workflows.ActivityStartContainer))
	s.Equal([]string{"m1-c1", "m1-c2", "m1-c3"}, s.fake.keys(workflows.ActivityLoadService))
	for _, c := range st.Containers {
		s.Contains([]string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"}, c.ID, "a new container")
	}
	s.Contains(st.Containers, scContainer("c4", "s1", 20003, "", fleet.Waiting))
	s.Contains(eventMessages(st.Events), "shrink web from 2 to 1 instance(s) (operator: scale)")
	s.Zero(scCountEvents(st, "extend "), "scaling down is no extension")
}

// requireOneExtension asserts one decision for many overload reports.
func (s *ScaleSuite) requireOneExtension(st workflows.Status) {
	s.Equal(scWebExtended(), scShape(st), "desired +1, once")
	s.Equal(1, scCountEvents(st, "extend web from 2 to 3 instance(s) (overload reported by m1-c"), eventMessages(st.Events))
	s.Equal(1, scCountEvents(st, "extend "), eventMessages(st.Events))
	ps := s.placements()
	s.Require().Len(ps, 3, "one Extend, and the pool's refill after it")
	s.requireExtendOf(ps[1], "web", 2)
	s.Equal(scWebExtendedPlan(), ps[1].Input.Plan)
	s.requireRefillOf(ps[2], 3, scWebRefillPlan())
	s.Len(s.started(), 3)
}

func (s *ScaleSuite) TestOverloadStormMakesOneDecision() {
	s.Run("50 reports in one workflow task", func() {
		s.SetupTest()
		s.catalog(time.Second, tfCatalog())
		s.overloadBurst(5*time.Second, 50, "web")
		after := s.snapshot(20 * time.Second)
		s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
		s.requireCancelled()
		s.requireOneExtension(s.status(after))
	})
	s.Run("50 reports over 10s inside the cooldown", func() {
		s.SetupTest()
		s.catalog(time.Second, tfCatalog())
		for i := range 50 {
			s.overload(5*time.Second+time.Duration(i)*200*time.Millisecond, fmt.Sprintf("m1-c%d", 1+i%2), "web", "")
		}
		after := s.snapshot(20 * time.Second)
		s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
		s.requireCancelled()
		st := s.status(after)
		s.requireOneExtension(st)
		s.Contains(eventMessages(st.Events), "extend web from 2 to 3 instance(s) (overload reported by m1-c1)")
	})
}

func (s *ScaleSuite) TestOverloadAfterCooldownExtendsAgain() {
	cat := tfCatalog()
	cat.Services[0].Replicas.Max = 5 // room for three extensions of web
	s.catalog(time.Second, cat)
	s.overload(5*time.Second, "m1-c1", "web", "cpu above 80% for 60s") // cooldown until 35s
	s.overload(10*time.Second, "m1-c1", "web", "")
	s.overload(20*time.Second, "m1-c2", "web", "")
	s.overload(35*time.Second-time.Millisecond, "m1-c4", "web", "")
	within := s.snapshot(35*time.Second - time.Millisecond/2)
	s.overload(35*time.Second, "m1-c2", "web", "p95 latency 900ms") // cooldown until 65s
	after := s.snapshot(38 * time.Second)
	s.overload(40*time.Second, "m1-c5", "web", "")
	s.overload(65*time.Second, "m1-c5", "web", "")
	third := s.snapshot(70 * time.Second)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, 2*time.Minute)
	s.requireCancelled()

	st := s.status(within)
	s.Equal(scWebExtended(), scShape(st), "reports inside the cooldown decide nothing")
	s.Contains(eventMessages(st.Events), "extend web from 2 to 3 instance(s) (overload reported by m1-c1: cpu above 80% for 60s)")

	st = s.status(after)
	s.Equal(scWebTwice(), scShape(st))
	s.Contains(eventMessages(st.Events),
		"extend web from 3 to 4 instance(s) (overload reported by m1-c2: p95 latency 900ms; 3 earlier report(s) fell in the cooldown or at max)")
	s.Equal(2, scCountEvents(st, "extend "))
	ps := s.placements()
	s.Require().Len(ps, 7)
	s.requireExtendOf(ps[1], "web", 2)
	s.Equal(5*time.Second, ps[1].At.Sub(start))
	s.Equal(scWebExtendedPlan(), ps[1].Input.Plan)
	s.requireRefillOf(ps[2], 3, scWebRefillPlan())
	s.Equal(5*time.Second, ps[2].At.Sub(start), "the refill follows the extension at once")
	s.requireExtendOf(ps[3], "web", 4)
	s.Equal(35*time.Second, ps[3].At.Sub(start), "the first report once the cooldown is over")
	s.Equal(fleet.Plan{
		Loads: []fleet.Container{{ID: "m1-c5", Server: "s2", Port: 21000, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c5")}},
	}, ps[3].Input.Plan)
	s.requireRefillOf(ps[4], 5, fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})
	s.Equal(35*time.Second, ps[4].At.Sub(start))

	// The count starts again after each extension that mentioned it.
	st = s.status(third)
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 5, Ready: 5}, st.Services[0])
	s.Contains(eventMessages(st.Events),
		"extend web from 4 to 5 instance(s) (overload reported by m1-c5; 1 earlier report(s) fell in the cooldown or at max)")
	s.requireExtendOf(ps[5], "web", 6)
	s.Equal(65*time.Second, ps[5].At.Sub(start))
	s.Equal(fleet.Plan{
		Loads: []fleet.Container{{ID: "m1-c6", Server: "s2", Port: 21001, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c6")}},
	}, ps[5].Input.Plan)
	s.requireRefillOf(ps[6], 7, fleet.Plan{Starts: []fleet.Container{tfStart("c7", "s2", 21002, "")}})
	s.Equal(65*time.Second, ps[6].At.Sub(start))
}

func (s *ScaleSuite) TestOverloadInTheLastTaskBeforeContinueAsNewIsKept() {
	s.catalog(time.Second, tfCatalog())
	s.at(10*time.Second, func() {
		s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(150) }, 0)
		s.env.SignalWorkflow(workflows.SignalOverload, workflows.OverloadSignal{Container: "m1-c1", Service: "web"})
	})
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager, HistoryLimit: 100}, time.Minute)
	ended := s.env.Now()
	s.Equal(10*time.Second, ended.Sub(start), "continued as new in the task of the report")
	next := s.continuedAs()
	s.Require().Len(next.Targets, 1, "the report was decided before the run ended")
	s.Equal("web", next.Targets[0].Service)
	s.Equal(3, next.Targets[0].Desired)
	s.Equal(40*time.Second, next.Targets[0].CooldownUntil.Sub(start))
	s.True(next.Pending, "the next run carries the extension out")
	s.Contains(recordTexts(next.Log), "extend web from 2 to 3 instance(s) (overload reported by m1-c1)")
	s.Len(s.placements(), 1)

	s.SetupTest()
	s.env.SetStartTime(ended)
	after := s.snapshot(5 * time.Second)
	s.run(next, time.Minute)
	s.requireCancelled()
	s.Equal(scWebExtended(), scShape(s.status(after)))
	ps := s.placements()
	s.Require().Len(ps, 2)
	s.Equal(ended, ps[0].At, "at once")
	s.Equal([]string{"web"}, ps[0].Services)
	s.Equal(scWebExtendedPlan(), ps[0].Input.Plan)
	s.requireExtendOf(ps[0], "web", 2) // named as an extension across continue-as-new
	s.requireRefillOf(ps[1], 3, scWebRefillPlan())
}

func (s *ScaleSuite) TestOverloadCooldownIsTheServicesOwn() {
	cat := tfCatalog()
	cat.Services[0].Scaling.Cooldown = 10 * time.Second // web's; api keeps the default
	s.catalog(time.Second, cat)
	s.overload(5*time.Second, "m1-c1", "web", "") // cooldown until 15s
	s.overload(15*time.Second-time.Millisecond, "m1-c2", "web", "")
	within := s.snapshot(15*time.Second - time.Millisecond/2)
	s.overload(15*time.Second, "m1-c1", "web", "")
	after := s.snapshot(20 * time.Second)
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Equal(scWebExtended(), scShape(s.status(within)))
	st := s.status(after)
	s.Equal(scWebTwice(), scShape(st), "extended again after 10s, not 30s")
	s.Contains(eventMessages(st.Events),
		"extend web from 3 to 4 instance(s) (overload reported by m1-c1; 1 earlier report(s) fell in the cooldown or at max)")
	ps := s.placements()
	s.Require().Len(ps, 5)
	s.requireExtendOf(ps[1], "web", 2)
	s.requireRefillOf(ps[2], 3, scWebRefillPlan())
	s.requireExtendOf(ps[3], "web", 4)
	s.Equal(15*time.Second, ps[3].At.Sub(start))
	s.requireRefillOf(ps[4], 5, fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})
}

func (s *ScaleSuite) TestOverloadAtMaxDoesNothing() {
	s.catalog(time.Second, tfCatalog())
	u := s.scale(5*time.Second, "u-web", workflows.ScaleUpdate{Service: "web", Replicas: 4}) // cooldown until 35s
	before := s.snapshot(39 * time.Second)
	s.overloadBurst(40*time.Second, 50, "web")
	s.overload(45*time.Second, "m1-c1", "web", "")
	s.overload(50*time.Second, "m1-c5", "web", "")
	after := s.snapshot(55 * time.Second)
	// A catalog with room shows the ignored reports were counted.
	cat := tfCatalog()
	cat.Services[0].Replicas.Max = 5
	s.catalog(60*time.Second, cat)
	s.overload(65*time.Second, "m1-c2", "web", "")
	raised := s.snapshot(70 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, 2*time.Minute)
	s.requireCancelled()
	s.requireAccepted(u, "scaling web from 2 to 4 instance(s)")

	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 4, Ready: 4}, s.status(before).Services[0])
	s.Equal(withoutSignals(s.status(before)), withoutSignals(s.status(after)), "reports at max change nothing, not even the event log")
	ps := s.placements()
	s.Require().Len(ps, 5, "provision, scale, the extension once max was raised, each extension followed by the pool's refill")
	s.Equal("msm/m1/provision/1", ps[0].ID)
	s.requireExtendOf(ps[1], "web", 2)
	s.requireRefillOf(ps[2], 3, fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})
	s.requireExtendOf(ps[3], "web", 4)
	s.Equal(fleet.Plan{
		Loads: []fleet.Container{{ID: "m1-c6", Server: "s2", Port: 21001, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c6")}},
	}, ps[3].Input.Plan)
	s.requireRefillOf(ps[4], 5, fleet.Plan{Starts: []fleet.Container{tfStart("c7", "s2", 21002, "")}})
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 5, Ready: 5}, s.status(raised).Services[0])
	s.Contains(eventMessages(s.status(raised).Events),
		"extend web from 4 to 5 instance(s) (overload reported by m1-c2; 52 earlier report(s) fell in the cooldown or at max)")
}

func (s *ScaleSuite) TestOverloadForUnknownServiceIsIgnored() {
	// Before any catalog every service is unknown.
	s.overload(500*time.Millisecond, "m1-c1", "web", "")
	s.catalog(time.Second, tfCatalog())
	before := s.snapshot(4 * time.Second)
	s.overload(5*time.Second, "m1-c1", "nope", "cpu")
	s.overloadBurst(6*time.Second, 10, "gone")
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	st := s.status(before)
	s.Equal(scShape(tmProvisioned(fleet.Waiting)), scShape(st), "web keeps its initial replicas")
	s.Equal(`overload report for unknown service "web" from m1-c1 ignored`, st.Events[0].Message)
	got := s.status(after)
	s.Equal(scShape(st), scShape(got))
	s.Require().Greater(len(got.Events), len(st.Events))
	s.Equal(eventMessages(st.Events), eventMessages(got.Events[:len(st.Events)]))
	s.Equal(`overload report for unknown service "nope" from m1-c1 ignored`, got.Events[len(st.Events)].Message)
	for _, e := range got.Events[len(st.Events)+1:] {
		s.Contains(e.Message, `overload report for unknown service "gone" from m1-c`)
	}
	s.Len(s.started(), 1, "no operation")
}

func (s *ScaleSuite) TestCatalogChangeClampsTargets() {
	wide := tfCatalog()
	wide.Manager.Servers[1].Slots = 8
	wide.Services[0].Replicas = catalog.Replicas{Min: 1, Initial: 2, Max: 8}
	s.catalog(time.Second, wide)
	web := s.scale(5*time.Second, "u-web", workflows.ScaleUpdate{Service: "web", Replicas: 6})
	api := s.scale(10*time.Second, "u-api", workflows.ScaleUpdate{Service: "api", Replicas: 2})
	scaled := s.snapshot(15 * time.Second)
	// web's max drops below its target of 6; api leaves the catalog.
	narrow := wide
	narrow.Services = []catalog.Service{wide.Services[0]}
	narrow.Services[0].Replicas = catalog.Replicas{Min: 1, Initial: 2, Max: 4}
	s.catalog(20*time.Second, narrow)
	clamped := s.snapshot(25 * time.Second)
	var atNarrow []scChild
	s.at(25*time.Second, func() { atNarrow = s.placements() })
	// web's min rises above its target of 4; api comes back.
	back := wide
	back.Services = []catalog.Service{wide.Services[0], tfAPI}
	back.Services[0].Replicas = catalog.Replicas{Min: 5, Initial: 6, Max: 8}
	s.catalog(30*time.Second, back)
	readded := s.snapshot(35 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(web, "scaling web from 2 to 6 instance(s)")
	s.requireAccepted(api, "scaling api from 1 to 2 instance(s)")

	desired := func(st workflows.Status) []string {
		var out []string
		for _, ss := range st.Services {
			out = append(out, fmt.Sprintf("%s %d", ss.Name, ss.Desired))
		}
		return out
	}
	s.Equal([]string{"web 6", "api 2"}, desired(s.status(scaled)))
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 6, Ready: 6}, {Name: "api", Desired: 2, Ready: 2}}, s.status(scaled).Services)
	s.Equal([]string{"web 4"}, desired(s.status(clamped)), "the target follows the new max")
	var ids []string
	for _, c := range atNarrow {
		ids = append(ids, c.ID)
	}
	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/refill/3", "msm/m1/extend/api/4", "msm/m1/refill/5"}, ids,
		"a lower max adds nothing (each extension is followed by the pool's refill)")
	// Clamped to the new min (not the initial 6: the target stayed), and
	// api's old target of 2 went with it: it is back at its initial 1.
	s.Equal([]string{"web 5", "api 1"}, desired(s.status(readded)))
}

func (s *ScaleSuite) TestTargetsAndCooldownSurviveContinueAsNew() {
	s.catalog(time.Second, tfCatalog())
	s.overload(5*time.Second, "m1-c1", "web", "") // web 3, cooldown until 35s
	s.at(10*time.Second, func() {
		// The history passes the limit with the task that brings this
		// report (see TestContinuesAsNewWithItsStateWhenHistoryPassesTheLimit).
		s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(150) }, 0)
		s.env.SignalWorkflow(workflows.SignalOverload, workflows.OverloadSignal{Container: "m1-c2", Service: "web"})
	})
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager, HistoryLimit: 100}, time.Minute)
	ended := s.env.Now()
	s.Equal(10*time.Second, ended.Sub(start))
	next := s.continuedAs()
	s.Require().Len(next.Targets, 1)
	s.Equal("web", next.Targets[0].Service)
	s.Equal(3, next.Targets[0].Desired, "the report in the last task made no second decision")
	s.Equal(35*time.Second, next.Targets[0].CooldownUntil.Sub(start))
	s.Equal(3, next.Ops)
	s.Require().Len(s.placements(), 3)
	s.requireExtendOf(s.placements()[1], "web", 2)
	s.requireRefillOf(s.placements()[2], 3, scWebRefillPlan())

	// The next run keeps web at 3 and honours the cooldown it was given.
	s.SetupTest()
	s.env.SetStartTime(ended)
	first := s.snapshot(time.Second)
	s.overload(24*time.Second, "m1-c1", "web", "") // 34s: inside
	within := s.snapshot(24*time.Second + 500*time.Millisecond)
	s.overload(25*time.Second, "m1-c2", "web", "") // 35s: over
	after := s.snapshot(30 * time.Second)
	s.run(next, time.Minute)
	s.requireCancelled()

	s.Equal(scWebExtended(), scShape(s.status(first)), "desired 3 survives")
	s.Equal(scWebExtended(), scShape(s.status(within)), "the cooldown survives")
	st := s.status(after)
	s.Equal(scWebTwice(), scShape(st))
	ps := s.placements()
	s.Require().Len(ps, 2)
	s.requireExtendOf(ps[0], "web", 4)
	s.Equal(35*time.Second, ps[0].At.Sub(start), "extended exactly when the carried cooldown ended")
	s.requireRefillOf(ps[1], 5, fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})
	s.Equal(1, scCountEvents(st, "extend web from 3 to 4 instance(s) (overload reported by m1-c2"), eventMessages(st.Events))
}
