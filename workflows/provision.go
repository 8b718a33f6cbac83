package workflows

import (
	"errors"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
)

// Timeouts of the Provision steps. ScheduleToStart on an agent's queue is how
// long a command waits for an agent that is not (yet) polling.
const (
	launchTimeout    = 5 * time.Minute
	launchHeartbeat  = 20 * time.Second
	nodeWaitTimeout  = time.Minute
	startTimeout     = 30 * time.Second
	agentWaitTimeout = 30 * time.Second
	loadTimeout      = 2 * time.Minute
	loadHeartbeat    = 10 * time.Second
)

// Provision carries out a decided plan: launch the new servers, start the new
// container processes through each server's node agent, and tell each
// container with a service to load it on its leased port. Steps for different
// containers run side by side; each finished step is reported to the Manager
// at once, so status shows progress while the operation runs.
func Provision(ctx workflow.Context, in ProvisionInput) (ProvisionResult, error) {
	var res ProvisionResult
	base, flush := reporterOf(ctx, in.Manager, in.Op)
	defer flush()
	report := reportLost(base, watchLost(ctx))
	q := queuesOf(in.Kind, in.Manager)

	// Launch servers side by side; containers on a server wait for it.
	launched := map[string]workflow.Future{}
	var full []string // servers the provider had no room for
	for _, s := range in.Plan.Servers {
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:           TaskQueue,
			StartToCloseTimeout: launchTimeout,
			// A launch whose worker died is retried after this, not after
			// launchTimeout: LaunchServer heartbeats while the provider works.
			HeartbeatTimeout: launchHeartbeat,
			RetryPolicy: &temporal.RetryPolicy{
				InitialInterval:        time.Second,
				MaximumAttempts:        10,
				NonRetryableErrorTypes: []string{ErrUnknownKind, ErrNoCapacity, ErrProviderConfig},
			},
		})
		f, set := workflow.NewFuture(ctx)
		launched[s.ID] = f
		lin := LaunchServerInput{Manager: in.Manager, Kind: in.Kind, Key: in.Manager + "/" + s.ID, Server: s, Config: in.Config}
		workflow.Go(ctx, func(ctx workflow.Context) {
			var out LaunchServerResult
			err := workflow.ExecuteActivity(actx, ActivityLaunchServer, lin).Get(ctx, &out)
			r := StepResult{Step: StepServer, Server: lin.Server.ID, OK: err == nil, Address: out.Address}
			if err == nil && out.Address != "" {
				// The containers placed on it load on the address it got.
				if in.Addresses == nil {
					in.Addresses = map[string]string{}
				}
				in.Addresses[lin.Server.ID] = out.Address
			}
			if err != nil {
				r.ErrorType, r.Error = errorType(err), rootMessage(err)
				res.Failed++
				if r.ErrorType == ErrNoCapacity {
					full = append(full, lin.Server.ID+": "+r.Error)
				}
			} else {
				res.Servers++
			}
			report.send(ctx, r)
			set.Set(nil, err)
		})
	}
	specs := map[string]catalog.Service{}
	for _, s := range in.Services {
		specs[s.Name] = s
	}

	wg := workflow.NewWaitGroup(ctx)
	for _, c := range in.Plan.Starts {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			ctx = report.lost.on(ctx, c.Server)
			if f, ok := launched[c.Server]; ok {
				if err := f.Get(ctx, nil); err != nil {
					res.Failed++
					report.send(ctx, StepResult{Step: StepStart, Container: c.ID, Server: c.Server, Port: c.Port,
						ErrorType: errorType(err), Error: "server " + c.Server + " did not launch: " + rootMessage(err)})
					return
				}
			}
			pid, err := startContainer(ctx, q, in.Manager, c)
			r := StepResult{Step: StepStart, Container: c.ID, Server: c.Server, Port: c.Port, PID: pid, OK: err == nil}
			if err != nil {
				r.ErrorType, r.Error = errorType(err), rootMessage(err)
				res.Failed++
				report.send(ctx, r)
				return
			}
			res.Started++
			report.send(ctx, r)
			if c.Service != "" {
				loadService(ctx, q, c, in.Addresses[c.Server], specs[c.Service], &res, report.send)
			} else {
				awaitReady(ctx, q, c, &res, report.send)
			}
		})
	}
	for _, c := range in.Plan.Loads {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			loadService(report.lost.on(ctx, c.Server), q, c, in.Addresses[c.Server], specs[c.Service], &res, report.send)
		})
	}
	wg.Wait(ctx)
	if len(full) > 0 {
		// The outcome says so, in the Web UI too: the run fails with it.
		return res, temporal.NewNonRetryableApplicationError(
			"no capacity for a new server ("+strings.Join(full, "; ")+"); the rest of the plan was carried out", ErrNoCapacity, nil, res)
	}
	return res, nil
}

func startContainer(ctx workflow.Context, q queues, manager string, c fleet.Container) (int, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              q.node(c.Server),
		ScheduleToStartTimeout: nodeWaitTimeout,
		StartToCloseTimeout:    startTimeout,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        200 * time.Millisecond,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: []string{ErrPortInUse},
		},
	})
	var out StartContainerResult
	err := workflow.ExecuteActivity(actx, ActivityStartContainer, StartContainerInput{
		Manager: manager, Container: c.ID, Server: c.Server, Port: c.Port,
	}).Get(ctx, &out)
	if isScheduleToStartTimeout(err) {
		return 0, temporal.NewNonRetryableApplicationError(
			"the node agent of server "+c.Server+" did not take the start within "+nodeWaitTimeout.String()+
				": is `msm node --server "+c.Server+"` running and connected to this namespace?", "NodeAway", err)
	}
	return out.PID, err
}

func loadService(ctx workflow.Context, q queues, c fleet.Container, address string, spec catalog.Service, res *ProvisionResult, report func(workflow.Context, StepResult)) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              q.container(c.ID),
		ScheduleToStartTimeout: agentWaitTimeout,
		StartToCloseTimeout:    loadTimeout,
		HeartbeatTimeout:       loadHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        500 * time.Millisecond,
			MaximumAttempts:        3,
			NonRetryableErrorTypes: []string{ErrLoadFailed, ErrPortInUse},
		},
	})
	var out LoadServiceResult
	err := workflow.ExecuteActivity(actx, ActivityLoadService, LoadServiceInput{
		Container: c.ID, Server: c.Server, Address: address, Port: c.Port, Service: spec,
	}).Get(ctx, &out)
	if isScheduleToStartTimeout(err) {
		err = agentAway(q, c, err)
	}
	r := StepResult{Step: StepLoad, Container: c.ID, Server: c.Server, Port: c.Port, PID: out.PID, OK: err == nil}
	if err != nil {
		r.ErrorType, r.Error = errorType(err), rootMessage(err)
		r.Destroyed = destroy(ctx, q, c)
		res.Failed++
	} else {
		res.Loaded++
	}
	report(ctx, r)
}

// awaitReady waits until a warm-pool container's agent answers on its own
// queue: only then is it waiting. One that never comes is destroyed.
func awaitReady(ctx workflow.Context, q queues, c fleet.Container, res *ProvisionResult, report func(workflow.Context, StepResult)) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              q.container(c.ID),
		ScheduleToStartTimeout: agentWaitTimeout,
		StartToCloseTimeout:    startTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumAttempts: 3},
	})
	var out ReadyResult
	err := workflow.ExecuteActivity(actx, ActivityReady, c.ID).Get(ctx, &out)
	if isScheduleToStartTimeout(err) {
		err = agentAway(q, c, err)
	}
	r := StepResult{Step: StepReady, Container: c.ID, Server: c.Server, Port: c.Port, PID: out.PID, OK: err == nil}
	if err != nil {
		r.ErrorType, r.Error = errorType(err), rootMessage(err)
		r.Destroyed = destroy(ctx, q, c)
		res.Failed++
	}
	report(ctx, r)
}

// destroy stops a container that failed, through its node, and reports
// whether it is gone: only then may its port lease be released.
func destroy(ctx workflow.Context, q queues, c fleet.Container) bool {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              q.node(c.Server),
		ScheduleToStartTimeout: nodeWaitTimeout,
		StartToCloseTimeout:    startTimeout,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumAttempts: 5},
	})
	err := workflow.ExecuteActivity(actx, ActivityStopContainer, StopContainerInput{Container: c.ID}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(ctx).Error("destroying a failed container", "container", c.ID, "error", err)
	}
	return err == nil
}

func agentAway(q queues, c fleet.Container, err error) error {
	why := ": its `msm agent` process never polled " + ContainerQueue(c.ID) + "; see the node agent's log"
	if q.sim != "" {
		why = ": the simulated fleet's worker took no task from " + q.sim + " in time (the worker or the Temporal server is overloaded)"
	}
	return temporal.NewNonRetryableApplicationError(
		"container "+c.ID+" did not come up on "+c.Server+" within "+agentWaitTimeout.String()+why, "AgentAway", err)
}

func isScheduleToStartTimeout(err error) bool {
	var timeout *temporal.TimeoutError
	return errors.As(err, &timeout) && timeout.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START
}

// errorType is the type name of an application error in err's chain, or "".
func errorType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return "Timeout"
	}
	return ""
}

// stepReporter reports steps even from a step whose context a lost server
// cancelled, and says so in the error of a step that failed that way.
type stepReporter struct {
	base func(workflow.Context, StepResult)
	lost *lostServers
}

func reportLost(base func(workflow.Context, StepResult), lost *lostServers) *stepReporter {
	return &stepReporter{base: base, lost: lost}
}

// send reports r from the step's coroutine, on a context its cancellation
// does not reach.
func (s *stepReporter) send(ctx workflow.Context, r StepResult) {
	if !r.OK && r.Container != "" {
		r.Error = s.lost.explain(r.Server, r.Error)
	}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	s.base(dctx, r)
}

// batchResultsChange gates reporting an operation's steps in batches: one
// `results` signal carries every step finished since the last one was
// delivered, instead of one `result` signal per step. At fleet scale this
// is most of the signals the Manager receives and of the events both
// histories hold.
const batchResultsChange = "batch-results"

// maxBatch caps the steps one signal carries (~200 bytes each).
const maxBatch = 500

// reporterOf returns how this operation reports its steps, and flush,
// which an operation defers so that every step is delivered before it
// ends. Operations begun before batchResultsChange send one signal per
// step (flush does nothing).
func reporterOf(ctx workflow.Context, manager, op string) (send func(workflow.Context, StepResult), flush func()) {
	if workflow.GetVersion(ctx, batchResultsChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return reporter(manager, op), func() {}
	}
	b := &batcher{manager: manager, op: op}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, b.run)
	return b.send, func() {
		b.closed = true
		_ = workflow.Await(dctx, func() bool { return b.done })
	}
}

// batcher sends the steps reported to it as they come: one signal at a
// time, carrying all that finished while the one before was in flight.
type batcher struct {
	manager, op string
	pending     []StepResult
	closed      bool // no more steps come: send what is left, then done
	done        bool
}

func (b *batcher) send(_ workflow.Context, r StepResult) {
	r.Op = b.op
	b.pending = append(b.pending, r)
}

func (b *batcher) run(ctx workflow.Context) {
	defer func() { b.done = true }()
	for {
		if err := workflow.Await(ctx, func() bool { return len(b.pending) > 0 || b.closed }); err != nil {
			return
		}
		if len(b.pending) == 0 {
			return
		}
		n := min(len(b.pending), maxBatch)
		batch := StepResults{Steps: b.pending[:n:n]}
		b.pending = b.pending[n:]
		if err := workflow.SignalExternalWorkflow(ctx, ManagerID(b.manager), "", SignalResults, batch).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("reporting to the Manager", "error", err, "steps", len(batch.Steps))
		}
	}
}

// reporter returns how an operation reports a finished step to its
// Manager, which records it: operations carry out plans, only the Manager
// writes state. The Manager is a long-lived entity: its current run gets
// the signal.
func reporter(manager, op string) func(workflow.Context, StepResult) {
	return func(ctx workflow.Context, r StepResult) {
		r.Op = op
		if err := workflow.SignalExternalWorkflow(ctx, ManagerID(manager), "", SignalResult, r).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("reporting to the Manager", "error", err, "step", r.Step, "container", r.Container)
		}
	}
}
