package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Record is one entry of the Manager's decision log (`msm events`, `msm
// why`): what it decided or saw, on what trigger, why not the
// alternatives, and for an operation, later, how it ended.
type Record struct {
	// Seq numbers the records of a Manager from 1, across continue-as-new:
	// `msm events -f` asks for those after the last it printed.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Kind is the decision (RecordExtend …), an operation's end
	// (RecordDone, RecordFailed), or RecordEvent for anything else seen.
	Kind     string   `json:"kind"`
	Services []string `json:"services,omitempty"`
	Servers  []string `json:"servers,omitempty"`
	// Op is the operation the decision started or that ended.
	Op string `json:"op,omitempty"`
	// Trigger is what asked, with its figures ("overload reported by
	// m-c3: cpu 93% above 80% for 10s").
	Trigger string `json:"trigger,omitempty"`
	// Message is what was chosen (or seen); Why why, and why not the
	// alternatives ("no waiting container; local-1 full: 3/3 slots").
	Message string `json:"message"`
	Why     string `json:"why,omitempty"`
	// Outcome is how the operation the record started ended, filled in
	// when it ends (a RecordDone or RecordFailed record says it too).
	Outcome string `json:"outcome,omitempty"`
	// Took is how long the operation a RecordDone or RecordFailed record
	// ends ran.
	Took time.Duration `json:"took,omitempty"`
}

// Text is the record in one line, as the status's events show it: the
// message, and why (or else the trigger) in parentheses.
func (r Record) Text() string {
	if r.Why != "" {
		return r.Message + because(r.Why)
	}
	return r.Message + because(r.Trigger)
}

// Kinds of records.
const (
	RecordExtend      = "extend"  // a service's desired instances raised, or the operation placing them
	RecordShrink      = "shrink"  // desired instances lowered, or the operation removing them
	RecordRecover     = "recover" // a failed instance to replace, or the operation replacing it
	RecordRearrange   = "rearrange"
	RecordProvision   = "provision"
	RecordRefill      = "refill"
	RecordConsolidate = "consolidate"
	RecordDrain       = "drain"
	RecordUnplaced    = "unplaced" // demand no server could take
	RecordCatalog     = "catalog"  // a catalog installed or refused
	RecordRejected    = "rejected" // a report refused
	RecordDone        = "done"     // an operation ended
	RecordFailed      = "failed"   // an operation failed
	RecordEvent       = "event"    // anything else the Manager saw
)

// MaxRecords is how many records the Manager keeps; the status's events
// are the last maxEvents of them.
const MaxRecords = 200

// QueryLog (LogQuery → LogPage) reads the decision log.
const QueryLog = "log"

// LogQuery selects records: those after Seq After, of a service or a
// server when named, the Last of them when Last > 0.
type LogQuery struct {
	After   int64  `json:"after,omitempty"`
	Service string `json:"service,omitempty"`
	Server  string `json:"server,omitempty"`
	Last    int    `json:"last,omitempty"`
}

// LogPage answers a LogQuery: the records, oldest first, and Seq, the
// last record's number, to ask for the next ones after.
type LogPage struct {
	Records []Record `json:"records"`
	Seq     int64    `json:"seq"`
}

// log answers QueryLog.
func (m *manager) log(q LogQuery) (LogPage, error) {
	page := LogPage{Records: []Record{}, Seq: m.st.Seq}
	for _, r := range m.st.Log {
		if r.Seq <= q.After || (q.Service != "" && !slices.Contains(r.Services, q.Service)) ||
			(q.Server != "" && !slices.Contains(r.Servers, q.Server)) {
			continue
		}
		page.Records = append(page.Records, r)
	}
	if q.Last > 0 && len(page.Records) > q.Last {
		page.Records = page.Records[len(page.Records)-q.Last:]
	}
	return page, nil
}

// record adds r to the decision log (and the worker's log), numbered and
// timed, each text clipped; the oldest go past MaxRecords. Every record
// but an event or an operation's end is a decision, counted by kind.
func (m *manager) record(ctx workflow.Context, r Record) {
	m.st.Seq++
	r.Seq, r.Time = m.st.Seq, workflow.Now(ctx)
	r.Message, r.Trigger, r.Why = fleet.Clip(r.Message), fleet.Clip(r.Trigger), fleet.Clip(r.Why)
	r.Services, r.Servers = clipList(r.Services), clipList(r.Servers)
	// The worker writes these at info level even when it quiets the SDK
	// (clicore's DecisionKey); with tracing on they carry the trace ID.
	workflow.GetLogger(ctx).Info(r.Message, "decision", r.Kind, "seq", r.Seq, "op", r.Op, "trigger", r.Trigger, "why", r.Why)
	m.st.Log = append(m.st.Log, r)
	if len(m.st.Log) > MaxRecords {
		m.st.Log = slices.Clone(m.st.Log[len(m.st.Log)-MaxRecords:])
	}
	if r.Kind != RecordEvent && r.Kind != RecordDone && r.Kind != RecordFailed {
		m.count(CountDecisions, 1, r.Kind)
	}
	m.publish(ctx)
}

// maxListed bounds the services and servers one record names.
const maxListed = 10

func clipList(l []string) []string {
	if len(l) > maxListed {
		return append(slices.Clone(l[:maxListed]), fmt.Sprintf("(%d more)", len(l)-maxListed))
	}
	return l
}

// outcome closes the record that started operation op and adds the
// record of its end.
func (m *manager) outcome(ctx workflow.Context, op, kind string, services []string, msg string, took time.Duration) {
	for i := len(m.st.Log) - 1; i >= 0; i-- {
		if m.st.Log[i].Op == op && m.st.Log[i].Kind != RecordDone && m.st.Log[i].Kind != RecordFailed {
			m.st.Log[i].Outcome = fleet.Clip(fmt.Sprintf("%s (took %s)", msg, took))
			break
		}
	}
	m.record(ctx, Record{Kind: kind, Op: op, Services: services, Message: msg, Took: took})
}

// migrateEvents turns the events of a run begun before the decision log
// into records, once.
func (m *manager) migrateEvents() {
	for _, e := range m.st.Events {
		m.st.Seq++
		m.st.Log = append(m.st.Log, Record{Seq: m.st.Seq, Time: e.Time, Kind: RecordEvent, Message: e.Message})
	}
	m.st.Events = nil
}

// events are the status's last events: the tail of the log, each record's
// message.
func (m *manager) events() []Event {
	log := m.st.Log
	if len(log) > maxEvents {
		log = log[len(log)-maxEvents:]
	}
	out := make([]Event, 0, len(log))
	for _, r := range log {
		out = append(out, Event{Time: r.Time, Message: r.Text()})
	}
	return out
}

// Triggers of an extension (Target.Trigger, the trigger label of
// msm_extensions_total).
const (
	TriggerAgent      = "agent"      // an agent's overload report
	TriggerOperator   = "operator"   // msm extend or msm scale
	TriggerMonitoring = "monitoring" // the autoscaler, on the nodes' usage reports
	// TriggerSchedule (schedules.go): a schedule rule's floor.
)

// Causes of a recovery (the cause label of msm_recoveries_total): those an
// ErrorReport names, and those the Manager sees itself.
const (
	CauseExit        = agentapi.CauseExit
	CauseHealth      = agentapi.CauseHealth
	CauseLimit       = agentapi.CauseLimit
	CauseAgentExit   = agentapi.CauseAgentExit
	CauseAgentHung   = agentapi.CauseAgentHung
	CauseServerLost  = "server_lost"  // its server's lease ran out (crashed or cut off)
	CauseNodeRestart = "node_restart" // its node came back without it
	CauseStart       = "start_failed" // its container did not start or come up
	CauseLoad        = "load_failed"  // its MicroService did not load
	CauseReport      = "report"       // a report that named no cause (an older agent)
)

// Counters of the Manager (Count.Metric), with their labels in order:
// what its metrics export as msm_<metric>_total.
const (
	CountDecisions  = "decisions"        // kind
	CountExtensions = "extensions"       // service, trigger, source
	CountRecoveries = "recoveries"       // service, cause
	CountShrinks    = "shrinks"          // service
	CountOperations = "operations"       // kind, result
	CountCatalog    = "catalog_reloads"  // result
	CountRejected   = "rejected_reports" // signal
)

// CountLabels are the label names of each counter.
var CountLabels = map[string][]string{
	CountDecisions:  {"kind"},
	CountExtensions: {"service", "trigger", "source"},
	CountRecoveries: {"service", "cause"},
	CountShrinks:    {"service"},
	CountOperations: {"kind", "result"},
	CountCatalog:    {"result"},
	CountRejected:   {"signal"},
}

// Count is one counter of the Manager: how many times, since it began,
// Metric happened with these Labels (values in CountLabels order). Kept
// across continue-as-new; bounded, since every label is of a small set or a
// catalog service (a service that leaves the catalog takes its counters).
type Count struct {
	Metric string   `json:"metric"`
	Labels []string `json:"labels"`
	N      int64    `json:"n"`
}

// count adds n to a counter.
func (m *manager) count(metric string, n int64, labels ...string) {
	for i := range m.st.Counts {
		if c := &m.st.Counts[i]; c.Metric == metric && slices.Equal(c.Labels, labels) {
			c.N += n
			return
		}
	}
	m.st.Counts = append(m.st.Counts, Count{Metric: metric, Labels: labels, N: n})
}

// forgetCounts drops the counters of services the catalog no longer has.
func (m *manager) forgetCounts() {
	m.st.Counts = slices.DeleteFunc(m.st.Counts, func(c Count) bool {
		perService := c.Metric == CountExtensions || c.Metric == CountRecoveries || c.Metric == CountShrinks
		return perService && len(c.Labels) > 0 && m.service(c.Labels[0]) == nil
	})
}

// DurationBuckets are the upper bounds, in seconds, of the operations'
// duration histogram (msm_operation_duration_seconds).
var DurationBuckets = []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800}

// Durations is the histogram of one kind of operation's durations:
// Buckets[i] counts those of at most DurationBuckets[i] seconds (not
// cumulative), Count all of them, Sum their seconds.
type Durations struct {
	Kind    string  `json:"kind"`
	Buckets []int64 `json:"buckets"`
	Count   int64   `json:"count"`
	Sum     float64 `json:"sum"`
}

// observe records an operation of kind that took d.
func (m *manager) observe(kind string, d time.Duration) {
	var h *Durations
	for i := range m.st.Durations {
		if m.st.Durations[i].Kind == kind {
			h = &m.st.Durations[i]
		}
	}
	if h == nil {
		m.st.Durations = append(m.st.Durations, Durations{Kind: kind, Buckets: make([]int64, len(DurationBuckets))})
		h = &m.st.Durations[len(m.st.Durations)-1]
	}
	secs := d.Seconds()
	h.Count++
	h.Sum += secs
	for i, b := range DurationBuckets {
		if secs <= b {
			h.Buckets[i]++
			break
		}
	}
}

// ended records the end of operation op of kind, begun at start: its
// outcome, its counter and its duration.
func (m *manager) ended(ctx workflow.Context, op, kind string, services []string, start time.Time, err error, done string) {
	took := workflow.Now(ctx).Sub(start)
	result, rk, msg := "ok", RecordDone, fmt.Sprintf("%s done: %s", op, done)
	if err != nil {
		result, rk, msg = "failed", RecordFailed, fmt.Sprintf("%s failed: %s", op, rootMessage(err))
	}
	m.count(CountOperations, 1, kind, result)
	m.observe(kind, took)
	m.outcome(ctx, op, rk, services, msg, took)
}

// extensionWhy says where an extension's instances come from (src, a
// service's instances by source) and why not from somewhere cheaper: the
// servers in use and their slots when none had room. used is the slots
// used per server before the plan.
func (m *manager) extensionWhy(src map[fleet.Source]int, plan fleet.Plan, used map[string]int) string {
	var parts []string
	if n := src[fleet.SourceWarmPool]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d from the warm pool", n))
	}
	if src[fleet.SourceNewContainer]+src[fleet.SourceNewServer] > 0 {
		parts = append(parts, "no waiting container left")
	}
	if n := src[fleet.SourceNewContainer]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d new container(s) on a server in use", n))
	}
	if n := src[fleet.SourceNewServer]; n > 0 {
		var full []string
		for _, s := range m.st.Inventory.Servers {
			if s.State == fleet.ServerReady && !slices.ContainsFunc(plan.Servers, func(p fleet.Server) bool { return p.ID == s.ID }) {
				full = append(full, fmt.Sprintf("%s %d/%d slots", s.ID, used[s.ID], s.Slots))
			}
		}
		if len(full) > 5 {
			full = append(full[:5], fmt.Sprintf("%d more", len(full)-5))
		}
		room := "no server in use"
		if len(full) > 0 {
			room = "no room on the servers in use (" + strings.Join(full, ", ") + ")"
		}
		parts = append(parts, fmt.Sprintf("%s: %d on a new server", room, n))
	}
	return strings.Join(parts, "; ")
}

// maxSummary bounds an operation's static summary (the Web UI shows it on
// the Manager's History and User Metadata tabs and the operation's page).
const maxSummary = 200

// summary is an operation's static summary: its kind and what it is for ("extend web 2 → 3: overload reported by m-c3:
// cpu 93% above 80% for 10s").
func summary(r Record) string {
	s := r.Kind
	if r.Trigger != "" {
		s += " " + r.Trigger
	} else {
		if len(r.Services) > 0 {
			s += " " + strings.Join(r.Services, "+")
		}
		s += ": " + strings.TrimPrefix(r.Message, r.Op+": ")
	}
	if len(s) > maxSummary {
		s = s[:maxSummary-3] + "..."
	}
	return s
}

// QueryWhy (a service's name → Why) answers `msm why SERVICE`.
const QueryWhy = "why"

// Why is what the Manager knows of one service's instances and decisions:
// `msm why` says from it why the service is where it is (Reasons).
type Why struct {
	Service string `json:"service"`
	Desired int    `json:"desired"`
	Ready   int    `json:"ready"`
	Min     int    `json:"min"`
	Max     int    `json:"max"`
	// Floor is the least instances a schedule rule set, FloorBy which.
	Floor   int    `json:"floor,omitempty"`
	FloorBy string `json:"floor_by,omitempty"`
	// CooldownUntil is when the last extension's or shrink's cooldown
	// ends (zero: none), Cooldown its length, Suppressed how many overload
	// reports fell in it or at max since the last extension.
	CooldownUntil time.Time     `json:"cooldown_until,omitzero"`
	Cooldown      time.Duration `json:"cooldown"`
	Suppressed    int           `json:"suppressed,omitempty"`
	// Backoff is the service's crash-loop back-off, if it is in one.
	Backoff *Backoff `json:"backoff,omitempty"`
	// Unplaced is the service's demand the last decision could not place.
	Unplaced []fleet.Unplaced `json:"unplaced,omitempty"`
	// Operations are the running operations that hold the service.
	Operations []string `json:"operations,omitempty"`
	// Full says the Manager holds its most containers (fleet.MaxContainers).
	Full bool `json:"full,omitempty"`
	// Decisions are the service's last records.
	Decisions []Record `json:"decisions"`
}

// whyRecords is how many of a service's records Why carries.
const whyRecords = 10

// why answers QueryWhy.
func (m *manager) why(service string) (Why, error) {
	s, err := m.knownService(service)
	if err != nil {
		return Why{}, err
	}
	w := Why{Service: s.Name, Desired: m.desired(*s), Ready: m.st.Inventory.ReadyByService()[s.Name],
		Min: s.Replicas.Min, Max: s.Replicas.Max, Cooldown: m.cooldown(s.Name), Suppressed: m.st.Suppressed[s.Name],
		Full: m.room() <= 0}
	if t := m.target(s.Name); t != nil {
		w.CooldownUntil = t.CooldownUntil
		w.Floor, w.FloorBy = t.Floor, t.FloorBy
	}
	for _, b := range m.st.Backoffs {
		if b.Service == s.Name {
			w.Backoff = &b
		}
	}
	for _, u := range m.unplaced {
		if u.Service == s.Name {
			w.Unplaced = append(w.Unplaced, u)
		}
	}
	for _, op := range m.ops {
		if slices.Contains(op.keys.Services, s.Name) {
			w.Operations = append(w.Operations, op.id)
		}
	}
	page, _ := m.log(LogQuery{Service: s.Name, Last: whyRecords})
	w.Decisions = page.Records
	return w, nil
}

// Reasons says, at time now, why the service is where it is: each reason
// that holds, the most pressing first. A service at its desired instances
// with nothing holding it back is healthy.
func (w Why) Reasons(now time.Time) []string {
	var out []string
	if b := w.Backoff; b != nil && b.RetryAt.After(now) {
		out = append(out, fmt.Sprintf("crash-loop back-off until %s (in %s) after %d failed attempt(s): %s",
			b.RetryAt.UTC().Format(time.TimeOnly), b.RetryAt.Sub(now).Round(time.Second), b.Failures, b.LastError))
	} else if b != nil {
		out = append(out, fmt.Sprintf("back-off over after %d failed attempt(s), the next try is due: %s", b.Failures, b.LastError))
	}
	for _, u := range w.Unplaced {
		out = append(out, fmt.Sprintf("no room for %d instance(s) (%s): %s", u.Count, u.Code, u.Reason))
	}
	if len(w.Operations) > 0 {
		out = append(out, "operation(s) in flight: "+strings.Join(w.Operations, ", "))
	}
	if w.Desired >= w.Max {
		out = append(out, fmt.Sprintf("at its max of %d instance(s) (replicas.max): overload reports change nothing; raise replicas.max to go further", w.Max))
	}
	if w.Floor > 0 {
		out = append(out, fmt.Sprintf("floor of %d instance(s), set by %s: idle reports shrink it no lower; overload may add above it", w.Floor, w.FloorBy))
	}
	if w.CooldownUntil.After(now) {
		r := fmt.Sprintf("in cooldown until %s (in %s, scaling.cooldown %s): overload and idle reports make no decision",
			w.CooldownUntil.UTC().Format(time.TimeOnly), w.CooldownUntil.Sub(now).Round(time.Second), w.Cooldown)
		if w.Suppressed > 0 {
			r += fmt.Sprintf("; %d report(s) ignored so far", w.Suppressed)
		}
		out = append(out, r)
	}
	if w.Full {
		out = append(out, fmt.Sprintf("the Manager holds its most containers (%d)", fleet.MaxContainers))
	}
	if w.Ready == w.Desired && w.Backoff == nil && len(w.Unplaced) == 0 && len(w.Operations) == 0 {
		out = append([]string{fmt.Sprintf("healthy: %d/%d instance(s) ready", w.Ready, w.Desired)}, out...)
	} else if w.Ready < w.Desired && len(out) == 0 {
		out = append(out, fmt.Sprintf("%d/%d instance(s) ready: the next decision places the rest", w.Ready, w.Desired))
	}
	return out
}
