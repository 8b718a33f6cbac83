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
	"go.temporal.io/sdk/activity"
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

// shFleet is the fake fleet of provision_test.go with the two activities a
// Shrink calls: UnloadService (container queue) and ReleaseServer (manager
// queue).
type shFleet struct {
	*tfFleet
	// unloadErr fails UnloadService by container ID.
	unloadErr map[string]error
	// releaseErr fails ReleaseServer by server ID.
	releaseErr map[string]error
}

func (f *shFleet) UnloadService(ctx context.Context, container string) error {
	q := activity.GetInfo(ctx).TaskQueue
	f.record(tfCall{Activity: workflows.ActivityUnloadService, Queue: q, Key: container, Input: container})
	defer f.record(tfCall{Activity: workflows.ActivityUnloadService, Queue: q, Key: container, Done: true})
	return f.unloadErr[container]
}

func (f *shFleet) ReleaseServer(ctx context.Context, in workflows.ReleaseServerInput) error {
	q := activity.GetInfo(ctx).TaskQueue
	f.record(tfCall{Activity: workflows.ActivityReleaseServer, Queue: q, Key: in.Server, Input: in})
	defer f.record(tfCall{Activity: workflows.ActivityReleaseServer, Queue: q, Key: in.Server, Done: true})
	return f.releaseErr[in.Server]
}

func (f *shFleet) register(env *testsuite.TestWorkflowEnvironment) {
	f.tfFleet.register(env)
	env.RegisterActivityWithOptions(f.UnloadService, activity.RegisterOptions{Name: workflows.ActivityUnloadService})
	env.RegisterActivityWithOptions(f.ReleaseServer, activity.RegisterOptions{Name: workflows.ActivityReleaseServer})
}

// fn is the fake's implementation of an activity, for a mock to return.
func (f *shFleet) fn(name string) any {
	return map[string]any{
		workflows.ActivityLaunchServer:   f.LaunchServer,
		workflows.ActivityStartContainer: f.StartContainer,
		workflows.ActivityStopContainer:  f.StopContainer,
		workflows.ActivityLoadService:    f.LoadService,
		workflows.ActivityReady:          f.Ready,
		workflows.ActivityUnloadService:  f.UnloadService,
		workflows.ActivityReleaseServer:  f.ReleaseServer,
	}[name]
}

// shKey is what a call of an activity is about: the server for
// LaunchServer and ReleaseServer, the container otherwise.
func shKey(name string, args converter.EncodedValues) string {
	switch name {
	case workflows.ActivityLaunchServer:
		var in workflows.LaunchServerInput
		_ = args.Get(&in)
		return in.Server.ID
	case workflows.ActivityReleaseServer:
		var in workflows.ReleaseServerInput
		_ = args.Get(&in)
		return in.Server
	case workflows.ActivityStartContainer:
		var in workflows.StartContainerInput
		_ = args.Get(&in)
		return in.Container
	case workflows.ActivityStopContainer:
		var in workflows.StopContainerInput
		_ = args.Get(&in)
		return in.Container
	case workflows.ActivityLoadService:
		var in workflows.LoadServiceInput
		_ = args.Get(&in)
		return in.Container
	default: // Ready, UnloadService
		var id string
		_ = args.Get(&id)
		return id
	}
}

// shMatch matches the input of one activity about key.
func shMatch(name, key string) any {
	switch name {
	case workflows.ActivityLaunchServer:
		return mock.MatchedBy(func(in workflows.LaunchServerInput) bool { return in.Server.ID == key })
	case workflows.ActivityReleaseServer:
		return mock.MatchedBy(func(in workflows.ReleaseServerInput) bool { return in.Server == key })
	case workflows.ActivityStartContainer:
		return mock.MatchedBy(func(in workflows.StartContainerInput) bool { return in.Container == key })
	case workflows.ActivityStopContainer:
		return mock.MatchedBy(func(in workflows.StopContainerInput) bool { return in.Container == key })
	case workflows.ActivityLoadService:
		return mock.MatchedBy(func(in workflows.LoadServiceInput) bool { return in.Container == key })
	default:
		return mock.MatchedBy(func(id string) bool { return id == key })
	}
}

// shChild is one operation the Manager started, as the child saw itself.
type shChild struct {
	ID        string
	Type      string
	Operation string   // search attribute MsmOperation
	Services  []string // search attribute MsmService
	Manager   string   // search attribute MsmManager
	// Place is the input of Provision, Extend and Rearrange; Shrink that
	// of Shrink.
	Place  workflows.ProvisionInput
	Shrink workflows.ShrinkInput
	At     time.Duration // workflow time of the start, since the Manager's
}

// shAct is one activity attempt that began or returned, at workflow time.
type shAct struct {
	Activity string
	Key      string
	Attempt  int32
	Done     bool
	At       time.Duration // since the Manager started
}

// shPoll is a status taken during a run.
type shPoll struct {
	At time.Duration
	St workflows.Status
}

// shBase runs the Manager with its operations registered as the worker
// registers them (Provision, Extend, Rearrange, Shrink) against shFleet,
// and records the children it starts and the workflow time of every
// activity. ShrinkSuite and MonitorSuite embed it.
type shBase struct {
	suite.Suite
	testsuite.WorkflowTestSuite

	env   *testsuite.TestWorkflowEnvironment
	fake  *shFleet
	start time.Time
	// delays make single activity calls take workflow time, so that each
	// step result lands at its own instant: "Activity/key" → duration.
	delays map[string]time.Duration

	mu       sync.Mutex
	children []shChild
	acts     []shAct
	polls    []shPoll
	pollErr  error
}

func (s *shBase) SetupTest() {
	s.fake = &shFleet{tfFleet: &tfFleet{}}
	s.delays = map[string]time.Duration{}
	s.mu.Lock()
	s.children, s.acts, s.polls, s.pollErr = nil, nil, nil, nil
	s.mu.Unlock()
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetTestTimeout(30 * time.Second)
	s.start = s.env.Now()
	// Operations signal their parent by the Manager's workflow ID.
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.ManagerID(tfManager)})
	msmworker.RegisterWorkflows(s.env)
	s.fake.register(s.env)
	s.fake.holdLeases(s.env)
	s.env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, ctx workflow.Context, args converter.EncodedValues) {
		c := shChild{ID: info.WorkflowExecution.ID, Type: info.WorkflowType.Name, At: s.env.Now().Sub(s.start)}
		sa := workflow.GetTypedSearchAttributes(ctx)
		c.Operation, _ = sa.GetKeyword(workflows.AttrOperation)
		c.Manager, _ = sa.GetKeyword(workflows.AttrManager)
		c.Services, _ = sa.GetKeywordList(workflows.AttrService)
		if c.Type == workflows.WorkflowShrink {
			s.NoError(args.Get(&c.Shrink)) // not Require: this runs off the test goroutine
			plainContainers(c.Shrink.Plan.Unloads)
			plainContainers(c.Shrink.Plan.Destroys)
		} else {
			s.NoError(args.Get(&c.Place))
			withoutRevisions(&c.Place)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.children = append(s.children, c)
		if len(s.children) == tmRunaway {
			s.env.CancelWorkflow()
		}
	})
	// Both listeners run on the environment's main loop, where workflow
	// time is the time of the call.
	s.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.acts = append(s.acts, shAct{Activity: info.ActivityType.Name, Key: shKey(info.ActivityType.Name, args),
			Attempt: info.Attempt, At: s.env.Now().Sub(s.start)})
	})
}

func (s *shBase) AfterTest(_, _ string) {
	s.env.AssertExpectations(s.T())
}

func (s *shBase) at(d time.Duration, fn func()) { s.env.RegisterDelayedCallback(fn, d) }

func (s *shBase) signal(d time.Duration, name string, arg any) {
	s.at(d, func() { s.env.SignalWorkflow(name, arg) })
}

func (s *shBase) catalog(d time.Duration, cat catalog.Catalog) {
	s.signal(d, workflows.SignalCatalog, workflows.CatalogSignal{Catalog: cat, Source: "catalog.yaml"})
}

// snapshot takes the status at d, to assert after the run.
func (s *shBase) snapshot(d time.Duration) *scSnap {
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

func (s *shBase) status(snap *scSnap) workflows.Status {
	s.Require().True(snap.taken, "the status was never queried")
	s.Require().NoError(snap.err)
	return snap.st
}

// poll takes the status every second from from to to, half a second past
// each, where no step falls (the delays put steps on whole seconds). Half
// a second also keeps polls in their place: while activities run, the
// test environment fires the next timer once its duration has passed in
// wall time, and the fake's activities take milliseconds.
func (s *shBase) poll(from, to time.Duration) {
	for d := from + 500*time.Millisecond; d < to; d += time.Second {
		s.at(d, func() {
			var st workflows.Status
			v, err := s.env.QueryWorkflow(workflows.QueryStatus)
			if err == nil {
				err = getStatus(v, &st)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if err != nil && s.pollErr == nil {
				s.pollErr = err
			}
			s.polls = append(s.polls, shPoll{At: d, St: st})
		})
	}
}

func (s *shBase) update(d time.Duration, name, id string, arg any) *tmUpdate {
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

func (s *shBase) scale(d time.Duration, service string, replicas int) *tmUpdate {
	return s.update(d, workflows.UpdateScale, fmt.Sprintf("u-scale-%s-%d-at-%v", service, replicas, d),
		workflows.ScaleUpdate{Service: service, Replicas: replicas})
}

func (s *shBase) drain(d time.Duration, id string, u workflows.DrainUpdate) *tmUpdate {
	return s.update(d, workflows.UpdateDrain, id, u)
}

func (s *shBase) requireAccepted(u *tmUpdate, message string) {
	s.Require().NoError(u.rejected)
	s.Require().True(u.accepted, "not accepted")
	s.Require().True(u.done, "not completed")
	s.Require().NoError(u.err)
	s.Equal(message, u.result.Message)
}

func (s *shBase) requireRejected(u *tmUpdate, message string) {
	s.Require().Error(u.rejected, "not rejected")
	s.EqualError(u.rejected, message)
	s.False(u.accepted, "a rejected update is not accepted")
	s.False(u.done, "a rejected update never runs its handler")
}

// delay makes the calls of an activity about key take d of workflow time.
func (s *shBase) delay(name, key string, d time.Duration) { s.delays[name+"/"+key] = d }

// mockDelays turns the delays into mocks that call the fake after their
// time; other calls of the same activities go to the fake at once.
func (s *shBase) mockDelays() {
	var names []string
	for k := range s.delays {
		name, _, _ := strings.Cut(k, "/")
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		for k, d := range s.delays {
			n, key, _ := strings.Cut(k, "/")
			if n == name {
				s.env.OnActivity(name, mock.Anything, shMatch(name, key)).After(d).Return(s.fake.fn(name))
			}
		}
		s.env.OnActivity(name, mock.Anything, mock.Anything).Return(s.fake.fn(name)).Maybe()
	}
}

// run starts the Manager and cancels it at end unless it ended before.
func (s *shBase) run(in workflows.ManagerInput, end time.Duration) {
	s.mockDelays()
	s.at(end, func() { s.env.CancelWorkflow() })
	s.start = s.env.Now()
	s.env.ExecuteWorkflow(workflows.Manager, in)
	s.Require().True(s.env.IsWorkflowCompleted())
}

func (s *shBase) requireCancelled() {
	err := s.env.GetWorkflowError()
	var canceled *temporal.CanceledError
	s.Require().True(errors.As(err, &canceled), "the Manager ended by itself: %v", err)
}

// started returns the children started so far, in order.
func (s *shBase) started() []shChild {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.children)
}

// ids returns the IDs of the children started so far.
func (s *shBase) ids() []string {
	var out []string
	for _, c := range s.started() {
		out = append(out, c.ID)
	}
	return out
}

// child returns the child with the ID.
func (s *shBase) child(id string) shChild {
	cs := s.started()
	i := slices.IndexFunc(cs, func(c shChild) bool { return c.ID == id })
	s.Require().GreaterOrEqual(i, 0, "no child %s among %v", id, s.ids())
	return cs[i]
}

// began returns the workflow times at which the attempts of an activity
// about key began.
func (s *shBase) began(name, key string) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Duration
	for _, a := range s.acts {
		if a.Activity == name && a.Key == key && !a.Done {
			out = append(out, a.At)
		}
	}
	return out
}

// queueOf is the task queue of the first call of an activity about key.
func (s *shBase) queueOf(name, key string) string {
	for _, c := range s.fake.began(name) {
		if c.Key == key {
			return c.Queue
		}
	}
	s.Failf("no call", "no %s for %s", name, key)
	return ""
}

// requireShrink asserts a Shrink child: its ID, type, search attributes
// and the plan it was given, with the default drain.
func (s *shBase) requireShrink(id string, services []string, plan fleet.ShrinkPlan) shChild {
	c := s.child(id)
	s.Equal(workflows.WorkflowShrink, c.Type, id)
	s.Equal("shrink", c.Operation, id)
	s.Equal(tfManager, c.Manager, id)
	s.Equal(services, c.Services, id)
	s.Equal(workflows.ShrinkInput{Op: id, Manager: tfManager, Kind: catalog.KindStandalone, Plan: plan, Drain: workflows.DefaultDrain},
		c.Shrink, id)
	return c
}

// requireRefill asserts a refill child (a Provision that only refills the
// warm pool) with plan: the decision made when an extension or a recovery
// ended.
func (s *shBase) requireRefill(id string, plan fleet.Plan) shChild {
	c := s.child(id)
	s.Equal(workflows.WorkflowProvision, c.Type, id)
	s.Equal("refill", c.Operation, id)
	s.Equal(tfManager, c.Manager, id)
	s.Nil(c.Services, "%s places no service", id)
	s.Equal(id, c.Place.Op)
	s.Equal(plan, c.Place.Plan, id)
	s.Nil(c.Place.Services, id)
	for _, st := range plan.Starts {
		s.Empty(st.Service, "%s: a refill starts warm-pool containers only", id)
	}
	return c
}

// shDraining is a container as a ShrinkPlan carries it: draining, with the
// agent's PID its node reported, healthy if it served a service.
// shUnloading is a container of a Shrink plan that returns to the pool.
func shUnloading(id, server string, port int, service string) fleet.Container {
	c := shDraining(id, server, port, service)
	c.Unloading = true
	return c
}

func shDraining(id, server string, port int, service string) fleet.Container {
	id = tfManager + "-" + id
	return fleet.Container{ID: id, Server: server, Port: port, State: fleet.Draining, Service: service,
		Healthy: service != "", PID: tfAgentPID(id)}
}

// shOn is a container in status on any server. A draining instance is
// still healthy: it serves until it is removed.
func shOn(id, server string, port int, service string, state fleet.ContainerState) workflows.ContainerStatus {
	c := scContainer(id, server, port, service, state)
	c.Healthy = c.Healthy || (state == fleet.Draining && service != "")
	return c
}

func shServer(cs catalog.Server, used int) workflows.ServerStatus { return scServer(cs, used) }

// shOnly is tfCatalog with its servers limited to s1 of the given slots.
func shOnly(slots int) catalog.Catalog {
	cat := tfCatalog()
	s1 := tfS1
	s1.Slots = slots
	cat.Manager.Servers = []catalog.Server{s1}
	return cat
}

// healthy counts a status's loaded, healthy instances of a service.
func shHealthy(st workflows.Status, service string) int {
	n := 0
	for _, c := range st.Containers {
		if c.Service == service && c.State == string(fleet.Loaded) && c.Healthy {
			n++
		}
	}
	return n
}

// ShrinkSuite checks the rules of Shrink (which instances go, to the warm
// pool or destroyed, after a drain period; empty servers released) and of
// drain (rearrange a server's instances elsewhere, then remove them).
type ShrinkSuite struct{ shBase }

func TestShrinkSuite(t *testing.T) { suite.Run(t, new(ShrinkSuite)) }

func (s *ShrinkSuite) TestScaleDownRunsAShrinkThatEmptiesServersFirst() {
	s.Run("after a scale up", func() {
		s.SetupTest()
		s.catalog(time.Second, tfCatalog())
		up := s.scale(5*time.Second, "web", 4)
		before := s.snapshot(10 * time.Second)
		down := s.scale(15*time.Second, "web", 2)
		draining := s.snapshot(15*time.Second + 500*time.Millisecond)
		after := s.snapshot(20 * time.Second)
		ext := s.update(25*time.Second, workflows.UpdateExtend, "u-ext", workflows.ExtendUpdate{Service: "web", Count: 1})
		reused := s.snapshot(30 * time.Second)
		s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
		s.requireCancelled()
		s.requireAccepted(up, "scaling web from 2 to 4 instance(s)")
		s.requireAccepted(down, "scaling web from 4 to 2 instance(s)")
		s.requireAccepted(ext, "extending web from 2 to 3 instance(s)")

		// s1: c1, c2, c3 (api), c4; s2: c5 and the pool's c6, started by
		// the provision after the extension.
		s.Equal(scWebTwice(), scShape(s.status(before)))
		s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/refill/3", "msm/m1/shrink/web/4",
			"msm/m1/extend/web/5", "msm/m1/refill/6"}, s.ids())
		s.requireRefill("msm/m1/refill/3", fleet.Plan{Starts: []fleet.Container{tfStart("c6", "s2", 21001, "")}})
		// web's instances on s2, which has the fewest containers, go first;
		// then the newest on s1. The pool is full: both are destroyed.
		c := s.requireShrink("msm/m1/shrink/web/4", []string{"web"}, fleet.ShrinkPlan{
			Destroys: []fleet.Container{shDraining("c5", "s2", 21000, "web"), shDraining("c4", "s1", 20003, "web")},
		})
		s.Equal(15*time.Second, c.At, "decided at the scale")

		st := s.status(draining)
		s.Contains(st.Containers, shOn("c5", "s2", 21000, "web", fleet.Draining), "it keeps its lease while it drains")
		s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
		s.Equal(1, st.Operations)

		st = s.status(after)
		s.Equal(workflows.Status{
			Manager: tfManager, Kind: catalog.KindStandalone,
			Servers: []workflows.ServerStatus{shServer(tfS1, 3), shServer(tfS2, 1)},
			Containers: []workflows.ContainerStatus{
				shOn("c1", "s1", 20000, "web", fleet.Loaded),
				shOn("c2", "s1", 20001, "web", fleet.Loaded),
				shOn("c3", "s1", 20002, "api", fleet.Loaded),
				shOn("c6", "s2", 21001, "", fleet.Waiting),
			},
			Services: []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}},
		}, scShape(st))
		s.Contains(eventMessages(st.Events), "msm/m1/shrink/web/4: 0 instance(s) back to the warm pool, 2 to destroy, 0 server(s) to release (web above desired: 2)")
		s.Contains(eventMessages(st.Events), "msm/m1/shrink/web/4 done: 0 unloaded, 2 destroyed, 0 server(s) released, 0 failed")
		s.Equal([]string{"m1-c4", "m1-c5"}, s.fake.keys(workflows.ActivityStopContainer))
		for _, id := range []string{"m1-c4", "m1-c5"} {
			stop, n := s.fake.input(workflows.ActivityStopContainer, id)
			s.Require().Equal(1, n, id)
			s.Equal(workflows.StopContainerInput{Container: id}, stop)
		}
		s.Equal(workflows.NodeQueue("s2"), s.queueOf(workflows.ActivityStopContainer, "m1-c5"), "through the node of its server")
		s.Equal(workflows.NodeQueue("s1"), s.queueOf(workflows.ActivityStopContainer, "m1-c4"), "through the node of its server")
		s.Empty(s.fake.began(workflows.ActivityUnloadService))
		s.Empty(s.fake.began(workflows.ActivityReleaseServer), "s2 keeps the pool's container")

		// The released leases are handed out again: the pool's refill, after
		// the extension that took m1-c6, gets 21000, which c5 held.
		ext5 := s.child("msm/m1/extend/web/5")
		s.Equal(fleet.Plan{
			Loads: []fleet.Container{{ID: "m1-c6", Server: "s2", Port: 21001, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c6")}},
		}, ext5.Place.Plan)
		s.requireRefill("msm/m1/refill/6", fleet.Plan{Starts: []fleet.Container{tfStart("c7", "s2", 21000, "")}})
		s.Contains(s.status(reused).Containers, shOn("c7", "s2", 21000, "", fleet.Waiting))
	})
	s.Run("the emptiest server before the newest instance", func() {
		s.SetupTest()
		// A Manager continued with web ×4: m1-c1 and the newest, m1-c6,
		// on s1 with api and the pool; m1-c3 and m1-c4 on s2, alone.
		cat := tfCatalog()
		loaded := func(id, server string, port int, service string) fleet.Container {
			id = tfManager + "-" + id
			return fleet.Container{ID: id, Server: server, Port: port, State: fleet.Loaded, Service: service, Healthy: true, PID: tfAgentPID(id)}
		}
		pool := fleet.Container{ID: "m1-c7", Server: "s1", Port: 20003, State: fleet.Waiting, PID: tfAgentPID("m1-c7")}
		in := workflows.ManagerInput{Manager: tfManager, Catalog: &cat, CatalogSource: "catalog.yaml", Ops: 5,
			Inventory: fleet.Inventory{
				Servers: []fleet.Server{tfServer(tfS1, fleet.ServerReady), tfServer(tfS2, fleet.ServerReady)},
				Containers: []fleet.Container{
					loaded("c1", "s1", 20000, "web"), loaded("c2", "s1", 20001, "api"), loaded("c6", "s1", 20002, "web"), pool,
					loaded("c3", "s2", 21000, "web"), loaded("c4", "s2", 21001, "web"),
				},
				Seq: 7,
			},
			Targets: []workflows.Target{{Service: "web", Desired: 4}},
		}
		down := s.scale(5*time.Second, "web", 2)
		after := s.snapshot(10 * time.Second)
		s.run(in, time.Minute)
		s.requireCancelled()
		s.requireAccepted(down, "scaling web from 4 to 2 instance(s)")

		s.Equal([]string{"msm/m1/shrink/web/6"}, s.ids())
		s.requireShrink("msm/m1/shrink/web/6", []string{"web"}, fleet.ShrinkPlan{
			Destroys: []fleet.Container{shDraining("c4", "s2", 21001, "web"), shDraining("c3", "s2", 21000, "web")},
			Release:  []string{"s2"},
		})
		st := s.status(after)
		s.Equal([]workflows.ServerStatus{shServer(tfS1, 4)}, st.Servers)
		s.Equal([]workflows.ContainerStatus{
			shOn("c1", "s1", 20000, "web", fleet.Loaded),
			shOn("c2", "s1", 20001, "api", fleet.Loaded),
			shOn("c6", "s1", 20002, "web", fleet.Loaded),
			shOn("c7", "s1", 20003, "", fleet.Waiting),
		}, st.Containers)
	})
}

func (s *ShrinkSuite) TestShrinkNeverGoesBelowMin() {
	s.Run("an operator scales to the min, not below", func() {
		s.SetupTest()
		s.catalog(time.Second, tfCatalog())
		down := s.scale(5*time.Second, "web", 1)
		at := s.snapshot(9 * time.Second)
		below := s.scale(10*time.Second, "web", 0)
		after := s.snapshot(15 * time.Second)
		s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
		s.requireCancelled()
		s.requireAccepted(down, "scaling web from 2 to 1 instance(s)")
		s.requireRejected(below, "0 instance(s) of web is outside its replicas 1..4; pick a number in that range or change the catalog")

		s.Equal([]string{"msm/m1/provision/1", "msm/m1/shrink/web/2"}, s.ids())
		s.requireShrink("msm/m1/shrink/web/2", []string{"web"},
			fleet.ShrinkPlan{Destroys: []fleet.Container{shDraining("c2", "s1", 20001, "web")}})
		st := s.status(at)
		s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 1, Ready: 1}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
		s.Equal(st, s.status(after), "a rejected scale changes nothing")
	})
	s.Run("a target below the min keeps the min", func() {
		s.SetupTest()
		s.catalog(time.Second, tfCatalog())
		s.at(5*time.Second, func() {
			s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(150) }, 0)
			s.env.SignalWorkflow(workflows.SignalRegister, workflows.RegisterSignal{Container: "m1-c1", Server: "s1", PID: tfAgentPID("m1-c1")})
		})
		s.run(workflows.ManagerInput{Manager: tfManager, HistoryLimit: 100}, time.Minute)
		var can *workflow.ContinueAsNewError
		s.Require().True(errors.As(s.env.GetWorkflowError(), &can), "want continue-as-new, got %v", s.env.GetWorkflowError())
		var next workflows.ManagerInput
		s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))

		// A carried target of 0 for web, whose min is 1: the decision
		// still keeps one instance.
		next.Targets = []workflows.Target{{Service: "web", Desired: 0}}
		next.Pending, next.HistoryLimit = true, 0
		ended := s.env.Now()
		s.SetupTest()
		s.env.SetStartTime(ended)
		after := s.snapshot(10 * time.Second)
		s.run(next, time.Minute)
		s.requireCancelled()
		s.Equal([]string{"msm/m1/shrink/web/2"}, s.ids())
		s.requireShrink("msm/m1/shrink/web/2", []string{"web"},
			fleet.ShrinkPlan{Destroys: []fleet.Container{shDraining("c2", "s1", 20001, "web")}})
		st := s.status(after)
		s.Equal(1, shHealthy(st, "web"))
		s.Equal([]workflows.ContainerStatus{
			shOn("c1", "s1", 20000, "web", fleet.Loaded),
			shOn("c3", "s1", 20002, "api", fleet.Loaded),
			shOn("c4", "s1", 20003, "", fleet.Waiting),
		}, st.Containers)
		s.Equal([]string{"m1-c2"}, s.fake.keys(workflows.ActivityStopContainer))
	})
}

func (s *ShrinkSuite) TestShrinkReturnsAnInstanceToAShortWarmPool() {
	// s1 alone: once the waiting m1-c4 takes web, the pool cannot be
	// refilled, so it is short when web scales down.
	s.catalog(time.Second, shOnly(4))
	up := s.scale(5*time.Second, "web", 3)
	short := s.snapshot(9 * time.Second)
	down := s.scale(10*time.Second, "web", 2)
	after := s.snapshot(15 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(up, "scaling web from 2 to 3 instance(s)")
	s.requireAccepted(down, "scaling web from 3 to 2 instance(s)")

	st := s.status(short)
	s.Contains(st.Containers, shOn("c4", "s1", 20003, "web", fleet.Loaded))
	s.Require().Len(st.Unplaced, 1)
	s.Equal("", st.Unplaced[0].Service, "the pool is short")

	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/shrink/web/3"}, s.ids())
	s.requireShrink("msm/m1/shrink/web/3", []string{"web"},
		fleet.ShrinkPlan{Unloads: []fleet.Container{shUnloading("c4", "s1", 20003, "web")}})
	unload, n := s.fake.input(workflows.ActivityUnloadService, "m1-c4")
	s.Require().Equal(1, n)
	s.Equal("m1-c4", unload)
	s.Equal(workflows.ContainerQueue("m1-c4"), s.queueOf(workflows.ActivityUnloadService, "m1-c4"), "through the container's agent")
	s.Empty(s.fake.began(workflows.ActivityStopContainer), "nothing is destroyed")

	// Back to waiting with no service, on its lease; the pool is full.
	st = s.status(after)
	s.Equal(scShape(tmProvisioned(fleet.Waiting)), scShape(st))
	s.Contains(eventMessages(st.Events), "msm/m1/shrink/web/3 done: 1 unloaded, 0 destroyed, 0 server(s) released, 0 failed")
	s.Len(s.started(), 3, "a full pool needs no refill")
}

func (s *ShrinkSuite) TestShrinkDestroysWhenThePoolIsFull() {
	s.catalog(time.Second, tfCatalog())
	down := s.scale(5*time.Second, "web", 1)
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(down, "scaling web from 2 to 1 instance(s)")

	s.Equal([]string{"msm/m1/provision/1", "msm/m1/shrink/web/2"}, s.ids())
	s.requireShrink("msm/m1/shrink/web/2", []string{"web"},
		fleet.ShrinkPlan{Destroys: []fleet.Container{shDraining("c2", "s1", 20001, "web")}})
	stop, n := s.fake.input(workflows.ActivityStopContainer, "m1-c2")
	s.Require().Equal(1, n)
	s.Equal(workflows.StopContainerInput{Container: "m1-c2"}, stop)
	s.Equal(workflows.NodeQueue("s1"), s.queueOf(workflows.ActivityStopContainer, "m1-c2"))
	s.Empty(s.fake.began(workflows.ActivityUnloadService), "the pool (m1-c4) is full")

	s.Equal(workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone,
		Servers: []workflows.ServerStatus{shServer(tfS1, 3)},
		Containers: []workflows.ContainerStatus{
			shOn("c1", "s1", 20000, "web", fleet.Loaded),
			shOn("c3", "s1", 20002, "api", fleet.Loaded),
			shOn("c4", "s1", 20003, "", fleet.Waiting),
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 1, Ready: 1}, {Name: "api", Desired: 1, Ready: 1}},
	}, scShape(s.status(after)))
}

func (s *ShrinkSuite) TestShrinkReleasesAServerLeftEmpty() {
	cat := tfCatalog()
	cat.Manager.WarmPool = 0
	s.catalog(time.Second, cat)
	up := s.scale(5*time.Second, "web", 4) // m1-c4 on s1's last slot, m1-c5 on s2
	before := s.snapshot(10 * time.Second)
	down := s.scale(15*time.Second, "web", 2)
	after := s.snapshot(20 * time.Second)
	again := s.scale(25*time.Second, "web", 4)
	relaunched := s.snapshot(30 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(up, "scaling web from 2 to 4 instance(s)")
	s.requireAccepted(down, "scaling web from 4 to 2 instance(s)")
	s.requireAccepted(again, "scaling web from 2 to 4 instance(s)")

	s.Equal([]workflows.ServerStatus{shServer(tfS1, 4), shServer(tfS2, 1)}, s.status(before).Servers)
	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/shrink/web/3", "msm/m1/extend/web/4"}, s.ids())
	s.requireShrink("msm/m1/shrink/web/3", []string{"web"}, fleet.ShrinkPlan{
		Destroys: []fleet.Container{shDraining("c5", "s2", 21000, "web"), shDraining("c4", "s1", 20003, "web")},
		Release:  []string{"s2"},
	})
	release, n := s.fake.input(workflows.ActivityReleaseServer, "s2")
	s.Require().Equal(1, n)
	s.Equal(workflows.ReleaseServerInput{Manager: tfManager, Kind: catalog.KindStandalone, Server: "s2"}, release)
	s.Equal(workflows.TaskQueue, s.queueOf(workflows.ActivityReleaseServer, "s2"))
	s.Greater(s.fake.index(workflows.ActivityReleaseServer, "s2", false), s.fake.index(workflows.ActivityStopContainer, "m1-c5", true),
		"released once its last container is gone")

	st := s.status(after)
	s.Equal(workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone,
		Servers: []workflows.ServerStatus{shServer(tfS1, 3)},
		Containers: []workflows.ContainerStatus{
			shOn("c1", "s1", 20000, "web", fleet.Loaded),
			shOn("c2", "s1", 20001, "web", fleet.Loaded),
			shOn("c3", "s1", 20002, "api", fleet.Loaded),
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}},
	}, scShape(st), "s2 is gone")
	s.Contains(eventMessages(st.Events), "server s2 released")
	s.Contains(eventMessages(st.Events), "msm/m1/shrink/web/3 done: 0 unloaded, 2 destroyed, 1 server(s) released, 0 failed")

	// A later extension launches s2 again.
	s.Equal(fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c6", "s1", 20003, "web"), tfStart("c7", "s2", 21000, "web")},
	}, s.child("msm/m1/extend/web/4").Place.Plan)
	s.Equal([]string{"s1", "s2", "s2"}, s.fake.keys(workflows.ActivityLaunchServer))
	st = s.status(relaunched)
	s.Equal([]workflows.ServerStatus{shServer(tfS1, 4), shServer(tfS2, 1)}, st.Servers)
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 4, Ready: 4}, st.Services[0])
}

func (s *ShrinkSuite) TestShrinkDrainsBeforeRemoving() {
	// s1 alone with 5 slots: web ×4 leaves the pool short, so scaling down
	// returns m1-c5 to the pool and destroys m1-c4.
	s.catalog(time.Second, shOnly(5))
	up := s.scale(5*time.Second, "web", 4)
	down := s.scale(10*time.Second, "web", 2)
	draining := s.snapshot(10*time.Second + 900*time.Millisecond)
	after := s.snapshot(15 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(up, "scaling web from 2 to 4 instance(s)")
	s.requireAccepted(down, "scaling web from 4 to 2 instance(s)")

	c := s.requireShrink("msm/m1/shrink/web/3", []string{"web"}, fleet.ShrinkPlan{
		Unloads:  []fleet.Container{shUnloading("c5", "s1", 20004, "web")},
		Destroys: []fleet.Container{shDraining("c4", "s1", 20003, "web")},
	})
	s.Equal(10*time.Second, c.At)
	s.Equal(time.Second, workflows.DefaultDrain)
	s.Equal([]time.Duration{c.At + workflows.DefaultDrain}, s.began(workflows.ActivityUnloadService, "m1-c5"),
		"unloaded once the drain period is over, not before")
	s.Equal([]time.Duration{c.At + workflows.DefaultDrain}, s.began(workflows.ActivityStopContainer, "m1-c4"),
		"stopped once the drain period is over, not before")

	// While they drain they keep serving on their leases.
	st := s.status(draining)
	s.Contains(st.Containers, shOn("c4", "s1", 20003, "web", fleet.Draining))
	s.Contains(st.Containers, shOn("c5", "s1", 20004, "web", fleet.Draining))
	s.Equal(1, st.Operations)

	st = s.status(after)
	s.Equal([]workflows.ContainerStatus{
		shOn("c1", "s1", 20000, "web", fleet.Loaded),
		shOn("c2", "s1", 20001, "web", fleet.Loaded),
		shOn("c3", "s1", 20002, "api", fleet.Loaded),
		shOn("c5", "s1", 20004, "", fleet.Waiting),
	}, st.Containers)
	s.Zero(st.Operations)
}

func (s *ShrinkSuite) TestUnloadThatFailsDestroysInstead() {
	s.fake.unloadErr = map[string]error{"m1-c4": errors.New("agent m1-c4: the service did not stop")}
	s.catalog(time.Second, shOnly(4))
	up := s.scale(5*time.Second, "web", 3)
	down := s.scale(10*time.Second, "web", 2)
	after := s.snapshot(20 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(up, "scaling web from 2 to 3 instance(s)")
	s.requireAccepted(down, "scaling web from 3 to 2 instance(s)")

	s.requireShrink("msm/m1/shrink/web/3", []string{"web"},
		fleet.ShrinkPlan{Unloads: []fleet.Container{shUnloading("c4", "s1", 20003, "web")}})
	_, unloads := s.fake.input(workflows.ActivityUnloadService, "m1-c4")
	s.Equal(3, unloads, "the unload is retried, then given up")
	_, stops := s.fake.input(workflows.ActivityStopContainer, "m1-c4")
	s.Require().Equal(1, stops, "then the container is destroyed")
	s.Greater(s.fake.index(workflows.ActivityStopContainer, "m1-c4", false),
		s.fake.index(workflows.ActivityUnloadService, "m1-c4", true), "after the unload failed")

	// m1-c4's lease went with it: the pool's refill gets 20003.
	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/shrink/web/3", "msm/m1/refill/4"}, s.ids())
	s.Equal(fleet.Plan{Starts: []fleet.Container{tfStart("c5", "s1", 20003, "")}}, s.child("msm/m1/refill/4").Place.Plan)
	st := s.status(after)
	s.Equal([]workflows.ContainerStatus{
		shOn("c1", "s1", 20000, "web", fleet.Loaded),
		shOn("c2", "s1", 20001, "web", fleet.Loaded),
		shOn("c3", "s1", 20002, "api", fleet.Loaded),
		shOn("c5", "s1", 20003, "", fleet.Waiting),
	}, st.Containers)
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
	s.Contains(eventMessages(st.Events), "msm/m1/shrink/web/3 done: 0 unloaded, 0 destroyed, 0 server(s) released, 1 failed")
}

func (s *ShrinkSuite) TestDestroyThatFailsKeepsTheLease() {
	const why = "the node did not stop it; it keeps its lease until it is fenced"
	s.fake.stopErr = map[string]error{"m1-c2": errors.New("node s1 cannot signal pid 1002")}
	s.catalog(time.Second, shOnly(5)) // a fifth slot for a container beside the failed one
	down := s.scale(5*time.Second, "web", 1)
	failed := s.snapshot(15 * time.Second)
	up := s.scale(20*time.Second, "web", 2)
	after := s.snapshot(25 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(down, "scaling web from 2 to 1 instance(s)")
	s.requireAccepted(up, "scaling web from 1 to 2 instance(s)")

	s.requireShrink("msm/m1/shrink/web/2", []string{"web"},
		fleet.ShrinkPlan{Destroys: []fleet.Container{shDraining("c2", "s1", 20001, "web")}})
	_, stops := s.fake.input(workflows.ActivityStopContainer, "m1-c2")
	s.Equal(tfStopAttempts, stops, "the stop was retried, then given up")

	s1 := shOnly(5).Manager.Servers[0]
	failedC2 := workflows.ContainerStatus{ID: "m1-c2", Server: "s1", State: string(fleet.Failed), Service: "web", Port: 20001, Error: why}
	st := s.status(failed)
	s.Equal(workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone,
		Servers: []workflows.ServerStatus{shServer(s1, 4)},
		Containers: []workflows.ContainerStatus{
			shOn("c1", "s1", 20000, "web", fleet.Loaded),
			failedC2, // still holding its port and its slot
			shOn("c3", "s1", 20002, "api", fleet.Loaded),
			shOn("c4", "s1", 20003, "", fleet.Waiting),
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 1, Ready: 1}, {Name: "api", Desired: 1, Ready: 1}},
	}, scShape(st))
	s.Contains(eventMessages(st.Events), "container m1-c2 on s1 could not be removed: "+why)
	s.Contains(eventMessages(st.Events), "msm/m1/shrink/web/2 done: 0 unloaded, 0 destroyed, 0 server(s) released, 1 failed")

	// A new container beside it does not get its port: the pool's refill
	// after the extension takes 20004.
	s.Equal([]string{"msm/m1/provision/1", "msm/m1/shrink/web/2", "msm/m1/extend/web/3", "msm/m1/refill/4"}, s.ids())
	s.Equal(fleet.Plan{
		Loads: []fleet.Container{{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c4")}},
	}, s.child("msm/m1/extend/web/3").Place.Plan)
	s.requireRefill("msm/m1/refill/4", fleet.Plan{Starts: []fleet.Container{tfStart("c5", "s1", 20004, "")}})
	st = s.status(after)
	s.Equal([]workflows.ContainerStatus{
		shOn("c1", "s1", 20000, "web", fleet.Loaded),
		failedC2,
		shOn("c3", "s1", 20002, "api", fleet.Loaded),
		shOn("c4", "s1", 20003, "web", fleet.Loaded),
		shOn("c5", "s1", 20004, "", fleet.Waiting),
	}, st.Containers)
}

func (s *ShrinkSuite) TestRemovedServiceGoesBackToWaiting() {
	s.catalog(time.Second, tfCatalog())
	webOnly := tfCatalog()
	webOnly.Services = []catalog.Service{tfWeb}
	s.catalog(5*time.Second, webOnly)
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Equal([]string{"msm/m1/provision/1", "msm/m1/shrink/api/2"}, s.ids())
	c := s.requireShrink("msm/m1/shrink/api/2", []string{"api"},
		fleet.ShrinkPlan{Unloads: []fleet.Container{shUnloading("c3", "s1", 20002, "api")}})
	s.Equal(5*time.Second, c.At)
	s.Equal([]string{"m1-c3"}, s.fake.keys(workflows.ActivityUnloadService))
	s.Empty(s.fake.began(workflows.ActivityStopContainer), "a pool above its size is not trimmed")

	st := s.status(after)
	s.Equal(workflows.Status{
		Manager: tfManager, Kind: catalog.KindStandalone,
		Servers: []workflows.ServerStatus{shServer(tfS1, 4)},
		Containers: []workflows.ContainerStatus{
			shOn("c1", "s1", 20000, "web", fleet.Loaded),
			shOn("c2", "s1", 20001, "web", fleet.Loaded),
			shOn("c3", "s1", 20002, "", fleet.Waiting),
			shOn("c4", "s1", 20003, "", fleet.Waiting),
		},
		Services: []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}},
	}, scShape(st))
	s.Contains(eventMessages(st.Events), "catalog from catalog.yaml: 1 service(s)")
}

func (s *ShrinkSuite) TestDrainUpdateValidatorRejectsUnknownServer() {
	early := s.drain(500*time.Millisecond, "u-early", workflows.DrainUpdate{Server: "s1"})
	s.catalog(time.Second, tfCatalog())
	before := s.snapshot(4 * time.Second)
	unknown := s.drain(5*time.Second, "u-s9", workflows.DrainUpdate{Server: "s9"})
	unused := s.drain(6*time.Second, "u-s2", workflows.DrainUpdate{Server: "s2", DryRun: true})
	empty := s.drain(7*time.Second, "u-empty", workflows.DrainUpdate{})
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.requireRejected(early, "the Manager has no catalog yet: start `msm worker --catalog FILE` first")
	s.requireRejected(unknown, `unknown server "s9": the servers in use are [s1]`)
	s.requireRejected(unused, `unknown server "s2": the servers in use are [s1]`)
	s.requireRejected(empty, `unknown server "": the servers in use are [s1]`)
	s.Equal(s.status(before), s.status(after), "nothing changed, not even the event log")
	s.Equal([]string{"msm/m1/provision/1"}, s.ids())
}

// shDrainPlan is what draining s1 of tfCatalog's first Provision says.
const shDrainPlan = "move web (m1-c1), web (m1-c2), api (m1-c3) to web on s2, web on s2, api on s2; " +
	"then destroy the old instances and release s1"

func (s *ShrinkSuite) TestDrainDryRunChangesNothing() {
	s.catalog(time.Second, tfCatalog())
	before := s.snapshot(4 * time.Second)
	dry := s.drain(5*time.Second, "u-dry", workflows.DrainUpdate{Server: "s1", DryRun: true})
	after := s.snapshot(10 * time.Second)
	// What the dry run planned on its copy was not kept: the next
	// container is still m1-c5, and s2 is launched for it.
	ext := s.update(12*time.Second, workflows.UpdateExtend, "u-ext", workflows.ExtendUpdate{Service: "web", Count: 1})
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.requireAccepted(dry, "dry run: "+shDrainPlan)
	s.True(strings.HasPrefix(dry.result.Message, "dry run: move"), dry.result.Message)
	s.Equal(scShape(tmProvisioned(fleet.Waiting)), scShape(s.status(before)))
	s.Equal(s.status(before), s.status(after), "no state changed, no event")
	s.Equal(string(fleet.ServerReady), s.status(after).Servers[0].State)
	s.requireAccepted(ext, "extending web from 2 to 3 instance(s)")
	s.Equal([]string{"msm/m1/provision/1", "msm/m1/extend/web/2", "msm/m1/refill/3"}, s.ids(), "no Rearrange")
	s.Equal(scWebExtendedPlan(), s.child("msm/m1/extend/web/2").Place.Plan)
	s.requireRefill("msm/m1/refill/3", scWebRefillPlan())
	s.Empty(s.fake.began(workflows.ActivityStopContainer))
}

// shSummary is a status in one line: each server's state and each
// container's state and health, for the sequence a drain goes through.
func shSummary(st workflows.Status) string {
	var b []string
	for _, sv := range st.Servers {
		b = append(b, sv.ID+":"+sv.State)
	}
	for _, c := range st.Containers {
		h := ""
		if c.Healthy {
			h = "+"
		}
		b = append(b, fmt.Sprintf("%s:%s%s", strings.TrimPrefix(c.ID, tfManager+"-"), c.State, h))
	}
	return strings.Join(b, " ")
}

// requireNeverBelowDesired asserts that every poll saw at least as many
// loaded, healthy instances of each service as it wants, and returns the
// sequence of distinct states the polls saw.
func (s *shBase) requireNeverBelowDesired() []string {
	s.mu.Lock()
	polls := slices.Clone(s.polls)
	err := s.pollErr
	s.mu.Unlock()
	s.Require().NoError(err)
	s.Require().NotEmpty(polls)
	var seq []string
	for _, p := range polls {
		for _, ss := range p.St.Services {
			s.GreaterOrEqual(shHealthy(p.St, ss.Name), ss.Desired, "at %v, %s has %d healthy instance(s) of %d: %s",
				p.At, ss.Name, shHealthy(p.St, ss.Name), ss.Desired, shSummary(p.St))
		}
		if sum := shSummary(p.St); len(seq) == 0 || seq[len(seq)-1] != sum {
			seq = append(seq, sum)
		}
	}
	return seq
}

// requireOnlyOn asserts that a placement plan puts everything on server.
func (s *shBase) requireOnlyOn(plan fleet.Plan, server string) {
	for _, c := range slices.Concat(plan.Starts, plan.Loads) {
		s.Equal(server, c.Server, "%s placed on %s", c.ID, c.Server)
	}
}

// drainWithAFailingReplacement drains s1 of the provisioned tfCatalog
// while web's replacement m1-c6 fails to load, and so does its immediate
// retry on m1-c8 (web's second failure holds it back), with loads and stops
// that take time; it polls status until `until` and returns the status
// then.
func (s *ShrinkSuite) drainWithAFailingReplacement(webExit string, until time.Duration) *scSnap {
	s.fake.loadErr = map[string]error{"m1-c6": tmLoadFailed(webExit), "m1-c8": tmLoadFailed(webExit)}
	s.delay(workflows.ActivityLoadService, "m1-c5", time.Second)
	s.delay(workflows.ActivityLoadService, "m1-c6", 2*time.Second)
	s.delay(workflows.ActivityLoadService, "m1-c8", time.Second)
	s.delay(workflows.ActivityLoadService, "m1-c9", time.Second)
	for i, id := range []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"} {
		s.delay(workflows.ActivityStopContainer, id, time.Duration(i%2+1)*time.Second)
	}
	s.catalog(time.Second, tfCatalog())
	d := s.drain(5*time.Second, "u-drain", workflows.DrainUpdate{Server: "s1"})
	s.poll(5*time.Second, until)
	after := s.snapshot(until)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireAccepted(d, "draining s1: "+shDrainPlan)
	return after
}

func (s *ShrinkSuite) TestDrainExtendsElsewhereBeforeDestroying() {
	s.Run("replacements healthy one by one", func() {
		s.SetupTest()
		// Each step lands at its own instant, so the polls see every state.
		s.delay(workflows.ActivityLoadService, "m1-c5", time.Second)
		s.delay(workflows.ActivityLoadService, "m1-c6", 2*time.Second)
		s.delay(workflows.ActivityLoadService, "m1-c7", 3*time.Second)
		for i, id := range []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"} {
			s.delay(workflows.ActivityStopContainer, id, time.Duration(i+1)*time.Second)
		}
		s.catalog(time.Second, tfCatalog())
		d := s.drain(5*time.Second, "u-drain", workflows.DrainUpdate{Server: "s1"})
		s.poll(5*time.Second, 15*time.Second)
		after := s.snapshot(15 * time.Second)
		s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
		s.requireCancelled()
		s.requireAccepted(d, "draining s1: "+shDrainPlan)
		seq := s.requireNeverBelowDesired()

		s.Equal([]string{"msm/m1/provision/1", "msm/m1/rearrange/s1/2", "msm/m1/shrink/all/3"}, s.ids())
		r := s.child("msm/m1/rearrange/s1/2")
		s.Equal(workflows.WorkflowRearrange, r.Type)
		s.Equal("rearrange", r.Operation)
		s.Equal([]string{"web", "api"}, r.Services)
		s.Equal(5*time.Second, r.At, "at the drain")
		s.Equal("msm/m1/rearrange/s1/2", r.Place.Op)
		s.Equal(fleet.Plan{
			Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
			Starts: []fleet.Container{tfStart("c5", "s2", 21000, "web"), tfStart("c6", "s2", 21001, "web"),
				tfStart("c7", "s2", 21002, "api"), tfStart("c8", "s2", 21003, "")},
		}, r.Place.Plan, "the waiting m1-c4 is on s1 too: nothing goes there")
		s.requireOnlyOn(r.Place.Plan, "s2")

		// The old instances go in a Shrink decided once the last
		// replacement (m1-c7, healthy at 8s) was reported.
		c := s.requireShrink("msm/m1/shrink/all/3", []string{"web", "api"}, fleet.ShrinkPlan{
			Destroys: []fleet.Container{
				shDraining("c2", "s1", 20001, "web"), shDraining("c1", "s1", 20000, "web"),
				shDraining("c3", "s1", 20002, "api"), shDraining("c4", "s1", 20003, ""),
			},
			Release: []string{"s1"},
		})
		s.Equal(8*time.Second, c.At)
		for _, id := range []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"} {
			s.Equal([]time.Duration{9 * time.Second}, s.began(workflows.ActivityStopContainer, id), id)
		}
		s.Equal([]time.Duration{13 * time.Second}, s.began(workflows.ActivityReleaseServer, "s1"),
			"released once its last container is stopped")

		s.Equal([]string{
			"s1:draining s2:ready c1:loaded+ c2:loaded+ c3:loaded+ c4:waiting c5:starting c6:starting c7:starting c8:waiting",
			"s1:draining s2:ready c1:loaded+ c2:loaded+ c3:loaded+ c4:waiting c5:loaded+ c6:starting c7:starting c8:waiting",
			"s1:draining s2:ready c1:loaded+ c2:loaded+ c3:loaded+ c4:waiting c5:loaded+ c6:loaded+ c7:starting c8:waiting",
			"s1:draining s2:ready c1:draining+ c2:draining+ c3:draining+ c4:draining c5:loaded+ c6:loaded+ c7:loaded+ c8:waiting",
			"s1:draining s2:ready c2:draining+ c3:draining+ c4:draining c5:loaded+ c6:loaded+ c7:loaded+ c8:waiting",
			"s1:draining s2:ready c3:draining+ c4:draining c5:loaded+ c6:loaded+ c7:loaded+ c8:waiting",
			"s1:draining s2:ready c4:draining c5:loaded+ c6:loaded+ c7:loaded+ c8:waiting",
			"s2:ready c5:loaded+ c6:loaded+ c7:loaded+ c8:waiting",
		}, seq)

		st := s.status(after)
		s.Equal(workflows.Status{
			Manager: tfManager, Kind: catalog.KindStandalone,
			Servers: []workflows.ServerStatus{shServer(tfS2, 4)},
			Containers: []workflows.ContainerStatus{
				shOn("c5", "s2", 21000, "web", fleet.Loaded),
				shOn("c6", "s2", 21001, "web", fleet.Loaded),
				shOn("c7", "s2", 21002, "api", fleet.Loaded),
				shOn("c8", "s2", 21003, "", fleet.Waiting),
			},
			Services: []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}},
		}, scShape(st), "s1 is gone")
		s.Contains(eventMessages(st.Events), "server s1 released")
		s.Equal([]string{"s1"}, s.fake.keys(workflows.ActivityReleaseServer))
	})
	s.Run("a replacement that fails keeps the old instances until its retry is healthy (runs before parallel-ops)", func() {
		s.SetupTest()
		s.env.OnGetVersion("parallel-ops", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
		const webExit = "web exited with status 2"
		after := s.drainWithAFailingReplacement(webExit, 16*time.Second)
		seq := s.requireNeverBelowDesired()

		s.Equal([]string{"msm/m1/provision/1", "msm/m1/rearrange/s1/2", "msm/m1/rearrange/s1/3",
			"msm/m1/shrink/api/4", "msm/m1/rearrange/s1/5", "msm/m1/shrink/web/6"}, s.ids())
		// m1-c6 failed at 7s: its first failure is retried at once, on the
		// waiting container on s2, before anything is shrunk.
		r := s.child("msm/m1/rearrange/s1/3")
		s.Equal(workflows.WorkflowRearrange, r.Type)
		s.Equal("rearrange", r.Operation)
		s.Equal([]string{"web"}, r.Services)
		s.Equal(7*time.Second, r.At)
		s.Equal(fleet.Plan{
			Starts: []fleet.Container{tfStart("c9", "s2", 21001, "")},
			Loads:  []fleet.Container{{ID: "m1-c8", Server: "s2", Port: 21003, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c8")}},
		}, r.Place.Plan)
		s.requireOnlyOn(r.Place.Plan, "s2")
		// m1-c8 failed at 8s: web is held back and has one healthy
		// replacement, so its old instances stay; api's and the pool's are
		// replaced and go.
		c := s.requireShrink("msm/m1/shrink/api/4", []string{"api"}, fleet.ShrinkPlan{
			Destroys: []fleet.Container{shDraining("c3", "s1", 20002, "api"), shDraining("c4", "s1", 20003, "")},
		})
		s.Equal(8*time.Second, c.At)
		// The second retry, once web's back-off (1s, to 9s) is over and that
		// Shrink is done, takes the waiting container on s2.
		r = s.child("msm/m1/rearrange/s1/5")
		s.Equal(workflows.WorkflowRearrange, r.Type)
		s.Equal("rearrange", r.Operation)
		s.Equal([]string{"web"}, r.Services)
		s.Equal(11*time.Second, r.At)
		s.Equal(fleet.Plan{
			Starts: []fleet.Container{tfStart("c10", "s2", 21003, "")},
			Loads:  []fleet.Container{{ID: "m1-c9", Server: "s2", Port: 21001, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c9")}},
		}, r.Place.Plan)
		s.requireOnlyOn(r.Place.Plan, "s2")
		c = s.requireShrink("msm/m1/shrink/web/6", []string{"web"}, fleet.ShrinkPlan{
			Destroys: []fleet.Container{shDraining("c2", "s1", 20001, "web"), shDraining("c1", "s1", 20000, "web")},
			Release:  []string{"s1"},
		})
		s.Equal(12*time.Second, c.At, "once m1-c9 was reported healthy")
		s.Equal([]time.Duration{13 * time.Second}, s.began(workflows.ActivityStopContainer, "m1-c1"))

		s.Equal([]string{
			"s1:draining s2:ready c1:loaded+ c2:loaded+ c3:loaded+ c4:waiting c5:starting c6:starting c7:loaded+ c8:waiting",
			"s1:draining s2:ready c1:loaded+ c2:loaded+ c3:loaded+ c4:waiting c5:loaded+ c6:starting c7:loaded+ c8:waiting",
			"s1:draining s2:ready c1:loaded+ c2:loaded+ c3:loaded+ c4:waiting c5:loaded+ c7:loaded+ c8:loaded c9:waiting c6:failed",
			"s1:draining s2:ready c1:loaded+ c2:loaded+ c3:draining+ c4:draining c5:loaded+ c7:loaded+ c9:waiting c6:failed c8:failed",
			"s1:draining s2:ready c1:loaded+ c2:loaded+ c4:draining c5:loaded+ c7:loaded+ c9:waiting c6:failed c8:failed",
			"s1:draining s2:ready c1:loaded+ c2:loaded+ c5:loaded+ c7:loaded+ c9:loaded c10:waiting c6:failed c8:failed",
			"s1:draining s2:ready c1:draining+ c2:draining+ c5:loaded+ c7:loaded+ c9:loaded+ c10:waiting c6:failed c8:failed",
			"s1:draining s2:ready c2:draining+ c5:loaded+ c7:loaded+ c9:loaded+ c10:waiting c6:failed c8:failed",
			"s2:ready c5:loaded+ c7:loaded+ c9:loaded+ c10:waiting c6:failed c8:failed",
		}, seq)

		st := s.status(after)
		s.Equal(workflows.Status{
			Manager: tfManager, Kind: catalog.KindStandalone,
			Servers: []workflows.ServerStatus{shServer(tfS2, 4)},
			Containers: []workflows.ContainerStatus{
				shOn("c5", "s2", 21000, "web", fleet.Loaded),
				shOn("c7", "s2", 21002, "api", fleet.Loaded),
				shOn("c9", "s2", 21001, "web", fleet.Loaded),
				shOn("c10", "s2", 21003, "", fleet.Waiting),
				{ID: "m1-c6", Server: "s2", State: string(fleet.Failed), Service: "web", Error: "failed to load web: " + webExit},
				{ID: "m1-c8", Server: "s2", State: string(fleet.Failed), Service: "web", Error: "failed to load web: " + webExit},
			},
			Services: []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}},
		}, scShape(st))
	})
	s.Run("a replacement that fails keeps the old instances until its retry is healthy, with removals side by side", func() {
		s.SetupTest()
		const webExit = "web exited with status 2"
		after := s.drainWithAFailingReplacement(webExit, 20*time.Second)
		// Extend before destroy holds whatever runs side by side.
		s.requireNeverBelowDesired()
		// api's old instance goes at 7 s, beside web's retry (one
		// operation at a time, it waited for that retry to end, to 8 s).
		api := s.child("msm/m1/shrink/api/4")
		s.Equal(7*time.Second, api.At)
		s.Equal([]fleet.Container{shDraining("c3", "s1", 20002, "api")}, api.Shrink.Plan.Destroys)
		ids := s.ids()
		i := slices.IndexFunc(ids, func(id string) bool { return strings.HasPrefix(id, "msm/m1/shrink/web/") })
		s.Require().GreaterOrEqual(i, 0, "web's old instances went: %v", ids)
		web := s.child(ids[i])
		s.Equal([]fleet.Container{shDraining("c2", "s1", 20001, "web"), shDraining("c1", "s1", 20000, "web")},
			web.Shrink.Plan.Destroys, "web's old instances go once its retry is healthy")

		st := s.status(after)
		s.Equal([]workflows.ServerStatus{shServer(tfS2, 4)}, st.Servers, "s1 is gone")
		s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
		s.Equal(1, st.Count(string(fleet.Waiting)), "the warm pool is full")
		s.Zero(st.Operations)
	})
}

func (s *ShrinkSuite) TestDrainWithNoRoomElsewhereKeepsTheInstances() {
	s.catalog(time.Second, shOnly(4))
	d := s.drain(5*time.Second, "u-drain", workflows.DrainUpdate{Server: "s1"})
	held := s.snapshot(10 * time.Second)
	twice := s.drain(12*time.Second, "u-again", workflows.DrainUpdate{Server: "s1"})
	// Room elsewhere comes with the catalog: the drain goes on.
	s.catalog(15*time.Second, tfCatalog())
	after := s.snapshot(25 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Require().True(d.done)
	s.Require().NoError(d.err)
	msg := d.result.Message
	s.True(strings.HasPrefix(msg, "draining s1: move web (m1-c1), web (m1-c2), api (m1-c3)"), msg)
	s.Contains(msg, "2 instance(s) of web cannot be placed elsewhere")
	s.Contains(msg, "1 instance(s) of api cannot be placed elsewhere")
	s.True(strings.HasSuffix(msg, "so they stay until there is room; then destroy the old instances and release s1"), msg)
	s.requireRejected(twice, "server s1 is already being drained; `msm status` shows its progress")

	st := s.status(held)
	want := scShape(tmProvisioned(fleet.Waiting))
	want.Servers[0].State = string(fleet.ServerDraining)
	s.Require().Len(st.Unplaced, 3, "web, api and the pool: %v", st.Unplaced)
	s.Equal([]string{"web 2", "api 1", " 1"}, func() []string {
		var out []string
		for _, u := range st.Unplaced {
			out = append(out, fmt.Sprintf("%s %d", u.Service, u.Count))
		}
		return out
	}())
	want.Unplaced = st.Unplaced
	s.Equal(want, scShape(st), "every instance stays, healthy, on its lease")
	s.Contains(eventMessages(st.Events), "cannot place 2 instance(s) of service web: "+st.Unplaced[0].Reason)

	s.Equal([]string{"msm/m1/provision/1", "msm/m1/rearrange/s1/2", "msm/m1/shrink/all/3"}, s.ids(),
		"nothing before there was room")
	s.Equal(15*time.Second, s.child("msm/m1/rearrange/s1/2").At)
	for _, id := range []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"} {
		s.Equal([]time.Duration{16 * time.Second}, s.began(workflows.ActivityStopContainer, id), id)
	}
	st = s.status(after)
	s.Equal([]workflows.ServerStatus{shServer(tfS2, 4)}, st.Servers)
	s.Empty(st.Unplaced)
}

// TestServerRemovedFromTheCatalogIsDrained (issue 16): a catalog that no
// longer lists s1 drains it as `msm drain s1` does — its instances placed
// on s2 first, never below desired, then removed, s1 released — and says
// why in the decision log.
func (s *ShrinkSuite) TestServerRemovedFromTheCatalogIsDrained() {
	s.catalog(time.Second, tfCatalog())
	without := tfCatalog()
	without.Manager.Servers = []catalog.Server{tfS2}
	s.signal(5*time.Second, workflows.SignalCatalog, workflows.CatalogSignal{Catalog: without, Source: "catalog.yaml"})
	s.poll(5*time.Second, 15*time.Second)
	after := s.snapshot(15 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireNeverBelowDesired()

	s.Equal([]string{"msm/m1/provision/1", "msm/m1/rearrange/s1/2", "msm/m1/shrink/all/3"}, s.ids())
	s.requireOnlyOn(s.child("msm/m1/rearrange/s1/2").Place.Plan, "s2")
	st := s.status(after)
	s.Equal([]workflows.ServerStatus{{ID: "s2", State: "ready", Address: "10.0.0.2", Slots: 4, Used: 4}}, st.Servers, "s1 released")
	s.Contains(eventMessages(st.Events), "drain s1: "+shDrainPlan+" (removed from the catalog (catalog.yaml))")
	for _, c := range st.Containers {
		s.Equal("s2", c.Server)
	}
}
