package activities_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/activities"
	"github.com/msm-project/msm/workflows"
)

// TestAwaitOperationAgainstTheDevServer: an operation handed over is
// awaited through the client on a real Temporal: a placement's result and
// a Shrink's decode into one answer (their steps too), a failed one says
// why, and one Temporal does not know counts as failed.
func TestAwaitOperationAgainstTheDevServer(t *testing.T) {
	cl := devClient(t)
	const queue = "await-test"
	w := worker.New(cl, queue, worker.Options{})
	w.RegisterWorkflowWithOptions(func(ctx workflow.Context) (workflows.ProvisionResult, error) {
		_ = workflow.Sleep(ctx, 2*time.Second) // still running when awaited
		return workflows.ProvisionResult{Started: 2, Loaded: 1, Failed: 1,
			Steps: []workflows.StepResult{{Op: "op/place", Step: workflows.StepLoad, Container: "m1-c4", OK: true}}}, nil
	}, workflow.RegisterOptions{Name: "Place"})
	w.RegisterWorkflowWithOptions(func(workflow.Context) (workflows.ShrinkResult, error) {
		return workflows.ShrinkResult{Unloaded: 1, Destroyed: 2, Released: 1}, nil
	}, workflow.RegisterOptions{Name: "Remove"})
	w.RegisterWorkflowWithOptions(func(workflow.Context) (workflows.ProvisionResult, error) {
		return workflows.ProvisionResult{}, temporal.NewNonRetryableApplicationError("no capacity in any zone", workflows.ErrNoCapacity, nil)
	}, workflow.RegisterOptions{Name: "Fail"})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	for id, wf := range map[string]string{"op/place": "Place", "op/remove": "Remove", "op/fail": "Fail"} {
		_, err := cl.ExecuteWorkflow(t.Context(), client.StartWorkflowOptions{ID: id, TaskQueue: queue}, wf)
		require.NoError(t, err)
	}

	a := &activities.Activities{Client: cl}
	var s testsuite.WorkflowTestSuite
	await := func(id string) workflows.AwaitOperationResult {
		t.Helper()
		env := s.NewTestActivityEnvironment()
		env.RegisterActivity(a)
		v, err := env.ExecuteActivity(a.AwaitOperation, workflows.AwaitOperationInput{ID: id})
		require.NoError(t, err)
		var res workflows.AwaitOperationResult
		require.NoError(t, v.Get(&res))
		return res
	}
	assert.Equal(t, workflows.AwaitOperationResult{Started: 2, Loaded: 1, Failed: 1,
		Steps: []workflows.StepResult{{Op: "op/place", Step: workflows.StepLoad, Container: "m1-c4", OK: true}}}, await("op/place"))
	assert.Equal(t, workflows.AwaitOperationResult{Unloaded: 1, Destroyed: 2, Released: 1}, await("op/remove"))
	assert.Equal(t, workflows.AwaitOperationResult{Error: "no capacity in any zone"}, await("op/fail"))
	assert.Contains(t, await("op/never").Error, "operation op/never is not known to Temporal")

	none := &activities.Activities{}
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(none)
	_, err := env.ExecuteActivity(none.AwaitOperation, workflows.AwaitOperationInput{ID: "op/place"})
	assert.ErrorContains(t, err, "needs a Temporal client")
}
