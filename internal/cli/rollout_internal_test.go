package cli

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/msm-project/msm/workflows"
)

// TestPrintRollout: msm rollout status says the revisions, the state, how
// many instances run what, and why it waits or failed; msm status a line
// per roll in progress or stopped.
func TestPrintRollout(t *testing.T) {
	began := time.Date(2026, 12, 7, 10, 30, 0, 0, time.Local)
	rolling := workflows.RolloutStatus{Rollout: workflows.Rollout{Service: "web", From: "aaa", To: "bbb", State: workflows.RollRolling, Total: 3, Started: began},
		Desired: 3, Fresh: 1, Stale: 3, Ready: 3}
	back := rolling
	back.State, back.Error, back.Ended, back.Fresh, back.Stale = workflows.RollRolledBack, "failed to load web: exit status 2", began.Add(2500*time.Millisecond), 3, 0
	waiting := rolling
	waiting.Paused, waiting.Waiting = true, "1 of 3 instance(s) healthy, fewer than the 3 the roll keeps serving: it waits until they are"
	agents := workflows.RolloutStatus{Rollout: workflows.Rollout{Service: "web", From: "bbb", To: "bbb", Agents: true, State: workflows.RollRolling, Total: 2, Started: began},
		Desired: 3, Fresh: 1, Stale: 2, Ready: 3}
	agentsToo := rolling
	agentsToo.Agents = true
	for _, tc := range []struct {
		r    workflows.RolloutStatus
		want string
	}{
		{rolling, "web: revision aaa → bbb: rolling\n  instances: 1 of 3 run revision bbb, 3 another; 3 healthy\n  began 10:30:00 (3 to replace), running for 10s\n"},
		{back, "web: revision aaa → bbb: rolled back\n  instances: 3 of 3 run revision aaa, 0 another; 3 healthy\n  began 10:30:00 (3 to replace), ended 10:30:02 after 2.5s\n  the new revision failed: failed to load web: exit status 2\n"},
		{waiting, "web: revision aaa → bbb: rolling, paused\n  instances: 1 of 3 run revision bbb, 3 another; 3 healthy\n  began 10:30:00 (3 to replace), running for 10s\n  waiting: 1 of 3 instance(s) healthy, fewer than the 3 the roll keeps serving: it waits until they are\n"},
		{agents, "web: agents to their node's version (msm upgrade agents), revision bbb: rolling\n  instances: 1 of 3 run their node's agent, 2 behind; 3 healthy\n  began 10:30:00 (2 to replace), running for 10s\n"},
		{agentsToo, "web: revision aaa → bbb, and agents to their node's version: rolling\n  instances: 1 of 3 run revision bbb on their node's agent, 3 to replace; 3 healthy\n  began 10:30:00 (3 to replace), running for 10s\n"},
	} {
		var b bytes.Buffer
		printRollout(&b, tc.r, began.Add(10*time.Second))
		assert.Equal(t, tc.want, b.String())
	}
	var b bytes.Buffer
	done := rolling
	done.State = workflows.RollDone
	printStatus(&b, workflows.Status{Services: []workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3, Rollout: &rolling}, {Name: "api", Rollout: &back}, {Name: "db", Rollout: &done}}})
	assert.Contains(t, b.String(), "\nROLLOUT web: rolling, revision aaa → bbb: 1 of 3 run revision bbb (msm rollout status web)\n")
	assert.Contains(t, b.String(), "\nROLLOUT api: rolled back, revision aaa → bbb: 3 of 3 run revision aaa (msm rollout status api)\n",
		"the catalog's revision is not what runs: status says so")
	assert.NotContains(t, b.String(), "ROLLOUT db", "a roll done is msm rollout status's")
	b.Reset()
	printStatus(&b, workflows.Status{Services: []workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3, Rollout: &agents}}})
	assert.Contains(t, b.String(), "\nROLLOUT web: rolling, agents to their node's version: 1 of 3 run it (msm rollout status web)\n")
	b.Reset()
	printStatus(&b, workflows.Status{Services: []workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 1, Rollout: &waiting}}})
	assert.Contains(t, b.String(), "\nROLLOUT web: rolling, paused (waiting: 1 of 3 instance(s) healthy, fewer than the 3 the roll keeps serving: it waits until they are), revision aaa → bbb")
}
