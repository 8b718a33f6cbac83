package e2e

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/msm-project/msm/workflows"
)

// receivedSpan is one span an OTLP receiver was sent.
type receivedSpan struct {
	trace, id, parent, name, service string
}

// otlpReceiver is an OTLP/HTTP trace receiver (a collector's stand-in): it
// keeps every span posted to /v1/traces, protobuf as the SDK's exporter and
// msm-agent send them.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []receivedSpan
	bad   []string
	url   string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	r.url = "http://" + l.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, req *http.Request) {
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(body)
		var msg collector.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &msg)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
			r.bad = append(r.bad, fmt.Sprintf("%s: %v", req.Header.Get("Content-Type"), err))
			http.Error(w, "not an OTLP protobuf request", http.StatusBadRequest)
			return
		}
		for _, rs := range msg.ResourceSpans {
			service := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.spans = append(r.spans, receivedSpan{trace: hex.EncodeToString(s.TraceId), id: hex.EncodeToString(s.SpanId),
						parent: hex.EncodeToString(s.ParentSpanId), name: s.Name, service: service})
				}
			}
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

// trace returns the spans of the trace that has a span named name.
func (r *otlpReceiver) traceOf(name string) []receivedSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var tid string
	for _, s := range r.spans {
		if s.name == name {
			tid = s.trace
		}
	}
	var out []receivedSpan
	for _, s := range r.spans {
		if tid != "" && s.trace == tid {
			out = append(out, s)
		}
	}
	return out
}

// TestOverloadReportIsOneTrace (issue 15, acceptance 3): with an OTLP
// receiver in the test as the collector, load on web makes its agent report
// the overload, and that report is one trace whose spans cover the agent's
// report, the Manager's decision, the Extend workflow, its LoadService
// activity scheduled by the worker and run by the agent, each span the
// child of the one before, across three processes (msm-agent, msm node,
// msm worker).
func TestOverloadReportIsOneTrace(t *testing.T) {
	rcv := newOTLPReceiver(t)
	c := newCluster(t, spec{servers: 1, slots: 8, warmPool: 1,
		services: map[string]int{"web": 1}, order: []string{"web"},
		scaling: "{overload: 40, window: 1s, idle: 1, stabilization: 10m, cooldown: 10m, sample: 250ms}"})
	c.h.Env = append(c.h.Env, "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.url)
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web healthy", 60*time.Second, converged(1))
	var port int
	for _, ct := range before.Containers {
		if ct.Service == "web" {
			port = ct.Port
		}
	}
	ctx, stopLoad := context.WithCancel(context.Background())
	wait := drive(ctx, port, 3, "/work?ms=100")
	c.waitFor("web extended on its overload", 90*time.Second, func(st workflows.Status) bool { return st.Services[0].Ready >= 2 })
	stopLoad()
	wait()

	want := []string{"ReportOverload:web", "Decide:extend web", "StartChildWorkflow:Extend", "RunWorkflow:Extend",
		"StartActivity:LoadService", "RunActivity:LoadService"}
	var spans []receivedSpan
	require.Eventually(t, func() bool {
		spans = rcv.traceOf("Decide:extend web")
		names := map[string]bool{}
		for _, s := range spans {
			names[s.name] = true
		}
		for _, w := range want {
			if !names[w] {
				return false
			}
		}
		return true
	}, 30*time.Second, 200*time.Millisecond, "one trace with %v; got %v", want, func() []string { return spanNames(rcv.traceOf("Decide:extend web")) }())

	// Each span of the chain is the child of the one before it.
	byName := map[string]receivedSpan{}
	byID := map[string]receivedSpan{}
	for _, s := range spans {
		if _, ok := byName[s.name]; !ok {
			byName[s.name] = s
		}
		byID[s.id] = s
	}
	for i := 1; i < len(want); i++ {
		child := byName[want[i]]
		// Between two spans of the chain the SDK may put its own (none
		// today): walk up from the child to the one before.
		found := false
		for p := child.parent; p != ""; p = byID[p].parent {
			if byID[p].name == want[i-1] {
				found = true
				break
			}
			if _, ok := byID[p]; !ok {
				break
			}
		}
		assert.True(t, found, "%s descends from %s: %v", want[i], want[i-1], spanNames(spans))
	}
	assert.Equal(t, "msm-agent", byName["ReportOverload:web"].service)
	assert.Equal(t, "msm worker", byName["Decide:extend web"].service)
	assert.Equal(t, "msm-agent", byName["RunActivity:LoadService"].service)
	assert.Empty(t, byName["ReportOverload:web"].parent, "the report begins the trace")
	rcv.mu.Lock()
	assert.Empty(t, rcv.bad, "every export was OTLP protobuf")
	rcv.mu.Unlock()
	t.Logf("the extension's trace: %s", strings.Join(spanNames(spans), ", "))
}

func spanNames(spans []receivedSpan) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.service+"/"+s.name)
	}
	sort.Strings(out)
	return out
}
