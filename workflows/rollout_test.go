package workflows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/suite"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/workflows"
)

// RollSuite: a catalog change of what a service runs rolls it, one
// instance at a time, never below desired; a revision that fails is
// rolled back; a roll can be paused and resumed.
type RollSuite struct{ shBase }

func TestRollSuite(t *testing.T) { suite.Run(t, new(RollSuite)) }

// rollCatalog is tfCatalog with web's VERSION env set to version and a
// health grace of 1 s.
func rollCatalog(version string) catalog.Catalog {
	c := tfCatalog()
	web := c.Services[0]
	web.Env = map[string]string{"VERSION": version}
	web.Update = &catalog.Update{HealthGrace: time.Second}
	c.Services[0] = web
	return c
}

// rollouts queries the rollout of service at d.
func (s *RollSuite) rollouts(d time.Duration, service string) *[]workflows.RolloutStatus {
	out := &[]workflows.RolloutStatus{}
	s.at(d, func() {
		v, err := s.env.QueryWorkflow(workflows.QueryRollout, service)
		s.NoError(err)
		if err == nil {
			s.NoError(v.Get(out))
		}
	})
	return out
}

// webLoads are the LoadService calls for web, with the env and command
// each was given, in order.
func (s *RollSuite) webLoads() (env, commands []string) {
	s.fake.mu.Lock()
	defer s.fake.mu.Unlock()
	for _, c := range s.fake.calls {
		if in, ok := c.Input.(workflows.LoadServiceInput); ok && !c.Done && in.Service.Name == "web" {
			env = append(env, in.Service.Env["VERSION"])
			commands = append(commands, in.Service.Command)
		}
	}
	return env, commands
}

func (s *RollSuite) TestCatalogChangeRollsOneInstanceAtATime() {
	s.catalog(time.Second, rollCatalog("1"))
	s.catalog(5*time.Second, rollCatalog("2"))
	s.poll(5*time.Second, 30*time.Second)
	during := s.rollouts(5500*time.Millisecond, "web")
	after := s.rollouts(30*time.Second, "")
	end := s.snapshot(31 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.requireNeverBelowDesired()

	// Two Roll operations (each takes the waiting container, and the pool
	// is refilled), each followed by a Shrink of one old instance once the
	// new one is healthy for its grace.
	s.Equal([]string{"msm/m1/provision/1", "msm/m1/roll/web/2", "msm/m1/refill/3", "msm/m1/shrink/web/4", "msm/m1/roll/web/5", "msm/m1/refill/6", "msm/m1/shrink/web/7"}, s.ids())
	r := s.child("msm/m1/roll/web/2")
	s.Equal(workflows.WorkflowRoll, r.Type)
	s.Equal("roll", r.Operation)
	s.Equal([]string{"web"}, r.Services)
	env, _ := s.webLoads()
	s.Equal([]string{"1", "1", "2", "2"}, env, "the two first instances, then one of the new revision at a time")

	s.Require().Len(*during, 1)
	d := (*during)[0]
	s.Equal(workflows.RollRolling, d.State)
	s.Equal(rollCatalog("1").Services[0].Revision(), d.From)
	s.Equal(rollCatalog("2").Services[0].Revision(), d.To)
	s.Equal(2, d.Total)
	s.Equal(2, d.Stale, "both old instances serve while the first new one passes its grace")
	s.Equal(1, d.Fresh)
	s.Empty(d.Spec.Env, "the status leaves the old spec out")

	s.Require().Len(*after, 1)
	a := (*after)[0]
	s.Equal(workflows.RollDone, a.State)
	s.Equal(2, a.Fresh)
	s.Zero(a.Stale)
	st := s.status(end)
	s.Contains(eventMessages(st.Events), "roll of web to revision "+a.To+" done in 4s: 2 instance(s) replaced, 2 run it")
}

func (s *RollSuite) TestFailingRevisionIsRolledBack() {
	broken := rollCatalog("2")
	broken.Services[0].Command = "web-server-broken"
	s.fake.commandErr = map[string]error{"web-server-broken": tmLoadFailed("web exited with status 2")}
	s.catalog(time.Second, rollCatalog("1"))
	s.catalog(5*time.Second, broken)
	s.poll(5*time.Second, 20*time.Second)
	// An old instance crashes after the rollback: its replacement runs
	// the revision rolled back to, not the catalog's broken one.
	s.signal(15*time.Second, workflows.SignalErrorReport, workflows.ErrorReport{Container: "m1-c1", Service: "web", Reason: "web exited (exit status 1)", Cause: workflows.CauseExit})
	after := s.rollouts(25*time.Second, "web")
	end := s.snapshot(26 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	_, commands := s.webLoads()
	s.Equal([]string{"web-server", "web-server", "web-server-broken", "web-server"}, commands,
		"the roll stops after one instance of the broken revision; the crashed one's replacement runs the old one")
	s.Require().Len(*after, 1)
	a := (*after)[0]
	s.Equal(workflows.RollRolledBack, a.State)
	s.Contains(a.Error, "web exited with status 2")
	s.Equal(2, a.Fresh, "both instances run the revision rolled back to")
	s.Equal(a.From, rollCatalog("1").Services[0].Revision())
	st := s.status(end)
	s.Contains(eventsText(st), "roll of web to revision "+a.To+" failed, rolling back to revision "+a.From+" (fix the catalog and save it to roll again): m1-c4 failed to load web")
	s.Contains(eventsText(st), "roll of web to revision "+a.To+" rolled back in")
	for _, p := range s.polls {
		if p.At < 15*time.Second {
			s.GreaterOrEqual(shHealthy(p.St, "web"), 2, "at %v the old instances serve: %s", p.At, shSummary(p.St))
		}
	}
}

func (s *RollSuite) TestRollIsPausedAndResumed() {
	s.catalog(time.Second, rollCatalog("1"))
	s.catalog(5*time.Second, rollCatalog("2"))
	pause := s.update(5500*time.Millisecond, workflows.UpdateRollout, "u-pause", workflows.RolloutUpdate{Service: "web", Action: "pause"})
	again := s.update(6*time.Second, workflows.UpdateRollout, "u-pause-2", workflows.RolloutUpdate{Service: "web", Action: "pause"})
	paused := s.rollouts(20*time.Second, "web")
	resume := s.update(21*time.Second, workflows.UpdateRollout, "u-resume", workflows.RolloutUpdate{Service: "web", Action: "resume"})
	bad := s.update(22*time.Second, workflows.UpdateRollout, "u-bad", workflows.RolloutUpdate{Service: "api", Action: "pause"})
	after := s.rollouts(40*time.Second, "web")
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()

	s.requireAccepted(pause, "the roll of web is paused; the instances of both revisions serve on")
	s.requireRejected(again, "the roll of web is paused already; `msm rollout resume web` resumes it")
	s.requireAccepted(resume, "the roll of web to revision "+rollCatalog("2").Services[0].Revision()+" goes on")
	s.requireRejected(bad, "api has no roll in progress to pause (its instances run revision "+tfAPI.Revision()+")")
	s.Require().Len(*paused, 1)
	p := (*paused)[0]
	s.True(p.Paused)
	s.Equal(1, p.Fresh, "the instance the roll had started stays")
	s.Equal(2, p.Stale, "and so do both old ones, paused")
	s.Require().Len(*after, 1)
	s.Equal(workflows.RollDone, (*after)[0].State)
	s.Equal(2, (*after)[0].Fresh)
}

// eventsText is a status's events, one a line.
func eventsText(st workflows.Status) string {
	return strings.Join(eventMessages(st.Events), "\n")
}
