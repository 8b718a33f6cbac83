// Package faults injects crashes into the worker at named steps of msm's
// operations, for the fault tests: with MSM_FAULT="<operation>:<step>" (for
// example "Extend:start") the worker process kills itself with SIGKILL, as a
// crash would, the first time that operation reaches that step outside a
// replay. A restarted worker must then finish the operation exactly once.
//
// Steps:
//   - lease:  the operation began; the Manager has leased its ports, nothing
//     is started yet.
//   - launch: LaunchServer returned a server, before its result is recorded
//     (the activity runs in the worker: it is retried).
//   - start:  a StartContainer or StartContainers (batched starts) result
//     reached the operation.
//   - load:   a LoadService result reached the operation.
package faults

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/workflows"
)

// Env is the variable that names the fault.
const Env = "MSM_FAULT"

// Steps are the steps a fault can follow.
var Steps = []string{"lease", "launch", "start", "load"}

// FromEnv returns the interceptor of the fault getenv(Env) names, none when
// it is unset, or an error that says what a valid one looks like.
func FromEnv(getenv func(string) string) ([]interceptor.WorkerInterceptor, error) {
	spec := getenv(Env)
	if spec == "" {
		return nil, nil
	}
	op, step, ok := strings.Cut(spec, ":")
	if !ok || op == "" || !slices.Contains(Steps, step) {
		return nil, fmt.Errorf("%s=%q: write <operation>:<step>, such as Extend:start, with a step among %s", Env, spec, strings.Join(Steps, ", "))
	}
	return []interceptor.WorkerInterceptor{&crasher{op: op, step: step}}, nil
}

type crasher struct {
	interceptor.WorkerInterceptorBase
	op, step string
}

// crash ends the worker process at once, leaving nothing to clean up, as a
// power cut or an OOM kill would.
func crash(what string) {
	fmt.Fprintf(os.Stderr, "msm: %s set: killing this worker %s\n", Env, what)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is not delivered synchronously
}

func (c *crasher) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &activityIn{c: c}
	i.Next = next
	return i
}

type activityIn struct {
	interceptor.ActivityInboundInterceptorBase
	c *crasher
}

func (a *activityIn) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	res, err := a.Next.ExecuteActivity(ctx, in)
	info := activity.GetInfo(ctx)
	if err == nil && a.c.step == "launch" && info.ActivityType.Name == workflows.ActivityLaunchServer && info.WorkflowType.Name == a.c.op {
		crash("after LaunchServer returned in " + info.WorkflowExecution.ID)
	}
	return res, err
}

func (c *crasher) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	if workflow.GetInfo(ctx).WorkflowType.Name != c.op {
		return next
	}
	i := &workflowIn{c: c}
	i.Next = next
	return i
}

type workflowIn struct {
	interceptor.WorkflowInboundInterceptorBase
	c *crasher
}

func (w *workflowIn) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	o := &workflowOut{c: w.c}
	o.Next = outbound
	return w.Next.Init(o)
}

func (w *workflowIn) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	if w.c.step == "lease" && !workflow.IsReplaying(ctx) {
		crash("as " + workflow.GetInfo(ctx).WorkflowExecution.ID + " begins, its ports leased")
	}
	return w.Next.ExecuteWorkflow(ctx, in)
}

type workflowOut struct {
	interceptor.WorkflowOutboundInterceptorBase
	c *crasher
}

func (o *workflowOut) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	f := o.Next.ExecuteActivity(ctx, activityType, args...)
	if (o.c.step == "start" && (activityType == workflows.ActivityStartContainer || activityType == workflows.ActivityStartContainers)) ||
		(o.c.step == "load" && activityType == workflows.ActivityLoadService) {
		return crashOnResult{Future: f, what: "after " + activityType + " returned to " + workflow.GetInfo(ctx).WorkflowExecution.ID}
	}
	return f
}

// crashOnResult kills the worker when a successful result reaches the
// operation, in the workflow task that would record it.
type crashOnResult struct {
	workflow.Future
	what string
}

func (f crashOnResult) Get(ctx workflow.Context, valuePtr any) error {
	err := f.Future.Get(ctx, valuePtr)
	if err == nil && !workflow.IsReplaying(ctx) {
		crash(f.what)
	}
	return err
}
