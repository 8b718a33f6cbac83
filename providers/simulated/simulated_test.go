package simulated_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/version"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/providertest"
	"github.com/msm-project/msm/providers/simulated"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

func TestConformance(t *testing.T) {
	// One world for the run: a provider made afresh (a restarted worker)
	// is the same world, as the servers of a cloud outlive its client.
	world := simulated.New("m", catalog.Simulated{Servers: 8, Slots: 4})
	providertest.Run(t, providertest.Harness{
		New:   func(*testing.T, string) providers.Provider { return world },
		Names: [2]string{"m-s1", "m-s2"},
		Full: func(t *testing.T) {
			for i := 0; ; i++ {
				_, err := world.Create(context.Background(), fmt.Sprintf("filler/%d", i), providers.Spec{Owner: "filler", Name: fmt.Sprintf("filler-s%d", i)})
				if providers.IsNoCapacity(err) {
					return
				}
				require.NoError(t, err)
			}
		},
	})
}

// signals records the signals a world sends.
type signals struct{ got []workflows.ErrorReport }

func (s *signals) SignalWorkflow(_ context.Context, id, _, name string, arg any) error {
	if id != workflows.ManagerID("m") || name != workflows.SignalErrorReport {
		return fmt.Errorf("unexpected signal %s to %s", name, id)
	}
	s.got = append(s.got, arg.(workflows.ErrorReport))
	return nil
}

func launched(t *testing.T, servers ...string) *simulated.World {
	t.Helper()
	w := simulated.New("m", catalog.Simulated{Servers: 4, Slots: 4, StartDelay: time.Millisecond, LoadDelay: time.Millisecond})
	for _, s := range servers {
		_, err := w.Create(context.Background(), "m/"+s, providers.Spec{Owner: "m", Name: s})
		require.NoError(t, err)
	}
	return w
}

func start(w *simulated.World, id, server string, port int) (workflows.StartContainerResult, error) {
	return w.StartContainer(context.Background(), workflows.StartContainerInput{Manager: "m", Container: id, Server: server, Port: port})
}

func TestStartIsIdempotentAndPortsStayApart(t *testing.T) {
	w := launched(t, "m-s1", "m-s2")
	first, err := start(w, "m-c1", "m-s1", 20000)
	require.NoError(t, err)
	again, err := start(w, "m-c1", "m-s1", 20000)
	require.NoError(t, err)
	assert.Equal(t, workflows.StartContainerResult{PID: first.PID, Attached: true}, again, "the container ID is the key")

	_, err = start(w, "m-c2", "m-s1", 20000)
	assert.ErrorContains(t, err, "port 20000 is held by container m-c1")
	assert.Equal(t, workflows.ErrPortInUse, errorType(err))
	_, err = start(w, "m-c2", "m-s2", 20000)
	assert.NoError(t, err, "the same port on another server is free")

	_, err = start(w, "m-c3", "m-s9", 20001)
	assert.ErrorContains(t, err, "server m-s9 is not in the simulated fleet")

	require.NoError(t, w.StopContainer(context.Background(), workflows.StopContainerInput{Container: "m-c1"}))
	require.NoError(t, w.StopContainer(context.Background(), workflows.StopContainerInput{Container: "m-c1"}), "gone counts as stopped")
	_, err = start(w, "m-c4", "m-s1", 20000)
	assert.NoError(t, err, "a stopped container's port is free again")
	servers, containers, loaded := w.Counts()
	assert.Equal(t, [3]int{2, 2, 0}, [3]int{servers, containers, loaded})
}

func TestLoadUnloadAndCrash(t *testing.T) {
	w := launched(t, "m-s1")
	ctx := context.Background()
	_, err := start(w, "m-c1", "m-s1", 20000)
	require.NoError(t, err)
	in := workflows.LoadServiceInput{Container: "m-c1", Server: "m-s1", Port: 20000, Service: catalog.Service{Name: "web"}}
	out, err := w.LoadService(ctx, in)
	require.NoError(t, err)
	assert.True(t, out.Healthy)
	assert.False(t, out.Attached)
	out, err = w.LoadService(ctx, in)
	require.NoError(t, err)
	assert.True(t, out.Attached, "loading the same service again returns the loaded one")

	var s signals
	require.NoError(t, w.Crash(ctx, &s, "m-c1", "exit status 2"))
	assert.Equal(t, []workflows.ErrorReport{{Container: "m-c1", Service: "web", Reason: "exit status 2", Cause: workflows.CauseExit}}, s.got)
	assert.ErrorContains(t, w.Crash(ctx, &s, "m-c1", "again"), "runs no service", "a crashed container has nothing left to crash")

	_, err = w.LoadService(ctx, workflows.LoadServiceInput{Container: "m-c9", Service: catalog.Service{Name: "web"}})
	assert.Equal(t, "AgentAway", errorType(err), "a container that is not running has no agent to answer")
	_, err = w.LoadService(ctx, in)
	require.NoError(t, err)
	require.NoError(t, w.UnloadService(ctx, "m-c1"))
	_, _, loaded := w.Counts()
	assert.Equal(t, 0, loaded)
	r, err := w.Ready(ctx, "m-c1")
	require.NoError(t, err)
	assert.NotZero(t, r.PID)
}

func TestReconcileStopsWhatTheManagerDoesNotKeep(t *testing.T) {
	w := launched(t, "m-s1", "m-s2")
	for i, id := range []string{"m-c1", "m-c2", "m-c3", "m-c7"} {
		_, err := start(w, id, "m-s1", 20000+i)
		require.NoError(t, err)
	}
	_, err := start(w, "m-c4", "m-s2", 20000)
	require.NoError(t, err)
	out, err := w.Reconcile(context.Background(), workflows.ReconcileInput{Manager: "m", Server: "m-s1", Keep: []string{"m-c2"}, Seq: 5})
	require.NoError(t, err)
	assert.Equal(t, workflows.ReconcileResult{Stopped: []string{"m-c1", "m-c3"}, Running: []string{"m-c2", "m-c7"},
		Version: version.Get(), Wire: agentapi.Wire}, out,
		"m-c7 is newer than the snapshot, m-c4 on another server")
}

func TestALostServerHangsUntilRestored(t *testing.T) {
	w := launched(t, "m-s1")
	w.Lose("m-s1")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := w.StartContainer(ctx, workflows.StartContainerInput{Manager: "m", Container: "m-c1", Server: "m-s1", Port: 20000})
	assert.ErrorIs(t, err, context.DeadlineExceeded, "a partitioned node never answers")

	done := make(chan error, 1)
	go func() {
		_, err := start(w, "m-c1", "m-s1", 20000)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the start returned while the server was lost: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	w.Restore("m-s1")
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the start still hangs after the server was restored")
	}
}

func errorType(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Type()
	}
	return ""
}
