package workflows

import (
	"fmt"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/internal/trust"
)

// authReportsChange gates the check of every report for the runs begun
// before it, which acted on whatever arrived.
const authReportsChange = "authenticated-reports"

type ringKey struct{}

// TrustInterceptor hands a Manager's key ring to msm's workflows on this
// worker: the Manager checks each report's tag with it and operations sign
// their results. Every worker of one Manager must hold the same ring (or
// one with the same keys), since a replay checks the tags again. Without
// it reports are not authenticated, and status says so.
func TrustInterceptor(r *trust.Ring) interceptor.WorkerInterceptor {
	return &trustInterceptor{ring: r}
}

type trustInterceptor struct {
	interceptor.WorkerInterceptorBase
	ring *trust.Ring
}

func (t *trustInterceptor) InterceptWorkflow(_ workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &trustInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, ring: t.ring}
}

type trustInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	ring *trust.Ring
}

func (t *trustInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	return t.Next.ExecuteWorkflow(workflow.WithValue(ctx, ringKey{}, t.ring), in)
}

// ringOf returns the worker's key ring, nil if it has none.
func ringOf(ctx workflow.Context) *trust.Ring {
	r, _ := ctx.Value(ringKey{}).(*trust.Ring)
	return r
}

// operationKey is the key an operation signs its results with, an invalid
// one (no tag) when the worker has no ring.
func operationKey(ctx workflow.Context, op string) trust.Key {
	r := ringOf(ctx)
	if r == nil {
		return trust.Key{}
	}
	return trust.OperationKey(r.Current(), op)
}

// ReportsAuthenticated is Status.Reports when the Manager checks every
// report; it is empty when the Manager takes them as they come.
const ReportsAuthenticated = "authenticated"

// rootOf returns the root key a tag names, or why there is none.
func (m *manager) rootOf(tag string) (trust.Key, string) {
	if tag == "" {
		return trust.Key{}, "no tag"
	}
	id := trust.TagKeyID(tag)
	k, ok := m.ring.Key(id)
	if !ok {
		return trust.Key{}, fmt.Sprintf("tag of key %q, which the Manager's ring does not hold", id)
	}
	return k, ""
}

// fromServer checks a node's report: a tag under that server's key. The
// server must be one the Manager holds.
func (m *manager) fromServer(server, tag string, fields []string) string {
	if m.st.Inventory.Server(server) == nil {
		return fmt.Sprintf("server %q is not one of the Manager's", server)
	}
	root, why := m.rootOf(tag)
	if why != "" {
		return why
	}
	if !trust.Verify(trust.ServerKey(root, m.st.Manager, server), tag, fields...) {
		return "bad tag for server " + server
	}
	return ""
}

// fromContainer checks a report about a container: a tag under that
// container's key (its agent) or its server's (its node).
func (m *manager) fromContainer(container, tag string, fields []string) string {
	c := m.st.Inventory.Container(container)
	if c == nil {
		return fmt.Sprintf("container %q is not one of the Manager's", container)
	}
	root, why := m.rootOf(tag)
	if why != "" {
		return why
	}
	server := trust.ServerKey(root, m.st.Manager, c.Server)
	if !trust.Verify(trust.ContainerKey(server, c.ID), tag, fields...) && !trust.Verify(server, tag, fields...) {
		return fmt.Sprintf("bad tag for container %s on server %s", c.ID, c.Server)
	}
	return ""
}

// fromOperation checks results: a tag under the key of an operation the
// Manager started and that is still running, and every step its own.
func (m *manager) fromOperation(op, tag string, steps []StepResult, fields []string) string {
	running := false
	for _, o := range m.ops {
		running = running || o.id == op
	}
	if !running {
		return fmt.Sprintf("operation %q is not running", op)
	}
	for _, r := range steps {
		if r.Op != op {
			return fmt.Sprintf("a step of operation %q in results of %q", r.Op, op)
		}
	}
	root, why := m.rootOf(tag)
	if why != "" {
		return why
	}
	if !trust.Verify(trust.OperationKey(root, op), tag, fields...) {
		return "bad tag for operation " + op
	}
	return ""
}

// fromWorker checks a catalog signal: a tag under the worker's key.
func (m *manager) fromWorker(tag string, fields []string) string {
	root, why := m.rootOf(tag)
	if why != "" {
		return why
	}
	if !trust.Verify(trust.WorkerKey(root, m.st.Manager), tag, fields...) {
		return "bad tag for the Manager's worker"
	}
	return ""
}

// checked wraps a report handler: when reports are authenticated, a report
// that check refuses is counted and shown, never acted on.
func checked[T any](m *manager, signal string, claim func(T) string, check func(T) string, fn func(workflow.Context, T)) func(workflow.Context, T) {
	return func(ctx workflow.Context, v T) {
		if m.ring != nil {
			if why := check(v); why != "" {
				m.st.Rejected++
				m.count(CountRejected, 1, signal)
				m.record(ctx, Record{Kind: RecordRejected, Message: fmt.Sprintf("rejected %s report from %s: %s", signal, claim(v), why)})
				return
			}
		}
		fn(ctx, v)
	}
}

// handlers are the Manager's report handlers, each behind its check.
type handlers struct {
	catalog  func(workflow.Context, CatalogSignal)
	rejected func(workflow.Context, CatalogRejectedSignal)
	register func(workflow.Context, RegisterSignal)
	nodeUp   func(workflow.Context, NodeUpSignal)
	result   func(workflow.Context, StepResult)
	results  func(workflow.Context, StepResults)
	overload func(workflow.Context, OverloadSignal)
	idle     func(workflow.Context, IdleSignal)
	usage    func(workflow.Context, UsageSignal)
	errors   func(workflow.Context, ErrorReport)
	reports  func(workflow.Context, ReportsSignal)
}

// handlers are the report handlers, each behind its check, and each
// signal counted (the run's signal bound).
func (m *manager) handlers() handlers {
	h := m.checkedHandlers()
	return handlers{
		catalog: counted(m, h.catalog), rejected: counted(m, h.rejected), register: counted(m, h.register),
		nodeUp: counted(m, h.nodeUp), result: counted(m, h.result), results: counted(m, h.results),
		overload: counted(m, h.overload), idle: counted(m, h.idle), usage: counted(m, h.usage),
		errors: counted(m, h.errors), reports: counted(m, h.reports),
	}
}

func (m *manager) checkedHandlers() handlers {
	reports := checked(m, SignalReports, func(r ReportsSignal) string { return "server " + r.Server }, m.checkReports, m.onReports)
	return handlers{
		// Runs begun before signalBoundsChange did not listen for
		// summaries: they leave them unchecked and unused.
		reports: func(ctx workflow.Context, r ReportsSignal) {
			if m.bounded {
				reports(ctx, r)
			}
		},
		catalog: checked(m, SignalCatalog, func(s CatalogSignal) string { return "worker (" + s.Source + ")" },
			func(s CatalogSignal) string { return m.fromWorker(s.Auth, s.Fields()) }, m.onCatalog),
		rejected: checked(m, SignalCatalogRejected, func(s CatalogRejectedSignal) string { return "worker (" + s.Source + ")" },
			func(s CatalogRejectedSignal) string { return m.fromWorker(s.Auth, s.Fields()) }, m.onCatalogRejected),
		register: checked(m, SignalRegister, func(s RegisterSignal) string { return "container " + s.Container },
			func(s RegisterSignal) string { return m.fromContainer(s.Container, s.Auth, s.Fields()) }, m.onRegister),
		nodeUp: checked(m, SignalNodeUp, func(s NodeUpSignal) string { return "server " + s.Server },
			func(s NodeUpSignal) string { return m.fromServer(s.Server, s.Auth, s.Fields()) }, m.onNodeUp),
		result: checked(m, SignalResult, func(r StepResult) string { return "operation " + r.Op },
			func(r StepResult) string { return m.fromOperation(r.Op, r.Auth, []StepResult{r}, r.Fields()) }, m.onResult),
		results: checked(m, SignalResults, func(rs StepResults) string { return "operation " + firstOp(rs) },
			func(rs StepResults) string { return m.fromOperation(firstOp(rs), rs.Auth, rs.Steps, rs.Fields()) }, m.onResults),
		overload: checked(m, SignalOverload, func(o OverloadSignal) string { return "container " + o.Container },
			func(o OverloadSignal) string { return m.fromContainer(o.Container, o.Auth, o.Fields()) }, m.onOverload),
		idle: checked(m, SignalIdle, func(o IdleSignal) string { return "container " + o.Container },
			func(o IdleSignal) string { return m.fromContainer(o.Container, o.Auth, o.Fields()) }, m.onIdle),
		usage: checked(m, SignalUsage, func(u UsageSignal) string { return "server " + u.Server },
			m.checkUsage, m.onUsage),
		errors: checked(m, SignalErrorReport, func(r ErrorReport) string { return "container " + r.Container },
			func(r ErrorReport) string { return m.fromContainer(r.Container, r.Auth, r.Fields()) }, m.onErrorReport),
	}
}

// checkUsage checks a node's usage report, and that it speaks only of the
// containers on its server.
func (m *manager) checkUsage(u UsageSignal) string {
	if why := m.fromServer(u.Server, u.Auth, u.Fields()); why != "" {
		return why
	}
	for _, cu := range u.Containers {
		if c := m.st.Inventory.Container(cu.Container); c != nil && c.Server != u.Server {
			return fmt.Sprintf("container %s is on server %s, not %s", c.ID, c.Server, u.Server)
		}
	}
	return ""
}

func firstOp(rs StepResults) string {
	if len(rs.Steps) == 0 {
		return ""
	}
	return rs.Steps[0].Op
}

// ownedOpsChange gates the check that an operation was started by its
// Manager, for the operations begun before it.
const ownedOpsChange = "operations-need-their-manager"

// ErrNotByManager is the error type of an operation that was not started
// by its Manager, and refuses to run.
const ErrNotByManager = "NotStartedByManager"

// startedByManager refuses an operation that its Manager did not start
// as its child, when reports are authenticated: any client of the
// namespace can start a workflow, but only the Manager's run is the parent
// of its operations, and Temporal sets the parent.
func startedByManager(ctx workflow.Context, manager string) error {
	if ringOf(ctx) == nil || workflow.GetVersion(ctx, ownedOpsChange, workflow.DefaultVersion, 1) != 1 {
		return nil
	}
	info := workflow.GetInfo(ctx)
	if p := info.ParentWorkflowExecution; p != nil && p.ID == ManagerID(manager) {
		return nil
	}
	by := "a client"
	if p := info.ParentWorkflowExecution; p != nil {
		by = "workflow " + p.ID
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(
		"operation %s was started by %s, not by its Manager %s; nothing was done: operations run only as the Manager's children (ask the Manager: msm extend, msm scale, msm drain)",
		info.WorkflowExecution.ID, by, ManagerID(manager)), ErrNotByManager, nil)
}
