package workflows

import (
	"encoding/json"
	"strconv"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows/agentapi"
)

// What the workflows and a container agent agree on lives in agentapi,
// which links no Temporal SDK; these are its names here.
type (
	ErrorReport       = agentapi.ErrorReport
	OverloadSignal    = agentapi.OverloadSignal
	IdleSignal        = agentapi.IdleSignal
	LoadServiceInput  = agentapi.LoadServiceInput
	LoadServiceResult = agentapi.LoadServiceResult
	ReadyResult       = agentapi.ReadyResult
)

// ContainerQueue is the task queue of one container's agent.
func ContainerQueue(container string) string { return agentapi.ContainerQueue(container) }

// ManagerID is the workflow ID of a Manager's entity workflow.
func ManagerID(manager string) string { return agentapi.ManagerID(manager) }

// TaskQueue is where the Manager's workflows and manager-side activities run.
const TaskQueue = "msm"

// NodeQueue is the task queue of the node agent of one server.
func NodeQueue(server string) string { return "msm-node-" + server }

// SimulatedQueue is the one task queue of a simulated Manager's nodes and
// agents: the simulated kind serves every server's node activities and
// every container's agent activities from one worker, on this queue.
func SimulatedQueue(manager string) string { return "msm-sim-" + manager }

// queues names the task queues of the node and agent steps of a Manager of
// a kind: one per server and one per container, or the simulated kind's one.
type queues struct{ sim string }

func queuesOf(kind, manager string) queues {
	if kind == catalog.KindSimulated {
		return queues{sim: SimulatedQueue(manager)}
	}
	return queues{}
}

func (q queues) node(server string) string {
	if q.sim != "" {
		return q.sim
	}
	return NodeQueue(server)
}

func (q queues) container(id string) string {
	if q.sim != "" {
		return q.sim
	}
	return ContainerQueue(id)
}

// Names of the Manager's messages. Agents and watchers signal; operators
// update, because their requests need a validated answer.
const (
	SignalCatalog  = "catalog"  // CatalogSignal: the catalog in force
	SignalRegister = "register" // RegisterSignal: an agent came up
	SignalNodeUp   = "node-up"  // NodeUpSignal: a node agent (re)started
	SignalResult   = "result"   // StepResult: an operation finished a step
	// SignalResults carries StepResults: the steps an operation finished
	// since its last report, in the order they finished (operations begun
	// after batch-results).
	SignalResults  = "results"
	SignalOverload = agentapi.SignalOverload // OverloadSignal: an agent's service is overloaded
	SignalIdle     = agentapi.SignalIdle     // IdleSignal: an agent's service is idle
	SignalUsage    = "usage"                 // UsageSignal: a node's periodic usage summary
	// SignalErrorReport (ErrorReport): a container's MicroService exited or
	// failed its health checks.
	SignalErrorReport = agentapi.SignalErrorReport
	// SignalCatalogRejected (CatalogRejectedSignal): a changed catalog did
	// not validate; the one in force stays.
	SignalCatalogRejected = "catalog-rejected"
	UpdateProvision       = "provision"
	UpdateExtend          = "extend" // ExtendUpdate: add instances to a service
	UpdateScale           = "scale"  // ScaleUpdate: set a service's instances
	QueryStatus           = "status"
)

// Activity names. Workflows call activities by name because the packages
// that implement them (activities, node, agent) sit above this one.
const (
	ActivityLaunchServer   = "LaunchServer"   // manager queue
	ActivityStartContainer = "StartContainer" // node queue
	// ActivityStartContainers (node queue, StartContainersInput) starts
	// several containers of one server in one step; startbatch.Each serves it.
	ActivityStartContainers = "StartContainers"
	ActivityStopContainer   = "StopContainer"                // node queue
	ActivityLoadService     = agentapi.ActivityLoadService   // container queue
	ActivityReady           = agentapi.ActivityReady         // container queue
	ActivityUnloadService   = agentapi.ActivityUnloadService // container queue
	ActivityReleaseServer   = "ReleaseServer"                // manager queue
	// ActivityLease (node queue, LeaseInput) heartbeats until cancelled:
	// its heartbeat timeout is the server's liveness window, and its
	// heartbeats write no history event.
	ActivityLease = "Lease"
	// ActivityReconcile (node queue, ReconcileInput) stops the containers
	// the Manager does not keep and says which still run.
	ActivityReconcile = "Reconcile"
)

// Error types of non-retryable application errors.
const (
	ErrPortInUse      = agentapi.ErrPortInUse
	ErrInvalidCatalog = "InvalidCatalog"
	ErrLoadFailed     = agentapi.ErrLoadFailed
	ErrUnknownKind    = "UnknownKind"
	ErrNoCapacity     = "NoCapacity"
	// ErrProviderConfig: the provider refused the kind's settings (an
	// unknown image, subnet or group; missing permissions).
	ErrProviderConfig = "ProviderConfig"
	// ErrImageNotFound: a service's own image is not on the engine and
	// could not be pulled (docker kind). It fails that service's start;
	// the Manager's crash-loop back-off tries again later.
	ErrImageNotFound = "ImageNotFound"
)

// Search attributes that make runs easy to find in the Web UI:
// MsmManager = "local", MsmOperation = "provision", MsmService IN ("web").
var (
	AttrManager   = temporal.NewSearchAttributeKeyKeyword("MsmManager")
	AttrOperation = temporal.NewSearchAttributeKeyKeyword("MsmOperation")
	AttrService   = temporal.NewSearchAttributeKeyKeywordList("MsmService")
)

// SearchAttributeTypes lists the attributes to register, name to type.
var SearchAttributeTypes = map[string]string{
	"MsmManager":   "Keyword",
	"MsmOperation": "Keyword",
	"MsmService":   "KeywordList",
}

// ManagerInput starts (or continues) a Manager.
type ManagerInput struct {
	Manager string           `json:"manager"`
	Catalog *catalog.Catalog `json:"catalog,omitempty"`
	// CatalogSource names where the catalog came from (a file path).
	CatalogSource string          `json:"catalog_source,omitempty"`
	Inventory     fleet.Inventory `json:"inventory"`
	Ops           int             `json:"ops"`
	Pending       bool            `json:"pending"`
	// Events is the event log of runs begun before the decision log: the
	// next run turns them into records (migrateEvents).
	Events []Event `json:"events,omitempty"`
	// Log is the decision log, its last MaxRecords records, and Seq the
	// number of the last record ever made.
	Log []Record `json:"log,omitempty"`
	Seq int64    `json:"seq,omitempty"`
	// Counts are the Manager's counters, Durations its operations'
	// durations by kind: what its metrics export.
	Counts    []Count     `json:"counts,omitempty"`
	Durations []Durations `json:"durations,omitempty"`
	// CatalogError is why the last change of the catalog was rejected,
	// until a valid one arrives.
	CatalogError string `json:"catalog_error,omitempty"`
	// Extending are the services extended, and Recovering those with a
	// reported crash or a lost server, since the decision that names the
	// operation that carries it out; Suppressed the overload reports
	// ignored per service (inside a cooldown or at max) since the last
	// extension, so the event log says how many without a line each.
	Extending  []string       `json:"extending,omitempty"`
	Recovering []string       `json:"recovering,omitempty"`
	Suppressed map[string]int `json:"suppressed,omitempty"`
	// Targets are the services scaled away from their initial replicas.
	Targets []Target `json:"targets,omitempty"`
	// Backoffs are the services in crash-loop back-off.
	Backoffs []Backoff `json:"backoffs,omitempty"`
	// HistoryLimit is the history length at which the Manager continues as
	// new; 0 means DefaultHistoryLimit. Tests set it low.
	HistoryLimit int `json:"history_limit,omitempty"`
	// SignalLimit is how many signals a run takes before it continues as
	// new; 0 means DefaultSignalLimit. Tests set it low.
	SignalLimit int `json:"signal_limit,omitempty"`
	// Handed are the operations the run before handed over, still
	// running when it continued as new (signalBoundsChange).
	Handed []HandedOp `json:"handed,omitempty"`
	// Rejected counts the reports refused since the Manager began.
	Rejected int `json:"rejected,omitempty"`
	// Rollouts are the services' last rolls to a new revision.
	Rollouts []Rollout `json:"rollouts,omitempty"`
	// SchedulesSynced is the fingerprint of the schedule rules last made
	// Temporal Schedules ("" for none), and ScheduleIDs their IDs.
	SchedulesSynced string   `json:"schedules_synced,omitempty"`
	ScheduleIDs     []string `json:"schedule_ids,omitempty"`
}

// CatalogSignal carries a validated catalog to the Manager.
type CatalogSignal struct {
	Catalog catalog.Catalog `json:"catalog"`
	Source  string          `json:"source"`
	// Auth is the tag of the catalog and source under the worker's key
	// (trust.WorkerKey).
	Auth string `json:"auth,omitempty"`
}

// Fields are what a CatalogSignal's tag covers: the catalog as JSON, which
// the worker that signs and the Manager that checks encode alike (they are
// one program). encoding/json writes a struct's fields in order and a
// map's keys sorted, so the same catalog gives the same bytes on every
// replay (workflowcheck cannot tell, for its type cache).
//
//workflowcheck:ignore
func (s CatalogSignal) Fields() []string {
	b, err := json.Marshal(s.Catalog)
	if err != nil {
		return []string{"unencodable catalog"}
	}
	return []string{SignalCatalog, s.Source, string(b)}
}

// UsageSignal is a node's usage summary over its last report period.
type UsageSignal struct {
	Server string `json:"server"`
	// CPU is the server's CPU use in percent of all its cores; Memory the
	// memory in use, in percent.
	CPU        int              `json:"cpu"`
	Memory     int              `json:"memory"`
	Containers []ContainerUsage `json:"containers"`
	Auth       string           `json:"auth,omitempty"` // tag under the server's key
}

// Fields are what a UsageSignal's tag covers.
func (u UsageSignal) Fields() []string {
	f := []string{SignalUsage, u.Server, strconv.Itoa(u.CPU), strconv.Itoa(u.Memory)}
	for _, c := range u.Containers {
		f = append(f, c.Container, strconv.Itoa(c.CPU))
	}
	return f
}

// ContainerUsage is one container's CPU use (agent and MicroService) over
// the period, in percent of one core.
type ContainerUsage struct {
	Container string `json:"container"`
	CPU       int    `json:"cpu"`
}

// CatalogRejectedSignal says why a changed catalog was not taken.
type CatalogRejectedSignal struct {
	Source string `json:"source"`
	Error  string `json:"error"`
	Auth   string `json:"auth,omitempty"` // tag under the worker's key
}

// Fields are what a CatalogRejectedSignal's tag covers.
func (s CatalogRejectedSignal) Fields() []string {
	return []string{SignalCatalogRejected, s.Source, s.Error}
}

// RegisterSignal is sent by an agent when it starts.
type RegisterSignal struct {
	Container string `json:"container"`
	Server    string `json:"server"`
	PID       int    `json:"pid"`
	Auth      string `json:"auth,omitempty"` // tag under the container's key
}

// Fields are what a RegisterSignal's tag covers.
func (s RegisterSignal) Fields() []string {
	return []string{SignalRegister, s.Container, s.Server, strconv.Itoa(s.PID)}
}

// NodeUpSignal is sent by a node agent when it starts, with the containers
// it found still running on its server and re-attached to.
type NodeUpSignal struct {
	Server     string   `json:"server"`
	Containers []string `json:"containers"`
	Auth       string   `json:"auth,omitempty"` // tag under the server's key
}

// Fields are what a NodeUpSignal's tag covers.
func (s NodeUpSignal) Fields() []string {
	return append([]string{SignalNodeUp, s.Server}, s.Containers...)
}

// ProvisionUpdate asks the Manager to provision every service now; the
// Services named (all when none) skip their crash-loop back-off.
type ProvisionUpdate struct {
	Services []string `json:"services,omitempty"`
}

// ExtendUpdate asks for Count more instances of Service (never above its
// max: the answer says when it was capped).
type ExtendUpdate struct {
	Service string `json:"service"`
	Count   int    `json:"count"`
	Reason  string `json:"reason,omitempty"`
}

// ScaleUpdate sets the instances of Service, within its min and max.
type ScaleUpdate struct {
	Service  string `json:"service"`
	Replicas int    `json:"replicas"`
}

// Target is a service's desired instances when they differ from its
// initial replicas, and the end of its extension cooldown.
type Target struct {
	Service       string    `json:"service"`
	Desired       int       `json:"desired"`
	CooldownUntil time.Time `json:"cooldown_until,omitempty"`
	// Trigger is what raised it last (TriggerAgent, TriggerOperator,
	// TriggerMonitoring), and Why with its figures: the extension's
	// operation is counted and recorded for it.
	Trigger string `json:"trigger,omitempty"`
	Why     string `json:"why,omitempty"`
	// From is the desired instances before the extension.
	From int `json:"from,omitempty"`
	// Trace is the trace context (W3C traceparent) of the report or update
	// that asked for the extension: its decision's span joins that trace.
	Trace string `json:"trace,omitempty"`
	// Floor is the least the service's desired instances are, set by its
	// schedule rules (FloorUpdate), and FloorBy which rule set it.
	Floor   int    `json:"floor,omitempty"`
	FloorBy string `json:"floor_by,omitempty"`
}

// DefaultCooldown is how long after an extension further overload reports
// for the same service make no new decision.
const DefaultCooldown = 30 * time.Second

// ProvisionAccepted answers a ProvisionUpdate (and extend and scale).
type ProvisionAccepted struct {
	Message string `json:"message"`
}

// Step kinds reported by operations.
const (
	StepServer    = "server"
	StepStart     = "start"
	StepLoad      = "load"
	StepReady     = "ready" // a warm-pool container's agent answered
	StepOperation = "operation"
)

// StepResults reports several finished steps at once.
type StepResults struct {
	Steps []StepResult `json:"steps"`
	// Auth is the tag of the steps under the key of the operation that
	// sends them (trust.OperationKey); every step is of that operation.
	Auth string `json:"auth,omitempty"`
}

// Fields are what a StepResults' tag covers.
func (rs StepResults) Fields() []string {
	f := []string{SignalResults}
	for _, r := range rs.Steps {
		f = append(f, r.fields()...)
	}
	return f
}

// StepResult reports one finished step of an operation to the Manager, which
// records it: operations carry out plans, only the Manager writes state.
type StepResult struct {
	Op        string `json:"op"`
	Step      string `json:"step"`
	Server    string `json:"server,omitempty"`
	Container string `json:"container,omitempty"`
	Port      int    `json:"port,omitempty"`
	PID       int    `json:"pid,omitempty"`
	OK        bool   `json:"ok"`
	ErrorType string `json:"error_type,omitempty"`
	Error     string `json:"error,omitempty"`
	// Destroyed says a failed container was stopped, so its lease may go.
	Destroyed bool `json:"destroyed,omitempty"`
	// Address is a launched server's address, as its provider gave it.
	Address string `json:"address,omitempty"`
	// Auth is the tag under the key of the operation Op names (sent alone).
	Auth string `json:"auth,omitempty"`
}

func (r StepResult) fields() []string {
	return []string{r.Op, r.Step, r.Server, r.Container, strconv.Itoa(r.Port), strconv.Itoa(r.PID), strconv.FormatBool(r.OK),
		r.ErrorType, r.Error, strconv.FormatBool(r.Destroyed), r.Address}
}

// Fields are what a StepResult's tag covers.
func (r StepResult) Fields() []string {
	return append([]string{SignalResult}, r.fields()...)
}

// ProvisionInput is the plan a Provision operation carries out.
type ProvisionInput struct {
	Op       string            `json:"op"`
	Manager  string            `json:"manager"`
	Kind     string            `json:"kind"`
	Plan     fleet.Plan        `json:"plan"`
	Services []catalog.Service `json:"services"` // specs of the services the plan loads
	// Addresses of the servers the plan uses, by server ID.
	Addresses map[string]string `json:"addresses"`
	// Config is the catalog's manager section, for the kinds whose
	// provider needs it (ec2, azure); nil for the others.
	Config *catalog.Manager `json:"config,omitempty"`
}

// ProvisionResult summarizes a Provision for the Web UI.
type ProvisionResult struct {
	Servers int `json:"servers"`
	Started int `json:"started"`
	Loaded  int `json:"loaded"`
	Failed  int `json:"failed"`
	// Steps are the steps the Manager was not signalled (batchResultsChange).
	Steps []StepResult `json:"steps,omitempty"`
}

// LaunchServerInput asks the provider for a server; Key makes it idempotent.
type LaunchServerInput struct {
	Manager string       `json:"manager"`
	Kind    string       `json:"kind"`
	Key     string       `json:"key"`
	Server  fleet.Server `json:"server"`
	// Config configures the provider of the ec2 and azure kinds.
	Config *catalog.Manager `json:"config,omitempty"`
}

// ReleaseServerInput gives a server back to its provider; one already gone
// counts as released.
type ReleaseServerInput struct {
	Manager string `json:"manager"`
	Kind    string `json:"kind"`
	Server  string `json:"server"`
	// Config configures the provider of the ec2 and azure kinds.
	Config *catalog.Manager `json:"config,omitempty"`
}

// LaunchServerResult is the server as the provider knows it.
type LaunchServerResult struct {
	ID      string `json:"id"`
	Address string `json:"address"`
}

// StartContainerInput asks a node to start one container process. The
// container ID is the idempotency key: a second start of the same ID returns
// the running process.
type StartContainerInput struct {
	Manager   string `json:"manager"`
	Container string `json:"container"`
	Server    string `json:"server"`
	Port      int    `json:"port"`
	// Image, on the docker kind, is the service's own image the container
	// runs instead of the Manager's (fleet.Container.Image), and Service
	// the service it is started for, which its messages name. Both are
	// left out when unset, so the starts of before encode as they did.
	Image   string `json:"image,omitempty"`
	Service string `json:"service,omitempty"`
}

// StartContainerResult is the started (or already running) container.
type StartContainerResult struct {
	PID      int  `json:"pid"`
	Attached bool `json:"attached"` // it was already running
}

// StartContainersInput asks a node to start several containers of its
// server in one step. Each container ID is its own idempotency key, as in
// StartContainerInput: a retried batch finds what it started running.
type StartContainersInput struct {
	Manager    string           `json:"manager"`
	Server     string           `json:"server"`
	Containers []StartContainer `json:"containers"`
}

// StartContainer is one container of a batch: its ID and leased port.
type StartContainer struct {
	Container string `json:"container"`
	Port      int    `json:"port"`
	// Image and Service are StartContainerInput's.
	Image   string `json:"image,omitempty"`
	Service string `json:"service,omitempty"`
}

// StartContainersResult has one outcome per container, in input order.
type StartContainersResult struct {
	Started []StartOutcome `json:"started"`
}

// StartOutcome is how the start of one container of a batch ended: a
// PID, a permanent failure (ErrorType and Error), or a failure worth
// retrying (Retry: the workflow starts that container again on its own).
type StartOutcome struct {
	Container string `json:"container"`
	PID       int    `json:"pid,omitempty"`
	Attached  bool   `json:"attached,omitempty"`
	ErrorType string `json:"errorType,omitempty"`
	Error     string `json:"error,omitempty"`
	Retry     bool   `json:"retry,omitempty"`
}

// StartParallel is how many of a batch's containers a node starts at
// once (startbatch.Each); a batch's timeout counts its rounds of that size.
const StartParallel = 8

// PermanentStart are the error types a start never retries.
var PermanentStart = []string{ErrPortInUse, ErrImageNotFound}

// StopContainerInput asks a node to stop a container; already gone is success.
type StopContainerInput struct {
	Container string `json:"container"`
}

// LeaseInput starts a server's liveness lease on its node.
type LeaseInput struct {
	Manager string `json:"manager"`
	Server  string `json:"server"`
}

// LeaseBeat is the detail of each heartbeat of a lease: when the node sent
// it, on the Temporal server's clock (the lease's start time as the server
// gave it, plus the node's own elapsed time since), so that no skew
// between the node's clock and the server's counts. A lease that timed out
// carries its last beat: the Manager tells from it whether the node went
// silent (the timeout came a window after the beat) or Temporal, or the
// Manager itself, was away (it came much later).
type LeaseBeat struct {
	At time.Time `json:"at"`
}

// ReconcileInput asks a node to make its containers match the inventory:
// every container of Manager on Server whose sequence number (the n of
// <manager>-c<n>) is at most Seq and that Keep does not name is stopped;
// newer ones were placed after the snapshot and are left alone.
type ReconcileInput struct {
	Manager string   `json:"manager"`
	Server  string   `json:"server"`
	Keep    []string `json:"keep"`
	Seq     int      `json:"seq"`
}

// ReconcileResult is what the node stopped and what still runs, in ID order.
type ReconcileResult struct {
	Stopped []string `json:"stopped"`
	Running []string `json:"running"`
	// Version is the node's msm version (internal/version) and Wire the
	// contract it speaks (agentapi.Wire); both absent from a node of wire 1.
	Version string `json:"version,omitempty"`
	Wire    int    `json:"wire,omitempty"`
}

// Backoff holds back a service whose containers keep failing, so a broken
// command is not restarted in a tight loop. "" is the warm pool.
type Backoff struct {
	Service   string    `json:"service"`
	Failures  int       `json:"failures"`
	RetryAt   time.Time `json:"retry_at"`
	LastError string    `json:"last_error"`
}

// Event is one line of the Manager's recent history, for status.
type Event struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}
