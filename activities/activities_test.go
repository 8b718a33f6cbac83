package activities_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/msm-project/msm/activities"
	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/workflows"
)

// fakeProvider is an in-memory provider: it creates one server per key and
// fails with err when set.
type fakeProvider struct {
	mu      sync.Mutex
	err     error
	servers map[string]providers.Server // by key
	calls   []createCall
}

type createCall struct {
	Key  string
	Spec providers.Spec
}

func (f *fakeProvider) Create(_ context.Context, key string, spec providers.Spec) (providers.Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, createCall{Key: key, Spec: spec})
	if f.err != nil {
		return providers.Server{}, f.err
	}
	if s, ok := f.servers[key]; ok {
		return s, nil
	}
	if f.servers == nil {
		f.servers = map[string]providers.Server{}
	}
	s := providers.Server{
		ID:      fmt.Sprintf("i-%03d", len(f.servers)+1),
		Address: fmt.Sprintf("10.1.0.%d", len(f.servers)+1),
		Owner:   spec.Owner,
	}
	f.servers[key] = s
	return s, nil
}

func (f *fakeProvider) Get(context.Context, string) (providers.Server, error) {
	return providers.Server{}, providers.ErrNotFound
}

func (f *fakeProvider) List(context.Context, string) ([]providers.Server, error) { return nil, nil }

func (f *fakeProvider) Delete(context.Context, string) error { return nil }

var _ providers.Provider = (*fakeProvider)(nil)

func launch(t *testing.T, a *activities.Activities, in workflows.LaunchServerInput) (workflows.LaunchServerResult, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)
	val, err := env.ExecuteActivity(a.LaunchServer, in)
	if err != nil {
		return workflows.LaunchServerResult{}, err
	}
	var out workflows.LaunchServerResult
	require.NoError(t, val.Get(&out))
	return out, nil
}

func input(kind string) workflows.LaunchServerInput {
	return workflows.LaunchServerInput{
		Manager: "m1", Kind: kind, Key: "m1/server/s1",
		Server: fleet.Server{
			ID: "s1", Address: "192.0.2.7", Slots: 4,
			Ports: catalog.PortRange{First: 20000, Last: 20099},
		},
	}
}

func TestLaunchServer(t *testing.T) {
	tests := []struct {
		name     string
		kind     string
		provider *fakeProvider // registered for kind "fake"
		want     workflows.LaunchServerResult
		// wantType is the type of a non-retryable error; wantRetryable
		// marks a retryable one.
		wantType      string
		wantRetryable bool
		wantMsg       []string
		wantCalls     []createCall
	}{
		{
			name: "standalone adopts the listed host",
			kind: catalog.KindStandalone,
			want: workflows.LaunchServerResult{ID: "s1", Address: "192.0.2.7"},
		},
		{
			name: "no kind means standalone",
			kind: "",
			want: workflows.LaunchServerResult{ID: "s1", Address: "192.0.2.7"},
		},
		{
			name:     "a standalone manager ignores other providers",
			kind:     catalog.KindStandalone,
			provider: &fakeProvider{err: errors.New("must not be called")},
			want:     workflows.LaunchServerResult{ID: "s1", Address: "192.0.2.7"},
		},
		{
			name:     "the kind's provider creates the server",
			kind:     "fake",
			provider: &fakeProvider{},
			want:     workflows.LaunchServerResult{ID: "i-001", Address: "10.1.0.1"},
			wantCalls: []createCall{
				{Key: "m1/server/s1", Spec: providers.Spec{Owner: "m1", Name: "s1"}},
			},
		},
		{
			name:     "an unknown kind is not retried",
			kind:     "gcp",
			provider: &fakeProvider{},
			wantType: workflows.ErrUnknownKind,
			wantMsg:  []string{`"gcp"`, "run a worker built with it"},
		},
		{
			name:     "no capacity is not retried",
			kind:     "fake",
			provider: &fakeProvider{err: fmt.Errorf("%w: quota of 2 instances reached", providers.ErrNoCapacity)},
			wantType: workflows.ErrNoCapacity,
			wantMsg:  []string{"launching server s1", "quota of 2 instances reached"},
			wantCalls: []createCall{
				{Key: "m1/server/s1", Spec: providers.Spec{Owner: "m1", Name: "s1"}},
			},
		},
		{
			name:          "another error is retried",
			kind:          "fake",
			provider:      &fakeProvider{err: errors.New("RequestLimitExceeded")},
			wantRetryable: true,
			wantMsg:       []string{"launching server s1, RequestLimitExceeded"},
			wantCalls: []createCall{
				{Key: "m1/server/s1", Spec: providers.Spec{Owner: "m1", Name: "s1"}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &activities.Activities{}
			if tc.provider != nil {
				a.Providers = map[string]providers.Provider{"fake": tc.provider, catalog.KindStandalone: tc.provider}
			}
			got, err := launch(t, a, input(tc.kind))
			if tc.provider != nil {
				require.Equal(t, tc.wantCalls, tc.provider.calls)
			}
			if tc.wantType == "" && !tc.wantRetryable {
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				return
			}
			require.Error(t, err)
			var app *temporal.ApplicationError
			require.True(t, errors.As(err, &app), "want an application error, got %T: %v", err, err)
			require.Equal(t, tc.wantRetryable, !app.NonRetryable(), "retryable: %v", err)
			if tc.wantType != "" {
				require.Equal(t, tc.wantType, app.Type())
			}
			for _, m := range tc.wantMsg {
				require.Contains(t, app.Error(), m)
			}
		})
	}
}

// TestLaunchServerTwice: a retry with the same key gets the same server.
func TestLaunchServerTwice(t *testing.T) {
	for _, kind := range []string{catalog.KindStandalone, "fake"} {
		t.Run(kind, func(t *testing.T) {
			f := &fakeProvider{}
			a := &activities.Activities{Providers: map[string]providers.Provider{"fake": f}}
			first, err := launch(t, a, input(kind))
			require.NoError(t, err)
			second, err := launch(t, a, input(kind))
			require.NoError(t, err)
			require.Equal(t, first, second)
			other := input(kind)
			other.Key = "m1/server/s2"
			third, err := launch(t, a, other)
			require.NoError(t, err)
			if kind == "fake" {
				require.NotEqual(t, first, third, "another key is another server")
			}
		})
	}
}
