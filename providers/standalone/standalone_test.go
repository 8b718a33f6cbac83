package standalone_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/standalone"
)

var hosts = []catalog.Server{
	{Name: "h1", Address: "10.0.0.1", Slots: 4, Ports: catalog.PortRange{First: 20000, Last: 20099}},
	{Name: "h2", Address: "10.0.0.2", Slots: 4, Ports: catalog.PortRange{First: 20000, Last: 20099}},
	{Name: "h3", Address: "10.0.0.3", Slots: 2, Ports: catalog.PortRange{First: 21000, Last: 21009}},
}

// step is one call on the provider and what it must answer.
type step struct {
	op    string // create, get, list, delete
	key   string // create
	spec  providers.Spec
	id    string // get, delete
	owner string // list

	want     providers.Server   // create, get
	wantList []providers.Server // list
	// wantErr checks the error; nil means no error.
	wantErr func(error) bool
	// wantMsg are parts of the error message a person needs.
	wantMsg []string
}

func server(n int, owner string) providers.Server {
	h := hosts[n-1]
	return providers.Server{ID: h.Name, Address: h.Address, Owner: owner}
}

// TestProviderContract runs the contract of providers.Provider against the
// standalone kind, one sequence of calls per case on a fresh provider.
func TestProviderContract(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "create twice with one key returns one server",
			steps: []step{
				{op: "create", key: "k1", spec: providers.Spec{Owner: "m1", Name: "h1"}, want: server(1, "m1")},
				{op: "create", key: "k1", spec: providers.Spec{Owner: "m1", Name: "h1"}, want: server(1, "m1")},
				{op: "list", owner: "m1", wantList: []providers.Server{server(1, "m1")}},
				{op: "get", id: "h1", want: server(1, "m1")},
			},
		},
		{
			name: "create of an unlisted host has no capacity",
			steps: []step{
				{
					op: "create", key: "k1", spec: providers.Spec{Owner: "m1", Name: "h9"},
					wantErr: providers.IsNoCapacity, wantMsg: []string{`"h9"`, "add it under manager.servers"},
				},
				{op: "get", id: "h9", wantErr: providers.IsNotFound},
				{op: "list", owner: "m1", wantList: nil},
			},
		},
		{
			name: "create of a host another manager adopted has no capacity",
			steps: []step{
				{op: "create", key: "k1", spec: providers.Spec{Owner: "m1", Name: "h2"}, want: server(2, "m1")},
				{
					op: "create", key: "k2", spec: providers.Spec{Owner: "m2", Name: "h2"},
					wantErr: providers.IsNoCapacity, wantMsg: []string{`"h2"`, `"m1"`},
				},
				{op: "get", id: "h2", want: server(2, "m1")},
				{op: "list", owner: "m2", wantList: nil},
			},
		},
		{
			name: "a host released by one manager can be adopted by another",
			steps: []step{
				{op: "create", key: "k1", spec: providers.Spec{Owner: "m1", Name: "h2"}, want: server(2, "m1")},
				{op: "delete", id: "h2"},
				{op: "create", key: "k2", spec: providers.Spec{Owner: "m2", Name: "h2"}, want: server(2, "m2")},
				{op: "list", owner: "m1", wantList: nil},
				{op: "list", owner: "m2", wantList: []providers.Server{server(2, "m2")}},
			},
		},
		{
			name: "get of a listed host not adopted is not found",
			steps: []step{
				{op: "get", id: "h1", wantErr: providers.IsNotFound, wantMsg: []string{`"h1"`}},
				{op: "get", id: "nope", wantErr: providers.IsNotFound},
			},
		},
		{
			name: "list returns the owner's servers only, in list order",
			steps: []step{
				{op: "create", key: "a", spec: providers.Spec{Owner: "m1", Name: "h3"}, want: server(3, "m1")},
				{op: "create", key: "b", spec: providers.Spec{Owner: "m2", Name: "h2"}, want: server(2, "m2")},
				{op: "create", key: "c", spec: providers.Spec{Owner: "m1", Name: "h1"}, want: server(1, "m1")},
				{op: "list", owner: "m1", wantList: []providers.Server{server(1, "m1"), server(3, "m1")}},
				{op: "list", owner: "m2", wantList: []providers.Server{server(2, "m2")}},
				{op: "list", owner: "m3", wantList: nil},
			},
		},
		{
			// An empty owner is nobody: hosts no one adopted are not held
			// for it.
			name: "list of an empty owner returns no unadopted hosts",
			steps: []step{
				{op: "create", key: "a", spec: providers.Spec{Owner: "m1", Name: "h1"}, want: server(1, "m1")},
				{op: "list", owner: "", wantList: nil},
			},
		},
		{
			name: "delete twice succeeds, then get is not found",
			steps: []step{
				{op: "create", key: "k1", spec: providers.Spec{Owner: "m1", Name: "h1"}, want: server(1, "m1")},
				{op: "delete", id: "h1"},
				{op: "delete", id: "h1"},
				{op: "get", id: "h1", wantErr: providers.IsNotFound},
				{op: "list", owner: "m1", wantList: nil},
			},
		},
		{
			name: "delete of a server never created succeeds",
			steps: []step{
				{op: "delete", id: "h3"},
				{op: "delete", id: "not-listed"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var p providers.Provider = standalone.New(hosts)
			ctx := context.Background()
			for i, s := range tc.steps {
				var (
					got     providers.Server
					gotList []providers.Server
					err     error
				)
				switch s.op {
				case "create":
					got, err = p.Create(ctx, s.key, s.spec)
				case "get":
					got, err = p.Get(ctx, s.id)
				case "list":
					gotList, err = p.List(ctx, s.owner)
				case "delete":
					err = p.Delete(ctx, s.id)
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if s.wantErr != nil {
					require.Error(t, err, "step %d (%s)", i, s.op)
					require.True(t, s.wantErr(err), "step %d (%s): wrong kind of error: %v", i, s.op, err)
					for _, m := range s.wantMsg {
						require.Contains(t, err.Error(), m, "step %d (%s)", i, s.op)
					}
					continue
				}
				require.NoError(t, err, "step %d (%s)", i, s.op)
				switch s.op {
				case "create", "get":
					require.Equal(t, s.want, got, "step %d (%s)", i, s.op)
				case "list":
					require.Equal(t, s.wantList, gotList, "step %d (list %q)", i, s.owner)
				}
			}
		})
	}
}

// TestCreateConcurrently: many managers racing for one host: exactly one
// adopts it, the others get no capacity.
func TestCreateConcurrently(t *testing.T) {
	p := standalone.New(hosts)
	const n = 16
	errs := make(chan error, n)
	for i := range n {
		go func() {
			owner := "m" + string(rune('a'+i))
			_, err := p.Create(context.Background(), "k", providers.Spec{Owner: owner, Name: "h1"})
			errs <- err
		}()
	}
	won := 0
	for range n {
		if err := <-errs; err == nil {
			won++
		} else {
			require.True(t, providers.IsNoCapacity(err), "%v", err)
		}
	}
	require.Equal(t, 1, won)
}
