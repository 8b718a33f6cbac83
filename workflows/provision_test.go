package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/startbatch"
	"github.com/msm-project/msm/workflows"
)

// The fixtures below are shared by provision_test.go and manager_test.go.

const tfManager = "m1"

var (
	tfWeb = catalog.Service{Name: "web", Command: "web-server", Args: []string{"--port={{.Port}}"},
		Health:   catalog.HealthCheck{Path: "/healthz", Interval: time.Second, Timeout: time.Second, FailureThreshold: 3},
		Replicas: catalog.Replicas{Min: 1, Initial: 2, Max: 4}, Slots: 1}
	tfAPI = catalog.Service{Name: "api", Command: "api-server",
		Health:   catalog.HealthCheck{Path: "/ready", Interval: time.Second, Timeout: time.Second, FailureThreshold: 3},
		Replicas: catalog.Replicas{Min: 1, Initial: 1, Max: 2}, Slots: 1}
	tfS1 = catalog.Server{Name: "s1", Address: "10.0.0.1", Slots: 4, Ports: catalog.PortRange{First: 20000, Last: 20009}}
	tfS2 = catalog.Server{Name: "s2", Address: "10.0.0.2", Slots: 4, Ports: catalog.PortRange{First: 21000, Last: 21009}}
)

// tfCatalog is two servers of 4 slots, web ×2, api ×1 and a warm pool of 1:
// a first Provision puts all four containers on s1.
func tfCatalog() catalog.Catalog {
	return catalog.Catalog{
		Manager:  catalog.Manager{Kind: catalog.KindStandalone, WarmPool: 1, Servers: []catalog.Server{tfS1, tfS2}},
		Services: []catalog.Service{tfWeb, tfAPI},
	}
}

func tfServer(cs catalog.Server, state fleet.ServerState) fleet.Server {
	return fleet.Server{ID: cs.Name, Address: cs.Address, Slots: cs.Slots, Ports: cs.Ports, State: state}
}

// tfCall is one activity call as the fake fleet saw it.
type tfCall struct {
	Activity string
	Queue    string
	Key      string // server ID for LaunchServer, container ID otherwise
	Done     bool   // false: the call began; true: it returned
	Input    any
}

// tfFleet fakes the provider, the node agents and the container agents,
// records every call in order, and fails the calls its maps say to fail.
// Activities run on their own goroutines, hence the mutex.
type tfFleet struct {
	mu    sync.Mutex
	calls []tfCall
	// nodeVersion and nodeWire are what nodes answer Reconcile with, by
	// server (none: a node of wire 1).
	nodeVersion map[string]string
	nodeWire    map[string]int
	// awaited are the ends of the operations handed over, by ID.
	awaited map[string]workflows.AwaitOperationResult
	// schedules are the schedules SyncSchedules holds, by ID; syncErr
	// fails its next calls.
	schedules map[string]workflows.ScheduleRule
	syncErr   []error
	// launchErr fails LaunchServer by server ID.
	launchErr map[string]error
	// startErr fails StartContainer by "server:port".
	startErr map[string]error
	// loadErr fails LoadService by container ID.
	loadErr map[string]error
	// serviceErr fails LoadService of every container loading a service.
	serviceErr map[string]error
	// commandErr fails LoadService of every instance whose service runs
	// that command (a revision that cannot start).
	commandErr map[string]error
	// readyErr fails Ready by container ID.
	readyErr map[string]error
	// stopErr fails StopContainer by container ID.
	stopErr map[string]error
	// losing are the servers whose next lease times out (loseServer).
	losing map[string]bool
	// fencing are the servers whose next Reconcile waits for them to come
	// back (loseServer).
	fencing map[string]bool
}

func (f *tfFleet) record(c tfCall) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

// tfSeq is the number of a container ID "m1-c7" (7): PIDs derive from it so
// that they are the same whatever order the activities run in.
func tfSeq(id string) int {
	n, _ := strconv.Atoi(id[strings.LastIndex(id, "-c")+2:])
	return n
}

func tfAgentPID(id string) int   { return 1000 + tfSeq(id) }
func tfServicePID(id string) int { return 5000 + tfSeq(id) }

func (f *tfFleet) LaunchServer(ctx context.Context, in workflows.LaunchServerInput) (workflows.LaunchServerResult, error) {
	q := activity.GetInfo(ctx).TaskQueue
	f.record(tfCall{Activity: workflows.ActivityLaunchServer, Queue: q, Key: in.Server.ID, Input: in})
	// Long enough that a container start not waiting for its server would
	// be seen beginning before the launch returned.
	time.Sleep(20 * time.Millisecond)
	defer f.record(tfCall{Activity: workflows.ActivityLaunchServer, Queue: q, Key: in.Server.ID, Done: true})
	if err := f.launchErr[in.Server.ID]; err != nil {
		return workflows.LaunchServerResult{}, err
	}
	return workflows.LaunchServerResult{ID: in.Server.ID, Address: in.Server.Address}, nil
}

func (f *tfFleet) StartContainer(ctx context.Context, in workflows.StartContainerInput) (workflows.StartContainerResult, error) {
	q := activity.GetInfo(ctx).TaskQueue
	f.record(tfCall{Activity: workflows.ActivityStartContainer, Queue: q, Key: in.Container, Input: in})
	defer f.record(tfCall{Activity: workflows.ActivityStartContainer, Queue: q, Key: in.Container, Done: true})
	if err := f.startErr[in.Server+":"+strconv.Itoa(in.Port)]; err != nil {
		return workflows.StartContainerResult{}, err
	}
	return workflows.StartContainerResult{PID: tfAgentPID(in.Container)}, nil
}

// StartContainers records the batch (keyed by server), then starts each
// container of it as StartContainer does (recorded one by one).
func (f *tfFleet) StartContainers(ctx context.Context, in workflows.StartContainersInput) (workflows.StartContainersResult, error) {
	q := activity.GetInfo(ctx).TaskQueue
	f.record(tfCall{Activity: workflows.ActivityStartContainers, Queue: q, Key: in.Server, Input: in})
	defer f.record(tfCall{Activity: workflows.ActivityStartContainers, Queue: q, Key: in.Server, Done: true})
	return startbatch.Each(ctx, in, f.StartContainer), nil
}

func (f *tfFleet) LoadService(ctx context.Context, in workflows.LoadServiceInput) (workflows.LoadServiceResult, error) {
	q := activity.GetInfo(ctx).TaskQueue
	f.record(tfCall{Activity: workflows.ActivityLoadService, Queue: q, Key: in.Container, Input: in})
	defer f.record(tfCall{Activity: workflows.ActivityLoadService, Queue: q, Key: in.Container, Done: true})
	if err := f.loadErr[in.Container]; err != nil {
		return workflows.LoadServiceResult{}, err
	}
	if err := f.serviceErr[in.Service.Name]; err != nil {
		return workflows.LoadServiceResult{}, err
	}
	if err := f.commandErr[in.Service.Command]; err != nil {
		return workflows.LoadServiceResult{}, err
	}
	return workflows.LoadServiceResult{PID: tfServicePID(in.Container), Healthy: true, Took: time.Second}, nil
}

func (f *tfFleet) Ready(ctx context.Context, container string) (workflows.ReadyResult, error) {
	q := activity.GetInfo(ctx).TaskQueue
	f.record(tfCall{Activity: workflows.ActivityReady, Queue: q, Key: container, Input: container})
	defer f.record(tfCall{Activity: workflows.ActivityReady, Queue: q, Key: container, Done: true})
	if err := f.readyErr[container]; err != nil {
		return workflows.ReadyResult{}, err
	}
	return workflows.ReadyResult{PID: tfAgentPID(container)}, nil
}

func (f *tfFleet) StopContainer(ctx context.Context, in workflows.StopContainerInput) error {
	q := activity.GetInfo(ctx).TaskQueue
	f.record(tfCall{Activity: workflows.ActivityStopContainer, Queue: q, Key: in.Container, Input: in})
	defer f.record(tfCall{Activity: workflows.ActivityStopContainer, Queue: q, Key: in.Container, Done: true})
	return f.stopErr[in.Container]
}

// tfLeaseTerm stands in for a node that holds its lease: the mocked lease
// ends only after this much workflow time (not holding the clock meanwhile).
const tfLeaseTerm = 24 * time.Hour

// Lease is only registered so that its mocks may be: they answer every call.
func (f *tfFleet) Lease(context.Context, workflows.LeaseInput) error {
	return errors.New("unmocked lease")
}

// Reconcile reports every kept container running and stops nothing.
func (f *tfFleet) Reconcile(ctx context.Context, in workflows.ReconcileInput) (workflows.ReconcileResult, error) {
	q := activity.GetInfo(ctx).TaskQueue
	f.record(tfCall{Activity: workflows.ActivityReconcile, Queue: q, Key: in.Server, Input: in})
	defer f.record(tfCall{Activity: workflows.ActivityReconcile, Queue: q, Key: in.Server, Done: true})
	f.mu.Lock()
	defer f.mu.Unlock()
	return workflows.ReconcileResult{Stopped: []string{}, Running: slices.Sorted(slices.Values(in.Keep)),
		Version: f.nodeVersion[in.Server], Wire: f.nodeWire[in.Server]}, nil
}

// upgradeNode makes server's node answer as msm version of wire from now.
func (f *tfFleet) upgradeNode(server, version string, wire int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.nodeVersion == nil {
		f.nodeVersion, f.nodeWire = map[string]string{}, map[string]int{}
	}
	f.nodeVersion[server], f.nodeWire[server] = version, wire
}

// isLosing reports whether a server's next lease is to time out.
func (f *tfFleet) isLosing(server string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.losing[server]
}

func (f *tfFleet) isFencing(server string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fencing[server]
}

// loseServer makes the lease of server time out at after (workflow time
// from the lease's start), as when its node dies; the fence that follows
// waits back more, then its node stops stale.
func (f *tfFleet) loseServer(env *testsuite.TestWorkflowEnvironment, server string, after, back time.Duration, stale []string) {
	f.mu.Lock()
	if f.losing == nil {
		f.losing, f.fencing = map[string]bool{}, map[string]bool{}
	}
	f.losing[server], f.fencing[server] = true, true
	f.mu.Unlock()
	isServer := func(s string) bool { return s == server }
	env.OnActivity(workflows.ActivityLease, mock.Anything, mock.MatchedBy(func(in workflows.LeaseInput) bool { return isServer(in.Server) })).
		After(after).Return(temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil)).Once().
		Run(func(mock.Arguments) { f.mu.Lock(); f.losing[server] = false; f.mu.Unlock() })
	// The fence keeps nothing (a Reconcile keeping containers asks the
	// node's version, or collects after a restart).
	env.OnActivity(workflows.ActivityReconcile, mock.Anything, mock.MatchedBy(func(in workflows.ReconcileInput) bool { return isServer(in.Server) && len(in.Keep) == 0 })).
		After(back).Return(func(ctx context.Context, in workflows.ReconcileInput) (workflows.ReconcileResult, error) {
		f.mu.Lock()
		f.fencing[server] = false
		f.mu.Unlock()
		f.record(tfCall{Activity: workflows.ActivityReconcile, Key: in.Server, Input: in})
		return workflows.ReconcileResult{Stopped: stale, Running: []string{}}, nil
	}).Once()
}

func (f *tfFleet) register(env *testsuite.TestWorkflowEnvironment) {
	env.RegisterActivityWithOptions(f.Lease, activity.RegisterOptions{Name: workflows.ActivityLease})
	env.RegisterActivityWithOptions(f.Reconcile, activity.RegisterOptions{Name: workflows.ActivityReconcile})
	env.RegisterActivityWithOptions(f.StartContainer, activity.RegisterOptions{Name: workflows.ActivityStartContainer})
	env.RegisterActivityWithOptions(f.StartContainers, activity.RegisterOptions{Name: workflows.ActivityStartContainers})
	env.RegisterActivityWithOptions(f.StopContainer, activity.RegisterOptions{Name: workflows.ActivityStopContainer})
	env.RegisterActivityWithOptions(f.LoadService, activity.RegisterOptions{Name: workflows.ActivityLoadService})
	env.RegisterActivityWithOptions(f.Ready, activity.RegisterOptions{Name: workflows.ActivityReady})
	env.RegisterActivityWithOptions(f.LaunchServer, activity.RegisterOptions{Name: workflows.ActivityLaunchServer})
	env.RegisterActivityWithOptions(f.SyncSchedules, activity.RegisterOptions{Name: workflows.ActivitySyncSchedules})
	env.RegisterActivityWithOptions(f.AwaitOperation, activity.RegisterOptions{Name: workflows.ActivityAwaitOperation})
}

// AwaitOperation fakes awaiting an operation handed over: its end is what
// awaited says, or a failure when it says nothing.
func (f *tfFleet) AwaitOperation(ctx context.Context, in workflows.AwaitOperationInput) (workflows.AwaitOperationResult, error) {
	f.record(tfCall{Activity: workflows.ActivityAwaitOperation, Queue: activity.GetInfo(ctx).TaskQueue, Key: in.ID, Input: in})
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.awaited[in.ID]; ok {
		return r, nil
	}
	return workflows.AwaitOperationResult{Error: "operation " + in.ID + " is not known to the fake"}, nil
}

// SyncSchedules fakes Temporal's schedules: it keeps the rules of the
// schedules it holds by ID and answers as the real sync would, or fails
// with the next of syncErr.
func (f *tfFleet) SyncSchedules(ctx context.Context, in workflows.SyncSchedulesInput) (workflows.SyncSchedulesResult, error) {
	f.record(tfCall{Activity: workflows.ActivitySyncSchedules, Queue: activity.GetInfo(ctx).TaskQueue, Input: in})
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.syncErr) > 0 {
		err := f.syncErr[0]
		f.syncErr = f.syncErr[1:]
		return workflows.SyncSchedulesResult{}, err
	}
	if f.schedules == nil {
		f.schedules = map[string]workflows.ScheduleRule{}
	}
	var res workflows.SyncSchedulesResult
	want := map[string]bool{}
	for _, r := range in.Rules {
		want[r.ID] = true
		old, ok := f.schedules[r.ID]
		switch {
		case !ok:
			res.Created = append(res.Created, r.ID)
		case old != r:
			res.Updated = append(res.Updated, r.ID)
		}
		f.schedules[r.ID] = r
	}
	for _, id := range slices.Sorted(maps.Keys(f.schedules)) {
		if !want[id] {
			delete(f.schedules, id)
			res.Deleted = append(res.Deleted, id)
		}
	}
	return res, nil
}

// syncs are the inputs of the SyncSchedules calls, in order.
func (f *tfFleet) syncs() []workflows.SyncSchedulesInput {
	var out []workflows.SyncSchedulesInput
	for _, c := range f.began(workflows.ActivitySyncSchedules) {
		out = append(out, c.Input.(workflows.SyncSchedulesInput))
	}
	return out
}

// holdLeases mocks the nodes: they hold their leases, and reconcile at
// once, unless loseServer says otherwise for a server. It comes after every
// RegisterActivity (which may not follow a mock).
func (f *tfFleet) holdLeases(env *testsuite.TestWorkflowEnvironment) {
	// Nodes hold their leases, and reconcile at once, unless loseServer
	// says otherwise for a server (first-defined mocks match first).
	env.OnActivity(workflows.ActivityLease, mock.Anything, mock.MatchedBy(func(in workflows.LeaseInput) bool { return !f.isLosing(in.Server) })).
		After(tfLeaseTerm).Return(nil).Maybe()
	env.OnActivity(workflows.ActivityReconcile, mock.Anything, mock.MatchedBy(func(in workflows.ReconcileInput) bool { return !f.isFencing(in.Server) || len(in.Keep) > 0 })).
		Return(f.Reconcile).Maybe()
}

// began returns the calls of one activity that began, in order.
func (f *tfFleet) began(name string) []tfCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []tfCall
	for _, c := range f.calls {
		if c.Activity == name && !c.Done {
			out = append(out, c)
		}
	}
	return out
}

// keys returns the keys of the calls of one activity that began, sorted.
func (f *tfFleet) keys(name string) []string {
	var out []string
	for _, c := range f.began(name) {
		out = append(out, c.Key)
	}
	slices.Sort(out)
	return out
}

// index is the position in the call log of the first matching call, or -1.
func (f *tfFleet) index(name, key string, done bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.IndexFunc(f.calls, func(c tfCall) bool { return c.Activity == name && c.Key == key && c.Done == done })
}

// input returns the input of the single call of an activity for key.
func (f *tfFleet) input(name, key string) (any, int) {
	var in any
	n := 0
	for _, c := range f.began(name) {
		if c.Key == key {
			in, n = c.Input, n+1
		}
	}
	return in, n
}

// ProvisionSuite runs Provision alone; its reports to the Manager are caught
// by a SignalExternalWorkflow mock.
type ProvisionSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	// signals counts the signals the last provision sent its Manager;
	// signalTime, when set, is how long each takes to deliver.
	signals    int
	signalTime time.Duration
	// ofManager runs the provision as a child of its Manager.
	ofManager bool
}

func TestProvisionSuite(t *testing.T) { suite.Run(t, new(ProvisionSuite)) }

const tfOp = "msm/m1/provision/1"

// provision runs one Provision of plan against fake and returns its result,
// the step results it reported (in the order reported) and its error.
func (s *ProvisionSuite) provision(fake *tfFleet, plan fleet.Plan) (workflows.ProvisionResult, []workflows.StepResult, error) {
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(30 * time.Second)
	fake.register(env)
	var mu sync.Mutex
	var reported []workflows.StepResult
	s.signals = 0
	env.OnSignalExternalWorkflow(mock.Anything, workflows.ManagerID(tfManager), "", workflows.SignalResults, mock.Anything).Return(
		func(namespace, workflowID, runID, signalName string, arg any) error {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, arg.(workflows.StepResults).Steps...)
			s.signals++
			return nil
		}).After(s.signalTime)
	in := workflows.ProvisionInput{
		Op: tfOp, Manager: tfManager, Kind: catalog.KindStandalone, Plan: plan,
		Services:  []catalog.Service{tfWeb, tfAPI},
		Addresses: map[string]string{"s1": tfS1.Address, "s2": tfS2.Address},
	}
	var res workflows.ProvisionResult
	var err error
	if s.ofManager {
		// A child of its Manager, as the Manager starts it; the Manager
		// here takes its signals, with the result.
		type outcome struct {
			Res     workflows.ProvisionResult
			Signals []workflows.StepResults
		}
		env.RegisterWorkflow(workflows.Provision)
		env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.ManagerID(tfManager)})
		env.ExecuteWorkflow(func(ctx workflow.Context, in workflows.ProvisionInput) (outcome, error) {
			var out outcome
			ch := workflow.GetSignalChannel(ctx, workflows.SignalResults)
			workflow.Go(ctx, func(ctx workflow.Context) {
				for {
					var rs workflows.StepResults
					ch.Receive(ctx, &rs)
					out.Signals = append(out.Signals, rs)
				}
			})
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{WorkflowID: tfOp})
			err := workflow.ExecuteChildWorkflow(cctx, workflows.Provision, in).Get(ctx, &out.Res)
			return out, err
		}, in)
		s.Require().True(env.IsWorkflowCompleted())
		var out outcome
		if err = env.GetWorkflowError(); err == nil {
			s.Require().NoError(env.GetWorkflowResult(&out))
		}
		res = out.Res
		s.signals = len(out.Signals)
		for _, rs := range out.Signals {
			reported = append(reported, rs.Steps...)
		}
	} else {
		env.ExecuteWorkflow(workflows.Provision, in)
		s.Require().True(env.IsWorkflowCompleted())
		if err = env.GetWorkflowError(); err == nil {
			s.Require().NoError(env.GetWorkflowResult(&res))
		}
	}
	if !s.ofManager {
		s.Empty(res.Steps, "an operation its Manager did not start signals every step")
	}
	mu.Lock()
	defer mu.Unlock()
	return res, slices.Clone(reported), err
}

// batches returns the containers of each StartContainers batch that
// began, by server, in the order they began.
func (f *tfFleet) batches() map[string][][]string {
	out := map[string][][]string{}
	for _, c := range f.began(workflows.ActivityStartContainers) {
		in := c.Input.(workflows.StartContainersInput)
		var ids []string
		for _, one := range in.Containers {
			ids = append(ids, one.Container)
		}
		out[in.Server] = append(out[in.Server], ids)
	}
	return out
}

func tfStart(id, server string, port int, service string) fleet.Container {
	return fleet.Container{ID: tfManager + "-" + id, Server: server, Port: port, State: fleet.Starting, Service: service}
}

func tfStartOK(id, server string, port int) workflows.StepResult {
	id = tfManager + "-" + id
	return workflows.StepResult{Op: tfOp, Step: workflows.StepStart, Server: server, Container: id, Port: port, PID: tfAgentPID(id), OK: true}
}

func tfLoadOK(id, server string, port int) workflows.StepResult {
	id = tfManager + "-" + id
	return workflows.StepResult{Op: tfOp, Step: workflows.StepLoad, Server: server, Container: id, Port: port, PID: tfServicePID(id), OK: true}
}

func tfReadyOK(id, server string, port int) workflows.StepResult {
	id = tfManager + "-" + id
	return workflows.StepResult{Op: tfOp, Step: workflows.StepReady, Server: server, Container: id, Port: port, PID: tfAgentPID(id), OK: true}
}

// TestStepsAreReportedInBatches: the steps that finish while a report is
// in flight go in the next one, in the order they finished: eight steps
// of four containers started and loaded at once reach the Manager in
// fewer signals, each container's start before its load.
func (s *ProvisionSuite) TestStepsAreReportedInBatches() {
	s.signalTime = 100 * time.Millisecond // the round trip of a real server
	defer func() { s.signalTime = 0 }()
	fake := &tfFleet{}
	_, reported, err := s.provision(fake, fleet.Plan{Starts: []fleet.Container{
		tfStart("c1", "s1", 20000, "web"), tfStart("c2", "s1", 20001, "web"),
		tfStart("c3", "s2", 21000, "api"), tfStart("c4", "s2", 21001, "web")}})
	s.Require().NoError(err)
	s.Len(reported, 8)
	s.Less(s.signals, 8, "several steps per signal")
	s.GreaterOrEqual(s.signals, 1)
	for _, id := range []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"} {
		start := slices.IndexFunc(reported, func(r workflows.StepResult) bool { return r.Container == id && r.Step == workflows.StepStart })
		load := slices.IndexFunc(reported, func(r workflows.StepResult) bool { return r.Container == id && r.Step == workflows.StepLoad })
		s.True(start >= 0 && load > start, "%s: start at %d, load at %d", id, start, load)
	}
	for _, r := range reported {
		s.Equal(tfOp, r.Op)
	}
}

// TestAnOperationOfItsManagerReturnsItsLastSteps: started by its Manager,
// an operation returns the steps that finished after its last signal in
// its result instead of signalling them: a one-load extension sends no
// signal at all; steps that finished earlier went in signals, in order,
// each step once.
func (s *ProvisionSuite) TestAnOperationOfItsManagerReturnsItsLastSteps() {
	s.ofManager = true
	defer func() { s.ofManager = false }()
	res, reported, err := s.provision(&tfFleet{}, fleet.Plan{Loads: []fleet.Container{
		{ID: tfManager + "-c1", Server: "s1", Port: 20000, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c1")}}})
	s.Require().NoError(err)
	s.Zero(s.signals, "one load: no signal")
	s.Empty(reported)
	s.Equal([]workflows.StepResult{tfLoadOK("c1", "s1", 20000)}, res.Steps)

	res, reported, err = s.provision(&tfFleet{}, fleet.Plan{Starts: []fleet.Container{
		tfStart("c1", "s1", 20000, "web"), tfStart("c2", "s2", 21000, "")}})
	s.Require().NoError(err)
	s.Positive(s.signals, "the starts were signalled while the load ran")
	all := append(reported, res.Steps...)
	s.ElementsMatch([]workflows.StepResult{tfStartOK("c1", "s1", 20000), tfLoadOK("c1", "s1", 20000),
		tfStartOK("c2", "s2", 21000), tfReadyOK("c2", "s2", 21000)}, all)
	s.NotEmpty(res.Steps)
	s.Less(slices.IndexFunc(all, func(r workflows.StepResult) bool {
		return r.Container == tfManager+"-c1" && r.Step == workflows.StepStart
	}),
		slices.IndexFunc(all, func(r workflows.StepResult) bool {
			return r.Container == tfManager+"-c1" && r.Step == workflows.StepLoad
		}))
}

func (s *ProvisionSuite) TestServersLaunchBeforeTheirContainersStart() {
	fake := &tfFleet{}
	res, reported, err := s.provision(fake, fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts:  []fleet.Container{tfStart("c1", "s2", 21000, "web"), tfStart("c2", "s2", 21001, "")},
	})
	s.Require().NoError(err)

	launches := fake.began(workflows.ActivityLaunchServer)
	s.Require().Len(launches, 1)
	s.Equal(workflows.TaskQueue, launches[0].Queue)
	s.Equal(workflows.LaunchServerInput{Manager: tfManager, Kind: catalog.KindStandalone, Key: "m1/s2",
		Server: tfServer(tfS2, fleet.ServerLaunching)}, launches[0].Input)

	launched := fake.index(workflows.ActivityLaunchServer, "s2", true)
	s.Require().GreaterOrEqual(launched, 0)
	for _, id := range []string{"m1-c1", "m1-c2"} {
		started := fake.index(workflows.ActivityStartContainer, id, false)
		s.Require().GreaterOrEqual(started, 0, "%s was never started", id)
		s.Greater(started, launched, "%s started before its server s2 was launched", id)
	}
	// The Manager hears of the server before any container on it.
	s.Require().NotEmpty(reported)
	s.Equal(workflows.StepResult{Op: tfOp, Step: workflows.StepServer, Server: "s2", OK: true, Address: "10.0.0.2"}, reported[0])
	s.ElementsMatch([]workflows.StepResult{
		{Op: tfOp, Step: workflows.StepServer, Server: "s2", OK: true, Address: "10.0.0.2"},
		tfStartOK("c1", "s2", 21000), tfLoadOK("c1", "s2", 21000),
		tfStartOK("c2", "s2", 21001), tfReadyOK("c2", "s2", 21001),
	}, reported)
	s.Equal(workflows.ProvisionResult{Servers: 1, Started: 2, Loaded: 1}, res)
}

func (s *ProvisionSuite) TestNewContainerWithServiceIsStartedThenLoadedWithSpecPortAndAddress() {
	fake := &tfFleet{}
	res, reported, err := s.provision(fake, fleet.Plan{
		Starts: []fleet.Container{tfStart("c1", "s1", 20000, "web"), tfStart("c2", "s1", 20001, "api")},
	})
	s.Require().NoError(err)
	s.Empty(fake.began(workflows.ActivityLaunchServer), "s1 is not in Plan.Servers: nothing to launch")

	for _, tc := range []struct {
		id   string
		port int
		spec catalog.Service
	}{{"m1-c1", 20000, tfWeb}, {"m1-c2", 20001, tfAPI}} {
		start, n := fake.input(workflows.ActivityStartContainer, tc.id)
		s.Require().Equal(1, n, "starts of %s", tc.id)
		s.Equal(workflows.StartContainerInput{Manager: tfManager, Container: tc.id, Server: "s1", Port: tc.port}, start)
		load, n := fake.input(workflows.ActivityLoadService, tc.id)
		s.Require().Equal(1, n, "loads of %s", tc.id)
		s.Equal(workflows.LoadServiceInput{Container: tc.id, Server: "s1", Address: "10.0.0.1", Port: tc.port, Service: tc.spec}, load)

		startDone := fake.index(workflows.ActivityStartContainer, tc.id, true)
		loadBegan := fake.index(workflows.ActivityLoadService, tc.id, false)
		s.Greater(loadBegan, startDone, "%s was loaded before its start returned", tc.id)
	}
	for _, c := range fake.began(workflows.ActivityStartContainer) {
		s.Equal(workflows.NodeQueue("s1"), c.Queue, "start of %s", c.Key)
	}
	for _, c := range fake.began(workflows.ActivityLoadService) {
		s.Equal(workflows.ContainerQueue(c.Key), c.Queue, "load of %s", c.Key)
	}
	s.Empty(fake.began(workflows.ActivityReady), "a container with a service is loaded, not asked if ready")
	s.Empty(fake.began(workflows.ActivityStopContainer))
	s.ElementsMatch([]workflows.StepResult{
		tfStartOK("c1", "s1", 20000), tfLoadOK("c1", "s1", 20000),
		tfStartOK("c2", "s1", 20001), tfLoadOK("c2", "s1", 20001),
	}, reported)
	// Each container's start is reported before its load.
	for _, id := range []string{"m1-c1", "m1-c2"} {
		start := slices.IndexFunc(reported, func(r workflows.StepResult) bool { return r.Container == id && r.Step == workflows.StepStart })
		load := slices.IndexFunc(reported, func(r workflows.StepResult) bool { return r.Container == id && r.Step == workflows.StepLoad })
		s.Less(start, load, id)
	}
	s.Equal(workflows.ProvisionResult{Started: 2, Loaded: 2}, res)
}

func (s *ProvisionSuite) TestWarmPoolContainerIsStartedThenAskedIfReadyButNeverLoaded() {
	fake := &tfFleet{}
	res, reported, err := s.provision(fake, fleet.Plan{
		Starts: []fleet.Container{tfStart("c3", "s1", 20002, ""), tfStart("c4", "s1", 20003, "")},
	})
	s.Require().NoError(err)
	s.Equal([]string{"m1-c3", "m1-c4"}, fake.keys(workflows.ActivityStartContainer))
	s.Empty(fake.began(workflows.ActivityLoadService))
	s.Empty(fake.began(workflows.ActivityStopContainer))
	for _, id := range []string{"m1-c3", "m1-c4"} {
		in, n := fake.input(workflows.ActivityReady, id)
		s.Require().Equal(1, n, "Ready calls of %s", id)
		s.Equal(id, in, "Ready takes the container ID")
		startDone := fake.index(workflows.ActivityStartContainer, id, true)
		readyBegan := fake.index(workflows.ActivityReady, id, false)
		s.Greater(readyBegan, startDone, "%s was asked if ready before its start returned", id)
	}
	for _, c := range fake.began(workflows.ActivityReady) {
		s.Equal(workflows.ContainerQueue(c.Key), c.Queue, "Ready of %s goes to the container's own queue", c.Key)
	}
	s.ElementsMatch([]workflows.StepResult{
		tfStartOK("c3", "s1", 20002), tfReadyOK("c3", "s1", 20002),
		tfStartOK("c4", "s1", 20003), tfReadyOK("c4", "s1", 20003),
	}, reported)
	for _, id := range []string{"m1-c3", "m1-c4"} {
		start := slices.IndexFunc(reported, func(r workflows.StepResult) bool { return r.Container == id && r.Step == workflows.StepStart })
		ready := slices.IndexFunc(reported, func(r workflows.StepResult) bool { return r.Container == id && r.Step == workflows.StepReady })
		s.Less(start, ready, id)
	}
	s.Equal(workflows.ProvisionResult{Started: 2}, res)
}

func (s *ProvisionSuite) TestWaitingContainerInLoadsIsLoadedWithoutStart() {
	fake := &tfFleet{}
	waiting := fleet.Container{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Loaded, Service: "web", PID: tfAgentPID("m1-c4"), Registered: true}
	res, reported, err := s.provision(fake, fleet.Plan{Loads: []fleet.Container{waiting}})
	s.Require().NoError(err)
	s.Empty(fake.began(workflows.ActivityStartContainer))
	s.Empty(fake.began(workflows.ActivityReady))
	load, n := fake.input(workflows.ActivityLoadService, "m1-c4")
	s.Require().Equal(1, n)
	s.Equal(workflows.LoadServiceInput{Container: "m1-c4", Server: "s1", Address: "10.0.0.1", Port: 20003, Service: tfWeb}, load)
	s.Equal([]workflows.StepResult{tfLoadOK("c4", "s1", 20003)}, reported)
	s.Equal(workflows.ProvisionResult{Loaded: 1}, res)
}

func (s *ProvisionSuite) TestPortInUseIsReportedAndNotLoaded() {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"non-retryable", temporal.NewNonRetryableApplicationError("port 20001 is held by pid 77", workflows.ErrPortInUse, nil)},
		// The retry policy must stop at the type even if the node forgot
		// to mark it non-retryable: a held port stays held.
		{"retryable by the node", temporal.NewApplicationError("port 20001 is held by pid 77", workflows.ErrPortInUse)},
	} {
		s.Run(tc.name, func() {
			fake := &tfFleet{startErr: map[string]error{"s1:20001": tc.err}}
			res, reported, err := s.provision(fake, fleet.Plan{
				Starts: []fleet.Container{tfStart("c1", "s1", 20000, "web"), tfStart("c2", "s1", 20001, "web")},
			})
			s.Require().NoError(err)
			_, n := fake.input(workflows.ActivityStartContainer, "m1-c2")
			s.Equal(1, n, "a port held by another process is not retried")
			s.Equal([]string{"m1-c1"}, fake.keys(workflows.ActivityLoadService))
			s.Empty(fake.began(workflows.ActivityStopContainer), "a container that never started is not stopped")
			s.ElementsMatch([]workflows.StepResult{
				tfStartOK("c1", "s1", 20000), tfLoadOK("c1", "s1", 20000),
				{Op: tfOp, Step: workflows.StepStart, Server: "s1", Container: "m1-c2", Port: 20001,
					ErrorType: workflows.ErrPortInUse, Error: "port 20001 is held by pid 77"},
			}, reported)
			s.Equal(workflows.ProvisionResult{Started: 1, Loaded: 1, Failed: 1}, res)
		})
	}
}

func (s *ProvisionSuite) TestFailedLaunchFailsThatServersContainersWithoutStartingThem() {
	fake := &tfFleet{launchErr: map[string]error{
		"s2": temporal.NewNonRetryableApplicationError("no capacity for s2", workflows.ErrNoCapacity, nil),
	}}
	res, reported, err := s.provision(fake, fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts: []fleet.Container{
			tfStart("c1", "s2", 21000, "web"), tfStart("c2", "s2", 21001, ""),
			tfStart("c3", "s1", 20000, "api"), // on a ready server: unaffected
		},
	})
	// The run fails with the outcome, once the rest of the plan is done.
	var app *temporal.ApplicationError
	s.Require().ErrorAs(err, &app)
	s.Equal(workflows.ErrNoCapacity, app.Type())
	s.Contains(app.Error(), "no capacity for a new server (s2: no capacity for s2); the rest of the plan was carried out")
	s.Require().NoError(app.Details(&res))
	s.Len(fake.began(workflows.ActivityLaunchServer), 1, "NoCapacity is not retried")
	s.Equal([]string{"m1-c3"}, fake.keys(workflows.ActivityStartContainer))
	s.Equal([]string{"m1-c3"}, fake.keys(workflows.ActivityLoadService))
	s.Empty(fake.began(workflows.ActivityReady), "the warm container m1-c2 never started")
	s.Empty(fake.began(workflows.ActivityStopContainer))
	notLaunched := "server s2 did not launch: no capacity for s2"
	s.ElementsMatch([]workflows.StepResult{
		{Op: tfOp, Step: workflows.StepServer, Server: "s2", ErrorType: workflows.ErrNoCapacity, Error: "no capacity for s2"},
		{Op: tfOp, Step: workflows.StepStart, Server: "s2", Container: "m1-c1", Port: 21000, ErrorType: workflows.ErrNoCapacity, Error: notLaunched},
		{Op: tfOp, Step: workflows.StepStart, Server: "s2", Container: "m1-c2", Port: 21001, ErrorType: workflows.ErrNoCapacity, Error: notLaunched},
		tfStartOK("c3", "s1", 20000), tfLoadOK("c3", "s1", 20000),
	}, reported)
	s.Equal(workflows.ProvisionResult{Started: 1, Loaded: 1, Failed: 3}, res)
}

func (s *ProvisionSuite) TestFailedLoadIsReportedWithItsType() {
	fake := &tfFleet{loadErr: map[string]error{
		"m1-c1": temporal.NewNonRetryableApplicationError("web exited with status 2", workflows.ErrLoadFailed, nil),
	}}
	res, reported, err := s.provision(fake, fleet.Plan{Starts: []fleet.Container{tfStart("c1", "s1", 20000, "web")}})
	s.Require().NoError(err)
	_, n := fake.input(workflows.ActivityLoadService, "m1-c1")
	s.Equal(1, n, "LoadFailed is not retried")
	s.ElementsMatch([]workflows.StepResult{
		tfStartOK("c1", "s1", 20000),
		{Op: tfOp, Step: workflows.StepLoad, Server: "s1", Container: "m1-c1", Port: 20000,
			ErrorType: workflows.ErrLoadFailed, Error: "web exited with status 2", Destroyed: true},
	}, reported)
	s.Equal(workflows.ProvisionResult{Started: 1, Failed: 1}, res)
}

// tfStopAttempts is the StopContainer retry policy's MaximumAttempts.
const tfStopAttempts = 5

func (s *ProvisionSuite) TestFailedLoadIsStoppedAndReportedDestroyed() {
	loadErr := temporal.NewNonRetryableApplicationError("web exited with status 2", workflows.ErrLoadFailed, nil)
	for _, tc := range []struct {
		name      string
		stopErr   error
		stops     int
		destroyed bool
	}{
		{"stopped", nil, 1, true},
		// A node that cannot stop it leaves the process (and its port)
		// in use: the lease must not be released.
		{"stop fails", errors.New("node s1 lost its process table"), tfStopAttempts, false},
	} {
		s.Run(tc.name, func() {
			fake := &tfFleet{
				loadErr: map[string]error{"m1-c1": loadErr},
				stopErr: map[string]error{"m1-c1": tc.stopErr},
			}
			res, reported, err := s.provision(fake, fleet.Plan{
				Starts: []fleet.Container{tfStart("c1", "s1", 20000, "web"), tfStart("c2", "s1", 20001, "web")},
			})
			s.Require().NoError(err)
			stops := fake.began(workflows.ActivityStopContainer)
			s.Require().Len(stops, tc.stops, "only the failed m1-c1 is stopped (retried while its node fails)")
			for _, c := range stops {
				s.Equal(workflows.NodeQueue("s1"), c.Queue, "a container is stopped by its node")
				s.Equal(workflows.StopContainerInput{Container: "m1-c1"}, c.Input)
			}
			s.Greater(fake.index(workflows.ActivityStopContainer, "m1-c1", false),
				fake.index(workflows.ActivityLoadService, "m1-c1", true), "stopped before its load returned")
			s.ElementsMatch([]workflows.StepResult{
				tfStartOK("c1", "s1", 20000),
				{Op: tfOp, Step: workflows.StepLoad, Server: "s1", Container: "m1-c1", Port: 20000,
					ErrorType: workflows.ErrLoadFailed, Error: "web exited with status 2", Destroyed: tc.destroyed},
				tfStartOK("c2", "s1", 20001), tfLoadOK("c2", "s1", 20001),
			}, reported)
			s.Equal(workflows.ProvisionResult{Started: 2, Loaded: 1, Failed: 1}, res)
		})
	}
}

func (s *ProvisionSuite) TestPortInUseOnLoadIsNotRetriedAndTheContainerIsStopped() {
	// The agent found its leased port taken when it loaded the service:
	// retrying cannot free it, even if the agent forgot to say so.
	fake := &tfFleet{loadErr: map[string]error{
		"m1-c1": temporal.NewApplicationError("port 20000 is held by pid 77", workflows.ErrPortInUse),
	}}
	res, reported, err := s.provision(fake, fleet.Plan{Starts: []fleet.Container{tfStart("c1", "s1", 20000, "web")}})
	s.Require().NoError(err)
	_, n := fake.input(workflows.ActivityLoadService, "m1-c1")
	s.Equal(1, n, "PortInUse is not retried")
	s.Equal([]string{"m1-c1"}, fake.keys(workflows.ActivityStopContainer))
	s.ElementsMatch([]workflows.StepResult{
		tfStartOK("c1", "s1", 20000),
		{Op: tfOp, Step: workflows.StepLoad, Server: "s1", Container: "m1-c1", Port: 20000,
			ErrorType: workflows.ErrPortInUse, Error: "port 20000 is held by pid 77", Destroyed: true},
	}, reported)
	s.Equal(workflows.ProvisionResult{Started: 1, Failed: 1}, res)
}

func (s *ProvisionSuite) TestWarmContainerWhoseAgentNeverAnswersIsDestroyed() {
	for _, tc := range []struct {
		name    string
		err     error
		readies int
		errType string
		message string
	}{
		{
			// The agent never polled its queue: the server times the
			// Ready task out before any worker took it. Not retried.
			name: "never polled", err: temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START, nil),
			readies: 1, errType: "AgentAway",
			message: "container m1-c4 did not come up on s1 within 30s: its `msm agent` process never polled " +
				"msm-container-m1-c4; see the node agent's log",
		},
		{
			// An agent that answers with an error is retried first.
			name: "answers with an error", err: errors.New("agent is shutting down"),
			readies: 3, errType: "", message: "agent is shutting down",
		},
	} {
		s.Run(tc.name, func() {
			fake := &tfFleet{readyErr: map[string]error{"m1-c4": tc.err}}
			res, reported, err := s.provision(fake, fleet.Plan{
				Starts: []fleet.Container{tfStart("c3", "s1", 20002, ""), tfStart("c4", "s1", 20003, "")},
			})
			s.Require().NoError(err)
			_, n := fake.input(workflows.ActivityReady, "m1-c4")
			s.Equal(tc.readies, n, "Ready attempts")
			s.Empty(fake.began(workflows.ActivityLoadService))
			stops := fake.began(workflows.ActivityStopContainer)
			s.Require().Len(stops, 1, "only m1-c4 is stopped")
			s.Equal(workflows.NodeQueue("s1"), stops[0].Queue)
			s.Equal(workflows.StopContainerInput{Container: "m1-c4"}, stops[0].Input)
			s.Greater(fake.index(workflows.ActivityStopContainer, "m1-c4", false),
				fake.index(workflows.ActivityReady, "m1-c4", true), "stopped before Ready gave up")
			s.ElementsMatch([]workflows.StepResult{
				tfStartOK("c3", "s1", 20002), tfReadyOK("c3", "s1", 20002),
				tfStartOK("c4", "s1", 20003),
				{Op: tfOp, Step: workflows.StepReady, Server: "s1", Container: "m1-c4", Port: 20003,
					ErrorType: tc.errType, Error: tc.message, Destroyed: true},
			}, reported)
			s.Equal(workflows.ProvisionResult{Started: 2, Failed: 1}, res)
		})
	}
}

func (s *ProvisionSuite) TestResultCountsMatchTheStepsReported() {
	fake := &tfFleet{startErr: map[string]error{
		"s1:20001": temporal.NewNonRetryableApplicationError("port 20001 is held", workflows.ErrPortInUse, nil),
	}}
	res, reported, err := s.provision(fake, fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts: []fleet.Container{
			tfStart("c5", "s2", 21000, "web"), tfStart("c6", "s2", 21001, ""), tfStart("c7", "s1", 20001, "api"),
		},
		Loads: []fleet.Container{{ID: "m1-c4", Server: "s1", Port: 20003, State: fleet.Loaded, Service: "web"}},
	})
	s.Require().NoError(err)
	s.Equal(workflows.ProvisionResult{Servers: 1, Started: 2, Loaded: 2, Failed: 1}, res)

	var got workflows.ProvisionResult
	for _, r := range reported {
		s.Equal(tfOp, r.Op)
		switch {
		case r.Step == workflows.StepServer && r.OK:
			got.Servers++
		case r.Step == workflows.StepStart && r.OK:
			got.Started++
		case r.Step == workflows.StepLoad && r.OK:
			got.Loaded++
		case !r.OK:
			got.Failed++
		}
	}
	s.Equal(res, got, "the result counts what was reported")
	s.Len(reported, 7) // s2, three starts, two loads (c5 and c4), c6 ready
	s.Equal([]string{"m1-c5", "m1-c6", "m1-c7"}, fake.keys(workflows.ActivityStartContainer))
	s.Equal([]string{"m1-c4", "m1-c5"}, fake.keys(workflows.ActivityLoadService))
	s.Equal([]string{"m1-c6"}, fake.keys(workflows.ActivityReady))
	s.Empty(fake.began(workflows.ActivityStopContainer), "c7 never started: nothing to stop")
}

func (s *ProvisionSuite) TestUnreachableManagerDoesNotFailTheOperation() {
	// The Manager is gone (reset, or a new run not yet up): the steps are
	// done all the same, and the outcome is in the result.
	fake := &tfFleet{}
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(30 * time.Second)
	fake.register(env)
	env.OnSignalExternalWorkflow(mock.Anything, mock.Anything, mock.Anything, mock.Anything, mock.Anything).
		Return(errors.New("unknown external workflow execution"))
	env.ExecuteWorkflow(workflows.Provision, workflows.ProvisionInput{
		Op: tfOp, Manager: tfManager, Kind: catalog.KindStandalone,
		Plan:     fleet.Plan{Starts: []fleet.Container{tfStart("c1", "s1", 20000, "web")}},
		Services: []catalog.Service{tfWeb}, Addresses: map[string]string{"s1": tfS1.Address},
	})
	s.Require().True(env.IsWorkflowCompleted())
	s.Require().NoError(env.GetWorkflowError())
	var res workflows.ProvisionResult
	s.Require().NoError(env.GetWorkflowResult(&res))
	s.Equal(workflows.ProvisionResult{Started: 1, Loaded: 1}, res)
}

func (s *ProvisionSuite) TestStartsAServersContainersInOneStep() {
	fake := &tfFleet{}
	res, reported, err := s.provision(fake, fleet.Plan{
		Servers: []fleet.Server{tfServer(tfS2, fleet.ServerLaunching)},
		Starts: []fleet.Container{
			tfStart("c1", "s1", 20000, "web"), tfStart("c2", "s2", 21000, "api"),
			tfStart("c3", "s1", 20001, ""), tfStart("c4", "s1", 20002, "api"), tfStart("c5", "s2", 21001, "web"),
		},
	})
	s.Require().NoError(err)
	s.Equal(map[string][][]string{
		"s1": {{"m1-c1", "m1-c3", "m1-c4"}},
		"s2": {{"m1-c2", "m1-c5"}},
	}, fake.batches(), "one step per server, its containers in plan order")
	for _, c := range fake.began(workflows.ActivityStartContainers) {
		s.Equal(workflows.NodeQueue(c.Key), c.Queue)
		s.Equal(tfManager, c.Input.(workflows.StartContainersInput).Manager)
	}
	s.Greater(fake.index(workflows.ActivityStartContainers, "s2", false), fake.index(workflows.ActivityLaunchServer, "s2", true),
		"s2's batch waits for its launch")
	s.Equal([]string{"m1-c1", "m1-c2", "m1-c3", "m1-c4", "m1-c5"}, fake.keys(workflows.ActivityStartContainer), "each started once")
	s.Equal(workflows.ProvisionResult{Servers: 1, Started: 5, Loaded: 4}, res)
	s.Contains(reported, tfStartOK("c4", "s1", 20002))
	s.Contains(reported, tfLoadOK("c5", "s2", 21001))
	s.Contains(reported, tfReadyOK("c3", "s1", 20001))
}

func (s *ProvisionSuite) TestAContainerWhoseStartFailedInItsBatchIsRetriedAlone() {
	fake := &tfFleet{startErr: map[string]error{"s1:20001": errors.New("fork/exec msm-agent: resource temporarily unavailable")}}
	res, reported, err := s.provision(fake, fleet.Plan{
		Starts: []fleet.Container{tfStart("c1", "s1", 20000, "web"), tfStart("c2", "s1", 20001, "web"), tfStart("c3", "s1", 20002, "api")},
	})
	s.Require().NoError(err)
	s.Len(fake.batches()["s1"], 1)
	_, n := fake.input(workflows.ActivityStartContainer, "m1-c2")
	s.Equal(1+5, n, "once in its batch, then StartContainer's five attempts")
	for _, id := range []string{"m1-c1", "m1-c3"} {
		_, n := fake.input(workflows.ActivityStartContainer, id)
		s.Equal(1, n, "%s started in the batch is not started again", id)
	}
	s.Equal([]string{"m1-c1", "m1-c3"}, fake.keys(workflows.ActivityLoadService), "the others load")
	s.Contains(reported, workflows.StepResult{Op: tfOp, Step: workflows.StepStart, Server: "s1", Container: "m1-c2", Port: 20001,
		Error: "fork/exec msm-agent: resource temporarily unavailable"})
	s.Equal(workflows.ProvisionResult{Started: 2, Loaded: 2, Failed: 1}, res)
}

func (s *ProvisionSuite) TestStartBatchesAreCappedInSize() {
	var starts []fleet.Container
	for i := range 70 {
		starts = append(starts, tfStart(fmt.Sprintf("c%d", i+1), "s1", 20000+i, ""))
	}
	fake := &tfFleet{}
	res, _, err := s.provision(fake, fleet.Plan{Starts: starts})
	s.Require().NoError(err)
	var sizes []int
	for _, b := range fake.batches()["s1"] {
		sizes = append(sizes, len(b))
	}
	slices.Sort(sizes)
	s.Equal([]int{6, 32, 32}, sizes)
	s.Equal(70, res.Started)
}

// Operations begun before batch-starts start each container on its own.
func (s *ProvisionSuite) TestRunsBeforeBatchStartsStartOneByOne() {
	fake := &tfFleet{}
	env := s.NewTestWorkflowEnvironment()
	env.OnGetVersion("batch-starts", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	fake.register(env)
	env.OnSignalExternalWorkflow(mock.Anything, workflows.ManagerID(tfManager), "", mock.Anything, mock.Anything).Return(nil)
	env.ExecuteWorkflow(workflows.Provision, workflows.ProvisionInput{
		Op: tfOp, Manager: tfManager, Kind: catalog.KindStandalone, Services: []catalog.Service{tfWeb, tfAPI},
		Plan: fleet.Plan{Starts: []fleet.Container{tfStart("c1", "s1", 20000, "web"), tfStart("c2", "s1", 20001, "api")}},
	})
	s.Require().NoError(env.GetWorkflowError())
	s.Empty(fake.began(workflows.ActivityStartContainers))
	s.Equal([]string{"m1-c1", "m1-c2"}, fake.keys(workflows.ActivityStartContainer))
	s.Equal([]string{"m1-c1", "m1-c2"}, fake.keys(workflows.ActivityLoadService))
}
