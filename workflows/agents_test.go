package workflows_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// TestUpgradeAgentsReplacesEveryAgentBehindItsNode: nodes restarted as v2
// adopt the containers of v1 with their agents; the waiting one is
// replaced through the pool unasked, the loaded ones only once the
// operator asks (msm upgrade agents), extend then destroy, one at a time:
// no service ever has fewer healthy instances than it wants, and in the end
// every container runs its node's agent. Unknown services are refused.
func (s *ManagerSuite) TestUpgradeAgentsReplacesEveryAgentBehindItsNode() {
	all := []string{"m1-c1", "m1-c2", "m1-c3", "m1-c4"}
	s.at(500*time.Millisecond, func() { s.fake.upgradeNode("s1", "v1", agentapi.Wire); s.fake.upgradeNode("s2", "v1", agentapi.Wire) })
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	s.at(4500*time.Millisecond, func() { s.fake.upgradeNode("s1", "v2", agentapi.Wire); s.fake.upgradeNode("s2", "v2", agentapi.Wire) })
	s.signal(5*time.Second, workflows.SignalNodeUp, workflows.NodeUpSignal{Server: "s1", Containers: all})
	var before workflows.Status
	var errBefore error
	s.snapshot(7*time.Second, &before, &errBefore)
	var upgrade, unknown tmUpdate
	s.updateNamed(8*time.Second, workflows.UpdateUpgradeAgents, "u1", workflows.AgentUpgrade{}, &upgrade)
	s.updateNamed(9*time.Second, workflows.UpdateUpgradeAgents, "u2", workflows.AgentUpgrade{Services: []string{"nope"}}, &unknown)
	// A catalog change that leaves the revisions as they are does not end
	// the upgrade.
	changed := tmCatalogSignal()
	changed.Catalog.Services[1].Replicas.Max++
	s.signal(12*time.Second, workflows.SignalCatalog, changed)
	// Sampled every second while it runs: the fewest healthy of each.
	fewest := map[string]int{"web": 99, "api": 99}
	var sampleErr error
	for d := 8 * time.Second; d < 100*time.Second; d += time.Second {
		s.at(d, func() {
			v, err := s.env.QueryWorkflow(workflows.QueryStatus)
			var st workflows.Status
			if err == nil {
				err = getStatus(v, &st)
			}
			if err != nil {
				sampleErr = err
				return
			}
			for _, svc := range st.Services {
				fewest[svc.Name] = min(fewest[svc.Name], svc.Ready)
			}
		})
	}
	var after workflows.Status
	var errAfter error
	s.snapshot(100*time.Second, &after, &errAfter)
	s.run(workflows.ManagerInput{Manager: tfManager}, 101*time.Second)
	s.requireCancelled()
	s.Require().NoError(errBefore)
	s.Require().NoError(errAfter)
	s.Require().NoError(sampleErr)

	agents := func(st workflows.Status) map[string]string {
		out := map[string]string{}
		for _, c := range st.Containers {
			if c.State == string(fleet.Loaded) || c.State == string(fleet.Waiting) {
				out[c.ID] = c.Service + ":" + c.Agent
			}
		}
		return out
	}
	s.Equal(map[string]string{"m1-c1": "web:v1", "m1-c2": "web:v1", "m1-c3": "api:v1", "m1-c5": ":v2"}, agents(before),
		"adopted, the loaded ones keep v1; the waiting m1-c4 is replaced by m1-c5 of its node's v2")
	s.Require().NoError(upgrade.err)
	s.Equal("replacing 3 instance(s) whose agent is behind their node, extend then destroy: web (2), api (1) (`msm rollout status` follows it)", upgrade.result.Message, "the waiting one was replaced before it was asked")
	s.Require().Error(unknown.rejected)
	s.Contains(unknown.rejected.Error(), `unknown service "nope"`)

	for id, a := range agents(after) {
		s.Contains(a, ":v2", "%s runs its node's agent", id)
	}
	for _, svc := range after.Services {
		s.Equal(svc.Desired, svc.Ready, "%s healthy at desired", svc.Name)
		s.Require().NotNil(svc.Rollout, "%s's upgrade is its roll", svc.Name)
		s.Equal(workflows.RollDone, svc.Rollout.State)
		s.True(svc.Rollout.Agents)
		s.Equal(0, svc.Rollout.Stale)
	}
	s.Equal(map[string]int{"web": 2, "api": 1}, fewest, "never below desired while replaced")
	msgs := eventMessages(after.Events)
	for _, svc := range []string{"web", "api"} {
		s.True(containsPrefix(msgs, fmt.Sprintf("upgrade of %s's agents done in ", svc)), "%s's upgrade said done: %v", svc, msgs)
	}
	s.Len(after.Containers, 4, "web ×2, api and the pool's one: the surplus went")
	s.NotContains(strings.Join(msgs, "\n"), "the catalog is back at revision")
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			return true
		}
	}
	return false
}

// TestRenewContinuesAsNewOnceItsOperationsEnd: msm upgrade manager asked
// while the first Provision runs: no operation starts meanwhile, and the
// run continues as new once it ended, with its state.
func (s *ManagerSuite) TestRenewContinuesAsNewOnceItsOperationsEnd() {
	start := s.env.Now()
	s.signal(time.Second, workflows.SignalCatalog, tmCatalogSignal())
	// m1-c1's load takes 5s: the Provision runs when the renew comes.
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.MatchedBy(func(in workflows.LoadServiceInput) bool {
		return in.Container == "m1-c1"
	})).After(5*time.Second).Return(workflows.LoadServiceResult{Healthy: true, PID: 7}, nil).Maybe()
	s.env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.Anything).Return(s.fake.LoadService).Maybe()
	var answer workflows.Renewed
	var answerErr error
	s.at(2*time.Second, func() {
		s.env.UpdateWorkflow(workflows.UpdateRenew, "renew", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { answerErr = err },
			OnComplete: func(res any, err error) {
				answerErr = err
				if r, ok := res.(workflows.Renewed); ok {
					answer = r
				}
			},
		})
	})
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)

	s.Require().NoError(answerErr)
	s.Equal("the Manager continues as a new run once its 1 running operation(s) end", answer.Message)
	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &can), "want continue-as-new, got %v", s.env.GetWorkflowError())
	var next workflows.ManagerInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	s.Equal(1, next.Ops, "the Provision ran, and nothing after it")
	s.Len(next.Inventory.Containers, 4)
	s.Empty(next.Handed, "it waited for the Provision")
	s.Contains(recordTexts(next.Log), "continuing as a new run on this worker's build once its 1 running operation(s) end: no operation starts meanwhile (operator: upgrade manager)")
	s.Len(s.provisions(), 1)
	s.GreaterOrEqual(s.env.Now().Sub(start), 6*time.Second, "it waited for the Provision")
}

// TestOperationTaskTimeout: a second for the handful of instances an
// extension or a recovery places, growing with the plan, bounded.
func TestOperationTaskTimeout(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{0, time.Second}, {1, time.Second}, {249, time.Second}, {250, 2 * time.Second}, {workflows.PlanLimit, 3 * time.Second}, {5000, 5 * time.Second}} {
		if got := workflows.OperationTaskTimeout(tc.n); got != tc.want {
			t.Errorf("OperationTaskTimeout(%d) = %s, want %s", tc.n, got, tc.want)
		}
	}
}
