package activities_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/msm-project/msm/activities"
	"github.com/msm-project/msm/internal/devserver"
	"github.com/msm-project/msm/workflows"
)

// devClient starts a dev server (bin/temporal; the test is skipped
// without it) with msm's search attributes, and dials it.
func devClient(t *testing.T) client.Client {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	bin := filepath.Join(filepath.Dir(file), "..", "bin", "temporal")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no temporal CLI at %s: run `make bin/temporal` to build it", bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv, err := devserver.Start(ctx, devserver.Options{Binary: bin, SearchAttributes: workflows.SearchAttributeTypes})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Kill() })
	cl, err := client.Dial(client.Options{HostPort: srv.Address(), Logger: log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// TestSyncSchedulesAgainstTheDevServer keeps a Manager's schedules in step
// with its rules on a real Temporal: created, left alone when unchanged,
// updated when a rule changes, deleted when it goes (also one a listing
// does not show yet), and never another Manager's.
func TestSyncSchedulesAgainstTheDevServer(t *testing.T) {
	cl := devClient(t)
	a := &activities.Activities{Client: cl}
	var s testsuite.WorkflowTestSuite
	sync := func(in workflows.SyncSchedulesInput) workflows.SyncSchedulesResult {
		t.Helper()
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(a)
		v, err := env.ExecuteActivity(a.SyncSchedules, in)
		require.NoError(t, err)
		var res workflows.SyncSchedulesResult
		require.NoError(t, v.Get(&res))
		return res
	}
	ctx := context.Background()
	describe := func(id string) (*client.ScheduleDescription, error) {
		return cl.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	}
	morning := workflows.ScheduleRule{ID: workflows.ScheduleID("m1", "web", 0), Service: "web", Rule: 0, Cron: "0 8 * * 1-5", Min: 3}
	evening := workflows.ScheduleRule{ID: workflows.ScheduleID("m1", "web", 1), Service: "web", Rule: 1, Cron: "0 20 * * *", Timezone: "Europe/Paris", Min: 1}
	other := workflows.ScheduleRule{ID: workflows.ScheduleID("m10", "web", 0), Service: "web", Rule: 0, Cron: "0 8 * * *", Min: 1}

	assert.Equal(t, workflows.SyncSchedulesResult{Created: []string{other.ID}}, sync(workflows.SyncSchedulesInput{Manager: "m10", Rules: []workflows.ScheduleRule{other}}))
	assert.Equal(t, workflows.SyncSchedulesResult{Created: []string{"msm/m1/schedule/web/0", "msm/m1/schedule/web/1"}},
		sync(workflows.SyncSchedulesInput{Manager: "m1", Rules: []workflows.ScheduleRule{morning, evening}}))
	d, err := describe(morning.ID)
	require.NoError(t, err)
	require.NotNil(t, d.Schedule.Spec)
	require.Len(t, d.Schedule.Spec.Calendars, 1, "%+v", d.Schedule.Spec)
	assert.Equal(t, []client.ScheduleRange{{Start: 8, End: 8, Step: 1}}, d.Schedule.Spec.Calendars[0].Hour)
	assert.Equal(t, []client.ScheduleRange{{Start: 1, End: 5, Step: 1}}, d.Schedule.Spec.Calendars[0].DayOfWeek)
	action, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok, "%T", d.Schedule.Action)
	assert.Equal(t, workflows.WorkflowScheduledFloor, action.Workflow)
	assert.Equal(t, workflows.TaskQueue, action.TaskQueue)
	assert.Equal(t, "msm/m1/floor/web/0", action.ID)
	assert.Contains(t, d.Schedule.State.Note, `floor of web at 3 at "0 8 * * 1-5" (UTC)`)
	mgr, _ := d.TypedSearchAttributes.GetKeyword(workflows.AttrManager)
	assert.Equal(t, "m1", mgr)
	d, err = describe(evening.ID)
	require.NoError(t, err)
	assert.Equal(t, "Europe/Paris", d.Schedule.Spec.TimeZoneName)

	assert.Equal(t, workflows.SyncSchedulesResult{}, sync(workflows.SyncSchedulesInput{Manager: "m1", Rules: []workflows.ScheduleRule{morning, evening},
		Known: []string{morning.ID, evening.ID}}), "unchanged rules change nothing")

	edited := morning
	edited.Cron, edited.Min = "30 9 * * 1-5", 4
	assert.Equal(t, workflows.SyncSchedulesResult{Updated: []string{morning.ID}, Deleted: []string{evening.ID}},
		sync(workflows.SyncSchedulesInput{Manager: "m1", Rules: []workflows.ScheduleRule{edited}, Known: []string{morning.ID, evening.ID}}))
	d, err = describe(morning.ID)
	require.NoError(t, err)
	assert.Equal(t, []client.ScheduleRange{{Start: 9, End: 9, Step: 1}}, d.Schedule.Spec.Calendars[0].Hour)
	assert.Equal(t, []client.ScheduleRange{{Start: 30, End: 30, Step: 1}}, d.Schedule.Spec.Calendars[0].Minute)
	assert.Contains(t, d.Schedule.State.Note, `floor of web at 4 at "30 9 * * 1-5"`)
	var nf *serviceerror.NotFound
	_, err = describe(evening.ID)
	assert.True(t, errors.As(err, &nf), "the evening rule's schedule is gone: %v", err)

	// A schedule of the last sync is deleted even when no listing shows
	// it: the Manager names it.
	assert.Equal(t, workflows.SyncSchedulesResult{Deleted: []string{morning.ID}},
		sync(workflows.SyncSchedulesInput{Manager: "m1", Known: []string{morning.ID, evening.ID}}))
	_, err = describe(morning.ID)
	assert.True(t, errors.As(err, &nf), "%v", err)
	_, err = describe(other.ID)
	assert.NoError(t, err, "another Manager's schedule is left alone (m10 begins with m1)")
}

// Without a Temporal client the schedules activities fail at once, saying
// so.
func TestSchedulesActivitiesNeedAClient(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	a := &activities.Activities{}
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	_, err := env.ExecuteActivity(a.SyncSchedules, workflows.SyncSchedulesInput{Manager: "m1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs a Temporal client")
	_, err = env.ExecuteActivity(a.SendFloor, workflows.ScheduledFloorInput{Manager: "m1"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs a Temporal client")
}
