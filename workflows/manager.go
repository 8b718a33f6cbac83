// Package workflows holds the Manager entity workflow and the operations it
// runs as child workflows. The Manager decides (with the pure functions of
// package fleet) and records; operations carry out a decided plan through
// activities and report each step back. Everything here is deterministic.
package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/internal/version"
)

// DefaultHistoryLimit is the history length at which the Manager continues
// as new even if the server has not suggested it yet.
const DefaultHistoryLimit = 4000

// DefaultSignalLimit is how many signals one run of the Manager takes
// before it continues as new: half the Temporal server's default limit of
// signals per run (10,000; limit.maximumSignalsPerExecution), past which
// the server refuses every signal to the run.
const DefaultSignalLimit = 5000

// HandoverLimit is the history length at which a run whose history is
// full continues as new without waiting for its running operations any
// longer (it hands them over to the next run, storm.go): HandoverMargin
// events past its history limit.
func HandoverLimit(historyLimit int) int { return historyLimit + HandoverMargin }

// HandoverMargin is how many events past its history limit a run waits
// for its running operations to end before it hands them over: a run
// that waits has a history of at most 5,000 events by default, half the
// server's warning (10,240) and a tenth of its limit (51,200).
const HandoverMargin = 1000

// PlanLimit caps the instances one operation starts or loads, so that the
// history of one Provision (about ten events per instance) stays far from
// the server's limits at fleet scale; the rest is placed by the next
// decision, side by side.
const PlanLimit = 500

// planLimitChange gates PlanLimit for the runs begun before it.
const planLimitChange = "plan-limit"

// maxEvents is how many recent events status keeps.
const maxEvents = 50

// manager is a run of the Manager. st is everything carried into the next
// run, as it is: continue-as-new passes it whole. The rest is derived from
// it or from signals, and rebuilt by the next run.
type manager struct {
	st      ManagerInput
	running int
	// unplaced is the last decision's demand that found no room.
	unplaced []fleet.Unplaced
	// cpu is each container's last reported CPU use, serverUsage each
	// server's last report, recs and firstRec the autoscaler's memory:
	// derived from signals, never carried across continue-as-new.
	cpu         map[string]int
	serverUsage map[string]UsageSignal
	recs        map[string][]recommendation
	firstRec    map[string]time.Time
	// HistoryLimit is read once from the input; 0 means the default.
	historyLimit int
	// failedOp is, per service, the operation whose failure last counted
	// toward its back-off: one attempt counts once, however many of the
	// service's containers it started. It is not carried across
	// continue-as-new, which waits until no operation runs, unless it hands
	// them over (storm.go): a handed-over operation's failure may then
	// count once more.
	failedOp map[string]string
	// leases says this run holds server leases (runs begun before they
	// existed do not); watches cancels each server's lease, by server.
	leases  bool
	watches map[string]*watch
	// ops are the operations running, and what each holds.
	ops []runningOp
	// parallel says this run decides while operations run (runs begun
	// before parallelOpsChange wait until none does).
	parallel bool
	// limit caps the instances one operation places (planLimitChange);
	// 0 for runs begun before.
	limit int
	// poolHeld says the last decision left the warm pool's refill to the
	// next one, which therefore does not hold it again. Not carried across
	// continue-as-new: at worst the first decision after holds it once more.
	poolHeld bool
	// stale says the details the Web UI shows need rendering (publisher).
	stale bool
	// asData says this run decides with fleet.Decide (decideOpsChange):
	// one operation per strategy, named by it.
	asData bool
	// validates says this run checks every catalog it receives with
	// catalog.Validate (validateCatalogChange).
	validates bool
	// ring authenticates reports (authReportsChange, and a worker with a
	// key ring); nil: every report is taken as it comes.
	ring *trust.Ring
	// forgets says this run forgets servers lost longer than
	// manager.forget_after (forgetLostChange).
	forgets bool
	// rolls says this run rolls services to new revisions (rollChange).
	rolls bool
	// now is the time of the last decision, for queries (which have no
	// clock of their own).
	now time.Time
	// schedules says this run keeps the catalog's schedule rules as
	// Temporal Schedules (schedulesChange); syncing that a sync runs.
	schedules, syncing bool
	// versions says this run asks a node its version when it first hears
	// from it (nodeVersionsChange); asked are the servers it asked.
	versions bool
	asked    map[string]bool
	// agents says agents follow their node in this run, and may be
	// upgraded (agentUpgradesChange, agents.go).
	agents bool
	// renew says an operator asked the run to continue as new (msm upgrade
	// manager): it starts no operation while one runs, and continues as
	// new once none does.
	renew bool
	// bounded says this run bounds the signals it takes and hands its
	// running operations over when it must continue as new
	// (signalBoundsChange, storm.go); signals counts the signals it took,
	// signalLimit is the most it takes. childUp says, by operation, that
	// its child workflow started.
	bounded     bool
	signals     int
	signalLimit int
	childUp     map[string]bool
}

// OperationTaskTimeout is the workflow task timeout of an operation the
// Manager starts that places or removes n instances (see operation): a
// second, and a second more per 250 instances (PlanLimit's 500: 3 s), at
// most 5 s. A worker killed in an operation's task costs this before
// another worker takes it; the worker that does replays the operation's
// history, which grows with its instances (a few milliseconds for the
// handful an extension or a recovery places).
func OperationTaskTimeout(n int) time.Duration {
	return min(time.Second+time.Duration(n/250)*time.Second, 5*time.Second)
}

// taskTimeout is the Manager's workflow task timeout, the catalog's
// manager.task_timeout, else one that follows the containers it holds
// (catalog.Manager.ManagerTaskTimeout): set by the worker that
// starts it, and again at each continue-as-new, so a changed setting holds
// from the next run. It is how long the server waits for a worker that
// took one of the Manager's tasks before another may take it; a worker
// taking the Manager over replays the run's whole history within one
// task, so it must stay above that replay at fleet size (measured by
// TestSimulatedKindHoldsTenThousandContainers: docs/operations.md).
func (m *manager) taskTimeout() time.Duration {
	if m.st.Catalog == nil {
		return catalog.DefaultTaskTimeout
	}
	return m.st.Catalog.Manager.ManagerTaskTimeout(len(m.st.Inventory.Containers))
}

// validateCatalogChange gates the check of every received catalog for the
// runs begun before it, which installed whatever arrived.
const validateCatalogChange = "validate-catalog"

// Manager is the entity workflow of one Manager (ID msm/<manager>): the
// single writer of servers, containers, assignments and port leases.
func Manager(ctx workflow.Context, in ManagerInput) error {
	m := &manager{st: in, historyLimit: in.HistoryLimit, failedOp: map[string]string{},
		cpu: map[string]int{}, serverUsage: map[string]UsageSignal{}, recs: map[string][]recommendation{}, firstRec: map[string]time.Time{},
		watches: map[string]*watch{}, signalLimit: in.SignalLimit, childUp: map[string]bool{}}
	if m.signalLimit <= 0 {
		m.signalLimit = DefaultSignalLimit
	}
	if m.st.Suppressed == nil {
		m.st.Suppressed = map[string]int{}
	}
	if m.historyLimit <= 0 {
		m.historyLimit = DefaultHistoryLimit
	}
	m.migrateEvents()
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		AttrManager.ValueSet(in.Manager), AttrOperation.ValueSet("manager")); err != nil {
		return fmt.Errorf("setting search attributes, %w", err)
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, m.status); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryLog, m.log); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryWhy, m.why); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateExtend, m.extendUpdate,
		workflow.UpdateHandlerOptions{Validator: m.validateExtend}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateScale, m.scaleUpdate,
		workflow.UpdateHandlerOptions{Validator: m.validateScale}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateDrain, m.drainUpdate,
		workflow.UpdateHandlerOptions{Validator: m.validateDrain}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateProvision, m.provisionUpdate,
		workflow.UpdateHandlerOptions{Validator: m.validateProvision}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateForget, m.forgetUpdate,
		workflow.UpdateHandlerOptions{Validator: m.validateForget}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRollout, m.rolloutUpdate,
		workflow.UpdateHandlerOptions{Validator: m.validateRollout}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateUpgradeAgents, m.agentUpgrade,
		workflow.UpdateHandlerOptions{Validator: m.validateAgentUpgrade}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandler(ctx, UpdateRenew, m.renewUpdate); err != nil {
		return err
	}
	if err := workflow.SetQueryHandler(ctx, QueryRollout, m.rolloutStatus); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateFloor, m.floorUpdate,
		workflow.UpdateHandlerOptions{Validator: m.validateFloor}); err != nil {
		return err
	}
	catalogCh := workflow.GetSignalChannel(ctx, SignalCatalog)
	registerCh := workflow.GetSignalChannel(ctx, SignalRegister)
	nodeUpCh := workflow.GetSignalChannel(ctx, SignalNodeUp)
	resultCh := workflow.GetSignalChannel(ctx, SignalResult)
	resultsCh := workflow.GetSignalChannel(ctx, SignalResults)
	overloadCh := workflow.GetSignalChannel(ctx, SignalOverload)
	idleCh := workflow.GetSignalChannel(ctx, SignalIdle)
	rejectedCh := workflow.GetSignalChannel(ctx, SignalCatalogRejected)
	usageCh := workflow.GetSignalChannel(ctx, SignalUsage)
	errorCh := workflow.GetSignalChannel(ctx, SignalErrorReport)
	reportsCh := workflow.GetSignalChannel(ctx, SignalReports)

	m.publisher(ctx)
	m.leases = workflow.GetVersion(ctx, livenessChange, workflow.DefaultVersion, 1) == 1
	m.parallel = workflow.GetVersion(ctx, parallelOpsChange, workflow.DefaultVersion, 1) == 1
	if workflow.GetVersion(ctx, planLimitChange, workflow.DefaultVersion, 1) == 1 {
		m.limit = PlanLimit
	}
	m.asData = m.parallel && workflow.GetVersion(ctx, decideOpsChange, workflow.DefaultVersion, 1) == 1
	m.validates = workflow.GetVersion(ctx, validateCatalogChange, workflow.DefaultVersion, 1) == 1
	m.forgets = workflow.GetVersion(ctx, forgetLostChange, workflow.DefaultVersion, 1) == 1
	m.rolls = m.asData && workflow.GetVersion(ctx, rollChange, workflow.DefaultVersion, 1) == 1
	m.now = workflow.Now(ctx)
	if workflow.GetVersion(ctx, authReportsChange, workflow.DefaultVersion, 1) == 1 {
		m.ring = ringOf(ctx)
	}
	m.schedules = workflow.GetVersion(ctx, schedulesChange, workflow.DefaultVersion, 1) == 1
	m.versions = m.leases && workflow.GetVersion(ctx, nodeVersionsChange, workflow.DefaultVersion, 1) == 1
	m.asked = map[string]bool{}
	m.agents = m.rolls && m.versions && workflow.GetVersion(ctx, agentUpgradesChange, workflow.DefaultVersion, 1) == 1
	m.bounded = workflow.GetVersion(ctx, signalBoundsChange, workflow.DefaultVersion, 1) == 1
	// Before any signal: the results of the operations handed over are
	// theirs.
	m.resumeHanded(ctx)
	m.watchAll(ctx)
	// The catalog carried in may have rules the last run did not sync.
	m.syncSchedules(ctx)

	h := m.handlers()
	listen(ctx, catalogCh, h.catalog)
	listen(ctx, registerCh, h.register)
	listen(ctx, nodeUpCh, h.nodeUp)
	listen(ctx, resultCh, h.result)
	listen(ctx, resultsCh, h.results)
	listen(ctx, overloadCh, h.overload)
	listen(ctx, idleCh, h.idle)
	listen(ctx, rejectedCh, h.rejected)
	listen(ctx, usageCh, h.usage)
	listen(ctx, errorCh, h.errors)
	listen(ctx, reportsCh, h.reports)

	for {
		ready := func() bool {
			// Side by side, a decision may start operations while others
			// run, until the history is long enough to continue as new:
			// then none starts until they have ended, so the run ends.
			return (m.st.Pending && (m.running == 0 || (m.parallel && !m.historyFull(ctx) && !m.overdue(ctx) && !m.renew)) && m.st.Catalog != nil) || m.shouldContinueAsNew(ctx)
		}
		// A service in back-off is looked at again when its time comes.
		if wait := m.nextRetry(ctx); wait > 0 {
			ok, err := workflow.AwaitWithTimeout(ctx, wait, ready)
			if err != nil {
				return err
			}
			if !ok {
				m.st.Pending = true
				continue
			}
		} else if err := workflow.Await(ctx, ready); err != nil {
			return err
		}
		if m.shouldContinueAsNew(ctx) {
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			// Signals not yet taken by the loops above would be lost with
			// this run: take them here. One pass takes them all: no signal
			// arrives while workflow code runs, and handling one sends none.
			takeAll(ctx, catalogCh, h.catalog)
			takeAll(ctx, registerCh, h.register)
			takeAll(ctx, nodeUpCh, h.nodeUp)
			takeAll(ctx, resultCh, h.result)
			takeAll(ctx, resultsCh, h.results)
			takeAll(ctx, overloadCh, h.overload)
			takeAll(ctx, idleCh, h.idle)
			takeAll(ctx, rejectedCh, h.rejected)
			takeAll(ctx, usageCh, h.usage)
			takeAll(ctx, errorCh, h.errors)
			takeAll(ctx, reportsCh, h.reports)
			// Operations still running go on: the next run awaits them.
			m.st.Handed = m.handOver()
			workflow.GetLogger(ctx).Info("continuing as new", "events", workflow.GetInfo(ctx).GetCurrentHistoryLength(),
				"signals", m.signals, "handed", len(m.st.Handed))
			return workflow.NewContinueAsNewError(workflow.WithWorkflowTaskTimeout(ctx, m.taskTimeout()), Manager, m.st)
		}
		m.st.Pending = false
		m.now = workflow.Now(ctx)
		m.forgetLost(ctx)
		if m.asData {
			m.decideOps(ctx)
		} else {
			m.decide(ctx)
		}
	}
}

// shouldContinueAsNew reports whether the run continues as new now: its
// history is full, or an operator asked (renew), and no operation runs, or (signalBoundsChange) it
// cannot wait for them any longer and hands them over. A schedules sync
// in flight is waited for, except then: the next run syncs again.
func (m *manager) shouldContinueAsNew(ctx workflow.Context) bool {
	if m.running == 0 && !m.syncing && (m.historyFull(ctx) || m.renew) {
		return true
	}
	return m.overdue(ctx) && m.handable()
}

// historyFull reports whether the run's history is long enough to continue
// as new: the server suggests it, or it reached HistoryLimit.
func (m *manager) historyFull(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() >= m.historyLimit
}

// listen hands the values signalled on ch to fn as they come. It waits for a
// value instead of blocking in Receive: a blocked Receive takes a signal off
// the channel before its own coroutine runs, so a continue-as-new decided in
// the same workflow task would find the channel empty and lose the signal.
func listen[T any](ctx workflow.Context, ch workflow.ReceiveChannel, fn func(workflow.Context, T)) {
	workflow.Go(ctx, func(ctx workflow.Context) {
		for workflow.Await(ctx, func() bool { return ch.Len() > 0 }) == nil {
			takeAll(ctx, ch, fn)
		}
	})
}

// takeAll hands every value waiting on ch to fn. Each value is decoded into
// a fresh T: decoding into a reused one would keep the fields the next value
// omits (omitempty) and share slices with the value before.
func takeAll[T any](ctx workflow.Context, ch workflow.ReceiveChannel, fn func(workflow.Context, T)) {
	for {
		var v T
		if !ch.ReceiveAsync(&v) {
			return
		}
		fn(ctx, v)
	}
}

// PlacementTimeout bounds a placement operation (Provision, Extend,
// Recover, Rearrange, refill) in runs that decide with fleet.Decide: more
// than its steps' own retries take (a launch: 10 attempts of up to 5 min).
// When it expires the operation is ended by the server and what it left
// unfinished is failed: starting containers and loads not yet healthy are
// replaced by the next decision.
const PlacementTimeout = time.Hour

// ShrinkTimeout bounds a Shrink beyond its drain period. When it expires,
// the removals it did not report go back to what they were (an unload or a
// destroy not done leaves an instance serving), so the next decision
// removes them again.
const ShrinkTimeout = 30 * time.Minute

// decideOpsChange gates deciding with fleet.Decide: every operation the
// fleet needs, each named for its strategy, side by side. Runs begun
// before decide one placement and one shrink at a time (decide).
const decideOpsChange = "decide-ops"

// decideOps asks fleet.Decide what the fleet needs, records it in the
// inventory, and starts its operations.
func (m *manager) decideOps(ctx workflow.Context) {
	var revision func(string) string
	if m.rolls {
		m.settleRolls(ctx)
		revision = m.revision
	}
	backoff := make([]fleet.Hold, 0, len(m.st.Backoffs))
	for _, b := range m.st.Backoffs {
		backoff = append(backoff, fleet.Hold{Service: b.Service, Until: b.RetryAt})
	}
	d := fleet.Decide(fleet.State{Inventory: &m.st.Inventory, Catalog: m.runCatalog(), Manager: m.st.Manager, Desired: m.desired,
		Backoff: backoff, Extending: m.st.Extending, Recovering: m.st.Recovering, Running: m.runningKeys(), Limit: m.limit,
		Revision: revision, Rolls: m.fleetRolls(), Agents: m.agents},
		workflow.Now(ctx))
	var used map[string]int
	if slices.ContainsFunc(d.Ops, func(op fleet.Op) bool { return op.Kind == fleet.KindExtend && len(op.Place.Starts) > 0 }) {
		used = m.st.Inventory.UsedByServer(m.slotsOf)
	}
	m.st.Inventory.Apply(d)
	m.st.Extending, m.st.Recovering = d.Extending, d.Recovering
	m.unplaced = d.Unplaced
	defer m.publish(ctx)
	m.eventUnplaced(ctx, d.Unplaced)
	if d.Capped {
		// The rest is the next decision's: side by side, at once, for
		// what these operations do not hold.
		m.st.Pending = true
	}
	for _, op := range d.Ops {
		m.startOp(ctx, op, used)
	}
}

// startOp starts one operation of a decision, named for its kind. used
// is the slots used per server before the decision, for an extension's
// record.
func (m *manager) startOp(ctx workflow.Context, op fleet.Op, used map[string]int) {
	if op.Kind == fleet.KindConsolidate {
		// Recorded: the next decision rearranges the server.
		m.st.Pending = true
		m.record(ctx, Record{Kind: RecordConsolidate, Servers: []string{op.Drain},
			Message: fmt.Sprintf("consolidation: drain %s, the other servers have room (%s): %s", op.Drain, op.Reason, m.previewDrain(op.Drain))})
		return
	}
	m.st.Ops++
	id := fmt.Sprintf("%s/%s/%d", ManagerID(m.st.Manager), op.Kind, m.st.Ops)
	if op.Name != "" {
		id = fmt.Sprintf("%s/%s/%s/%d", ManagerID(m.st.Manager), op.Kind, op.Name, m.st.Ops)
	}
	// The decision is a span: of the trace of what asked for an
	// extension, else the first of the operation's own trace.
	trace := ""
	for _, svc := range op.Keys.Services {
		if t := m.target(svc); t != nil && t.Trace != "" && op.Kind == fleet.KindExtend {
			trace = t.Trace
			break
		}
	}
	ctx, end := decisionSpan(ctx, trace, fmt.Sprintf("%s %s", op.Kind, reasonOr(op.Name, "fleet")),
		map[string]string{"msm.operation": id, "msm.reason": op.Reason})
	defer end()
	if op.Kind == fleet.KindShrink {
		m.startShrink(ctx, id, op.Remove, op.Reason)
		return
	}
	workflowType := map[fleet.Kind]string{fleet.KindRecover: WorkflowRecover, fleet.KindRearrange: WorkflowRearrange,
		fleet.KindExtend: WorkflowExtend, fleet.KindRoll: WorkflowRoll}[op.Kind]
	if workflowType == "" {
		workflowType = WorkflowProvision
	}
	r := Record{Kind: string(op.Kind), Why: op.Reason}
	if op.Kind == fleet.KindExtend {
		m.extension(op, used, &r)
	}
	m.startPlacement(ctx, string(op.Kind), workflowType, id, op.Place, r)
}

// extension counts an Extend operation's instances by service, trigger
// and source, and says in its record what triggered it and where its
// instances come from.
func (m *manager) extension(op fleet.Op, used map[string]int, r *Record) {
	sources := op.Place.Sources()
	var why, triggers []string
	for _, svc := range op.Place.Services() {
		trigger, because := "unknown", ""
		if t := m.target(svc); t != nil && t.Trigger != "" {
			trigger, because = t.Trigger, fmt.Sprintf("%s %d → %d: %s", svc, t.From, t.Desired, t.Why)
		}
		for _, src := range []fleet.Source{fleet.SourceWarmPool, fleet.SourceNewContainer, fleet.SourceNewServer} {
			if n := sources[svc][src]; n > 0 {
				m.count(CountExtensions, int64(n), svc, trigger, string(src))
			}
		}
		why = append(why, m.extensionWhy(sources[svc], op.Place, used))
		if because != "" {
			triggers = append(triggers, because)
		}
	}
	r.Trigger = strings.Join(triggers, "; ")
	r.Why = strings.Join(append([]string{op.Reason}, why...), "; ")
}

// eventUnplaced records the demand a decision could not place.
func (m *manager) eventUnplaced(ctx workflow.Context, unplaced []fleet.Unplaced) {
	for _, u := range unplaced {
		what := "warm pool"
		var services []string
		if u.Service != "" {
			what = "service " + u.Service
			services = []string{u.Service}
		}
		m.record(ctx, Record{Kind: RecordUnplaced, Services: services,
			Message: fmt.Sprintf("cannot place %d instance(s) of %s: %s", u.Count, what, u.Reason)})
	}
}

// decide plans what the catalog needs and runs it as a Provision operation
// (runs begun before decideOpsChange).
func (m *manager) decide(ctx workflow.Context) {
	var hold []string
	now := workflow.Now(ctx)
	for _, b := range m.st.Backoffs {
		if b.RetryAt.After(now) {
			hold = append(hold, b.Service)
		}
	}
	// What running operations work on is theirs until they end.
	busy, avoid := m.held()
	hold = append(hold, busy...)
	// A decision made for load or a crash takes a waiting container and
	// leaves the pool's refill to the next decision, made when this
	// operation ends: the extension then is one load, not a load and a
	// container start, and its result reaches status sooner.
	// One decision in two at most: a run of extensions must not keep the
	// pool empty (each would then start a cold container). Side by side,
	// the refill waits until every operation that took from the pool has
	// ended, so it never competes with their loads; a run of them cannot
	// keep the pool empty either, since once it is empty none takes.
	taking := m.parallel && m.taking()
	refillAfter := ((len(m.st.Extending) > 0 || len(m.st.Recovering) > 0) && (!m.poolHeld || m.parallel) || taking) &&
		workflow.GetVersion(ctx, refillAfterChange, workflow.DefaultVersion, 1) == 1
	if refillAfter {
		hold = append(hold, "")
	}
	plan := fleet.PlanScale(&m.st.Inventory, m.st.Catalog, m.st.Manager, fleet.Options{Desired: m.desired, Hold: hold, Avoid: avoid, Limit: m.limit})
	// With nothing else to do no operation runs, so no next decision comes
	// to refill the pool: it is this one's. (recovering outlives a decision
	// that was not named a recovery, so this also comes after operations;
	// holding the pool then would leave it short for good.) An empty plan
	// placed nothing, so planning again is safe.
	if refillAfter && plan.Empty() && !taking {
		plan = fleet.PlanScale(&m.st.Inventory, m.st.Catalog, m.st.Manager, fleet.Options{Desired: m.desired, Hold: hold[:len(hold)-1], Avoid: avoid, Limit: m.limit})
		refillAfter = false
	}
	m.poolHeld = refillAfter
	extending := m.st.Extending
	m.st.Extending = nil
	if m.parallel {
		// An extension of a service an operation holds is decided when
		// that one ends, and named for it then.
		m.st.Extending = slices.DeleteFunc(slices.Clone(extending), func(s string) bool { return !slices.Contains(busy, s) })
	}
	m.unplaced = plan.Unplaced
	defer m.publish(ctx)
	m.eventUnplaced(ctx, plan.Unplaced)
	if plan.Empty() {
		m.decideShrink(ctx, busy, avoid)
		return
	}
	if plan.Capped {
		// The rest is the next decision's: side by side, at once, for
		// what this operation does not hold.
		m.st.Pending = true
	}
	m.st.Ops++
	// An extension of one service is named for it; anything else is a
	// provision (the catalog's needs, or several services at once).
	kind, workflowType := "provision", WorkflowProvision
	id := fmt.Sprintf("%s/provision/%d", ManagerID(m.st.Manager), m.st.Ops)
	if svcs := plan.Services(); len(svcs) == 1 && slices.Contains(extending, svcs[0]) {
		kind, workflowType = "extend", WorkflowExtend
		id = fmt.Sprintf("%s/extend/%s/%d", ManagerID(m.st.Manager), svcs[0], m.st.Ops)
	} else if svcs := plan.Services(); len(svcs) > 0 && allIn(svcs, m.st.Recovering) {
		if m.parallel {
			// Recoveries of services held meanwhile are still to name.
			m.st.Recovering = slices.DeleteFunc(m.st.Recovering, func(s string) bool { return slices.Contains(svcs, s) })
		} else {
			m.st.Recovering = nil
		}
		kind, workflowType = "recover", WorkflowRecover
		id = fmt.Sprintf("%s/recover/%s/%d", ManagerID(m.st.Manager), strings.Join(svcs, "+"), m.st.Ops)
	} else if d := m.drainingServer(); d != "" {
		kind, workflowType = "rearrange", WorkflowRearrange
		id = fmt.Sprintf("%s/rearrange/%s/%d", ManagerID(m.st.Manager), d, m.st.Ops)
	}
	op := m.startPlacement(ctx, kind, workflowType, id, plan, Record{Kind: kind})
	if m.parallel {
		// Removals of what this decision did not hold may run beside it.
		held := busy
		for _, s := range op.Services {
			held = appendNew(held, s)
		}
		if op.Pool {
			held = appendNew(held, "")
		}
		m.decideShrink(ctx, held, slices.Concat(avoid, op.Servers))
	}
}

// startPlacement runs a placement plan as a child operation of the
// workflow type, and returns what it holds. r is the decision's record,
// with its reason; the rest is filled in here.
func (m *manager) startPlacement(ctx workflow.Context, kind, workflowType, id string, plan fleet.Plan, r Record) fleet.Keys {
	var specs []catalog.Service
	for _, name := range plan.Services() {
		if s := m.runSpec(name); s != nil {
			specs = append(specs, *s)
		}
	}
	addrs := map[string]string{}
	for _, s := range m.st.Inventory.Servers {
		addrs[s.ID] = s.Address
	}
	in := ProvisionInput{Manager: m.st.Manager, Kind: m.st.Catalog.Manager.Kind, Plan: plan, Services: specs, Op: id, Addresses: addrs,
		Config: m.providerConfig()}
	keys := plan.Keys()
	r.Op, r.Services, r.Servers = id, keys.Services, keys.Servers
	r.Message = fmt.Sprintf("%s: %d server(s) to launch, %d container(s) to start, %d to load",
		id, len(plan.Servers), len(plan.Starts), len(plan.Loads))
	m.record(ctx, r)
	var timeout time.Duration
	if m.asData {
		timeout = PlacementTimeout
	}
	cctx := m.operation(ctx, id, kind, plan.Services(), len(plan.Starts)+len(plan.Loads), timeout, summary(r))
	op := runningOp{id: id, keys: keys, kind: kind, start: workflow.Now(ctx), containers: plan.ContainerIDs()}
	m.running++
	m.ops = append(m.ops, op)
	workflow.Go(ctx, func(ctx workflow.Context) {
		var res ProvisionResult
		err := m.child(ctx, cctx, id, workflowType, in).Get(ctx, &res)
		m.placementEnded(ctx, op, res, err)
	})
	return keys
}

// placementEnded records the end of a placement operation: its last
// steps, or, when it failed, what it left half done.
func (m *manager) placementEnded(ctx workflow.Context, op runningOp, res ProvisionResult, err error) {
	defer m.done(op.id)
	if err != nil {
		m.failUnfinished(op.containers, fmt.Sprintf("%s failed: %v", op.id, rootMessage(err)))
	} else {
		m.onResults(ctx, StepResults{Steps: res.Steps})
	}
	m.ended(ctx, op.id, op.kind, op.keys.Services, op.start, err, fmt.Sprintf("%d started, %d loaded, %d failed", res.Started, res.Loaded, res.Failed))
	// Whatever happened, look again: a blocked port or a failed server
	// may leave demand that another decision can place.
	m.st.Pending = true
}

// child starts an operation's child workflow, and notes when it started
// (handable).
func (m *manager) child(ctx, cctx workflow.Context, id, workflowType string, in any) workflow.ChildWorkflowFuture {
	f := workflow.ExecuteChildWorkflow(cctx, workflowType, in)
	_ = f.GetChildWorkflowExecution().Get(ctx, nil)
	m.childUp[id] = true
	return f
}

// providerConfig is the manager section the providers of the ec2, azure
// and docker kinds are built from; nil for the kind that needs none.
func (m *manager) providerConfig() *catalog.Manager {
	if k := m.st.Catalog.Manager.Kind; k != catalog.KindEC2 && k != catalog.KindAzure && k != catalog.KindDocker {
		return nil
	}
	c := m.st.Catalog.Manager
	return &c
}

// done records the end of an operation.
func (m *manager) done(id string) {
	m.running--
	m.ops = slices.DeleteFunc(m.ops, func(op runningOp) bool { return op.id == id })
	delete(m.childUp, id)
}

// failUnfinished marks what an operation that ended early left half done
// of the containers of its plan.
func (m *manager) failUnfinished(containers []string, why string) {
	for _, id := range containers {
		c := m.st.Inventory.Container(id)
		if c != nil && (c.State == fleet.Starting || (c.State == fleet.Loaded && !c.Healthy)) {
			c.State, c.Error = fleet.Failed, fleet.Clip(why)
		}
	}
}

func (m *manager) service(name string) *catalog.Service {
	if m.st.Catalog == nil {
		return nil
	}
	for i := range m.st.Catalog.Services {
		if m.st.Catalog.Services[i].Name == name {
			return &m.st.Catalog.Services[i]
		}
	}
	return nil
}

func (m *manager) onCatalog(ctx workflow.Context, s CatalogSignal) {
	c := s.Catalog
	if m.sameCatalog(ctx, s) {
		// Not installed again; a schedule sync that failed is tried again
		// (a worker start hands the catalog over for that too).
		m.syncSchedules(ctx)
		return
	}
	// The worker validated it, but what the Manager carries is bounded
	// here, whoever sent it: a catalog past the bound is refused and the
	// one in force stays.
	if n := c.Containers(); n > fleet.MaxContainers {
		m.onCatalogRejected(ctx, CatalogRejectedSignal{Source: s.Source, Error: fmt.Sprintf(
			"the catalog starts %d containers but one Manager holds at most %d; split the services into several catalogs, each run by a Manager of its own", n, fleet.MaxContainers)})
		return
	}
	if !m.imagesAllowed(ctx, c) {
		// Before serviceImagesChange a service's image was refused (or, in
		// runs that did not validate, ignored), and the warm pools per
		// image were not known (dropped as the signal was decoded): those
		// runs keep doing so.
		if m.validates && slices.ContainsFunc(c.Services, func(s catalog.Service) bool { return s.Image != "" }) {
			m.onCatalogRejected(ctx, CatalogRejectedSignal{Source: s.Source, Error: imagesRefused(c, s.Source)})
			return
		}
		c.Services = slices.Clone(c.Services)
		for i := range c.Services {
			c.Services[i].Image = ""
		}
		c.Manager.WarmPoolImages = nil
	}
	if m.validates {
		// The same check as msm catalog validate, on what arrived: the
		// worker sends only catalogs that pass it, so a catalog that does not
		// came from elsewhere or was garbled, and is refused like an invalid
		// file edit. The check runs on a defaulted copy, as Parse checks a
		// file; the catalog installed is the one sent (the worker's is
		// defaulted already).
		d := c
		d.Services = slices.Clone(c.Services)
		d.Default()
		// workflowcheck flags Validate for text/template's inner map
		// walks and reflection, and for its sorted walk over env keys; it
		// reads nothing but the catalog, and the same catalog gives the
		// same problems in the same order (TestValidateIsRepeatable).
		ps := d.Validate() //workflowcheck:ignore
		if len(ps) > 0 {
			for i := range ps {
				ps[i].File = s.Source
			}
			m.onCatalogRejected(ctx, CatalogRejectedSignal{Source: s.Source, Error: (&catalog.Error{Problems: ps}).Error()})
			return
		}
	}
	prev := m.st.Catalog
	m.st.Catalog = &c
	m.st.CatalogSource = s.Source
	m.st.CatalogError = ""
	m.forgetCounts()
	m.count(CountCatalog, 1, "applied")
	m.st.Pending = true
	// A new catalog may fix what kept failing: try again at once.
	m.st.Backoffs = nil
	// Targets follow the new bounds; a service that left loses its target.
	m.st.Targets = slices.DeleteFunc(m.st.Targets, func(t Target) bool { return m.service(t.Service) == nil })
	for i := range m.st.Targets {
		svc := m.service(m.st.Targets[i].Service)
		m.st.Targets[i].Desired = min(max(m.st.Targets[i].Desired, svc.Replicas.Min), svc.Replicas.Max)
	}
	m.record(ctx, Record{Kind: RecordCatalog, Message: fmt.Sprintf("catalog from %s: %d service(s)", s.Source, len(c.Services))})
	m.clearFloors()
	m.syncSchedules(ctx)
	if !c.Manager.Launches() && workflow.GetVersion(ctx, drainRemovedChange, workflow.DefaultVersion, 1) == 1 {
		m.drainRemoved(ctx, s.Source)
	}
	m.beginRolls(ctx, prev)
}

// sameCatalogChange gates ignoring a catalog identical to the one in
// force, from the same source: every worker of a Manager hands it the
// catalog when it starts and when the source changes, so with several
// workers each catalog arrives once per worker. The runs begun before
// installed it again (a record, and the back-offs cleared).
const sameCatalogChange = "same-catalog-ignored"

// sameCatalog reports whether s repeats the catalog in force. The version
// is asked only of a repeat, the only catalog whose handling changed.
func (m *manager) sameCatalog(ctx workflow.Context, s CatalogSignal) bool {
	if m.st.Catalog == nil || m.st.CatalogError != "" || s.Source != m.st.CatalogSource {
		return false
	}
	// Both are decoded from JSON, and JSON writes maps in key order: the
	// same catalog encodes to the same bytes.
	was, err1 := json.Marshal(m.st.Catalog) //workflowcheck:ignore
	now, err2 := json.Marshal(&s.Catalog)   //workflowcheck:ignore
	if err1 != nil || err2 != nil || !bytes.Equal(was, now) {
		return false
	}
	return workflow.GetVersion(ctx, sameCatalogChange, workflow.DefaultVersion, 1) == 1
}

// drainRemovedChange gates draining the servers a catalog no longer lists
// (the runs begun before left them in use).
const drainRemovedChange = "drain-removed-servers"

// drainRemoved drains every server in use that the catalog of a kind with
// listed servers (standalone, docker) no longer lists: its instances are
// placed on the others first, then removed, and it is released, as `msm
// drain` does. One lost is forgotten at once (it will not come back as a
// server of this catalog; its instances were recovered already), in runs
// that forget; one still launching is left to its own course.
func (m *manager) drainRemoved(ctx workflow.Context, source string) {
	listed := map[string]bool{}
	for _, s := range m.st.Catalog.Manager.Servers {
		listed[s.Name] = true
	}
	var gone []fleet.Server
	for _, s := range m.st.Inventory.Servers {
		if !listed[s.ID] && s.State == fleet.ServerLost && m.forgets {
			gone = append(gone, s)
		}
	}
	for _, s := range gone {
		m.forget(ctx, s, "and removed from the catalog ("+source+")")
	}
	for i := range m.st.Inventory.Servers {
		s := &m.st.Inventory.Servers[i]
		if listed[s.ID] || s.State != fleet.ServerReady {
			continue
		}
		plan := m.previewDrain(s.ID)
		s.State = fleet.ServerDraining
		m.st.Pending = true
		m.record(ctx, Record{Kind: RecordDrain, Servers: []string{s.ID}, Trigger: "removed from the catalog (" + source + ")",
			Message: fmt.Sprintf("drain %s: %s", s.ID, plan)})
	}
}

func (m *manager) onCatalogRejected(ctx workflow.Context, s CatalogRejectedSignal) {
	s.Error = fleet.Clip(s.Error)
	m.st.CatalogError = s.Error
	m.count(CountCatalog, 1, "rejected")
	m.record(ctx, Record{Kind: RecordCatalog, Message: fmt.Sprintf("catalog change from %s rejected, the catalog in force stays: %s", s.Source, s.Error)})
}

func (m *manager) onRegister(ctx workflow.Context, s RegisterSignal) {
	c := m.st.Inventory.Container(s.Container)
	if c == nil {
		m.event(ctx, fmt.Sprintf("unknown container %s registered from server %s (pid %d)", s.Container, s.Server, s.PID))
		return
	}
	// Only a successful Ready makes a warm container waiting: registering
	// does not prove the agent serves its queue.
	c.Registered = true
	if s.PID != 0 {
		c.PID = s.PID
	}
}

// nodeRestartChange gates a new lease at once for a node that says it is
// up while its predecessor's lease runs, for the runs begun before, which
// waited for that lease to time out (and lost the server).
const nodeRestartChange = "node-restart-lease"

func (m *manager) onNodeUp(ctx workflow.Context, s NodeUpSignal) {
	var gone []string
	for _, c := range m.st.Inventory.OnServer(s.Server) {
		// A container the node never confirmed starting (PID 0) may still be
		// on its way; only a confirmed one can be missing.
		if c.PID != 0 && !slices.Contains(s.Containers, c.ID) {
			gone = append(gone, c.ID)
		}
	}
	for _, id := range gone {
		if c := m.st.Inventory.Container(id); c != nil && c.Service != "" && c.State == fleet.Loaded {
			m.count(CountRecoveries, 1, c.Service, CauseNodeRestart)
		}
		m.st.Inventory.RemoveContainer(id)
	}
	if srv := m.st.Inventory.Server(s.Server); srv != nil {
		srv.NodeSeen = true
		if m.watches[s.Server] != nil && srv.State != fleet.ServerLost && srv.Unheard.IsZero() &&
			workflow.GetVersion(ctx, nodeRestartChange, workflow.DefaultVersion, 1) == 1 {
			// A node restarted (an upgrade): the lease its predecessor
			// held would time out a liveness window after it died and
			// lose the server; this node takes a new one now.
			m.unwatch(s.Server)
		}
	}
	m.watch(ctx, s.Server)
	m.collect(ctx, s.Server, s.Containers)
	if len(gone) > 0 {
		m.record(ctx, Record{Kind: RecordRecover, Servers: []string{s.Server},
			Message: fmt.Sprintf("node %s restarted without %d container(s) %v: replacing them", s.Server, len(gone), gone)})
		m.st.Pending = true
	}
}

// onResults records the steps an operation reported at once, in order.
func (m *manager) onResults(ctx workflow.Context, rs StepResults) {
	for _, r := range rs.Steps {
		m.onResult(ctx, r)
	}
}

func (m *manager) onResult(ctx workflow.Context, r StepResult) {
	defer m.publish(ctx)
	r.Error = fleet.Clip(r.Error)
	inv := &m.st.Inventory
	if r.Step == StepServer {
		s := inv.Server(r.Server)
		if s == nil {
			return
		}
		if r.OK {
			if r.Address != "" {
				s.Address = r.Address
			}
			// A drain asked while it launched stands.
			if s.State != fleet.ServerDraining {
				s.State = fleet.ServerReady
			}
			s.Error = ""
			m.watch(ctx, s.ID)
		} else {
			s.State, s.Error = fleet.ServerFailed, r.Error
			m.event(ctx, fmt.Sprintf("server %s failed to launch: %s", r.Server, r.Error))
		}
		return
	}
	if r.Step == StepRelease {
		m.onRelease(ctx, r)
		return
	}
	c := inv.Container(r.Container)
	if c == nil {
		return
	}
	if r.Step == StepUnload || r.Step == StepDestroy {
		m.onShrinkStep(ctx, c, r)
		return
	}
	if r.OK {
		switch r.Step {
		case StepStart:
			c.PID = r.PID
			if s := inv.Server(c.Server); s != nil {
				s.NodeSeen = true
				// Its agent is its node's (the node starts its own
				// msm-agent): known once the node has said its version.
				c.Agent = s.Node
				m.askVersion(ctx, s)
			}
		case StepReady:
			if c.Service == "" && c.State == fleet.Starting {
				c.State = fleet.Waiting
			}
			m.recovered("")
		case StepLoad:
			c.State, c.Healthy, c.Error = fleet.Loaded, true, ""
			if r := m.rollout(c.Service); m.rolls && r != nil && r.active() {
				// Only a roll waits on it (update.health_grace): kept
				// while one runs, so the state stays small.
				c.ReadyAt = workflow.Now(ctx)
			}
			if r.PID != 0 && c.PID == 0 {
				c.PID = r.PID
			}
			m.recovered(c.Service)
		}
		return
	}
	if r.ErrorType == ErrPortInUse && (r.Step == StepStart || r.Destroyed) {
		// Never handed out: block the port and place the container anew.
		if s := inv.Server(c.Server); s != nil && !slices.Contains(s.Blocked, c.Port) {
			s.Blocked = append(s.Blocked, c.Port)
		}
		m.event(ctx, fmt.Sprintf("port %d on %s is held by another process: skipped", c.Port, c.Server))
		inv.RemoveContainer(c.ID)
		m.st.Pending = true
		return
	}
	what := map[string]string{StepStart: "start", StepReady: "come up", StepLoad: "load " + c.Service}[r.Step]
	why := fmt.Sprintf("failed to %s: %s", what, r.Error)
	var services []string
	if c.Service != "" {
		services = []string{c.Service}
		cause := CauseStart
		if r.Step == StepLoad {
			cause = CauseLoad
		}
		m.count(CountRecoveries, 1, c.Service, cause)
	}
	m.record(ctx, Record{Kind: RecordRecover, Services: services, Servers: []string{c.Server},
		Message: fmt.Sprintf("container %s on %s %s", c.ID, c.Server, why)})
	// A step cut short by a lost server says nothing of the service.
	if s := inv.Server(c.Server); s == nil || s.State != fleet.ServerLost {
		m.failed(ctx, c.Service, r.Op, r.Error)
		m.rollFailed(ctx, c, why)
	}
	// A container that never started, or that its node stopped, holds
	// nothing: its lease goes and it is replaced after the back-off. One
	// that could not be stopped keeps its lease until it is fenced.
	if r.Step == StepStart || r.Destroyed {
		inv.Destroyed(c.ID, why)
	} else {
		c.State, c.Healthy, c.Error = fleet.Failed, false, fleet.Clip(why)
	}
	m.st.Pending = true
}

// failed counts a failed attempt of a service and holds the service back for
// an exponentially growing while (none after the first failure, then 1 s,
// 2 s, 4 s … 5 min). Containers of one
// operation that fail together are one attempt: otherwise the first wait of a
// service of n replicas would be 2^(n-1) s.
func (m *manager) failed(ctx workflow.Context, service, op, why string) {
	b := m.backoff(service)
	b.LastError = fleet.Clip(why)
	if b.Failures > 0 && op != "" && m.failedOp[service] == op {
		return
	}
	m.failedOp[service] = op
	b.Failures++
	first := time.Second // runs begun before the first retry was immediate
	if workflow.GetVersion(ctx, immediateRetryChange, workflow.DefaultVersion, 1) == 1 {
		first = 0
	}
	b.RetryAt = workflow.Now(ctx).Add(backoffDelay(b.Failures, first))
}

// immediateRetryChange gates the immediate replacement of a first failure.
const immediateRetryChange = "immediate-first-retry"

// refillAfterChange gates refilling the warm pool in the decision after an
// extension or a recovery instead of in the same operation.
const refillAfterChange = "refill-pool-after"

// backoffDelay is the wait before the next attempt after failures failed
// ones: none after the first (a one-off crash is replaced at once), then
// 1 s, 2 s, 4 s … up to maxBackoff. first is the wait after the first.
func backoffDelay(failures int, first time.Duration) time.Duration {
	if failures <= 1 {
		return first
	}
	d := time.Second
	for i := 2; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	if first > 0 { // the old sequence: 1 s, 2 s, 4 s …
		d *= 2
	}
	return min(d, maxBackoff)
}

// maxBackoff caps the crash-loop back-off.
const maxBackoff = 5 * time.Minute

func (m *manager) backoff(service string) *Backoff {
	for i := range m.st.Backoffs {
		if m.st.Backoffs[i].Service == service {
			return &m.st.Backoffs[i]
		}
	}
	m.st.Backoffs = append(m.st.Backoffs, Backoff{Service: service})
	return &m.st.Backoffs[len(m.st.Backoffs)-1]
}

// recovered ends a service's back-off once one of its containers succeeded.
func (m *manager) recovered(service string) {
	m.st.Backoffs = slices.DeleteFunc(m.st.Backoffs, func(b Backoff) bool { return b.Service == service })
}

// nextRetry is how long until the earliest back-off ends or a lost server
// is due to be forgotten, or 0.
func (m *manager) nextRetry(ctx workflow.Context) time.Duration {
	now := workflow.Now(ctx)
	var next time.Duration
	at := func(t time.Time) {
		if d := t.Sub(now); d > 0 && (next == 0 || d < next) {
			next = d
		}
	}
	for _, b := range m.st.Backoffs {
		at(b.RetryAt)
	}
	if m.rolls {
		if t := m.nextGrace(now); !t.IsZero() {
			at(t)
		}
	}
	if m.forgets && m.st.Catalog != nil {
		for _, s := range m.st.Inventory.Servers {
			if s.State == fleet.ServerLost && !s.LostAt.IsZero() {
				at(s.LostAt.Add(m.forgetAfter()))
			}
		}
	}
	return next
}

// forgetAfter is the catalog's manager.forget_after; a catalog from before
// it (0) gets the default, not "at once".
func (m *manager) forgetAfter() time.Duration {
	if d := m.st.Catalog.Manager.ForgetAfter; d > 0 {
		return d
	}
	return catalog.DefaultForgetAfter
}

// serviceImagesChange gates a service's own image (docker kind): runs
// begun before refused a catalog naming one (or, before
// validateCatalogChange, ignored the images).
const serviceImagesChange = "service-images"

// imagesAllowed reports whether this run takes the services' own images
// of c. The version is asked only of a catalog that names an image, the
// only one whose handling changed.
func (m *manager) imagesAllowed(ctx workflow.Context, c catalog.Catalog) bool {
	if len(c.Manager.WarmPoolImages) == 0 && !slices.ContainsFunc(c.Services, func(s catalog.Service) bool { return s.Image != "" }) {
		return true
	}
	return workflow.GetVersion(ctx, serviceImagesChange, workflow.DefaultVersion, 1) == 1
}

// imagesRefused is how runs begun before serviceImagesChange refused a
// catalog naming a service's image.
func imagesRefused(c catalog.Catalog, source string) string {
	var ps []catalog.Problem
	for i, s := range c.Services {
		if s.Image != "" {
			ps = append(ps, catalog.Problem{File: source, Field: fmt.Sprintf("services[%d].image", i),
				Message: "a service does not name an image: on the docker kind every container runs from manager.docker.image, which holds msm and the services' programs; build one FROM it with your program, set it as manager.docker.image, and set command"})
		}
	}
	return (&catalog.Error{Problems: ps}).Error()
}

// forgetLostChange gates forgetting lost servers for the runs begun
// before, which kept them until their node came back.
const forgetLostChange = "forget-lost-servers"

// forgetLost forgets every server lost for manager.forget_after: its
// containers, failed since it was lost, and their ports are released and it
// leaves the inventory (room under max_servers again, so demand may launch
// another). A launching kind's instance is terminated through the
// provider (a Shrink that releases it; terminating one gone already is no
// error). A node that comes back after is fenced: its reconcile finds no
// container the Manager keeps.
func (m *manager) forgetLost(ctx workflow.Context) {
	if !m.forgets || m.st.Catalog == nil {
		return
	}
	now := workflow.Now(ctx)
	after := m.forgetAfter()
	var due []fleet.Server
	for _, s := range m.st.Inventory.Servers {
		if s.State == fleet.ServerLost && !s.LostAt.IsZero() && !now.Before(s.LostAt.Add(after)) {
			due = append(due, s)
		}
	}
	for _, s := range due {
		m.forget(ctx, s, fmt.Sprintf("more than manager.forget_after (%s)", after))
	}
	if len(due) > 0 {
		m.st.Pending = true
	}
}

// forget forgets the lost server s (forgetLost, msm forget), why saying
// what decided it.
func (m *manager) forget(ctx workflow.Context, s fleet.Server, why string) {
	n := len(m.st.Inventory.OnServer(s.ID))
	m.unwatch(s.ID)
	since := ""
	if !s.LostAt.IsZero() {
		since = " since " + s.LostAt.UTC().Format(time.TimeOnly)
	}
	msg := fmt.Sprintf("server %s forgotten: lost%s, %s; its %d container(s) and their ports released", s.ID, since, why, n)
	if !m.st.Catalog.Manager.Launches() {
		m.st.Inventory.Forget(s.ID)
		m.record(ctx, Record{Kind: RecordEvent, Servers: []string{s.ID}, Message: msg})
		return
	}
	// Its containers go now; the server, once the provider terminated it.
	for _, c := range m.st.Inventory.OnServer(s.ID) {
		m.st.Inventory.RemoveContainer(c.ID)
	}
	m.st.Inventory.Server(s.ID).LostAt = time.Time{}
	m.st.Ops++
	m.record(ctx, Record{Kind: RecordShrink, Servers: []string{s.ID}, Message: msg + "; terminating it"})
	m.startShrink(ctx, fmt.Sprintf("%s/shrink/%s/%d", ManagerID(m.st.Manager), s.ID, m.st.Ops), fleet.ShrinkPlan{Release: []string{s.ID}}, "forgotten")
}

func (m *manager) validateProvision(u ProvisionUpdate) error {
	if m.st.Catalog == nil {
		return errors.New("the Manager has no catalog yet: start `msm worker --catalog FILE` first")
	}
	for _, name := range u.Services {
		if m.service(name) == nil {
			return fmt.Errorf("unknown service %q: the catalog has %v", name, m.serviceNames())
		}
	}
	return nil
}

func (m *manager) provisionUpdate(ctx workflow.Context, u ProvisionUpdate) (ProvisionAccepted, error) {
	m.st.Pending = true
	// An operator asking now skips the back-off of what they named.
	if len(u.Services) == 0 {
		m.st.Backoffs = nil
	}
	for _, name := range u.Services {
		m.recovered(name)
	}
	lifted := "every service"
	if len(u.Services) > 0 {
		lifted = fmt.Sprintf("%v", u.Services)
	}
	return ProvisionAccepted{Message: "provisioning every service up to its initial replicas and the warm pool; back-off lifted for " + lifted}, nil
}

func (m *manager) serviceNames() []string {
	var out []string
	for _, s := range m.st.Catalog.Services {
		out = append(out, s.Name)
	}
	return out
}

// event records what the Manager saw that is no decision of its own.
func (m *manager) event(ctx workflow.Context, msg string) {
	m.record(ctx, Record{Kind: RecordEvent, Message: msg})
}

// reports says whether reports are authenticated, for status.
func (m *manager) reports() string {
	if m.ring != nil {
		return ReportsAuthenticated
	}
	return ""
}

func (m *manager) status() (Status, error) {
	st := Status{Manager: m.st.Manager, Operations: m.running, Unplaced: m.unplaced, Events: m.events(), Counts: m.st.Counts, Durations: m.st.Durations,
		CatalogSource: m.st.CatalogSource, CatalogError: m.st.CatalogError, Rejected: m.st.Rejected, Reports: m.reports(),
		Servers: []ServerStatus{}, Containers: []ContainerStatus{}, Services: []ServiceStatus{}}
	// A query writes no history: which build answers it may differ from
	// one worker to the next.
	st.Worker = version.Get() //workflowcheck:ignore
	inv := &m.st.Inventory
	if m.bounded {
		st.RunSignals, st.SignalLimit = m.signals, m.signalLimit
	}
	if m.st.Catalog != nil {
		st.Kind = m.st.Catalog.Manager.Kind
		st.WarmPool = m.st.Catalog.Manager.PoolTotal()
		ready := inv.ReadyByService()
		for _, s := range m.st.Catalog.Services {
			ss := ServiceStatus{Name: s.Name, Desired: m.desired(s), Ready: ready[s.Name], Floor: m.floor(s.Name)}
			if m.rolls {
				if r := m.rollout(s.Name); r != nil {
					ss.Rollout = m.rolloutOf(*r)
				}
			}
			for _, b := range m.st.Backoffs {
				if b.Service == s.Name {
					retry := b.RetryAt
					ss.Failures, ss.LastError, ss.RetryAt = b.Failures, b.LastError, &retry
				}
			}
			st.Services = append(st.Services, ss)
		}
	}
	used := inv.UsedByServer(m.slotsOf)
	leased := map[string]int{}
	for _, c := range inv.Containers {
		if c.Port != 0 {
			leased[c.Server]++
		}
	}
	for _, s := range inv.Servers {
		st.Ports = append(st.Ports, PortUse{Server: s.ID, Range: s.Ports.Size(), Blocked: len(s.Blocked), Leased: leased[s.ID]})
	}
	for _, s := range inv.Servers {
		u := m.serverUsage[s.ID]
		ss := ServerStatus{ID: s.ID, State: string(s.State), Address: s.Address,
			Slots: s.Slots, Used: used[s.ID], CPU: u.CPU, Memory: u.Memory, Node: s.Node}
		if !s.Unheard.IsZero() {
			until := s.Unheard
			ss.UnheardUntil = &until
		}
		st.Servers = append(st.Servers, ss)
	}
	for _, c := range inv.Containers {
		st.Containers = append(st.Containers, ContainerStatus{ID: c.ID, Server: c.Server, State: string(c.State),
			Service: c.Service, Port: c.Port, Healthy: c.Healthy, Error: c.Error, Image: c.Image, CPU: m.cpu[c.ID], Agent: c.Agent})
	}
	// Destroyed failures hold no lease any more: port 0.
	for _, c := range inv.Failed {
		st.Containers = append(st.Containers, ContainerStatus{ID: c.ID, Server: c.Server, State: string(fleet.Failed),
			Service: c.Service, Error: c.Error, Image: c.Image})
	}
	return st, nil
}

func (m *manager) slotsOf(service string) int {
	if s := m.service(service); s != nil && s.Slots > 0 {
		return s.Slots
	}
	return 1
}

// RootMessage is the message a user needs from a Temporal error chain: the
// first application error's own message, else the innermost one (how the
// Manager words an operation's failure; activities word theirs so too).
func RootMessage(err error) string { return rootMessage(err) }

func rootMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Message() != "" {
		return app.Message()
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// operation is the context of an operation's child workflow: its readable
// ID, search attributes so the Web UI finds it by kind and service, and a
// task timeout for the instances it places or removes.
// timeout bounds the child's run (0: none, in runs begun before
// decide-ops).
// summary is the run's one-line static summary: the Web UI shows it beside
// the child's events on the Manager's History and User Metadata tabs, and
// on the operation's own page.
func (m *manager) operation(ctx workflow.Context, id, kind string, services []string, instances int, timeout time.Duration, summary string) workflow.Context {
	attrs := []temporal.SearchAttributeUpdate{AttrManager.ValueSet(m.st.Manager), AttrOperation.ValueSet(kind)}
	if len(services) > 0 {
		attrs = append(attrs, AttrService.ValueSet(services))
	}
	// An operation outlives a run that continues as new while it runs
	// (signalBoundsChange): the next run awaits it (HandedOp).
	policy := enumspb.PARENT_CLOSE_POLICY_UNSPECIFIED
	if m.bounded {
		policy = enumspb.PARENT_CLOSE_POLICY_ABANDON
	}
	return workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		ParentClosePolicy:     policy,
		WorkflowID:            id,
		TaskQueue:             TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
		WorkflowRunTimeout:    timeout,
		// A worker killed in an operation's workflow task costs this
		// before another takes the task (the server's default is 10 s:
		// measured 10.1-11.5 s to finish after a kill; with two workers,
		// the worker's sticky 1 s then a task timeout of 2 s cost up to
		// 3.1 s: TestTwoWorkersFailOverAtEachStep). An operation's tasks
		// are small, and its plan is capped (PlanLimit).
		WorkflowTaskTimeout: OperationTaskTimeout(instances),
		StaticSummary:       summary,
	})
}

// because is a decision's reason as the end of an event, or "".
func because(why string) string {
	if why == "" {
		return ""
	}
	return " (" + why + ")"
}
