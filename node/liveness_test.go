package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/msm-project/msm/internal/heartbeat"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// signals records what the node signalled, standing in for the Manager.
type signals struct {
	mu   sync.Mutex
	sent []workflows.ErrorReport
}

func (s *signals) SignalWorkflow(_ context.Context, id, _, name string, arg any) error {
	if id != workflows.ManagerID("m1") || name != workflows.SignalErrorReport {
		panic("unexpected signal " + name + " to " + id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, arg.(workflows.ErrorReport))
	return nil
}

func (s *signals) reports() []workflows.ErrorReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// watching runs the node's agent watcher until the test ends.
func watching(t *testing.T, n *Node, poll time.Duration) *signals {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	sig := &signals{}
	go func() { defer close(done); n.watchAgents(ctx, sig, poll) }()
	t.Cleanup(func() { cancel(); <-done })
	return sig
}

func TestKilledAgentIsReportedToTheManager(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// reattached: the watching node did not start the agent (it was
		// restarted), so only its poll can see the exit.
		reattached bool
	}{{"started by this node", false}, {"re-attached after a node restart", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			n := f.node("s1", "m1", graceful)
			id := f.id("c1")
			pid := startWithChild(t, f, n, id)
			if tc.reattached {
				n = f.node("s1", "m1", graceful)
				kept, err := n.Reattach()
				require.NoError(t, err)
				require.Equal(t, []string{id}, kept)
			}
			sig := watching(t, n, 50*time.Millisecond)
			require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
			waitFor(t, "the error report", func() bool { return len(sig.reports()) > 0 })
			time.Sleep(200 * time.Millisecond) // and only one
			reps := sig.reports()
			require.Len(t, reps, 1)
			assert.Equal(t, id, reps[0].Container)
			assert.Contains(t, reps[0].Reason, "its agent process")
			if !tc.reattached {
				assert.Contains(t, reps[0].Reason, "signal: killed")
			}
			assert.True(t, f.hasRecord(id), "the Manager destroys it: its record stays until then")
			require.NoError(t, stop(n, id))
			assert.Empty(t, group(pid), "destroying it ends the MicroService its agent left behind")
		})
	}
}

func TestStoppedAgentIsNotReported(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := f.node("s1", "m1", graceful)
	sig := watching(t, n, 20*time.Millisecond)
	id := f.id("c1")
	startWithChild(t, f, n, id)
	require.NoError(t, stop(n, id))
	time.Sleep(300 * time.Millisecond)
	assert.Empty(t, sig.reports())
}

// activityEnv runs node activities, whose loggers panic outside one.
func activityEnv(ctx context.Context) *testsuite.TestActivityEnvironment {
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{BackgroundActivityContext: ctx})
	return env
}

func TestReconcileStopsWhatTheManagerDoesNotKeep(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := f.node("s1", "m1", graceful)
	c1, c2, c3, c4 := f.id("c1"), f.id("c2"), f.id("c3"), f.id("c4")
	pids := map[string]int{}
	for _, id := range []string{c1, c2, c3, c4} {
		pids[id] = startWithChild(t, f, n, id)
	}
	require.NoError(t, syscall.Kill(pids[c4], syscall.SIGKILL)) // kept, but dead
	waitFor(t, "c4's agent to die", func() bool { return !aliveNow(pids[c4]) || len(group(pids[c4])) == 1 })

	env := activityEnv(context.Background())
	env.RegisterActivity(n.Reconcile)
	// The Manager keeps c1 and c4; c2 is unknown to it; c3 is newer than
	// its snapshot (placed after it), so it is left alone.
	v, err := env.ExecuteActivity(n.Reconcile, workflows.ReconcileInput{Manager: "m1", Server: "s1", Keep: []string{c1, c4}, Seq: 2})
	require.NoError(t, err)
	var out workflows.ReconcileResult
	require.NoError(t, v.Get(&out))
	assert.Equal(t, []string{c2}, out.Stopped)
	assert.Equal(t, []string{c1, c3}, out.Running)
	assert.Empty(t, group(pids[c2]))
	assert.False(t, f.hasRecord(c2))
	for _, id := range []string{c1, c3} {
		assert.NotEmpty(t, group(pids[id]), id)
	}

	// The same again changes nothing.
	v, err = env.ExecuteActivity(n.Reconcile, workflows.ReconcileInput{Manager: "m1", Server: "s1", Keep: []string{c1, c4}, Seq: 2})
	require.NoError(t, err)
	require.NoError(t, v.Get(&out))
	assert.Empty(t, out.Stopped)
	assert.Equal(t, []string{c1, c3}, out.Running)
}

func TestLeaseAndReconcileRefuseAnotherNodesWork(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := f.node("s1", "m1", graceful)
	env := activityEnv(context.Background())
	env.RegisterActivity(n.Lease)
	env.RegisterActivity(n.Reconcile)
	_, err := env.ExecuteActivity(n.Lease, workflows.LeaseInput{Manager: "m1", Server: "s2"})
	require.ErrorContains(t, err, "two nodes poll one task queue")
	_, err = env.ExecuteActivity(n.Reconcile, workflows.ReconcileInput{Manager: "m2", Server: "s1"})
	require.ErrorContains(t, err, "reached the node of server s1 of manager m1")
}

func TestLeaseHeartbeatsUntilCancelled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := f.node("s1", "m1", graceful)
	ctx, cancel := context.WithCancel(context.Background())
	env := activityEnv(ctx)
	var mu sync.Mutex
	beats := 0
	env.SetOnActivityHeartbeatListener(func(*activity.Info, converter.EncodedValues) { mu.Lock(); beats++; mu.Unlock() })
	env.RegisterActivity(n.Lease)
	time.AfterFunc(2500*time.Millisecond, cancel)
	began := time.Now()
	_, err := env.ExecuteActivity(n.Lease, workflows.LeaseInput{Manager: "m1", Server: "s1"})
	require.Error(t, err, "a cancelled lease does not complete")
	assert.Less(t, time.Since(began), 5*time.Second, "it ends when cancelled")
	mu.Lock()
	defer mu.Unlock()
	assert.GreaterOrEqual(t, beats, 2, "one heartbeat per second without a heartbeat timeout")
}

// TestHungAgentIsReportedAndKilled: an agent that touches its heartbeat
// file is left alone; stopped (SIGSTOP), it touches nothing, and past the
// window its file says it is reported (cause agent_hung) and killed with
// its MicroService.
func TestHungAgentIsReportedAndKilled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// The agent beats in its own process; its MicroService is a sleep.
	n := f.node("s1", "m1", `sleep 300 & while :; do touch "$`+heartbeat.Env+`"; sleep 0.05; done`)
	id := f.id("c1")
	pid := startWithChild(t, f, n, id)
	path := filepath.Join(f.dir, id+".alive")
	require.NoError(t, heartbeat.Write(path, 400*time.Millisecond))
	sig := watching(t, n, 50*time.Millisecond)
	time.Sleep(time.Second)
	assert.Empty(t, sig.reports(), "a beating agent is alive")

	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	waitFor(t, "the hung agent's report", func() bool { return len(sig.reports()) > 0 })
	time.Sleep(200 * time.Millisecond) // and only one
	reps := sig.reports()
	require.Len(t, reps, 1)
	assert.Equal(t, id, reps[0].Container)
	assert.Equal(t, agentapi.CauseAgentHung, reps[0].Cause)
	assert.Contains(t, reps[0].Reason, "stopped answering: no heartbeat for")
	assert.Contains(t, reps[0].Reason, "past its window of 400ms")
	waitFor(t, "the hung agent and its MicroService killed", func() bool { return len(group(pid)) == 0 })
	assert.True(t, f.hasRecord(id), "the Manager destroys it: its record stays until then")
	require.NoError(t, stop(n, id))
	_, err := os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "destroyed, its heartbeat file goes with its record")
}

// beatsFrom answers a lease's heartbeats with errs in turn (then nil
// forever), as Temporal would, and counts them.
type beatsFrom struct {
	mu   sync.Mutex
	errs []error
	n    int
	last workflows.LeaseBeat
}

func (b *beatsFrom) RecordActivityHeartbeat(_ context.Context, _ []byte, details ...any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n++
	b.last = details[0].(workflows.LeaseBeat)
	if len(b.errs) == 0 {
		return nil
	}
	err := b.errs[0]
	b.errs = b.errs[1:]
	return err
}

// TestLeaseHoldsWhileTemporalIsUnreachable: a node whose heartbeats
// cannot reach Temporal keeps its lease and tries again (it stops no
// container for it); it ends the lease only when Temporal says it is over
// (timed out meanwhile: NotFound) or cancelled.
func TestLeaseHoldsWhileTemporalIsUnreachable(t *testing.T) {
	t.Parallel()
	unavailable := serviceerror.NewUnavailable("connection refused")
	for _, tc := range []struct {
		name string
		end  error
		want string
	}{
		{"timed out meanwhile", serviceerror.NewNotFound("invalid activityID or activity already timed out"), "do not autocomplete"},
		{"cancelled by the Manager", temporal.NewCanceledError(), "canceled"},
		{"refused", serviceerror.NewNamespaceNotFound("default"), "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hb := &beatsFrom{errs: []error{unavailable, context.DeadlineExceeded, serviceerror.NewDeadlineExceeded("slow"), nil, unavailable, tc.end}}
			env := activityEnv(context.Background())
			env.SetTestTimeout(10 * time.Second)
			env.RegisterActivityWithOptions(func(ctx context.Context, in workflows.LeaseInput) error {
				return lease(ctx, in, "s1", "m1", hb, slog.New(slog.DiscardHandler))
			}, activity.RegisterOptions{Name: workflows.ActivityLease})
			began := time.Now()
			_, err := env.ExecuteActivity(workflows.ActivityLease, workflows.LeaseInput{Manager: "m1", Server: "s1"})
			require.ErrorContains(t, err, tc.want)
			hb.mu.Lock()
			defer hb.mu.Unlock()
			assert.Equal(t, 6, hb.n, "it beat through the outage until Temporal said the lease was over")
			assert.WithinDuration(t, time.Now(), hb.last.At, 2*time.Second, "each beat says when it was sent")
			assert.GreaterOrEqual(t, time.Since(began), 4*time.Second, "a beat a second (no heartbeat timeout)")
		})
	}
}
