// Package tracing traces what msm's processes do through Temporal with
// OpenTelemetry: the SDK's tracing interceptor (go.temporal.io/sdk/contrib/
// opentelemetry) makes a span of every workflow, activity, signal, query
// and update, carried from process to process in Temporal headers, and
// the Manager's decisions add theirs (workflows.Tracer), so that one
// extension is one trace from the report or update that asked for it to
// the activities that carried it out. Spans are exported with OTLP over
// HTTP when OTEL_EXPORTER_OTLP_ENDPOINT (or _TRACES_ENDPOINT) is set, with
// the exporter's other OTEL_ settings; without it nothing is traced.
// msm-agent, which links no OpenTelemetry, has its own small exporter
// (internal/traces) speaking the same protocol and context.
package tracing

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/workflows"
)

// Enabled reports whether the environment asks for traces.
func Enabled(getenv func(string) string) bool {
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Env are the variables of the exporter's settings that a process msm
// starts (a node's agents) is given to trace as it does.
var Env = []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS",
	"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_INSECURE", "OTEL_EXPORTER_OTLP_CERTIFICATE"}

// Tracing is one process's tracing: the interceptor its Temporal client
// is made with (its workers inherit it), the one its Manager worker adds
// (Decisions), and the exporter to flush at exit.
type Tracing struct {
	// Client goes to client.Options.Interceptors.
	Client interceptor.ClientInterceptor
	// Decisions goes to the Manager worker's interceptors: it gives each
	// workflow the tracer of its decisions.
	Decisions interceptor.WorkerInterceptor
	provider  *sdktrace.TracerProvider
}

// spanKey is where the SDK's interceptor keeps a workflow's current span
// on its context; the decisions read and set it there too.
type spanKey struct{}

// batchTimeout bounds how long a finished span waits to be exported.
const batchTimeout = time.Second

// Setup starts tracing for the process named service (service.name),
// exporting with OTLP over HTTP as the OTEL_ variables say.
func Setup(ctx context.Context, service string) (*Tracing, error) {
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("exporting traces (OTEL_EXPORTER_OTLP_ENDPOINT), %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", service))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(batchTimeout)), sdktrace.WithResource(res))
	tr, err := opentelemetry.NewTracer(opentelemetry.TracerOptions{
		Tracer:            tp.Tracer("msm"),
		TextMapPropagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		SpanContextKey:    spanKey{},
	})
	if err != nil {
		return nil, fmt.Errorf("tracing through Temporal, %w", err)
	}
	return &Tracing{Client: interceptor.NewTracingInterceptor(tr), Decisions: &decisionsInterceptor{d: decisions{tr}}, provider: tp}, nil
}

// Shutdown exports the spans not exported yet.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// decisions is the workflows.Tracer of a worker.
type decisions struct{ tr interceptor.Tracer }

// Decision implements workflows.Tracer. A span is made only when the
// workflow task runs for the first time, as the SDK's interceptor does.
func (d decisions) Decision(ctx workflow.Context, traceparent, name string, attrs map[string]string) (workflow.Context, func()) {
	if workflow.IsReplaying(ctx) {
		return ctx, func() {}
	}
	var parent interceptor.TracerSpanRef
	if traceparent != "" {
		if ref, err := d.tr.UnmarshalSpan(map[string]string{"traceparent": traceparent}); err == nil && ref != nil {
			parent = ref
		}
	}
	span, err := d.tr.StartSpan(&interceptor.TracerStartSpanOptions{Parent: parent, Operation: "Decide", Name: name,
		Time: time.Now(), Tags: attrs, DependedOn: true})
	if err != nil {
		return ctx, func() {}
	}
	return workflow.WithValue(ctx, spanKey{}, span), func() { span.Finish(&interceptor.TracerFinishSpanOptions{}) }
}

// Traceparent implements workflows.Tracer.
func (d decisions) Traceparent(ctx workflow.Context) string {
	span, _ := ctx.Value(spanKey{}).(interceptor.TracerSpan)
	if span == nil {
		return ""
	}
	m, err := d.tr.MarshalSpan(span)
	if err != nil {
		return ""
	}
	return m["traceparent"]
}

// decisionsInterceptor puts the tracer of decisions on every workflow's
// context, and on its updates' (an update's handler has a context of its
// own).
type decisionsInterceptor struct {
	interceptor.WorkerInterceptorBase
	d decisions
}

func (i *decisionsInterceptor) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &decisionsInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, d: i.d}
}

type decisionsInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	d decisions
}

func (i *decisionsInbound) ExecuteWorkflow(ctx workflow.Context, in *interceptor.ExecuteWorkflowInput) (any, error) {
	return i.Next.ExecuteWorkflow(workflows.WithTracer(ctx, i.d), in)
}

func (i *decisionsInbound) ExecuteUpdate(ctx workflow.Context, in *interceptor.UpdateInput) (any, error) {
	return i.Next.ExecuteUpdate(workflows.WithTracer(ctx, i.d), in)
}
