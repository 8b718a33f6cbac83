package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/msm-project/msm/internal/faults"
	"github.com/msm-project/msm/workflows"
)

// TestTwoWorkersFailOverAtEachStep runs two `msm worker` processes, as
// docs/operations.md says to, and at each step of an Extend and of a
// Recover that both need a new server (the steps of
// TestWorkerKilledAtEachStepCompletesOnce) kills -9 the worker that holds
// the Manager's sticky queue: the one that took the Manager's last
// workflow task, read from its history. Nothing is restarted: the other
// worker finishes the operation, exactly once (one run of it, no duplicate
// server, container, process or port). The figures are the time from the
// kill to the operation's end and to the fleet the user asked for.
func TestTwoWorkersFailOverAtEachStep(t *testing.T) {
	for _, op := range []string{workflows.WorkflowExtend, workflows.WorkflowRecover} {
		for _, step := range faults.Steps {
			t.Run(op+"/"+step, func(t *testing.T) {
				t.Parallel()
				testFailOverAt(t, op, step)
			})
		}
	}
}

func testFailOverAt(t *testing.T, op, step string) {
	c := newCluster(t, spec{servers: 2, slots: 2, services: map[string]int{"web": 2}, order: []string{"web"}})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	workers := []string{"worker-a", "worker-b"}
	for _, w := range workers {
		c.start(w, "worker", "--catalog", c.catalog)
	}
	before := c.waitFor("web ×2 healthy on s1", 60*time.Second, converged(0))
	require.Len(t, before.Servers, 1)

	kind := map[string]string{workflows.WorkflowExtend: "extend", workflows.WorkflowRecover: "recover"}[op]
	want := c.beginOp(op, before)

	// The step, as the operation's history shows it, then the kill.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opID := ""
	deadline := time.Now().Add(60 * time.Second)
	for {
		require.True(t, time.Now().Before(deadline), "the %s never reached step %s", kind, step)
		if opID == "" {
			resp, err := c.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Query: fmt.Sprintf("MsmManager = '%s' AND MsmOperation = '%s'", c.manager, kind)})
			require.NoError(t, err)
			if len(resp.Executions) > 0 {
				opID = resp.Executions[0].GetExecution().GetWorkflowId()
			}
		}
		if opID != "" {
			h, err := fullHistory(ctx, c.client, opID, "")
			require.NoError(t, err)
			if reached(h, step) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	sticky := c.managerStickyWorker(ctx)
	victim := ""
	for _, w := range workers {
		if cmd := c.h.Cmd(w); cmd != nil && cmd.Process.Pid == sticky {
			victim = w
		}
	}
	require.NotEmpty(t, victim, "the Manager's last task was taken by pid %d, none of the workers", sticky)
	c.kill9(victim)
	killed := time.Now()

	// The operation ends, once; the fleet reaches what was asked.
	var closed time.Time
	for closed.IsZero() {
		require.True(t, time.Since(killed) < 90*time.Second, "the %s did not end within 90s of the kill", kind)
		desc, err := c.client.DescribeWorkflow(ctx, opID, "")
		require.NoError(t, err)
		info := desc.RawResponse.GetWorkflowExecutionInfo()
		if info.GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, info.GetStatus())
			closed = info.GetCloseTime().AsTime()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := c.waitFor(fmt.Sprintf("web at %d after the kill", want), 90*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && len(st.Services) == 1 && st.Services[0].Ready == want
	})
	settled := time.Since(killed)
	figure(t, fmt.Sprintf("Manager's worker killed after %s of %s, 2 workers → operation done", step, op), max(0, closed.Sub(killed)))
	figure(t, fmt.Sprintf("Manager's worker killed after %s of %s, 2 workers → fleet as asked", step, op), settled)
	t.Logf("killed %s (pid %d, the Manager's sticky worker) after %s of %s: the operation ended %s after the kill, the fleet was as asked %s after",
		victim, sticky, step, opID, closed.Sub(killed).Round(time.Millisecond), settled.Round(time.Millisecond))
	// What the kill cost, as the histories say: the tasks and activities
	// that timed out with the dead worker.
	for _, id := range []string{opID, workflows.ManagerID(c.manager)} {
		h, err := fullHistory(ctx, c.client, id, "")
		require.NoError(t, err)
		for _, e := range h.Events {
			if at := e.GetEventTime().AsTime(); at.Before(killed.Add(-time.Second)) {
				continue
			}
			switch {
			case e.GetWorkflowTaskTimedOutEventAttributes() != nil:
				t.Logf("%s: workflow task timed out (%s) at kill%+.3fs", id, e.GetWorkflowTaskTimedOutEventAttributes().GetTimeoutType(), e.GetEventTime().AsTime().Sub(killed).Seconds())
			case e.GetActivityTaskTimedOutEventAttributes() != nil:
				t.Logf("%s: activity timed out at kill%+.3fs: %v", id, e.GetEventTime().AsTime().Sub(killed).Seconds(), e.GetActivityTaskTimedOutEventAttributes().GetFailure().GetMessage())
			}
		}
	}

	st = c.requireInvariants(30 * time.Second)
	var servers []string
	for _, s := range st.Servers {
		servers = append(servers, s.ID)
	}
	assert.Equal(t, []string{"s1", "s2"}, servers, "s2 launched once")
	live := 0
	for _, ct := range st.Containers {
		if ct.State != "failed" {
			live++
		}
	}
	assert.Equal(t, want, live, "no duplicate container: %+v", st.Containers)
	resp, err := c.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("MsmManager = '%s' AND MsmOperation = '%s'", c.manager, kind)})
	require.NoError(t, err)
	require.Len(t, resp.Executions, 1, "one %s", kind)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, resp.Executions[0].Status)
	// Every node said its version, and every agent has its node's.
	for _, s := range st.Servers {
		assert.NotEmpty(t, s.Node, "node of %s", s.ID)
	}
	for _, ct := range st.Containers {
		if ct.State != "failed" {
			assert.NotEmpty(t, ct.Agent, "agent of %s", ct.ID)
		}
	}
	if os.Getenv("MSM_UPDATE_TESTDATA") != "" && op == workflows.WorkflowExtend && step == "start" {
		// Two workers: the catalog from both (the repeat ignored), the
		// nodes asked their versions, a failover mid-run.
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager-two-workers.json")
	}
}

// reached reports whether an operation's history shows step done: it began
// (lease: its ports are leased as it starts), or LaunchServer,
// StartContainer(s) or LoadService completed.
func reached(h *historypb.History, step string) bool {
	if step == "lease" {
		return len(h.Events) > 0
	}
	types := map[string][]string{
		"launch": {workflows.ActivityLaunchServer},
		"start":  {workflows.ActivityStartContainer, workflows.ActivityStartContainers},
		"load":   {workflows.ActivityLoadService},
	}[step]
	scheduled := map[int64]string{}
	for _, e := range h.Events {
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[e.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := e.GetActivityTaskCompletedEventAttributes(); a != nil {
			for _, name := range types {
				if scheduled[a.GetScheduledEventId()] == name {
					return true
				}
			}
		}
	}
	return false
}

// managerStickyWorker is the pid of the worker that took the Manager's
// latest workflow task: the one its sticky queue belongs to. A worker's
// identity begins with its pid ("pid@host@…").
func (c *cluster) managerStickyWorker(ctx context.Context) int {
	c.t.Helper()
	h, err := fullHistory(ctx, c.client, workflows.ManagerID(c.manager), "")
	require.NoError(c.t, err)
	for i := len(h.Events) - 1; i >= 0; i-- {
		if a := h.Events[i].GetWorkflowTaskStartedEventAttributes(); a != nil {
			pid, err := strconv.Atoi(strings.SplitN(a.GetIdentity(), "@", 2)[0])
			require.NoError(c.t, err, "worker identity %q", a.GetIdentity())
			return pid
		}
	}
	c.t.Fatal("the Manager's history has no workflow task")
	return 0
}
