// Package traces makes and exports OpenTelemetry spans for msm-agent,
// which links neither OpenTelemetry's SDK nor Temporal's (internal/tracing
// is the rest of msm's tracing): W3C trace contexts (traceparent) in and
// out, and spans sent with OTLP over HTTP (protobuf, encoded here with
// protowire) to where OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT says. Spans of one process share its
// service name.
package traces

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Span is one span: its trace and its own ID, its parent's (zero for a
// trace's first span), its name and kind, its times and attributes, and
// its error if it failed.
type Span struct {
	TraceID [16]byte
	ID      [8]byte
	Parent  [8]byte
	Name    string
	// Kind is OTLP's: KindServer for work done for a caller, KindClient
	// for a call.
	Kind       int
	Start, End time.Time
	Attrs      map[string]string
	Err        string
}

// Kinds of a span (OTLP's SpanKind).
const (
	KindInternal = 1
	KindServer   = 2
	KindClient   = 3
	KindProducer = 4
)

// New starts a span named name: the child of the span traceparent names,
// or the first of a new trace when it names none (or is "").
func New(traceparent, name string, kind int) *Span {
	s := &Span{Name: name, Kind: kind, Start: time.Now()}
	if tid, pid, ok := Parse(traceparent); ok {
		s.TraceID, s.Parent = tid, pid
	} else {
		_, _ = rand.Read(s.TraceID[:])
	}
	_, _ = rand.Read(s.ID[:])
	return s
}

// Traceparent is the span's W3C trace context, for its callees.
func (s *Span) Traceparent() string {
	return "00-" + hex.EncodeToString(s.TraceID[:]) + "-" + hex.EncodeToString(s.ID[:]) + "-01"
}

// Parse reads a W3C traceparent (version 00): the trace and the span it
// names; false when it is not one (or names the invalid all-zero IDs).
func Parse(traceparent string) (trace [16]byte, span [8]byte, ok bool) {
	parts := strings.Split(traceparent, "-")
	if len(parts) != 4 || parts[0] != "00" || len(parts[1]) != 32 || len(parts[2]) != 16 || len(parts[3]) != 2 {
		return trace, span, false
	}
	if _, err := hex.Decode(trace[:], []byte(parts[1])); err != nil {
		return trace, span, false
	}
	if _, err := hex.Decode(span[:], []byte(parts[2])); err != nil {
		return trace, span, false
	}
	return trace, span, trace != [16]byte{} && span != [8]byte{}
}

// Exporter sends spans to an OTLP/HTTP endpoint. A nil Exporter sends
// nothing: tracing is off.
type Exporter struct {
	url     string
	headers map[string]string
	service string
	http    *http.Client
	wg      sync.WaitGroup
}

// FromEnv is the exporter the OTEL_ variables of getenv ask for, for the
// process named service; nil when they ask for none.
func FromEnv(service string, getenv func(string) string) *Exporter {
	url := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if url == "" {
		base := getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
		if base == "" {
			return nil
		}
		url = strings.TrimSuffix(base, "/") + "/v1/traces"
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	headers := map[string]string{}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		for _, kv := range strings.Split(getenv(name), ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
	}
	return &Exporter{url: url, headers: headers, service: service, http: &http.Client{Timeout: 10 * time.Second}}
}

// Finish ends s now (with err, if any) and sends it in the background: a
// span never holds up the work it describes. Flush waits for what is on
// its way.
func (e *Exporter) Finish(s *Span, err error) {
	if e == nil || s == nil {
		return
	}
	s.End = time.Now()
	if err != nil {
		s.Err = err.Error()
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Export(ctx, *s)
	}()
}

// Flush waits for the spans Finish is sending.
func (e *Exporter) Flush() {
	if e != nil {
		e.wg.Wait()
	}
}

// Export sends spans in one request.
func (e *Exporter) Export(ctx context.Context, spans ...Span) error {
	if e == nil || len(spans) == 0 {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(Encode(e.service, spans...)))
	if err != nil {
		return fmt.Errorf("exporting spans to %s, %w", e.url, err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	resp, err := e.http.Do(req)
	if err != nil {
		return fmt.Errorf("exporting spans to %s, %w", e.url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return errors.New("exporting spans to " + e.url + ": " + resp.Status)
	}
	return nil
}

// Encode is an OTLP ExportTraceServiceRequest of spans from service
// (opentelemetry-proto: collector/trace/v1, trace/v1, common/v1).
func Encode(service string, spans ...Span) []byte {
	kv := func(b []byte, num protowire.Number, k, v string) []byte {
		return message(b, num, func(b []byte) []byte {
			b = str(b, 1, k)
			return message(b, 2, func(b []byte) []byte { return str(b, 1, v) }) // AnyValue.string_value
		})
	}
	return message(nil, 1, func(b []byte) []byte { // resource_spans
		b = message(b, 1, func(b []byte) []byte { return kv(b, 1, "service.name", service) }) // resource.attributes
		return message(b, 2, func(b []byte) []byte {                                          // scope_spans
			b = message(b, 1, func(b []byte) []byte { return str(b, 1, "msm") }) // scope.name
			for _, s := range spans {
				b = message(b, 2, func(b []byte) []byte {
					b = protowire.AppendTag(b, 1, protowire.BytesType)
					b = protowire.AppendBytes(b, s.TraceID[:])
					b = protowire.AppendTag(b, 2, protowire.BytesType)
					b = protowire.AppendBytes(b, s.ID[:])
					if s.Parent != [8]byte{} {
						b = protowire.AppendTag(b, 4, protowire.BytesType)
						b = protowire.AppendBytes(b, s.Parent[:])
					}
					b = str(b, 5, s.Name)
					b = protowire.AppendTag(b, 6, protowire.VarintType)
					b = protowire.AppendVarint(b, uint64(s.Kind))
					b = protowire.AppendTag(b, 7, protowire.Fixed64Type)
					b = protowire.AppendFixed64(b, uint64(s.Start.UnixNano()))
					b = protowire.AppendTag(b, 8, protowire.Fixed64Type)
					b = protowire.AppendFixed64(b, uint64(s.End.UnixNano()))
					for _, k := range slices.Sorted(maps.Keys(s.Attrs)) {
						b = kv(b, 9, k, s.Attrs[k])
					}
					if s.Err != "" {
						b = message(b, 15, func(b []byte) []byte { // status
							b = str(b, 2, s.Err)
							b = protowire.AppendTag(b, 3, protowire.VarintType)
							return protowire.AppendVarint(b, 2) // STATUS_CODE_ERROR
						})
					}
					return b
				})
			}
			return b
		})
	})
}

func str(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func message(b []byte, num protowire.Number, body func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, body(nil))
}
