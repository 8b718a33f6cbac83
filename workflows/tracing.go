package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// Tracer makes the spans of the Manager's decisions, so that one
// extension is one trace from the report (or the operator's update) that
// asked for it, through the decision, to its operation and the activities
// it runs on node and agent queues. internal/tracing implements it over the
// SDK's OpenTelemetry tracing interceptor, and puts it on each workflow's
// context (WithTracer); without one (tracing off, tests, the replayer)
// decisions make no span.
//
// Its methods make no command and no history event: the SDK's interceptor
// makes its own spans the same way. Decision starts none while replaying.
type Tracer interface {
	// Decision starts the span of a decision named name, made on a
	// report whose trace context is traceparent (W3C; "" for none, then
	// the span begins a trace of its own), with attrs. It returns the
	// context whose child workflows and activities are the span's
	// children, and the function that ends the span.
	Decision(ctx workflow.Context, traceparent, name string, attrs map[string]string) (workflow.Context, func())
	// Traceparent is the W3C trace context of the span ctx carries (an
	// update's, from its caller's header), or "".
	Traceparent(ctx workflow.Context) string
}

type tracerKey struct{}

// WithTracer returns ctx with t for the workflow's decisions.
func WithTracer(ctx workflow.Context, t Tracer) workflow.Context {
	return workflow.WithValue(ctx, tracerKey{}, t)
}

// tracerOf is the tracer on ctx, or nil.
func tracerOf(ctx workflow.Context) Tracer {
	t, _ := ctx.Value(tracerKey{}).(Tracer)
	return t
}

// traceOf is the trace context of the span ctx carries, or "".
func traceOf(ctx workflow.Context) string {
	if t := tracerOf(ctx); t != nil {
		return t.Traceparent(ctx)
	}
	return ""
}

// decisionSpan starts the span of a decision (see Tracer.Decision); with
// no tracer it returns ctx and a function that does nothing.
func decisionSpan(ctx workflow.Context, traceparent, name string, attrs map[string]string) (workflow.Context, func()) {
	if t := tracerOf(ctx); t != nil {
		return t.Decision(ctx, traceparent, name, attrs)
	}
	return ctx, func() {}
}
