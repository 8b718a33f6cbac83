package workflows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows"
)

// query answers a query at d into *out (asserted after the run).
func (s *ScaleSuite) query(d time.Duration, out any, name string, args ...any) *error {
	var err error
	s.at(d, func() {
		v, qerr := s.env.QueryWorkflow(name, args...)
		if qerr == nil {
			qerr = v.Get(out)
		}
		err = qerr
	})
	return &err
}

func (s *ScaleSuite) TestDecisionLogAndCounters() {
	// An overload extends web from the warm pool; a second report falls in
	// the cooldown; a crash of web is recovered; the operator extends api.
	s.catalog(time.Second, tfCatalog())
	s.overload(5*time.Second, "m1-c1", "web", "cpu 93% above 80% for 10s") // cooldown until 35s
	s.overload(6*time.Second, "m1-c2", "web", "cpu 95% above 80% for 10s")
	var cooling workflows.Why
	errCooling := s.query(7*time.Second, &cooling, workflows.QueryWhy, "web")
	var early workflows.LogPage
	errEarly := s.query(7*time.Second, &early, workflows.QueryLog, workflows.LogQuery{})
	s.signal(10*time.Second, workflows.SignalErrorReport, workflows.ErrorReport{Container: "m1-c2", Service: "web", Reason: "web exited (exit status 2)", Cause: workflows.CauseExit})
	s.extend(20*time.Second, "u-api", workflows.ExtendUpdate{Service: "api", Count: 1})
	after := s.snapshot(40 * time.Second)
	var webLog workflows.LogPage
	errLog := s.query(40*time.Second, &webLog, workflows.QueryLog, workflows.LogQuery{Service: "web"})
	var later workflows.LogPage
	errLater := s.query(40*time.Second, &later, workflows.QueryLog, workflows.LogQuery{After: 0, Last: 2})
	var apiWhy workflows.Why
	errAPI := s.query(40*time.Second, &apiWhy, workflows.QueryWhy, "api")
	var unknown workflows.Why
	errUnknown := s.query(40*time.Second, &unknown, workflows.QueryWhy, "nope")
	var meta sdkpb.WorkflowMetadata
	errMeta := s.query(40*time.Second, &meta, "__temporal_workflow_metadata")
	start := s.env.Now()
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	for _, err := range []*error{errCooling, errEarly, errLog, errLater, errAPI, errMeta} {
		s.Require().NoError(*err)
	}
	s.Require().ErrorContains(*errUnknown, `unknown service "nope"`)

	// In its cooldown, web says so, with the report it ignored.
	s.Equal(3, cooling.Desired)
	s.Equal(start.Add(35*time.Second), cooling.CooldownUntil.In(start.Location()))
	s.Equal(1, cooling.Suppressed)
	reasons := cooling.Reasons(start.Add(7 * time.Second))
	s.Contains(strings.Join(reasons, "\n"), "in cooldown until")
	s.Contains(strings.Join(reasons, "\n"), "(in 28s, scaling.cooldown 30s)")
	s.Contains(strings.Join(reasons, "\n"), "1 report(s) ignored so far")

	// The extension's operation: its trigger with the figures, where its
	// instance came from, and how it ended.
	var op *workflows.Record
	for i, r := range early.Records {
		if r.Kind == workflows.RecordExtend && r.Op != "" {
			op = &early.Records[i]
		}
	}
	s.Require().NotNil(op, "%+v", early.Records)
	s.Equal("msm/m1/extend/web/2", op.Op)
	s.Equal("web 2 → 3: overload reported by m1-c1: cpu 93% above 80% for 10s", op.Trigger)
	s.Equal("web: 1 instance(s) below its desired 3; 1 from the warm pool", op.Why)
	s.Contains(op.Outcome, "msm/m1/extend/web/2 done: 0 started, 1 loaded, 0 failed (took ")
	s.Equal([]string{"web"}, op.Services)

	// Numbered from 1, in order; a service's records name it.
	for i, r := range webLog.Records {
		s.Contains(r.Services, "web")
		if i > 0 {
			s.Greater(r.Seq, webLog.Records[i-1].Seq)
		}
	}
	s.Equal(int64(1), early.Records[0].Seq)
	s.Len(later.Records, 2, "the last two")
	s.Equal(later.Seq, later.Records[1].Seq)
	kinds := map[string]bool{}
	for _, r := range webLog.Records {
		kinds[r.Kind] = true
	}
	for _, k := range []string{workflows.RecordExtend, workflows.RecordRecover, workflows.RecordDone} {
		s.True(kinds[k], "web's log has a %s record: %+v", k, webLog.Records)
	}

	// Each event counted once, with its labels.
	st := s.status(after)
	count := func(metric string, labels ...string) int64 {
		for _, c := range st.Counts {
			if c.Metric == metric && strings.Join(c.Labels, ",") == strings.Join(labels, ",") {
				return c.N
			}
		}
		return 0
	}
	s.Equal(int64(1), count(workflows.CountExtensions, "web", workflows.TriggerAgent, string(fleet.SourceWarmPool)), "%+v", st.Counts)
	s.Equal(int64(1), count(workflows.CountExtensions, "api", workflows.TriggerOperator, string(fleet.SourceNewContainer))+
		count(workflows.CountExtensions, "api", workflows.TriggerOperator, string(fleet.SourceWarmPool))+
		count(workflows.CountExtensions, "api", workflows.TriggerOperator, string(fleet.SourceNewServer)), "%+v", st.Counts)
	s.Equal(int64(1), count(workflows.CountRecoveries, "web", workflows.CauseExit))
	s.Equal(int64(2), count(workflows.CountOperations, "extend", "ok"))
	s.Equal(int64(1), count(workflows.CountOperations, "recover", "ok"))
	s.Equal(int64(1), count(workflows.CountCatalog, "applied"))
	s.Equal(int64(2), count(workflows.CountDecisions, workflows.RecordExtend+"")-count(workflows.CountOperations, "extend", "ok"),
		"two raises of desired instances beside their two operations")
	var total int64
	for _, d := range st.Durations {
		var n int64
		for _, b := range d.Buckets {
			n += b
		}
		s.Equal(d.Count, n, "every %s operation in a bucket", d.Kind)
		total += d.Count
	}
	var ops int64
	for _, c := range st.Counts {
		if c.Metric == workflows.CountOperations {
			ops += c.N
		}
	}
	s.Equal(ops, total, "one duration per operation: %+v", st.Counts)

	// The Web UI's current details: the services, the last decisions.
	details := meta.GetCurrentDetails()
	for _, want := range []string{"**Manager m1**", "- web: 3/3 ready", "- api: 2/2 ready", "**Last decisions**",
		"msm/m1/extend/api/"} {
		s.Contains(details, want)
	}

	// api: extended by the operator, now at its max.
	s.Equal(2, apiWhy.Max)
	s.Contains(strings.Join(apiWhy.Reasons(start.Add(40*time.Second)), "\n"), "at its max of 2 instance(s)")
	s.Contains(strings.Join(apiWhy.Reasons(start.Add(40*time.Second)), "\n"), "healthy: 2/2 instance(s) ready")
}

func TestWhyReasons(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	later := now.Add(90 * time.Second)
	for _, tc := range []struct {
		name string
		why  workflows.Why
		want []string // each a substring of one reason, in order
	}{
		{"healthy", workflows.Why{Desired: 3, Ready: 3, Max: 5}, []string{"healthy: 3/3 instance(s) ready"}},
		{"at max", workflows.Why{Desired: 5, Ready: 5, Max: 5}, []string{"healthy: 5/5", "at its max of 5 instance(s) (replicas.max)"}},
		{"in cooldown", workflows.Why{Desired: 3, Ready: 3, Max: 5, CooldownUntil: later, Cooldown: 2 * time.Minute, Suppressed: 4},
			[]string{"healthy: 3/3", "in cooldown until 10:01:30 (in 1m30s, scaling.cooldown 2m0s): overload and idle reports make no decision; 4 report(s) ignored so far"}},
		{"cooldown over", workflows.Why{Desired: 3, Ready: 3, Max: 5, CooldownUntil: now.Add(-time.Second)}, []string{"healthy: 3/3"}},
		{"no room", workflows.Why{Desired: 4, Ready: 3, Max: 5, Unplaced: []fleet.Unplaced{{Service: "web", Count: 1, Code: fleet.UnplacedNoRoom, Reason: "no server in use has 1 free slot(s)"}}},
			[]string{"no room for 1 instance(s) (no_room): no server in use has 1 free slot(s)"}},
		{"back-off", workflows.Why{Desired: 3, Ready: 2, Max: 5, Backoff: &workflows.Backoff{Service: "web", Failures: 3, LastError: "web exited", RetryAt: later}},
			[]string{"crash-loop back-off until 10:01:30 (in 1m30s) after 3 failed attempt(s): web exited"}},
		{"back-off over", workflows.Why{Desired: 3, Ready: 2, Max: 5, Backoff: &workflows.Backoff{Failures: 3, LastError: "web exited", RetryAt: now}},
			[]string{"back-off over after 3 failed attempt(s)"}},
		{"in flight", workflows.Why{Desired: 3, Ready: 2, Max: 5, Operations: []string{"msm/m/extend/web/7"}}, []string{"operation(s) in flight: msm/m/extend/web/7"}},
		{"short, nothing else", workflows.Why{Desired: 3, Ready: 2, Max: 5}, []string{"2/3 instance(s) ready: the next decision places the rest"}},
		{"full", workflows.Why{Desired: 3, Ready: 3, Max: 5, Full: true}, []string{"healthy", "the Manager holds its most containers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.why.Reasons(now)
			if assert.Len(t, got, len(tc.want), "%q", got) {
				for i, w := range tc.want {
					assert.Contains(t, got[i], w)
				}
			}
		})
	}
}
