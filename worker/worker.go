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

// Deployment names the Worker Deployment a worker belongs to, and its
// version: its build. Zero: the worker is not versioned.
//
// A versioned worker takes only the tasks of its version: the Manager's
// when its version is the deployment's current one (the Manager moves to
// the current version at its next task: AutoUpgrade, so every change to it
// stays gated by workflow.GetVersion), and an operation's when the
// operation began on it (Pinned: it ends on the build that began it, so a
// worker of a new build never replays an operation an older one began).
// docs/operations.md, Upgrading msm.
type Deployment struct {
	Name, BuildID string
}

// New returns a worker for the manager task queue, not yet started;
// versioned when dep is not zero.
func New(c client.Client, acts *activities.Activities, dep Deployment, interceptors ...interceptor.WorkerInterceptor) worker.Worker {
	o := worker.Options{Interceptors: interceptors,
		// A task for a workflow this worker ran waits this long on the
		// worker's own (sticky) queue before any worker may take it: a
		// worker that died holds its workflows' next tasks no longer than
		// this (the default is 5 s). Another worker replays the history.
		StickyScheduleToStartTimeout: StickyTimeout}
	manager := workflow.VersioningBehaviorUnspecified
	if dep != (Deployment{}) {
		o.DeploymentOptions = worker.DeploymentOptions{
			UseVersioning:             true,
			Version:                   worker.WorkerDeploymentVersion{DeploymentName: dep.Name, BuildID: dep.BuildID},
			DefaultVersioningBehavior: workflow.VersioningBehaviorPinned,
		}
		manager = workflow.VersioningBehaviorAutoUpgrade
	}
	w := worker.New(c, workflows.TaskQueue, o)
	register(w, manager)
	w.RegisterActivity(acts)
	return w
}

// StickyTimeout is the worker's sticky schedule-to-start timeout.
const StickyTimeout = time.Second

// RegisterWorkflows adds msm's workflows to r; the worker, tests and the
// replayer use the same list.
func RegisterWorkflows(r worker.WorkflowRegistry) {
	register(r, workflow.VersioningBehaviorUnspecified)
}

// register adds msm's workflows to r, the Manager with the versioning
// behaviour manager (the others take the worker's default).
func register(r worker.WorkflowRegistry, manager workflow.VersioningBehavior) {
	r.RegisterWorkflowWithOptions(workflows.Manager, workflow.RegisterOptions{Name: "Manager", VersioningBehavior: manager})
	r.RegisterWorkflow(workflows.Provision)
	r.RegisterWorkflowWithOptions(workflows.Provision, workflow.RegisterOptions{Name: workflows.WorkflowExtend})
	r.RegisterWorkflowWithOptions(workflows.Provision, workflow.RegisterOptions{Name: workflows.WorkflowRearrange})
	r.RegisterWorkflowWithOptions(workflows.Provision, workflow.RegisterOptions{Name: workflows.WorkflowRecover})
	r.RegisterWorkflowWithOptions(workflows.Provision, workflow.RegisterOptions{Name: workflows.WorkflowRoll})
	r.RegisterWorkflowWithOptions(workflows.Shrink, workflow.RegisterOptions{Name: workflows.WorkflowShrink})
	r.RegisterWorkflowWithOptions(workflows.ScheduledFloor, workflow.RegisterOptions{Name: workflows.WorkflowScheduledFloor})
}
