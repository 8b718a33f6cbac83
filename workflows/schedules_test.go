package workflows_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/workflows"
)

// scScheduled is tfCatalog with web's schedule rules: a floor of 3 on
// weekday mornings, of 1 in the evenings (web's replicas are 1..4,
// initial 2).
func scScheduled() catalog.Catalog {
	c := tfCatalog()
	c.Services = append([]catalog.Service(nil), c.Services...)
	c.Services[0].Schedules = []catalog.ScheduleRule{{Cron: "0 8 * * 1-5", Min: 3}, {Cron: "0 20 * * *", Min: 1, Timezone: "Europe/Paris"}}
	return c
}

// scFloor is the update web's schedule rule n sends.
func scFloor(n, floor int, cron string) workflows.FloorUpdate {
	return workflows.FloorUpdate{Service: "web", Min: floor, Rule: n, Schedule: workflows.ScheduleID(tfManager, "web", n), Cron: cron}
}

func (s *ScaleSuite) floor(d time.Duration, id string, u workflows.FloorUpdate) *tmUpdate {
	return s.update(d, workflows.UpdateFloor, id, u)
}

func (s *ScaleSuite) idle(d time.Duration, container string) {
	s.signal(d, workflows.SignalIdle, workflows.IdleSignal{Container: container, Service: "web"})
}

func scWeb(st workflows.Status) workflows.ServiceStatus { return st.Services[0] }

// A schedule rule's floor raises web's desired instances; an operator
// cannot scale below it; overload still adds above it; idle reports
// shrink web no lower than the floor; a later rule's lower floor lets
// them go on down to the initial replicas.
func (s *ScaleSuite) TestScheduledFloorRaisesDesiredAndOverloadAddsAbove() {
	s.catalog(time.Second, scScheduled())
	morning := s.floor(5*time.Second, "f-morning", scFloor(0, 3, "0 8 * * 1-5"))
	raised := s.snapshot(7 * time.Second)
	below := s.scale(10*time.Second, "u-below", workflows.ScaleUpdate{Service: "web", Replicas: 2})
	s.overload(40*time.Second, "m1-c1", "web", "cpu above 80% for 60s") // the floor's cooldown ended at 35 s
	overloaded := s.snapshot(45 * time.Second)
	s.idle(80*time.Second, "m1-c1") // the overload's cooldown ended at 70 s
	idled := s.snapshot(85 * time.Second)
	s.idle(120*time.Second, "m1-c1")
	atFloor := s.snapshot(125 * time.Second)
	evening := s.floor(130*time.Second, "f-evening", scFloor(1, 1, "0 20 * * *"))
	lowered := s.snapshot(135 * time.Second)
	s.idle(170*time.Second, "m1-c1")
	s.idle(210*time.Second, "m1-c1")
	end := s.snapshot(215 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, 4*time.Minute)
	s.requireCancelled()

	s.requireAccepted(morning, "floor of web set to 3: extending it from 2 to 3 instance(s)")
	st := s.status(raised)
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 3, Ready: 3, Floor: 3}, scWeb(st))
	s.Contains(eventMessages(st.Events), `floor of web from 0 to 3 instance(s) (schedule msm/m1/schedule/web/0 ("0 8 * * 1-5"))`)
	s.Contains(eventMessages(st.Events), `extend web from 2 to 3 instance(s) (schedule msm/m1/schedule/web/0 ("0 8 * * 1-5"): floor 3)`)
	s.requireExtendOf(s.placements()[1], "web", 2)

	s.requireRejected(below, `2 instance(s) of web is below its floor of 3, set by schedule msm/m1/schedule/web/0 ("0 8 * * 1-5"); scale to at least 3, or change that rule in the catalog (the next rule sets the next floor)`)
	s.Equal(4, scWeb(s.status(overloaded)).Desired, "overload adds above the floor")
	s.Equal(3, scWeb(s.status(idled)).Desired, "idle shrinks")
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 3, Ready: 3, Floor: 3}, scWeb(s.status(atFloor)), "idle shrinks no lower than the floor")

	s.requireAccepted(evening, "floor of web set to 1; it has 3 instance(s) desired")
	s.Equal(workflows.ServiceStatus{Name: "web", Desired: 3, Ready: 3, Floor: 1}, scWeb(s.status(lowered)), "a lower floor removes nothing by itself")
	st = s.status(end)
	s.Equal(2, scWeb(st).Desired, "idle goes on down to the initial replicas, above the floor of 1")
	s.Equal(1, scWeb(st).Floor)
	s.Contains(eventMessages(st.Events), `floor of web from 3 to 1 instance(s) (schedule msm/m1/schedule/web/1 ("0 20 * * *"))`)

	syncs := s.fake.syncs()
	s.Require().Len(syncs, 1, "one sync for the catalog's rules")
	s.Equal(workflows.SyncSchedulesInput{Manager: tfManager, Rules: []workflows.ScheduleRule{
		{ID: "msm/m1/schedule/web/0", Service: "web", Rule: 0, Cron: "0 8 * * 1-5", Min: 3},
		{ID: "msm/m1/schedule/web/1", Service: "web", Rule: 1, Cron: "0 20 * * *", Timezone: "Europe/Paris", Min: 1},
	}}, syncs[0])
	s.Equal([]string{workflows.TaskQueue}, []string{s.fake.began(workflows.ActivitySyncSchedules)[0].Queue})
}

// The floor update is validated as an operator's scale is: nothing
// enters history for an unknown service, a rule the catalog in force does
// not have, or a floor outside the service's replicas.
func (s *ScaleSuite) TestFloorValidatorRejects() {
	early := s.floor(500*time.Millisecond, "f-early", scFloor(0, 3, "0 8 * * 1-5"))
	s.catalog(time.Second, scScheduled())
	before := s.snapshot(4 * time.Second)
	unknown := s.floor(5*time.Second, "f-unknown", workflows.FloorUpdate{Service: "nope", Min: 1, Rule: 0, Schedule: "msm/m1/schedule/nope/0"})
	leftOver := s.floor(5*time.Second, "f-left-over", scFloor(2, 3, "0 12 * * *"))
	above := s.floor(5*time.Second, "f-above", scFloor(0, 5, "0 8 * * 1-5"))
	apiNone := s.floor(5*time.Second, "f-api", workflows.FloorUpdate{Service: "api", Min: 1, Rule: 0, Schedule: "msm/m1/schedule/api/0"})
	after := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.requireRejected(early, "the Manager has no catalog yet: start `msm worker --catalog FILE` first")
	s.requireRejected(unknown, `unknown service "nope": the catalog has [web api]`)
	s.requireRejected(leftOver, "web has no schedule rule 2 in the catalog in force (it has 2): schedule msm/m1/schedule/web/2 is left over from an older catalog and goes at the Manager's next sync; nothing changed")
	s.requireRejected(above, "a floor of 5 instance(s) of web is outside its replicas 1..4; set the rule's min in that range or change the catalog")
	s.requireRejected(apiNone, "api has no schedule rule 0 in the catalog in force (it has 0): schedule msm/m1/schedule/api/0 is left over from an older catalog and goes at the Manager's next sync; nothing changed")
	s.Equal(s.status(before), s.status(after), "rejected updates change nothing")
	s.Len(s.started(), 1, "rejected updates start no operation")
}

// The Manager keeps the schedules in step with the catalog in force: a
// sync when the rules change, none when they do not; a removed rule's
// schedule goes (the last sync's IDs are named, since a listing may lag),
// and a service left without rules loses its floor. A failed sync is
// tried again with the next catalog.
func (s *ScaleSuite) TestSchedulesFollowTheCatalog() {
	s.fake.syncErr = []error{temporal.NewNonRetryableApplicationError("no schedules here", "Test", nil)}
	s.catalog(time.Second, scScheduled()) // fails
	failed := s.snapshot(3 * time.Second)
	s.catalog(5*time.Second, scScheduled())  // synced
	s.catalog(10*time.Second, scScheduled()) // the same rules: no sync
	edited := scScheduled()
	edited.Services[0].Schedules[0] = catalog.ScheduleRule{Cron: "30 9 * * 1-5", Min: 4}
	s.catalog(15*time.Second, edited)
	floor := s.floor(20*time.Second, "f-edited", scFloor(0, 4, "30 9 * * 1-5"))
	floored := s.snapshot(22 * time.Second)
	none := scScheduled()
	none.Services = append([]catalog.Service(nil), tfCatalog().Services...)
	s.catalog(25*time.Second, none)
	cleared := s.snapshot(27 * time.Second)
	s.catalog(30*time.Second, none) // no rules before, none now: no sync
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.Contains(eventMessages(s.status(failed).Events),
		"schedules not in step with the catalog: no schedules here; the next catalog change or worker start tries again")
	syncs := s.fake.syncs()
	s.Require().Len(syncs, 4, "failed, synced, edited, removed")
	ids := []string{"msm/m1/schedule/web/0", "msm/m1/schedule/web/1"}
	s.Nil(syncs[0].Known)
	s.Nil(syncs[1].Known, "the failed sync made nothing known")
	s.Len(syncs[1].Rules, 2)
	s.Equal(ids, syncs[2].Known)
	s.Equal(workflows.ScheduleRule{ID: ids[0], Service: "web", Rule: 0, Cron: "30 9 * * 1-5", Min: 4}, syncs[2].Rules[0])
	s.Empty(syncs[3].Rules)
	s.Equal(ids, syncs[3].Known)
	s.Empty(s.fake.schedules, "every schedule deleted")

	s.requireAccepted(floor, "floor of web set to 4: extending it from 2 to 4 instance(s)")
	s.Equal(4, scWeb(s.status(floored)).Floor)
	st := s.status(cleared)
	s.Zero(scWeb(st).Floor, "no rule is left to set web's floor")
	s.Equal(4, scWeb(st).Desired, "what the floor raised stays until idle reports shrink it")
	msgs := eventMessages(st.Events)
	s.Contains(msgs, "schedules in step with the catalog: created msm/m1/schedule/web/0, msm/m1/schedule/web/1")
	s.Contains(msgs, "schedules in step with the catalog: updated msm/m1/schedule/web/0")
	s.Contains(msgs, "schedules in step with the catalog: deleted msm/m1/schedule/web/0, msm/m1/schedule/web/1")
}

// What the Manager carries across continue-as-new includes what it last
// synced: the next run, with the same catalog, syncs nothing.
func (s *ScaleSuite) TestSyncedSchedulesSurviveContinueAsNew() {
	s.catalog(time.Second, scScheduled())
	s.at(10*time.Second, func() {
		s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(150) }, 0)
		s.env.SignalWorkflow(workflows.SignalOverload, workflows.OverloadSignal{Container: "m1-c2", Service: "api"})
	})
	s.run(workflows.ManagerInput{Manager: tfManager, HistoryLimit: 100}, time.Minute)
	next := s.continuedAs()
	s.Len(s.fake.syncs(), 1)
	s.Equal([]string{"msm/m1/schedule/web/0", "msm/m1/schedule/web/1"}, next.ScheduleIDs)
	s.NotEmpty(next.SchedulesSynced)

	s.SetupTest()
	s.catalog(time.Second, scScheduled()) // as a restarted worker hands it over
	s.run(next, 30*time.Second)
	s.requireCancelled()
	s.Empty(s.fake.syncs(), "nothing changed since the last sync")
}

// ScheduledFloor sends its rule's floor once; a refusal by the Manager is
// final, not retried.
func TestScheduledFloor(t *testing.T) {
	suite.Run(t, new(floorSuite))
}

type floorSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
}

func (s *floorSuite) run(answer error) (*testsuite.TestWorkflowEnvironment, []workflows.ScheduledFloorInput) {
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(workflows.ScheduledFloor, workflow.RegisterOptions{Name: workflows.WorkflowScheduledFloor})
	var sent []workflows.ScheduledFloorInput
	env.RegisterActivityWithOptions(func(_ context.Context, in workflows.ScheduledFloorInput) (workflows.ProvisionAccepted, error) {
		sent = append(sent, in)
		if answer != nil {
			return workflows.ProvisionAccepted{}, answer
		}
		return workflows.ProvisionAccepted{Message: "floor of web set to 3"}, nil
	}, activity.RegisterOptions{Name: workflows.ActivitySendFloor})
	env.ExecuteWorkflow(workflows.WorkflowScheduledFloor, workflows.ScheduledFloorInput{Manager: tfManager, Floor: scFloor(0, 3, "0 8 * * 1-5")})
	s.Require().True(env.IsWorkflowCompleted())
	return env, sent
}

func (s *floorSuite) TestSendsTheFloor() {
	env, sent := s.run(nil)
	s.Require().NoError(env.GetWorkflowError())
	var out workflows.ProvisionAccepted
	s.Require().NoError(env.GetWorkflowResult(&out))
	s.Equal("floor of web set to 3", out.Message)
	s.Equal([]workflows.ScheduledFloorInput{{Manager: tfManager, Floor: scFloor(0, 3, "0 8 * * 1-5")}}, sent)
}

func (s *floorSuite) TestRefusalIsFinal() {
	env, sent := s.run(temporal.NewNonRetryableApplicationError("the Manager m1 refused the floor of web: unknown service", workflows.ErrFloorRejected, nil))
	var app *temporal.ApplicationError
	s.Require().True(errors.As(env.GetWorkflowError(), &app), "%v", env.GetWorkflowError())
	s.Equal(workflows.ErrFloorRejected, app.Type())
	s.Len(sent, 1, "not retried")
}

func (s *floorSuite) TestOtherFailuresAreRetried() {
	env, sent := s.run(errors.New("connection refused"))
	s.Require().Error(env.GetWorkflowError())
	s.Len(sent, 10, "its retry policy's attempts")
}
