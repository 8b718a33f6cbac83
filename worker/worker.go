// Package worker wires the Manager's task queue: it registers the workflows
// and the manager-side activities on one Temporal worker.
package worker

import (
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/activities"
	"github.com/msm-project/msm/workflows"
)

// New returns a worker for the manager task queue, not yet started.
func New(c client.Client, acts *activities.Activities, interceptors ...interceptor.WorkerInterceptor) worker.Worker {
	w := worker.New(c, workflows.TaskQueue, worker.Options{Interceptors: interceptors,
		// A task for a workflow this worker ran waits this long on the
		// worker's own (sticky) queue before any worker may take it: a
		// worker that died holds its workflows' next tasks no longer than
		// this (the default is 5 s). Another worker replays the history.
		StickyScheduleToStartTimeout: StickyTimeout})
	RegisterWorkflows(w)
	w.RegisterActivity(acts)
	return w
}

// StickyTimeout is the worker's sticky schedule-to-start timeout.
const StickyTimeout = time.Second

// RegisterWorkflows adds msm's workflows to r; the worker, tests and the
// replayer use the same list.
func RegisterWorkflows(r worker.WorkflowRegistry) {
	r.RegisterWorkflow(workflows.Manager)
	r.RegisterWorkflow(workflows.Provision)
	r.RegisterWorkflowWithOptions(workflows.Provision, workflow.RegisterOptions{Name: workflows.WorkflowExtend})
	r.RegisterWorkflowWithOptions(workflows.Provision, workflow.RegisterOptions{Name: workflows.WorkflowRearrange})
	r.RegisterWorkflowWithOptions(workflows.Provision, workflow.RegisterOptions{Name: workflows.WorkflowRecover})
	r.RegisterWorkflowWithOptions(workflows.Provision, workflow.RegisterOptions{Name: workflows.WorkflowRoll})
	r.RegisterWorkflowWithOptions(workflows.Shrink, workflow.RegisterOptions{Name: workflows.WorkflowShrink})
	r.RegisterWorkflowWithOptions(workflows.ScheduledFloor, workflow.RegisterOptions{Name: workflows.WorkflowScheduledFloor})
}
