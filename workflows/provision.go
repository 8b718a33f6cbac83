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
	"github.com/msm-project/msm/workflows/agentapi"
)

// Timeouts of the Provision steps. ScheduleToStart on an agent's queue is how
// long a command waits for an agent that is not (yet) polling.
const (
	launchTimeout    = 5 * time.Minute
	launchHeartbeat  = 2 * time.Second // a worker that died mid-launch: retried after this
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
func Provision(ctx workflow.Context, in ProvisionInput) (res ProvisionResult, err error) {
	if err := startedByManager(ctx, in.Manager); err != nil {
		return res, err
	}
	base, flush := reporterOf(ctx, in.Manager, in.Op)
	defer func() { res.Steps = flush(err == nil) }()
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

	batched := workflow.GetVersion(ctx, batchStartsChange, workflow.DefaultVersion, 1) == 1
	wg := workflow.NewWaitGroup(ctx)
	// After its start, a container loads its service, or waits to be
	// ready in the warm pool.
	then := func(ctx workflow.Context, c fleet.Container, pid int, err error) {
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
	}
	// launchFailed fails the containers of a server that did not launch.
	launchFailed := func(ctx workflow.Context, c fleet.Container, err error) {
		res.Failed++
		report.send(ctx, StepResult{Step: StepStart, Container: c.ID, Server: c.Server, Port: c.Port,
			ErrorType: errorType(err), Error: "server " + c.Server + " did not launch: " + rootMessage(err)})
	}
	if batched {
		for _, b := range startBatches(in.Plan.Starts) {
			wg.Add(len(b))
			workflow.Go(ctx, func(ctx workflow.Context) {
				ctx = report.lost.on(ctx, b[0].Server)
				if f, ok := launched[b[0].Server]; ok {
					if err := f.Get(ctx, nil); err != nil {
						for _, c := range b {
							launchFailed(ctx, c, err)
							wg.Done()
						}
						return
					}
				}
				outs := startContainers(ctx, q, in.Manager, b)
				for i, c := range b {
					workflow.Go(ctx, func(ctx workflow.Context) {
						defer wg.Done()
						o := outs[i]
						if o.retry {
							o.pid, o.err = startContainer(ctx, q, in.Manager, c)
						}
						then(ctx, c, o.pid, o.err)
					})
				}
			})
		}
	} else {
		for _, c := range in.Plan.Starts {
			wg.Add(1)
			workflow.Go(ctx, func(ctx workflow.Context) {
				defer wg.Done()
				ctx = report.lost.on(ctx, c.Server)
				if f, ok := launched[c.Server]; ok {
					if err := f.Get(ctx, nil); err != nil {
						launchFailed(ctx, c, err)
						return
					}
				}
				pid, err := startContainer(ctx, q, in.Manager, c)
				then(ctx, c, pid, err)
			})
		}
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
			NonRetryableErrorTypes: PermanentStart,
		},
	})
	in := StartContainerInput{Manager: manager, Container: c.ID, Server: c.Server, Port: c.Port}
	if c.Image != "" {
		in.Image, in.Service = c.Image, c.Service
	}
	var out StartContainerResult
	err := workflow.ExecuteActivity(actx, ActivityStartContainer, in).Get(ctx, &out)
	if isScheduleToStartTimeout(err) {
		return 0, nodeAway(c.Server, err)
	}
	return out.PID, err
}

func nodeAway(server string, err error) error {
	return temporal.NewNonRetryableApplicationError(
		"the node agent of server "+server+" did not take the start within "+nodeWaitTimeout.String()+
			": is `msm node --server "+server+"` running and connected to this namespace?", "NodeAway", err)
}

// batchStartsChange gates starting a server's new containers with one
// StartContainers step instead of one StartContainer each: operations
// begun before it replay as they ran.
const batchStartsChange = "batch-starts"

// maxStartBatch caps the containers one StartContainers step starts.
const maxStartBatch = 32

// startBatches groups starts by server, in plan order, at most
// maxStartBatch to a group.
func startBatches(starts []fleet.Container) [][]fleet.Container {
	var out [][]fleet.Container
	open := map[string]int{} // server → its last group in out
	for _, c := range starts {
		i, ok := open[c.Server]
		if !ok || len(out[i]) == maxStartBatch {
			i = len(out)
			out = append(out, nil)
			open[c.Server] = i
		}
		out[i] = append(out[i], c)
	}
	return out
}

// started is how one container's start in a batch ended: retry says to
// start it again on its own.
type started struct {
	pid   int
	err   error
	retry bool
}

// startContainers starts a batch of containers of one server in one node
// step. A batch the node did not take in time fails every container of it
// (NodeAway); one that failed otherwise has each container started again
// on its own, with startContainer's retries, so a batch never fails more
// than its containers would have one at a time.
func startContainers(ctx workflow.Context, q queues, manager string, b []fleet.Container) []started {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              q.node(b[0].Server),
		ScheduleToStartTimeout: nodeWaitTimeout,
		// StartParallel starts at a time, each up to startTimeout.
		StartToCloseTimeout: startTimeout * time.Duration((len(b)+StartParallel-1)/StartParallel),
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumAttempts: 2},
	})
	in := StartContainersInput{Manager: manager, Server: b[0].Server, Containers: make([]StartContainer, len(b))}
	for i, c := range b {
		in.Containers[i] = StartContainer{Container: c.ID, Port: c.Port}
		if c.Image != "" {
			in.Containers[i].Image, in.Containers[i].Service = c.Image, c.Service
		}
	}
	var out StartContainersResult
	err := workflow.ExecuteActivity(actx, ActivityStartContainers, in).Get(ctx, &out)
	res := make([]started, len(b))
	for i := range b {
		switch {
		case isScheduleToStartTimeout(err):
			res[i].err = nodeAway(b[i].Server, err)
		case err != nil || i >= len(out.Started) || out.Started[i].Container != b[i].ID:
			res[i].retry = true
		case out.Started[i].Retry:
			res[i].retry = true
		case out.Started[i].Error != "":
			o := out.Started[i]
			res[i].err = temporal.NewNonRetryableApplicationError(o.Error, o.ErrorType, nil)
		default:
			res[i].pid = out.Started[i].PID
		}
	}
	return res
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
// histories hold. From its version 2 on, an operation its Manager started
// returns the steps that finished after its last signal in its result
// (Steps), which the Manager records when it ends, so an operation whose
// steps all end together (one load, one destroy) sends no signal at all:
// one workflow task fewer in each history.
const batchResultsChange = "batch-results"

// maxBatch caps the steps one signal, or an operation's result, carries
// (~200 bytes each).
const maxBatch = 500

// reporterOf returns how this operation reports its steps, and flush,
// which an operation defers so that every step is delivered before it
// ends: flush(true), when it ends well, returns the steps left for its
// result (none before version 2, or when its parent is not its Manager);
// flush(false) signals them all. Operations begun before
// batchResultsChange send one signal per step (flush does nothing).
func reporterOf(ctx workflow.Context, manager, op string) (send func(workflow.Context, StepResult), flush func(ok bool) []StepResult) {
	v := workflow.GetVersion(ctx, batchResultsChange, workflow.DefaultVersion, 2)
	if v == workflow.DefaultVersion {
		return reporter(manager, op), func(bool) []StepResult { return nil }
	}
	parent := workflow.GetInfo(ctx).ParentWorkflowExecution
	b := &batcher{manager: manager, op: op, returns: v >= 2 && parent != nil && parent.ID == ManagerID(manager)}
	dctx, _ := workflow.NewDisconnectedContext(ctx)
	workflow.Go(dctx, b.run)
	return b.send, func(ok bool) []StepResult {
		b.keep = ok && b.returns
		b.closed = true
		_ = workflow.Await(dctx, func() bool { return b.done })
		rest := b.pending
		b.pending = nil
		return rest
	}
}

// batcher sends the steps reported to it as they come: one signal at a
// time, carrying all that finished while the one before was in flight.
type batcher struct {
	manager, op string
	pending     []StepResult
	returns     bool // the operation's result can carry the last steps
	closed      bool // no more steps come: send what is left, then done
	keep        bool // with closed: leave up to maxBatch steps for the result
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
		if len(b.pending) == 0 || (b.keep && len(b.pending) <= maxBatch) {
			return
		}
		n := min(len(b.pending), maxBatch)
		batch := StepResults{Steps: b.pending[:n:n]}
		b.pending = b.pending[n:]
		batch.Auth = agentapi.Sign(operationKey(ctx, b.op), batch.Fields())
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
		r.Auth = agentapi.Sign(operationKey(ctx, op), r.Fields())
		if err := workflow.SignalExternalWorkflow(ctx, ManagerID(manager), "", SignalResult, r).Get(ctx, nil); err != nil {
			workflow.GetLogger(ctx).Error("reporting to the Manager", "error", err, "step", r.Step, "container", r.Container)
		}
	}
}
