package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/msm-project/msm/internal/faults"
	"github.com/msm-project/msm/workflows"
)

// TestWorkerKilledAtEachStepCompletesOnce kills the worker (SIGKILL, by the
// MSM_FAULT hook) right after each step of an Extend and of a Recover that
// both need a new server: after the ports are leased, after the server
// launched, after the container started, after the service loaded. A new
// worker then finishes the operation exactly once: one run of it, no
// duplicate server, container, process or port.
func TestWorkerKilledAtEachStepCompletesOnce(t *testing.T) {
	for _, op := range []string{workflows.WorkflowExtend, workflows.WorkflowRecover} {
		for _, step := range faults.Steps {
			t.Run(op+"/"+step, func(t *testing.T) {
				t.Parallel()
				testWorkerKilledAt(t, op, step)
			})
		}
	}
}

func testWorkerKilledAt(t *testing.T, op, step string) {
	// s1 has room for web's two instances only: the third (Extend) or the
	// replacement of a crash (Recover, which places it before the crashed
	// one is destroyed) needs s2 launched.
	c := newCluster(t, spec{servers: 2, slots: 2, services: map[string]int{"web": 2}, order: []string{"web"}})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	died := c.startEnv("worker", []string{faults.Env + "=" + op + ":" + step}, "worker", "--catalog", c.catalog)
	before := c.waitFor("web ×2 healthy on s1", 60*time.Second, converged(0))
	require.Len(t, before.Servers, 1)

	want := c.beginOp(op, before)
	c.restartWorker(died, 60*time.Second)
	began := time.Now()
	st := c.waitFor(fmt.Sprintf("web at %d after the restart", want), 90*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && len(st.Services) == 1 && st.Services[0].Ready == want
	})
	figure(t, fmt.Sprintf("worker killed after %s of %s → operation done", step, op), time.Since(began))

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
	// Exactly one run of the operation, and it completed.
	kind := map[string]string{workflows.WorkflowExtend: "extend", workflows.WorkflowRecover: "recover"}[op]
	resp, err := c.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("MsmManager = '%s' AND MsmOperation = '%s'", c.manager, kind)})
	require.NoError(t, err)
	require.Len(t, resp.Executions, 1, "one %s", kind)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, resp.Executions[0].Status)
}

// beginOp sets off op on a fleet of web ×2 (before): an Extend by one (an
// operator's extend) or a Recover (web's first instance killed -9), and
// returns the instances of web wanted after it.
func (c *cluster) beginOp(op string, before workflows.Status) int {
	c.t.Helper()
	switch op {
	case workflows.WorkflowExtend:
		_, err := c.msm("extend", "web", "--count", "1")
		require.NoError(c.t, err)
		return 3
	case workflows.WorkflowRecover:
		pid := 0
		for _, p := range c.hostProcs() {
			if p.container == before.Containers[0].ID && !p.agent {
				pid = p.pid
			}
		}
		require.NotZero(c.t, pid)
		require.NoError(c.t, syscall.Kill(pid, syscall.SIGKILL))
		return 2
	}
	c.t.Fatalf("no operation %s to begin", op)
	return 0
}
