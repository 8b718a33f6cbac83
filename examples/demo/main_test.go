package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHandler(t *testing.T) {
	id := identity{Service: "svc", Port: 4242, PID: 7, Hostname: "host-1"}
	h := newHandler(id)

	tests := []struct {
		name       string
		method     string
		target     string
		wantStatus int
		wantBody   string // substring; "" skips the check
		wantType   string // Content-Type prefix; "" skips the check
	}{
		{name: "healthz", method: http.MethodGet, target: "/healthz", wantStatus: 200, wantBody: "ok", wantType: "text/plain"},
		{name: "identity", method: http.MethodGet, target: "/", wantStatus: 200, wantBody: `"service":"svc"`, wantType: "application/json"},
		{name: "work zero", method: http.MethodGet, target: "/work?ms=0", wantStatus: 200, wantBody: `"requested_ms":0`, wantType: "application/json"},
		{name: "work small", method: http.MethodGet, target: "/work?ms=5", wantStatus: 200, wantBody: `"requested_ms":5`},
		{name: "work missing ms", method: http.MethodGet, target: "/work", wantStatus: 400, wantBody: "missing query parameter ms"},
		{name: "work not a number", method: http.MethodGet, target: "/work?ms=abc", wantStatus: 400, wantBody: `bad ms "abc"`},
		{name: "work fraction", method: http.MethodGet, target: "/work?ms=1.5", wantStatus: 400, wantBody: "whole number"},
		{name: "work negative", method: http.MethodGet, target: "/work?ms=-1", wantStatus: 400, wantBody: "must not be negative"},
		{name: "unknown path", method: http.MethodGet, target: "/nope", wantStatus: 404},
		{name: "wrong method", method: http.MethodPost, target: "/healthz", wantStatus: 405},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.target, nil))
			require.Equal(t, tc.wantStatus, rec.Code, rec.Body.String())
			if tc.wantBody != "" {
				require.Contains(t, rec.Body.String(), tc.wantBody)
			}
			if tc.wantType != "" {
				require.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), tc.wantType),
					"Content-Type %q", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestIdentityBody(t *testing.T) {
	id := identity{Service: "svc", Port: 4242, PID: 7, Hostname: "host-1"}
	rec := httptest.NewRecorder()
	newHandler(id).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.JSONEq(t, `{"service":"svc","port":4242,"pid":7,"hostname":"host-1"}`, rec.Body.String())
}

func TestWorkBurnsForRequestedTime(t *testing.T) {
	rec := httptest.NewRecorder()
	newHandler(identity{Service: "svc"}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/work?ms=30", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var got workResult
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Equal(t, "svc", got.Service)
	require.Equal(t, 30, got.RequestedMS)
	require.GreaterOrEqual(t, got.ElapsedMS, 30.0)
}

func TestWorkStopsWhenClientLeaves(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/work?ms=10000", nil).WithContext(ctx)
	newHandler(identity{}).ServeHTTP(rec, req)
	require.Less(t, time.Since(start), time.Second)
}

func TestParseWorkMS(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "250", want: 250},
		{in: "10000", want: 10000},
		{in: "10001", want: 10000},
		{in: "999999999", want: 10000},
		{in: "", wantErr: true},
		{in: "-5", wantErr: true},
		{in: "ten", wantErr: true},
		{in: "99999999999999999999999", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseWorkMS(tc.in)
			if tc.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{name: "defaults", want: config{Port: 8080, Name: "demo", Listen: "127.0.0.1"}},
		{name: "env", env: map[string]string{"PORT": "9001", "MSM_SERVICE": "billing"},
			want: config{Port: 9001, Name: "billing", Listen: "127.0.0.1"}},
		{name: "flags beat env", args: []string{"--port", "9002", "--name", "cart", "--listen", "0.0.0.0", "--startup-delay", "2s"},
			env:  map[string]string{"PORT": "9001", "MSM_SERVICE": "billing"},
			want: config{Port: 9002, Name: "cart", Listen: "0.0.0.0", StartupDelay: 2 * time.Second}},
		{name: "bad env port", env: map[string]string{"PORT": "http"}, wantErr: "parsing PORT"},
		{name: "port out of range", args: []string{"--port", "70000"}, wantErr: "out of range"},
		{name: "negative delay", args: []string{"--startup-delay", "-1s"}, wantErr: "negative startup delay"},
		{name: "unknown flag", args: []string{"--nope"}, wantErr: "flag provided but not defined"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfig(tc.args, func(k string) string { return tc.env[k] }, io.Discard)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// TestRunServesAndShutsDown runs the whole program on a free port: it logs
// its address, answers, and returns cleanly when its context ends (what
// SIGTERM does in main).
func TestRunServesAndShutsDown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, logw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--port", "0", "--name", "e2e", "--startup-delay", "50ms"}, func(string) string { return "" }, logw, io.Discard)
		_ = logw.Close()
	}()

	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(line, "demo e2e listening on 127.0.0.1:"), line)
	addr := strings.TrimSpace(strings.TrimPrefix(line, "demo e2e listening on "))

	resp, err := http.Get("http://" + addr + "/")
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	var id identity
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&id))
	require.Equal(t, "e2e", id.Service)
	require.Equal(t, addr, "127.0.0.1:"+strconv.Itoa(id.Port))

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(shutdownTimeout + time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

func TestRunCancelledDuringStartupDelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := run(ctx, []string{"--port", "0", "--startup-delay", "1h"}, func(string) string { return "" }, io.Discard, io.Discard)
	require.NoError(t, err)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestMetricsCountsRequestsInFlight(t *testing.T) {
	h := newHandler(identity{Service: "web"})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/work?ms=300", nil))
	}()
	var m metrics
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		m = metrics{}
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if m.InFlight == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m.InFlight != 1 || m.Requests != 1 {
		t.Fatalf("during one /work: %+v, want 1 in flight of 1", m)
	}
	<-done
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m.InFlight != 0 || m.Requests != 1 {
		t.Fatalf("after it: %+v (%v), want 0 in flight of 1", m, err)
	}
}
