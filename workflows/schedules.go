package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/fleet"
)

// Scheduled capacity: each schedule rule of a service (catalog
// services[].schedules) is a Temporal Schedule, msm/<manager>/schedule/
// <service>/<n>, kept in step with the catalog in force by the Manager
// (SyncSchedules, after each catalog it takes). At the rule's times the
// schedule starts a ScheduledFloor run, whose one activity sends the
// Manager the update `floor`: the service runs at least that many
// instances until a rule sets another floor.

// Names of scheduled capacity's messages, workflow and activities.
const (
	// UpdateFloor (FloorUpdate → ProvisionAccepted) sets a service's floor.
	UpdateFloor = "floor"
	// WorkflowScheduledFloor (ScheduledFloorInput) is what a schedule
	// starts: it sends the Manager the floor of its rule.
	WorkflowScheduledFloor = "ScheduledFloor"
	// ActivitySyncSchedules (manager queue, SyncSchedulesInput →
	// SyncSchedulesResult) makes the Manager's schedules those of Rules.
	ActivitySyncSchedules = "SyncSchedules"
	// ActivitySendFloor (manager queue, ScheduledFloorInput →
	// ProvisionAccepted) sends the Manager the update `floor`.
	ActivitySendFloor = "SendFloor"
	// ErrFloorRejected: the Manager refused a scheduled floor (its
	// validator's answer is the message); retrying changes nothing.
	ErrFloorRejected = "FloorRejected"
	// ErrNoClient: the worker that ran a schedules activity has no
	// Temporal client to reach schedules and the Manager with.
	ErrNoClient = "NoClient"
)

// schedulesChange gates keeping Temporal Schedules in step with the
// catalog's schedule rules (runs begun before it made none).
const schedulesChange = "schedules"

// TriggerSchedule is an extension's trigger when a schedule rule raised
// the service's floor above its desired instances.
const TriggerSchedule = "schedule"

// RecordFloor is the record of a service's floor set by a schedule rule.
const RecordFloor = "floor"

// SchedulePrefix is what the IDs of a Manager's schedules begin with.
func SchedulePrefix(manager string) string { return ManagerID(manager) + "/schedule/" }

// ScheduleID is the ID of the schedule of a service's rule n (from 0, in
// catalog order).
func ScheduleID(manager, service string, n int) string {
	return SchedulePrefix(manager) + service + "/" + strconv.Itoa(n)
}

// FloorWorkflowID is the workflow ID the schedule of a service's rule n
// gives its runs; Temporal adds the time of each run to it
// (msm/<manager>/floor/web/0-2025-06-02T08:00:00Z).
func FloorWorkflowID(manager, service string, n int) string {
	return ManagerID(manager) + "/floor/" + service + "/" + strconv.Itoa(n)
}

// FloorUpdate sets Service's floor to Min, on behalf of its schedule rule
// Rule (its index in the catalog; Schedule is that schedule's ID and Cron
// its expression, for the record).
type FloorUpdate struct {
	Service  string `json:"service"`
	Min      int    `json:"min"`
	Rule     int    `json:"rule"`
	Schedule string `json:"schedule,omitempty"`
	Cron     string `json:"cron,omitempty"`
}

// ScheduledFloorInput is the input a schedule gives its ScheduledFloor
// runs: the Manager to send the floor to, and the floor.
type ScheduledFloorInput struct {
	Manager string      `json:"manager"`
	Floor   FloorUpdate `json:"floor"`
}

// ScheduleRule is one schedule rule of the catalog in force, as its
// Temporal Schedule is made.
type ScheduleRule struct {
	ID       string `json:"id"`
	Service  string `json:"service"`
	Rule     int    `json:"rule"`
	Cron     string `json:"cron"`
	Timezone string `json:"timezone,omitempty"`
	Min      int    `json:"min"`
}

// SyncSchedulesInput asks for the Manager's schedules to be exactly Rules:
// every schedule whose ID begins with SchedulePrefix(Manager) that Rules
// does not name is deleted, Known too (the IDs of the last sync, which a
// listing may not show yet).
type SyncSchedulesInput struct {
	Manager string         `json:"manager"`
	Rules   []ScheduleRule `json:"rules"`
	Known   []string       `json:"known,omitempty"`
}

// SyncSchedulesResult says what a sync changed, by schedule ID.
type SyncSchedulesResult struct {
	Created []string `json:"created,omitempty"`
	Updated []string `json:"updated,omitempty"`
	Deleted []string `json:"deleted,omitempty"`
}

// scheduleRules are the schedule rules of the catalog in force, in
// catalog order.
func (m *manager) scheduleRules() []ScheduleRule {
	var out []ScheduleRule
	if m.st.Catalog == nil {
		return nil
	}
	for _, s := range m.st.Catalog.Services {
		for i, r := range s.Schedules {
			out = append(out, ScheduleRule{ID: ScheduleID(m.st.Manager, s.Name, i), Service: s.Name, Rule: i,
				Cron: strings.TrimSpace(r.Cron), Timezone: r.Timezone, Min: r.Min})
		}
	}
	return out
}

// fingerprint identifies a set of rules: "" for none, so a Manager whose
// catalogs never had a rule never syncs.
func fingerprint(rules []ScheduleRule) string {
	if len(rules) == 0 {
		return ""
	}
	h := sha256.New()
	for _, r := range rules {
		h.Write([]byte(r.ID + "\x00" + r.Cron + "\x00" + r.Timezone + "\x00" + strconv.Itoa(r.Min) + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// syncSchedules makes the Manager's Temporal Schedules follow the catalog
// in force when its rules changed since the last sync: one sync at a
// time, again as long as a catalog taken meanwhile changed them. A sync
// that fails is recorded, and the next catalog (a worker hands its catalog
// over when it starts) tries again.
func (m *manager) syncSchedules(ctx workflow.Context) {
	if !m.schedules || m.syncing {
		return
	}
	rules := m.scheduleRules()
	fp := fingerprint(rules)
	if fp == m.st.SchedulesSynced {
		return
	}
	m.syncing = true
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: 8, NonRetryableErrorTypes: []string{ErrNoClient}},
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		defer func() { m.syncing = false }()
		for {
			var res SyncSchedulesResult
			err := workflow.ExecuteActivity(actx, ActivitySyncSchedules,
				SyncSchedulesInput{Manager: m.st.Manager, Rules: rules, Known: m.st.ScheduleIDs}).Get(ctx, &res)
			if err != nil {
				m.event(ctx, fmt.Sprintf("schedules not in step with the catalog: %s; the next catalog change or worker start tries again", rootMessage(err)))
				return
			}
			ids := make([]string, len(rules))
			for i, r := range rules {
				ids[i] = r.ID
			}
			m.st.SchedulesSynced, m.st.ScheduleIDs = fp, ids
			m.recordSync(ctx, res)
			rules = m.scheduleRules()
			if fp = fingerprint(rules); fp == m.st.SchedulesSynced {
				return
			}
		}
	})
}

// recordSync records what a sync changed.
func (m *manager) recordSync(ctx workflow.Context, res SyncSchedulesResult) {
	var parts, services []string
	for _, l := range []struct {
		what string
		ids  []string
	}{{"created", res.Created}, {"updated", res.Updated}, {"deleted", res.Deleted}} {
		if len(l.ids) == 0 {
			continue
		}
		parts = append(parts, l.what+" "+strings.Join(l.ids, ", "))
		for _, id := range l.ids {
			if svc, _, ok := strings.Cut(strings.TrimPrefix(id, SchedulePrefix(m.st.Manager)), "/"); ok && !slices.Contains(services, svc) {
				services = append(services, svc)
			}
		}
	}
	if len(parts) == 0 {
		parts = []string{"nothing to change"}
	}
	m.record(ctx, Record{Kind: RecordEvent, Services: services, Message: "schedules in step with the catalog: " + strings.Join(parts, "; ")})
}

// floor is a service's floor, 0 for none.
func (m *manager) floor(service string) int {
	if t := m.target(service); t != nil {
		return t.Floor
	}
	return 0
}

func (m *manager) validateFloor(u FloorUpdate) error {
	s, err := m.knownService(u.Service)
	if err != nil {
		return err
	}
	if u.Rule < 0 || u.Rule >= len(s.Schedules) {
		return fmt.Errorf("%s has no schedule rule %d in the catalog in force (it has %d): schedule %s is left over from an older catalog and goes at the Manager's next sync; nothing changed",
			s.Name, u.Rule, len(s.Schedules), u.Schedule)
	}
	if u.Min < s.Replicas.Min || u.Min > s.Replicas.Max {
		return fmt.Errorf("a floor of %d instance(s) of %s is outside its replicas %d..%d; set the rule's min in that range or change the catalog",
			u.Min, s.Name, s.Replicas.Min, s.Replicas.Max)
	}
	if u.Min-m.desired(*s) > m.room() {
		return m.full()
	}
	return nil
}

// floorUpdate sets a service's floor: its desired instances are at least
// the floor from now on (within replicas.max; overload adds above it), and
// a floor above them is an extension. A lower floor lowers nothing by
// itself: idle reports then shrink the service, down to the floor.
func (m *manager) floorUpdate(ctx workflow.Context, u FloorUpdate) (ProvisionAccepted, error) {
	if err := m.validateFloor(u); err != nil {
		return ProvisionAccepted{}, err
	}
	s := m.service(u.Service)
	from := m.desired(*s)
	t := m.target(s.Name)
	if t == nil {
		t = m.setDesired(s.Name, from)
	}
	old := t.Floor
	by := fmt.Sprintf("schedule %s (%q)", reasonOr(u.Schedule, "rule "+strconv.Itoa(u.Rule)), u.Cron)
	t.Floor, t.FloorBy = u.Min, fleet.Clip(by)
	m.record(ctx, Record{Kind: RecordFloor, Services: []string{s.Name}, Trigger: by,
		Message: fmt.Sprintf("floor of %s from %d to %d instance(s)", s.Name, old, u.Min)})
	if u.Min > from {
		m.extend(ctx, s.Name, from, u.Min, TriggerSchedule, by+": floor "+strconv.Itoa(u.Min), "")
		return ProvisionAccepted{Message: fmt.Sprintf("floor of %s set to %d: extending it from %d to %d instance(s)", s.Name, u.Min, from, u.Min)}, nil
	}
	return ProvisionAccepted{Message: fmt.Sprintf("floor of %s set to %d; it has %d instance(s) desired", s.Name, u.Min, from)}, nil
}

// clearFloors drops the floors of services whose catalog has no schedule
// rule any more: no rule will set them again.
func (m *manager) clearFloors() {
	for i := range m.st.Targets {
		t := &m.st.Targets[i]
		if s := m.service(t.Service); t.Floor != 0 && (s == nil || len(s.Schedules) == 0) {
			t.Floor, t.FloorBy = 0, ""
		}
	}
}

// ScheduledFloor is what a schedule of a rule starts: it sends the
// Manager the rule's floor, which the Manager validates as it does an
// operator's update.
func ScheduledFloor(ctx workflow.Context, in ScheduledFloorInput) (ProvisionAccepted, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           TaskQueue,
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second,
			MaximumAttempts: 10, NonRetryableErrorTypes: []string{ErrFloorRejected, ErrNoClient}},
	})
	var out ProvisionAccepted
	err := workflow.ExecuteActivity(ctx, ActivitySendFloor, in).Get(ctx, &out)
	return out, err
}

// floorOf is the rule's floor as a schedule sends it.
func floorOf(r ScheduleRule) FloorUpdate {
	return FloorUpdate{Service: r.Service, Min: r.Min, Rule: r.Rule, Schedule: r.ID, Cron: r.Cron}
}

// ScheduledFloorOf is the input a rule's schedule gives its runs.
func ScheduledFloorOf(manager string, r ScheduleRule) ScheduledFloorInput {
	return ScheduledFloorInput{Manager: manager, Floor: floorOf(r)}
}
