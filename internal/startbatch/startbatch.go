// Package startbatch serves the nodes' StartContainers activity with their
// one-container start, for every kind of node (processes, docker, the
// simulated fleet). It lives outside workflows/ because it runs
// goroutines: it is activity code, never workflow code.
package startbatch

import (
	"context"
	"errors"
	"slices"
	"sync"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows"
)

// Each starts the batch's containers with start, workflows.StartParallel at
// a time, and never fails as a whole, so that one container's trouble does
// not hold back the others' loads. An error of a type in
// workflows.PermanentStart, or marked non-retryable, is that container's
// outcome; any other is Retry (the workflow starts it again on its own).
// An error text is cut to fleet.MaxText in the outcome, which the
// operation's history keeps; a longer one is logged whole here.
func Each(ctx context.Context, in workflows.StartContainersInput, start func(context.Context, workflows.StartContainerInput) (workflows.StartContainerResult, error)) workflows.StartContainersResult {
	out := make([]workflows.StartOutcome, len(in.Containers))
	sem := make(chan struct{}, workflows.StartParallel)
	var wg sync.WaitGroup
	for i, c := range in.Containers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := start(ctx, workflows.StartContainerInput{Manager: in.Manager, Container: c.Container, Server: in.Server, Port: c.Port, Image: c.Image, Service: c.Service})
			o := workflows.StartOutcome{Container: c.Container, PID: r.PID, Attached: r.Attached}
			if err != nil {
				o = workflows.StartOutcome{Container: c.Container, Error: err.Error(), Retry: true}
				var app *temporal.ApplicationError
				if errors.As(err, &app) && (app.NonRetryable() || slices.Contains(workflows.PermanentStart, app.Type())) {
					o.ErrorType, o.Error, o.Retry = app.Type(), app.Message(), false
				}
			}
			if len(o.Error) > fleet.MaxText {
				if activity.IsActivity(ctx) {
					activity.GetLogger(ctx).Warn("starting a container failed", "container", c.Container, "error", o.Error)
				}
				o.Error = fleet.Clip(o.Error)
			}
			out[i] = o
		}()
	}
	wg.Wait()
	return workflows.StartContainersResult{Started: out}
}
