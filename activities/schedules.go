package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/workflows"
)

// ScheduleCatchup is how late a schedule still takes an action it missed
// while Temporal was away; a rule missed by longer waits for its next time.
const ScheduleCatchup = time.Hour

// noteFormat marks the notes msm writes on its schedules: a schedule whose
// note is not the one its rule makes is updated.
const noteFormat = "msm v1"

// SyncSchedules makes the Manager's Temporal Schedules exactly in.Rules:
// each rule's schedule is created, or updated when its note (which says
// all the rule holds) differs; every other schedule under the Manager's
// prefix, listed or in.Known, is deleted. Running it again changes
// nothing, so a retry after a crash finishes the work.
func (a *Activities) SyncSchedules(ctx context.Context, in workflows.SyncSchedulesInput) (workflows.SyncSchedulesResult, error) {
	var res workflows.SyncSchedulesResult
	if a.Client == nil {
		return res, noClient("keeping schedules")
	}
	sc := a.Client.ScheduleClient()
	prefix := workflows.SchedulePrefix(in.Manager)
	// Listing is eventually consistent: the schedules of the last sync are
	// also named by the Manager.
	existing := slices.Clone(in.Known)
	it, err := sc.List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return res, fmt.Errorf("listing schedules, %w", err)
	}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return res, fmt.Errorf("listing schedules, %w", err)
		}
		if strings.HasPrefix(e.ID, prefix) {
			existing = append(existing, e.ID)
		}
	}
	want := map[string]bool{}
	for _, r := range in.Rules {
		want[r.ID] = true
		opts := scheduleOptions(in.Manager, r)
		_, err := sc.Create(ctx, opts)
		switch {
		case err == nil:
			res.Created = append(res.Created, r.ID)
			continue
		case !errors.Is(err, temporal.ErrScheduleAlreadyRunning):
			return res, scheduleError("creating schedule "+r.ID, err)
		}
		changed := false
		err = sc.GetHandle(ctx, r.ID).Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(cur client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := cur.Description.Schedule
			if s.State != nil && s.State.Note == opts.Note {
				return nil, temporal.ErrSkipScheduleUpdate
			}
			changed = true
			// A schedule an operator paused stays paused.
			paused := s.State != nil && s.State.Paused
			return &client.ScheduleUpdate{
				Schedule: &client.Schedule{Action: opts.Action, Spec: &opts.Spec,
					Policy: &client.SchedulePolicies{CatchupWindow: opts.CatchupWindow},
					State:  &client.ScheduleState{Note: opts.Note, Paused: paused}},
				TypedSearchAttributes: &opts.TypedSearchAttributes,
			}, nil
		}})
		if err != nil {
			return res, scheduleError("updating schedule "+r.ID, err)
		}
		if changed {
			res.Updated = append(res.Updated, r.ID)
		}
	}
	slices.Sort(existing)
	for _, id := range slices.Compact(existing) {
		if want[id] || !strings.HasPrefix(id, prefix) {
			continue
		}
		err := sc.GetHandle(ctx, id).Delete(ctx)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			continue // gone already
		}
		if err != nil {
			return res, scheduleError("deleting schedule "+id, err)
		}
		res.Deleted = append(res.Deleted, id)
	}
	return res, nil
}

// scheduleOptions is the schedule of one rule: at the rule's times it
// starts a ScheduledFloor run on the manager queue, named for the rule.
// Its note says the rule in words; memo and search attributes find it in
// the Web UI.
func scheduleOptions(manager string, r workflows.ScheduleRule) client.ScheduleOptions {
	tz := r.Timezone
	if tz == "" {
		tz = "UTC"
	}
	note := fmt.Sprintf("%s: floor of %s at %d at %q (%s), rule %d of its schedules in the catalog; kept in step with the catalog by the Manager %s",
		noteFormat, r.Service, r.Min, r.Cron, tz, r.Rule, manager)
	sa := temporal.NewSearchAttributes(workflows.AttrManager.ValueSet(manager), workflows.AttrOperation.ValueSet("schedule"),
		workflows.AttrService.ValueSet([]string{r.Service}))
	return client.ScheduleOptions{
		ID:   r.ID,
		Spec: client.ScheduleSpec{CronExpressions: []string{r.Cron}, TimeZoneName: r.Timezone},
		Action: &client.ScheduleWorkflowAction{
			ID:                       workflows.FloorWorkflowID(manager, r.Service, r.Rule),
			Workflow:                 workflows.WorkflowScheduledFloor,
			Args:                     []any{workflows.ScheduledFloorOf(manager, r)},
			TaskQueue:                workflows.TaskQueue,
			WorkflowExecutionTimeout: 15 * time.Minute,
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrManager.ValueSet(manager), workflows.AttrOperation.ValueSet("floor"),
				workflows.AttrService.ValueSet([]string{r.Service})),
			StaticSummary: fmt.Sprintf("floor %s → %d: schedule %s (%q)", r.Service, r.Min, r.ID, r.Cron),
		},
		CatchupWindow:         ScheduleCatchup,
		Note:                  note,
		Memo:                  map[string]any{"manager": manager, "service": r.Service, "rule": r.Rule, "cron": r.Cron, "timezone": tz, "min": r.Min},
		TypedSearchAttributes: sa,
	}
}

// SendFloor sends the Manager the floor of a schedule's rule, as the
// update `floor`, and returns its answer. The update's ID is the run's,
// so a retry is the same update; setting a floor twice changes nothing
// either. A refusal by the Manager's validator is final (FloorRejected).
func (a *Activities) SendFloor(ctx context.Context, in workflows.ScheduledFloorInput) (workflows.ProvisionAccepted, error) {
	var res workflows.ProvisionAccepted
	if a.Client == nil {
		return res, noClient("sending a scheduled floor")
	}
	run := activity.GetInfo(ctx).WorkflowExecution
	h, err := a.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		UpdateID:     run.ID + "/" + run.RunID,
		WorkflowID:   workflows.ManagerID(in.Manager),
		UpdateName:   workflows.UpdateFloor,
		Args:         []any{in.Floor},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &res)
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("the Manager %s refused the floor of %s: %s", in.Manager, in.Floor.Service, app.Message()), workflows.ErrFloorRejected, err)
	}
	if err != nil {
		return res, fmt.Errorf("sending the floor of %s to the Manager %s, %w", in.Floor.Service, in.Manager, err)
	}
	return res, nil
}

// scheduleError makes the server's refusal of a schedule (a spec or a
// time zone it does not take) final, and anything else worth a retry.
func scheduleError(doing string, err error) error {
	var bad *serviceerror.InvalidArgument
	if errors.As(err, &bad) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s, %v; fix the rule in the catalog", doing, err), workflows.ErrInvalidCatalog, err)
	}
	return fmt.Errorf("%s, %w", doing, err)
}

func noClient(doing string) error {
	return temporal.NewNonRetryableApplicationError(doing+" needs a Temporal client: this worker was built without one; run `msm worker`",
		workflows.ErrNoClient, nil)
}
