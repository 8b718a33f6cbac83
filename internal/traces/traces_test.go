package traces

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collector "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"", false},
		{"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false}, // an unknown version
		{"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false}, // the invalid trace
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false}, // the invalid span
		{"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false},  // short
		{"00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01", false}, // not hex
	} {
		_, _, ok := Parse(tc.in)
		assert.Equal(t, tc.ok, ok, tc.in)
	}
}

func TestNewChildAndRoot(t *testing.T) {
	root := New("", "report", KindProducer)
	assert.Equal(t, [8]byte{}, root.Parent, "the first span of a trace")
	child := New(root.Traceparent(), "load", KindServer)
	assert.Equal(t, root.TraceID, child.TraceID)
	assert.Equal(t, root.ID, child.Parent)
	assert.NotEqual(t, root.ID, child.ID)
	tid, sid, ok := Parse(child.Traceparent())
	require.True(t, ok)
	assert.Equal(t, child.TraceID, tid)
	assert.Equal(t, child.ID, sid)
}

// TestEncodeIsOTLP decodes what Encode writes with OpenTelemetry's own
// message types.
func TestEncodeIsOTLP(t *testing.T) {
	start := time.Unix(1_700_000_000, 5)
	s := New("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "RunActivity:LoadService", KindServer)
	s.Start, s.End = start, start.Add(1500*time.Millisecond)
	s.Attrs = map[string]string{"msm.container": "m-c3", "msm.service": "web"}
	s.Err = "web exited"
	var req collector.ExportTraceServiceRequest
	require.NoError(t, proto.Unmarshal(Encode("msm-agent", *s), &req))
	require.Len(t, req.ResourceSpans, 1)
	rs := req.ResourceSpans[0]
	assert.Equal(t, "service.name", rs.Resource.Attributes[0].Key)
	assert.Equal(t, "msm-agent", rs.Resource.Attributes[0].Value.GetStringValue())
	require.Len(t, rs.ScopeSpans, 1)
	assert.Equal(t, "msm", rs.ScopeSpans[0].Scope.Name)
	require.Len(t, rs.ScopeSpans[0].Spans, 1)
	got := rs.ScopeSpans[0].Spans[0]
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", hex.EncodeToString(got.TraceId))
	assert.Equal(t, "00f067aa0ba902b7", hex.EncodeToString(got.ParentSpanId))
	assert.Equal(t, s.ID[:], got.SpanId)
	assert.Equal(t, "RunActivity:LoadService", got.Name)
	assert.EqualValues(t, KindServer, got.Kind)
	assert.Equal(t, uint64(start.UnixNano()), got.StartTimeUnixNano)
	assert.Equal(t, uint64(start.Add(1500*time.Millisecond).UnixNano()), got.EndTimeUnixNano)
	require.Len(t, got.Attributes, 2)
	assert.Equal(t, "msm.container", got.Attributes[0].Key)
	assert.Equal(t, "m-c3", got.Attributes[0].Value.GetStringValue())
	assert.Equal(t, "web exited", got.Status.Message)
	assert.EqualValues(t, 2, got.Status.Code)
}

func TestExporterFromEnvPostsSpans(t *testing.T) {
	got := make(chan *collector.ExportTraceServiceRequest, 1)
	var header http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, "/v1/traces", r.URL.Path)
		header = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		var req collector.ExportTraceServiceRequest
		assert.NoError(t, proto.Unmarshal(b, &req))
		got <- &req
	}))
	defer srv.Close()
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL + "/", "OTEL_EXPORTER_OTLP_HEADERS": "x-team=blue, x-key=k1"}
	assert.Nil(t, FromEnv("msm-agent", func(string) string { return "" }), "no endpoint: no tracing")
	e := FromEnv("msm-agent", func(k string) string { return env[k] })
	require.NotNil(t, e)
	e.Finish(New("", "report", KindProducer), nil)
	e.Flush()
	req := <-got
	assert.Equal(t, "report", req.ResourceSpans[0].ScopeSpans[0].Spans[0].Name)
	assert.Equal(t, "application/x-protobuf", header.Get("Content-Type"))
	assert.Equal(t, "blue", header.Get("X-Team"))
	assert.Equal(t, "k1", header.Get("X-Key"))

	only := FromEnv("msm-agent", func(k string) string {
		return map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318/custom"}[k]
	})
	assert.Equal(t, "http://collector:4318/custom", only.url, "the traces endpoint is taken as it is")

	bad := FromEnv("msm-agent", func(k string) string { return map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL + "/nope"}[k] })
	srv.Config.Handler = http.NotFoundHandler()
	assert.ErrorContains(t, bad.Export(context.Background(), *New("", "x", KindInternal)), "404")
}
