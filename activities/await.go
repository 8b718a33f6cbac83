package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/workflows"
)

// AwaitOperation waits for an operation that a Manager's run handed over
// to the next one as it continued as new (workflows.HandedOp), and says
// how it ended: its result, or why it failed. It heartbeats while it
// waits, so a worker that dies meanwhile is replaced within the heartbeat
// timeout, and waiting again is harmless. An operation the server does
// not know (it never started) counts as failed.
func (a *Activities) AwaitOperation(ctx context.Context, in workflows.AwaitOperationInput) (workflows.AwaitOperationResult, error) {
	var res workflows.AwaitOperationResult
	if a.Client == nil {
		return res, noClient("awaiting an operation handed over")
	}
	every := max(activity.GetInfo(ctx).HeartbeatTimeout/5, 100*time.Millisecond)
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			activity.RecordHeartbeat(ctx)
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	err := a.Client.GetWorkflow(ctx, in.ID, "").Get(ctx, &res)
	if err == nil {
		return res, nil
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	var (
		failed     *temporal.WorkflowExecutionError
		terminated *temporal.TerminatedError
		canceled   *temporal.CanceledError
		notFound   *serviceerror.NotFound
	)
	switch {
	case errors.As(err, &failed), errors.As(err, &terminated), errors.As(err, &canceled):
		return workflows.AwaitOperationResult{Error: workflows.RootMessage(err)}, nil
	case errors.As(err, &notFound):
		return workflows.AwaitOperationResult{Error: fmt.Sprintf("operation %s is not known to Temporal: %v", in.ID, err)}, nil
	}
	return res, fmt.Errorf("awaiting operation %s, %w", in.ID, err)
}
