package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Back-pressure (issue 17): a storm of reports must not grow a run's
// history without bound, nor reach the Temporal server's limit of
// signals per run (past it the server refuses every signal, the
// operations' results too). A run counts the signals it takes and
// continues as new once it took SignalLimit of them, or once its history
// passed HandoverLimit while operations still run: then it no longer
// waits for them, it hands them over (HandedOp) and the next run awaits
// each one's end through the AwaitOperation activity. Overload reports
// for a service whose extension is still under way are folded into it,
// and the nodes send their agents' reports as one summary per period
// (SignalReports). Runs begun before signalBoundsChange wait for their
// operations whatever comes, and ignore summaries.

// signalBoundsChange gates the signal bound, the hand-over of running
// operations, the folding of overload reports into a running extension
// and the nodes' report summaries.
const signalBoundsChange = "signal-bounds"

// SignalReports (ReportsSignal): a node's summary of the load reports of
// its agents over its last period.
const SignalReports = "reports"

// ActivityAwaitOperation (manager queue, AwaitOperationInput →
// AwaitOperationResult) waits for an operation handed over by the run
// before, through the worker's Temporal client, and says how it ended.
const ActivityAwaitOperation = "AwaitOperation"

// AwaitOperationInput names a handed-over operation.
type AwaitOperationInput struct {
	ID string `json:"id"`
}

// AwaitOperationResult is how a handed-over operation ended: Error says
// why it failed ("" when it did not); the rest is its result, a
// placement's (ProvisionResult) or a Shrink's (ShrinkResult), whose JSON
// names this has, so either decodes into it.
type AwaitOperationResult struct {
	Error     string       `json:"error,omitempty"`
	Servers   int          `json:"servers,omitempty"`
	Started   int          `json:"started,omitempty"`
	Loaded    int          `json:"loaded,omitempty"`
	Unloaded  int          `json:"unloaded,omitempty"`
	Destroyed int          `json:"destroyed,omitempty"`
	Released  int          `json:"released,omitempty"`
	Failed    int          `json:"failed,omitempty"`
	Steps     []StepResult `json:"steps,omitempty"`
}

// HandedOp is an operation that was still running when its Manager's run
// continued as new, as the next run takes it over.
type HandedOp struct {
	ID   string     `json:"id"`
	Kind string     `json:"kind"`
	Keys fleet.Keys `json:"keys"`
	// Start is when it began; Containers the containers of its plan,
	// those its failure leaves half done.
	Start      time.Time `json:"start"`
	Containers []string  `json:"containers,omitempty"`
}

// ReportsSignal is a node's summary of its agents' load reports over one
// period: at most one report per container (its last), signed by the
// node (Auth, under its server's key). The Manager takes it only for
// containers of that server, and acts on each report as on the agent's
// own overload or idle signal.
type ReportsSignal struct {
	Server  string            `json:"server"`
	Reports []agentapi.Report `json:"reports"`
	Auth    string            `json:"auth,omitempty"`
}

// Fields are what a ReportsSignal's tag covers.
func (r ReportsSignal) Fields() []string {
	f := []string{SignalReports, r.Server, strconv.Itoa(len(r.Reports))}
	for _, rep := range r.Reports {
		f = append(f, rep.Kind, rep.Container, rep.Service, rep.Reason, rep.Trace)
	}
	return f
}

// counted counts each signal a handler takes, for the run's signal bound.
func counted[T any](m *manager, fn func(workflow.Context, T)) func(workflow.Context, T) {
	return func(ctx workflow.Context, v T) {
		m.signals++
		fn(ctx, v)
	}
}

// overdue reports whether this run must continue as new now, operations
// running or not: it took its signal limit, or its history passed its
// hand-over limit.
func (m *manager) overdue(ctx workflow.Context) bool {
	if !m.bounded {
		return false
	}
	return m.signals >= m.signalLimit || workflow.GetInfo(ctx).GetCurrentHistoryLength() >= HandoverLimit(m.historyLimit)
}

// handable reports whether every running operation can be handed over:
// its child workflow started (a child the server has not started yet
// would never start once its parent's run closed).
func (m *manager) handable() bool {
	return !slices.ContainsFunc(m.ops, func(op runningOp) bool { return !m.childUp[op.id] })
}

// handOver lists the running operations for the next run.
func (m *manager) handOver() []HandedOp {
	var out []HandedOp
	for _, op := range m.ops {
		out = append(out, HandedOp{ID: op.id, Kind: op.kind, Keys: op.keys, Start: op.start, Containers: op.containers})
	}
	return out
}

// resumeHanded takes over the operations the run before handed over:
// they hold what they held, their results are taken, and their ends are
// recorded as this run's own operations' are.
func (m *manager) resumeHanded(ctx workflow.Context) {
	handed := m.st.Handed
	m.st.Handed = nil
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: TaskQueue,
		// Longer than any operation runs (PlacementTimeout; a Shrink's
		// drain and ShrinkTimeout); a worker that dies meanwhile is
		// replaced within the heartbeat timeout.
		StartToCloseTimeout: 2 * PlacementTimeout,
		HeartbeatTimeout:    AwaitHeartbeat,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			NonRetryableErrorTypes: []string{ErrNoClient}},
	})
	for _, h := range handed {
		op := runningOp{id: h.ID, keys: h.Keys, kind: h.Kind, start: h.Start, containers: h.Containers}
		m.running++
		m.ops = append(m.ops, op)
		m.childUp[op.id] = true
		workflow.Go(ctx, func(ctx workflow.Context) {
			var res AwaitOperationResult
			err := workflow.ExecuteActivity(actx, ActivityAwaitOperation, AwaitOperationInput{ID: op.id}).Get(ctx, &res)
			if err == nil && res.Error != "" {
				err = errors.New(res.Error)
			} else if err != nil {
				err = fmt.Errorf("awaiting it after continue-as-new: %s", rootMessage(err))
			}
			if op.kind == "shrink" {
				m.shrinkEnded(ctx, op, ShrinkResult{Unloaded: res.Unloaded, Destroyed: res.Destroyed, Released: res.Released,
					Failed: res.Failed, Steps: res.Steps}, err)
				return
			}
			m.placementEnded(ctx, op, ProvisionResult{Servers: res.Servers, Started: res.Started, Loaded: res.Loaded,
				Failed: res.Failed, Steps: res.Steps}, err)
		})
	}
}

// AwaitHeartbeat is the heartbeat timeout of AwaitOperation.
const AwaitHeartbeat = 30 * time.Second

// extending reports whether an extension of service is under way: decided
// and not yet started, or an operation placing its instances still
// running (an Extend, or a Provision, which also places the extensions
// of services placed on a server it launches). An overload report then
// says what the extension is for, and is folded into it.
func (m *manager) extending(service string) bool {
	if slices.Contains(m.st.Extending, service) {
		return true
	}
	return slices.ContainsFunc(m.ops, func(op runningOp) bool {
		return (op.kind == string(fleet.KindExtend) || op.kind == string(fleet.KindProvision)) && slices.Contains(op.keys.Services, service)
	})
}

// checkReports checks a node's summary: signed by that server's node, and
// every report about a container of that server running the service it
// names.
func (m *manager) checkReports(r ReportsSignal) string {
	if why := m.fromServer(r.Server, r.Auth, r.Fields()); why != "" {
		return why
	}
	for _, rep := range r.Reports {
		c := m.st.Inventory.Container(rep.Container)
		switch {
		case c == nil:
			return fmt.Sprintf("container %q is not one of the Manager's", rep.Container)
		case c.Server != r.Server:
			return fmt.Sprintf("container %s is on server %s, not %s", c.ID, c.Server, r.Server)
		case c.Service != rep.Service:
			return fmt.Sprintf("container %s runs %q, not %q", c.ID, c.Service, rep.Service)
		case rep.Kind != agentapi.SignalOverload && rep.Kind != agentapi.SignalIdle:
			return fmt.Sprintf("a report of kind %q", rep.Kind)
		}
	}
	return ""
}

// onReports acts on each report of a node's summary as on its agent's own
// signal. Runs begun before signalBoundsChange ignore summaries (they did
// not listen for them).
func (m *manager) onReports(ctx workflow.Context, r ReportsSignal) {
	for _, rep := range r.Reports {
		switch rep.Kind {
		case agentapi.SignalOverload:
			m.onOverload(ctx, OverloadSignal{Container: rep.Container, Service: rep.Service, Reason: rep.Reason, Trace: rep.Trace})
		case agentapi.SignalIdle:
			m.onIdle(ctx, IdleSignal{Container: rep.Container, Service: rep.Service, Reason: rep.Reason})
		}
	}
}
