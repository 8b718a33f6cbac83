package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
)

// WorkflowShrink is the workflow type of a Shrink operation.
const WorkflowShrink = "Shrink"

// ShrinkInput is the plan a Shrink operation carries out.
type ShrinkInput struct {
	Op      string           `json:"op"`
	Manager string           `json:"manager"`
	Kind    string           `json:"kind"`
	Plan    fleet.ShrinkPlan `json:"plan"`
	// Drain is how long a removed instance keeps serving before it is
	// unloaded, so requests in flight finish.
	Drain time.Duration `json:"drain"`
	// Config is the catalog's manager section for the ec2 and azure kinds.
	Config *catalog.Manager `json:"config,omitempty"`
}

// ShrinkResult summarizes a Shrink for the Web UI.
type ShrinkResult struct {
	Unloaded  int `json:"unloaded"`
	Destroyed int `json:"destroyed"`
	Released  int `json:"released"`
	Failed    int `json:"failed"`
	// Steps are the steps the Manager was not signalled (batchResultsChange).
	Steps []StepResult `json:"steps,omitempty"`
}

// Steps of a Shrink.
const (
	StepUnload  = "unload"  // a container returned to the warm pool
	StepDestroy = "destroy" // a container stopped and removed
	StepRelease = "release" // an empty server released
)

// Shrink carries out a decided removal: after the drain period, each
// instance is unloaded back to the warm pool or destroyed, side by side;
// then the servers left empty are released. Each step is reported to the
// Manager as it finishes.
func Shrink(ctx workflow.Context, in ShrinkInput) (res ShrinkResult, err error) {
	if err := startedByManager(ctx, in.Manager); err != nil {
		return res, err
	}
	base, flush := reporterOf(ctx, in.Manager, in.Op)
	defer func() { res.Steps = flush(err == nil) }()
	rep := reportLost(base, watchLost(ctx))
	report := rep.send
	q := queuesOf(in.Kind, in.Manager)
	if in.Drain > 0 {
		if err := workflow.Sleep(ctx, in.Drain); err != nil {
			return res, err
		}
	}
	wg := workflow.NewWaitGroup(ctx)
	for _, c := range in.Plan.Unloads {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			ctx = rep.lost.on(ctx, c.Server)
			actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
				TaskQueue:              q.container(c.ID),
				ScheduleToStartTimeout: agentWaitTimeout,
				StartToCloseTimeout:    startTimeout,
				RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, MaximumAttempts: 3},
			})
			err := workflow.ExecuteActivity(actx, ActivityUnloadService, c.ID).Get(ctx, nil)
			r := StepResult{Step: StepUnload, Container: c.ID, Server: c.Server, Port: c.Port, OK: err == nil}
			if err != nil {
				// A container that cannot be unloaded is destroyed instead.
				r.ErrorType, r.Error = errorType(err), rootMessage(err)
				r.Destroyed = destroy(ctx, q, c)
				res.Failed++
			} else {
				res.Unloaded++
			}
			report(ctx, r)
		})
	}
	// stuck are servers with a container that could not be stopped: they
	// are not released under it.
	stuck := map[string]bool{}
	for _, c := range in.Plan.Destroys {
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			ok := destroy(rep.lost.on(ctx, c.Server), q, c)
			r := StepResult{Step: StepDestroy, Container: c.ID, Server: c.Server, Port: c.Port, OK: ok, Destroyed: ok}
			if ok {
				res.Destroyed++
			} else {
				r.Error = "the node did not stop it; it keeps its lease until it is fenced"
				stuck[c.Server] = true
				res.Failed++
			}
			report(ctx, r)
		})
	}
	wg.Wait(ctx)
	for _, s := range in.Plan.Release {
		if stuck[s] {
			res.Failed++
			report(ctx, StepResult{Step: StepRelease, Server: s, Error: "a container on it could not be stopped; the server is kept until it is fenced"})
			continue
		}
		actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			TaskQueue:           TaskQueue,
			StartToCloseTimeout: launchTimeout,
			RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 10},
		})
		err := workflow.ExecuteActivity(actx, ActivityReleaseServer, ReleaseServerInput{Manager: in.Manager, Kind: in.Kind, Server: s, Config: in.Config}).Get(ctx, nil)
		r := StepResult{Step: StepRelease, Server: s, OK: err == nil}
		if err != nil {
			r.ErrorType, r.Error = errorType(err), rootMessage(err)
			res.Failed++
		} else {
			res.Released++
		}
		report(ctx, r)
	}
	return res, nil
}

// DefaultDrain is how long a removed instance keeps serving before it is
// unloaded, unless its service's catalog entry says otherwise.
const DefaultDrain = time.Second

// decideShrink plans what is above desired (or above the warm pool) and
// runs it as a Shrink operation.
// hold names the services (and "" the pool) running operations work on,
// avoid the servers they launch or release (side by side, see
// sidebyside.go), which this decision leaves alone.
func (m *manager) decideShrink(ctx workflow.Context, hold, avoid []string) {
	plan := fleet.PlanShrinkWith(&m.st.Inventory, m.st.Catalog, fleet.Options{Desired: m.desired, Hold: hold, Avoid: avoid})
	if plan.Empty() {
		// Consolidation moves whole servers: only when nothing else runs.
		if m.running == 0 {
			m.consolidate(ctx)
		}
		return
	}
	m.st.Ops++
	what := "pool"
	if svcs := plan.Services(); len(svcs) == 1 {
		what = svcs[0]
	} else if len(svcs) > 1 {
		what = "all"
	}
	m.startShrink(ctx, fmt.Sprintf("%s/shrink/%s/%d", ManagerID(m.st.Manager), what, m.st.Ops), plan, "")
}

// startShrink runs a shrink plan as a child operation; why, when given,
// is the decision's reason, added to its event.
func (m *manager) startShrink(ctx workflow.Context, id string, plan fleet.ShrinkPlan, why string) {
	keys := plan.Keys()
	r := Record{Kind: RecordShrink, Op: id, Services: keys.Services, Servers: keys.Servers, Why: why,
		Message: fmt.Sprintf("%s: %d instance(s) back to the warm pool, %d to destroy, %d server(s) to release",
			id, len(plan.Unloads), len(plan.Destroys), len(plan.Release))}
	m.record(ctx, r)
	for _, c := range slices.Concat(plan.Unloads, plan.Destroys) {
		if c.Service != "" {
			m.count(CountShrinks, 1, c.Service)
		}
	}
	var timeout time.Duration
	// The drain is the longest of the services removed (a service gone
	// from the catalog gets the default).
	drain := time.Duration(0)
	for _, c := range slices.Concat(plan.Unloads, plan.Destroys) {
		d := DefaultDrain
		if s := m.service(c.Service); s != nil && s.Drain > 0 {
			d = s.Drain
		}
		if c.Service != "" {
			drain = max(drain, d)
		}
	}
	if m.asData {
		timeout = drain + ShrinkTimeout
	}
	cctx := m.operation(ctx, id, "shrink", plan.Services(), len(plan.Unloads)+len(plan.Destroys), timeout, summary(r))
	in := ShrinkInput{Op: id, Manager: m.st.Manager, Kind: m.st.Catalog.Manager.Kind, Plan: plan, Drain: drain, Config: m.providerConfig()}
	op := runningOp{id: id, keys: keys, kind: "shrink", start: workflow.Now(ctx), containers: plan.ContainerIDs()}
	m.running++
	m.ops = append(m.ops, op)
	workflow.Go(ctx, func(ctx workflow.Context) {
		var res ShrinkResult
		err := m.child(ctx, cctx, id, WorkflowShrink, in).Get(ctx, &res)
		m.shrinkEnded(ctx, op, res, err)
	})
}

// shrinkEnded records the end of a Shrink: its last steps, or, when it
// failed, puts back what it left draining.
func (m *manager) shrinkEnded(ctx workflow.Context, op runningOp, res ShrinkResult, err error) {
	defer m.done(op.id)
	if err != nil {
		if m.asData {
			m.undoShrink(op.containers)
		}
	} else {
		m.onResults(ctx, StepResults{Steps: res.Steps})
	}
	m.ended(ctx, op.id, "shrink", op.keys.Services, op.start, err, fmt.Sprintf("%d unloaded, %d destroyed, %d server(s) released, %d failed",
		res.Unloaded, res.Destroyed, res.Released, res.Failed))
	m.st.Pending = true
}

// undoShrink puts back what a Shrink that ended early (its timeout, a
// failure) left draining without a report, of the containers of its
// plan: an instance still serving is loaded again, a waiting container
// waiting, anything else failed as a crash; the next decision removes
// what is still surplus.
func (m *manager) undoShrink(containers []string) {
	for _, id := range containers {
		c := m.st.Inventory.Container(id)
		if c == nil || c.State != fleet.Draining {
			continue
		}
		c.Unloading = false
		switch {
		case c.Service == "" && !c.Crashed:
			c.State = fleet.Waiting
		case c.Healthy:
			c.State = fleet.Loaded
		default:
			// Not serving (a crash, or an instance not yet up): failed as
			// a crash, destroyed by the next Shrink and replaced.
			c.State, c.Crashed = fleet.Failed, true
		}
	}
}

// onShrinkStep records an instance that left: back in the warm pool, or
// destroyed (its lease released). One the node could not stop stays, failed,
// holding its lease.
func (m *manager) onShrinkStep(ctx workflow.Context, c *fleet.Container, r StepResult) {
	switch {
	case r.Step == StepUnload && r.OK:
		c.State, c.Service, c.Healthy, c.Error, c.Unloading = fleet.Waiting, "", false, "", false
	case r.Destroyed && c.Crashed:
		m.st.Inventory.Destroyed(c.ID, c.Error) // kept in status as failed
	case r.Destroyed:
		m.st.Inventory.RemoveContainer(c.ID)
	default:
		// Not Crashed any more: retrying the stop on every decision would
		// spin while its node is away; it keeps its lease until fenced.
		c.State, c.Healthy, c.Crashed, c.Error = fleet.Failed, false, false, r.Error
		m.event(ctx, fmt.Sprintf("container %s on %s could not be removed: %s", c.ID, c.Server, r.Error))
	}
}

// onRelease forgets a released server, if nothing was placed on it since.
func (m *manager) onRelease(ctx workflow.Context, r StepResult) {
	if !r.OK {
		m.event(ctx, fmt.Sprintf("server %s could not be released: %s", r.Server, r.Error))
		return
	}
	if len(m.st.Inventory.OnServer(r.Server)) > 0 {
		return
	}
	m.st.Inventory.RemoveServer(r.Server)
	m.unwatch(r.Server)
	m.event(ctx, fmt.Sprintf("server %s released", r.Server))
}
