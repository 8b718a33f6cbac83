package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/proto"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/devserver"
	msmworker "github.com/msm-project/msm/worker"
	"github.com/msm-project/msm/workflows"
)

// TestSimulatedKindHoldsTenThousandContainers runs `msm dev` on the
// simulated example catalog (500 servers, 50 services of 200 instances, a
// warm pool of 100) as a user would: every service reaches ready, `msm
// status -o json` answers with all 10,000 instances on distinct ports per
// server, the Manager continues as new at least once on the way, and the
// state each new run starts from stays under 1 MB. Status latency is
// logged, not asserted: figures belong in make bench.
func TestSimulatedKindHoldsTenThousandContainers(t *testing.T) {
	if testing.Short() {
		t.Skip("provisions 10,000 simulated containers: minutes")
	}
	const (
		services = 50
		replicas = 200
		warm     = 100
		deadline = 25 * time.Minute
	)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	dir := t.TempDir()
	port, err := devserver.FreePort()
	require.NoError(t, err)
	uiPort, err := devserver.FreePort()
	require.NoError(t, err)
	address := "127.0.0.1:" + strconv.Itoa(port)
	manager := fmt.Sprintf("sim%d", rand.IntN(1e6))
	// Payloads in plain JSON: the sizes below are the state's own, and the
	// history fills as an uncompressed one does (it continues as new).
	env := append(os.Environ(), "MSM_MANAGER="+manager, "TEMPORAL_ADDRESS="+address)

	var took []time.Duration // of every status call that answered
	status := func() (workflows.Status, error) {
		var st workflows.Status
		cmd := exec.Command(bins.msm, "status", "-o", "json")
		cmd.Dir, cmd.Env = dir, env
		began := time.Now()
		out, err := cmd.Output()
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return st, fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
			}
			return st, err
		}
		took = append(took, time.Since(began))
		return st, json.Unmarshal(out, &st)
	}

	cmd := exec.Command(bins.msm, "dev", "--catalog", filepath.Join(root, "examples", "simulated", "catalog.yaml"),
		"--temporal", bins.temporal, "--ui-port", strconv.Itoa(uiPort), "--state", filepath.Join(dir, ".msm"), "--codec=false", "--metrics-addr=")
	cmd.Dir, cmd.Env = dir, env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	began := time.Now()
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- msm dev output\n%s", tailOf([]byte(out.String()), 4000))
		}
		_ = cmd.Process.Kill()
	})

	ready := func(st workflows.Status) bool {
		if len(st.Services) != services || st.Operations > 0 || st.Count("waiting") < warm {
			return false
		}
		for _, s := range st.Services {
			if s.Desired != replicas || s.Ready != replicas {
				return false
			}
		}
		return true
	}
	var st workflows.Status
	var lastErr error
	failed := 0 // status calls that did not answer while provisioning
	logged := time.Now()
	for !ready(st) {
		if time.Since(began) > deadline {
			b, _ := json.Marshal(st.Services)
			// Not fatal: what the Manager's runs carried is still worth knowing.
			t.Errorf("not ready within %s: %d/%d ready, %d waiting, %d failed, %d operation(s); last status error %v; services %s",
				deadline, readyOf(st), services*replicas, st.Count("waiting"), st.Count("failed"), st.Operations, lastErr, b)
			break
		}
		select {
		case err := <-done:
			t.Fatalf("msm dev exited before the fleet was ready: %v", err)
		case <-time.After(5 * time.Second):
		}
		s, err := status()
		if err != nil {
			failed++
			lastErr = err
		} else {
			st = s
		}
		if time.Since(logged) >= 30*time.Second {
			logged = time.Now()
			t.Logf("[%4.0fs] %d/%d ready, %d loaded, %d waiting, %d failed, %d servers, %d operation(s); %d status call(s) unanswered, last: %v",
				time.Since(began).Seconds(), readyOf(st), services*replicas, st.Count("loaded"), st.Count("waiting"), st.Count("failed"),
				len(st.Servers), st.Operations, failed, lastErr)
		}
	}
	t.Logf("msm status -o json while provisioning: %s; %d call(s) unanswered", latencies(took), failed)
	if ready(st) {
		toReady := time.Since(began)
		n := st.Count("loaded") + st.Count("waiting")
		t.Logf("ready in %.1fs: %d loaded + %d waiting (%.1f containers/s) on %d servers",
			toReady.Seconds(), st.Count("loaded"), st.Count("waiting"), float64(n)/toReady.Seconds(), len(st.Servers))
		// What status reports of the fleet, asked a few more times once ready.
		took = nil
		for range 5 {
			st, err := status()
			require.NoError(t, err)
			require.True(t, ready(st), "the fleet left ready")
			checkFleet(t, st, services*replicas)
		}
		t.Logf("msm status -o json once ready: %s", latencies(took))
		for _, c := range st.Containers {
			if c.State == "failed" {
				t.Logf("failed on the way: %s (%s on %s): %s", c.ID, c.Service, c.Server, c.Error)
			}
		}
	}

	// The Manager continued as new on the way, and each run began from a
	// state under 1 MB.
	cl, err := client.Dial(client.Options{HostPort: address, Logger: quiet{}})
	require.NoError(t, err)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := workflows.ManagerID(manager)
	var runs []string // oldest first
	continued := 0
	var token []byte
	for {
		resp, err := cl.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("WorkflowId = '%s'", id), NextPageToken: token})
		require.NoError(t, err)
		for _, x := range resp.Executions {
			runs = append(runs, x.GetExecution().GetRunId())
			if x.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
				continued++
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	slices.Reverse(runs) // listed newest first
	t.Logf("the Manager ran %d run(s), %d continued as new", len(runs), continued)
	require.GreaterOrEqual(t, continued, 1, "the Manager never continued as new")
	var sizes []int
	for _, run := range runs {
		it := cl.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		require.True(t, it.HasNext(), "run %s has no history", run)
		first, err := it.Next()
		require.NoError(t, err)
		started := first.GetWorkflowExecutionStartedEventAttributes()
		require.NotNil(t, started, "run %s begins with %s", run, first.GetEventType())
		if started.GetContinuedExecutionRunId() == "" {
			continue // the first run starts from the catalog, not a carried state
		}
		size := 0
		for _, p := range started.GetInput().GetPayloads() {
			size += len(p.GetData())
		}
		sizes = append(sizes, size)
		assert.Less(t, size, 1_000_000, "state carried into run %s", run)
	}
	t.Logf("state carried through continue-as-new, in bytes, by run: %v", sizes)
	require.NotEmpty(t, sizes, "no run of the Manager was started by continue-as-new")

	// A worker that takes over the Manager replays its run's whole history
	// within one workflow task: how long that takes at fleet size bounds
	// the Manager's workflow task timeout (workflows.ManagerTaskTimeout).
	// Each run replays against this code (a determinism check on a real
	// fleet-scale history too); the time is reported, not asserted.
	var slowest time.Duration
	for _, run := range runs {
		h, err := fullHistory(ctx, cl, id, run)
		require.NoError(t, err)
		took, err := replayManager(h)
		require.NoError(t, err, "replaying run %s of the Manager", run)
		t.Logf("replay of run %s: %d events, %d bytes, %s", run, len(h.Events), proto.Size(h), took.Round(time.Millisecond))
		slowest = max(slowest, took)
	}
	t.Logf("slowest replay of a Manager run at %d containers: %s (the Manager's workflow task timeout is %s by default)",
		services*replicas+warm, slowest.Round(time.Millisecond), catalog.DefaultTaskTimeout)
	figure(t, "manager replay at fleet size", slowest)

	// Ctrl-C stops the Manager's worker and the dev server; msm dev exits 0.
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-done:
		require.NoError(t, err, "msm dev exits 0 on Ctrl-C")
	case <-time.After(time.Minute):
		t.Fatal("msm dev did not stop within a minute of Ctrl-C")
	}
	assert.False(t, devserver.Answers(context.Background(), address), "the dev server still answers after Ctrl-C")
}

// checkFleet asserts a ready fleet's status: every container loaded or
// waiting, besides the records of destroyed failures (state failed, port 0,
// the last few kept with their errors); the instances loaded; no port held
// twice on one server.
func checkFleet(t *testing.T, st workflows.Status, instances int) {
	t.Helper()
	loaded, waiting := st.Count("loaded"), st.Count("waiting")
	assert.Equal(t, instances, loaded)
	ports := map[string]string{}
	held := 0
	for _, c := range st.Containers {
		if c.State == "failed" && c.Port == 0 {
			continue
		}
		held++
		require.NotEmpty(t, c.Server, c.ID)
		require.NotZero(t, c.Port, c.ID)
		key := c.Server + ":" + strconv.Itoa(c.Port)
		require.Empty(t, ports[key], "port %s held by %s and %s", key, ports[key], c.ID)
		ports[key] = c.ID
	}
	assert.Equal(t, loaded+waiting, held, "every container is loaded or waiting")
	for _, s := range st.Servers {
		assert.LessOrEqual(t, s.Used, s.Slots, s.ID)
	}
}

// latencies summarizes durations as p50 and max (nearest rank).
func latencies(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no answer"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("p50 %s, max %s over %d call(s)", s[(len(s)-1)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s))
}

// readyOf sums the services' ready instances.
func readyOf(st workflows.Status) int {
	n := 0
	for _, s := range st.Services {
		n += s.Ready
	}
	return n
}

// fullHistory reads one run's whole history.
func fullHistory(ctx context.Context, cl client.Client, id, run string) (*historypb.History, error) {
	h := &historypb.History{}
	it := cl.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, err
		}
		h.Events = append(h.Events, e)
	}
	return h, nil
}

// replayManager replays a Manager run's history against this code, as a
// worker taking the run over does, and says how long that took.
func replayManager(h *historypb.History) (time.Duration, error) {
	r := worker.NewWorkflowReplayer()
	msmworker.RegisterWorkflows(r)
	began := time.Now()
	err := r.ReplayWorkflowHistory(quiet{}, h)
	return time.Since(began), err
}
