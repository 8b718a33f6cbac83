package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"
)

// RejectedUpdates counts, in the worker's memory, the updates the
// Manager's validators refuse (msm_rejected_updates_total{update}): a
// refused update never reaches the workflow's state or history, so the
// worker that ran the validator is where it can be counted. The returned
// interceptor goes on the Manager's worker.
func RejectedUpdates(reg prometheus.Registerer) (interceptor.WorkerInterceptor, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "msm_rejected_updates_total",
		Help: "Updates (extend, scale, drain, forget, provision) the Manager's validators refused, by update: an unknown service or server, a count out of bounds, a service at its max; the caller was told why. Counted by the worker that validated them, since its start.",
	}, []string{"update"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return &rejections{c: c}, nil
}

type rejections struct {
	interceptor.WorkerInterceptorBase
	c *prometheus.CounterVec
}

func (r *rejections) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &rejectionsInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, c: r.c}
}

type rejectionsInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	c *prometheus.CounterVec
}

// ValidateUpdate counts a refusal. A validator runs for a new update only
// (never on replay), and changes nothing: counting here is outside the
// workflow's state.
func (r *rejectionsInbound) ValidateUpdate(ctx workflow.Context, in *interceptor.UpdateInput) error {
	err := r.Next.ValidateUpdate(ctx, in)
	if err != nil {
		r.c.WithLabelValues(in.Name).Inc()
	}
	return err
}
