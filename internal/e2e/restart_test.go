package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/msm-project/msm/workflows"
)

// TestDevServerRestartDuringAnOperation restarts the Temporal dev server
// (same address, same state file) while an Extend waits for its new
// instance to load: every process reconnects, the Extend completes once,
// and no server is taken for lost.
func TestDevServerRestartDuringAnOperation(t *testing.T) {
	c := newCluster(t, spec{persistent: true, servers: 1, slots: 4, services: map[string]int{"web": 1}, order: []string{"web"},
		startupDelay: 4 * time.Second})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	c.waitFor("web healthy", 60*time.Second, converged(0))

	_, err := c.msm("extend", "web", "--count", "1")
	require.NoError(t, err)
	c.waitFor("the Extend running", 10*time.Second, func(st workflows.Status) bool { return st.Operations > 0 })
	away := c.restartServer()
	figure(t, "dev server restart (away)", away)
	began := time.Now()
	c.waitFor("web at 2 after the restart", 90*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && st.Services[0].Ready == 2
	})
	figure(t, "dev server back → Extend done", time.Since(began))
	st := c.requireInvariants(30 * time.Second)
	assert.NotContains(t, eventsOf(st), "lost", "no server taken for lost across the restart")
	resp, err := c.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("MsmManager = '%s' AND MsmOperation = 'extend'", c.manager)})
	require.NoError(t, err)
	require.Len(t, resp.Executions, 1)
	assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, resp.Executions[0].Status)
}
