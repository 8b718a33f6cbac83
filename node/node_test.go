package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/msm-project/msm/internal/heartbeat"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Fake agents: real processes that stand in for `msm agent`. The node
// appends "--container ID --server S --manager M", which sh takes as
// positional arguments after $0 ("agent"). The sleep is the MicroService the
// agent supervises, in the agent's process group.
const (
	// graceful leaves on SIGTERM; its sleep dies of the same group signal.
	graceful = "trap 'exit 0' TERM; sleep 300 & wait"
	// stubborn ignores SIGTERM, and its sleep inherits that: only SIGKILL ends them.
	stubborn = "trap '' TERM; sleep 300 & wait"
	// stubbornChild leaves on SIGTERM, but its MicroService ignores it.
	stubbornChild = "trap 'exit 0' TERM; (trap '' TERM; exec sleep 300) & wait"
)

var fixtures atomic.Int64

// fixture is one test's state directory and container-ID prefix. Every
// process whose MSM_CONTAINER carries the prefix is killed when the test ends.
type fixture struct {
	t      *testing.T
	dir    string
	prefix string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), prefix: fmt.Sprintf("nt%d-%d-", os.Getpid(), fixtures.Add(1))}
	t.Cleanup(func() { killContainers(f.prefix) })
	return f
}

func (f *fixture) id(name string) string { return f.prefix + name }

func (f *fixture) node(server, manager, script string, env ...string) *Node {
	f.t.Helper()
	n, err := New(Config{
		Server:       server,
		Manager:      manager,
		StateDir:     f.dir,
		AgentCommand: []string{"/bin/sh", "-c", script, "agent"},
		AgentEnv:     env,
		Log:          slog.New(slog.DiscardHandler),
	})
	require.NoError(f.t, err)
	return n
}

func (f *fixture) hasRecord(id string) bool {
	_, err := os.Stat(filepath.Join(f.dir, id+".json"))
	return err == nil
}

// runActivity runs fn as an activity (activities log through
// activity.GetLogger, which panics outside an activity context) and
// decodes its result.
func runActivity[T any](t *testing.T, fn, in any) (T, error) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(log.NewStructuredLogger(slog.New(slog.DiscardHandler)))
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(fn)
	var res T
	v, err := env.ExecuteActivity(fn, in)
	if err != nil {
		return res, err
	}
	require.NoError(t, v.Get(&res))
	return res, nil
}

// start runs StartContainer as an activity.
func start(t *testing.T, n *Node, id string, port int) (workflows.StartContainerResult, error) {
	t.Helper()
	return runActivity[workflows.StartContainerResult](t, n.StartContainer, workflows.StartContainerInput{
		Manager: n.cfg.Manager, Container: id, Server: n.cfg.Server, Port: port,
	})
}

func mustStart(t *testing.T, n *Node, id string) workflows.StartContainerResult {
	t.Helper()
	res, err := start(t, n, id, 0)
	require.NoError(t, err)
	require.Positive(t, res.PID)
	return res
}

func stop(n *Node, id string) error {
	return n.StopContainer(context.Background(), workflows.StopContainerInput{Container: id})
}

// --- /proc inspection ---

type proc struct {
	pid, pgid int
	state     string
}

// readProc reads state and process group of pid; ok is false for a process
// that is gone or a zombie (nobody reaps orphans in some sandboxes).
func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	pgid, _ := strconv.Atoi(f[2])
	p := proc{pid: pid, pgid: pgid, state: f[0]}
	return p, p.state != "Z" && p.state != "X"
}

func livePIDs() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if _, ok := readProc(pid); ok {
				out = append(out, pid)
			}
		}
	}
	return out
}

func environ(pid int) []string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	return strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
}

// containerProcs returns the live processes whose MSM_CONTAINER matches:
// the agent and everything it started.
func containerProcs(match func(string) bool) []proc {
	var out []proc
	for _, pid := range livePIDs() {
		for _, kv := range environ(pid) {
			if v, ok := strings.CutPrefix(kv, "MSM_CONTAINER="); ok && match(v) {
				if p, ok := readProc(pid); ok {
					out = append(out, p)
				}
				break
			}
		}
	}
	return out
}

// agents returns the agent processes of container id: the leaders of the
// process groups its processes are in.
func agents(id string) []int {
	var out []int
	for _, p := range containerProcs(func(v string) bool { return v == id }) {
		if p.pid == p.pgid {
			out = append(out, p.pid)
		}
	}
	return out
}

// group returns the live members of process group pgid.
func group(pgid int) []int {
	var out []int
	for _, pid := range livePIDs() {
		if p, ok := readProc(pid); ok && p.pgid == pgid {
			out = append(out, pid)
		}
	}
	return out
}

func killContainers(prefix string) {
	self := syscall.Getpgrp()
	for _, p := range containerProcs(func(v string) bool { return strings.HasPrefix(v, prefix) }) {
		if p.pgid != self {
			_ = syscall.Kill(-p.pgid, syscall.SIGKILL)
		}
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitChild waits until the sleep that agent pid starts runs (exec'd, so
// with the signal dispositions the script gave it), so that a stop meets the
// whole group.
func waitChild(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, "the agent's MicroService to start", func() bool {
		for _, p := range group(pid) {
			if b, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/comm"); p != pid && string(b) == "sleep\n" {
				return true
			}
		}
		return false
	})
}

// unrelated starts a process the node never started, leading its own process
// group (so a stray kill of -pid would hit it).
func unrelated(t *testing.T) (pid int, start uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	st, err := startTime(cmd.Process.Pid)
	require.NoError(t, err)
	return cmd.Process.Pid, st
}

func aliveNow(pid int) bool { _, ok := readProc(pid); return ok }

// --- tests ---

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	cmd := []string{"/bin/true"}
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"complete", Config{Server: "s", Manager: "m", StateDir: dir, AgentCommand: cmd}, true},
		{"no server", Config{Manager: "m", StateDir: dir, AgentCommand: cmd}, false},
		{"no manager", Config{Server: "s", StateDir: dir, AgentCommand: cmd}, false},
		{"no agent command", Config{Server: "s", Manager: "m", StateDir: dir}, false},
		{"state dir created", Config{Server: "s", Manager: "m", StateDir: filepath.Join(dir, "a", "b"), AgentCommand: cmd}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.DirExists(t, tc.cfg.StateDir)
		})
	}
}

func TestAliveTellsReusedPIDsApart(t *testing.T) {
	pid, st := unrelated(t)
	tests := []struct {
		name  string
		pid   int
		start uint64
		want  bool
	}{
		{"running, right start time", pid, st, true},
		{"running, other start time (reused PID)", pid, st + 1, false},
		{"no PID", 0, st, false},
		{"negative PID", -1, st, false},
		{"no such process", 1 << 30, st, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, alive(tc.pid, tc.start))
		})
	}
}

func TestStartContainerIsIdempotent(t *testing.T) {
	tests := []struct {
		name    string
		restart bool // the second start goes to a new Node on the same StateDir
	}{
		{"same node", false},
		{"restarted node", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			n := f.node("s1", "m1", graceful)
			id := f.id("c1")

			first := mustStart(t, n, id)
			assert.False(t, first.Attached)
			if tc.restart {
				n = f.node("s1", "m1", graceful)
			}
			second := mustStart(t, n, id)
			assert.True(t, second.Attached, "the second start attaches")
			assert.Equal(t, first.PID, second.PID)
			assert.Equal(t, []int{first.PID}, agents(id), "one agent process")
			assert.True(t, f.hasRecord(id))
		})
	}
}

func TestStartContainerConcurrentStartsMakeOneProcess(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := f.node("s1", "m1", graceful)
	id := f.id("c1")

	const calls = 4
	res := make([]workflows.StartContainerResult, calls)
	errs := make([]error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() { res[i], errs[i] = start(t, n, id, 0) })
	}
	wg.Wait()
	started := 0
	for i := range calls {
		require.NoError(t, errs[i])
		assert.Equal(t, res[0].PID, res[i].PID)
		if !res[i].Attached {
			started++
		}
	}
	assert.Equal(t, 1, started, "exactly one call starts the process")
	assert.Equal(t, []int{res[0].PID}, agents(id))
}

func TestStartContainerAfterStopStartsAgain(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := f.node("s1", "m1", graceful)
	id := f.id("c1")
	first := mustStart(t, n, id)
	require.NoError(t, stop(n, id))
	second := mustStart(t, n, id)
	assert.False(t, second.Attached)
	assert.NotEqual(t, first.PID, second.PID)
	assert.Equal(t, []int{second.PID}, agents(id))
}

func TestStartContainerAfterAgentDiedStopsItsLeftovers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := f.node("s1", "m1", graceful)
	id := f.id("c1")
	first := startWithChild(t, f, n, id)
	require.NoError(t, syscall.Kill(first, syscall.SIGKILL)) // the agent only
	waitFor(t, "the agent to exit", func() bool { return !aliveNow(first) })
	require.NotEmpty(t, group(first), "its MicroService runs on")

	second := mustStart(t, n, id)
	assert.False(t, second.Attached)
	assert.NotEqual(t, first, second.PID)
	assert.Empty(t, group(first), "the dead agent's MicroService is stopped")
	assert.Equal(t, []int{second.PID}, agents(id))
}

func TestStartContainerPortInUse(t *testing.T) {
	tests := []struct {
		name   string
		listen string // the address the other process listens on
	}{
		{"loopback", "127.0.0.1:0"},
		{"IPv4 wildcard", "0.0.0.0:0"},
		{"IPv6 wildcard", "[::]:0"},
		{"IPv6 loopback", "[::1]:0"},
	}
	for _, tc := range tests {
		// Not parallel: [::1]:P and 127.0.0.1:P can be given the same P,
		// and the node rightly finds P in use while the other holds it.
		t.Run(tc.name, func(t *testing.T) {
			l, err := net.Listen("tcp", tc.listen)
			if err != nil && strings.Contains(tc.listen, "[") {
				t.Skipf("no IPv6 here: %v", err)
			}
			require.NoError(t, err)
			defer l.Close()
			port := l.Addr().(*net.TCPAddr).Port

			f := newFixture(t)
			n := f.node("s1", "m1", graceful)
			id := f.id("c1")
			_, err = start(t, n, id, port)
			require.Error(t, err)
			var appErr *temporal.ApplicationError
			require.True(t, errors.As(err, &appErr), "want an ApplicationError, got %T: %v", err, err)
			assert.Equal(t, workflows.ErrPortInUse, appErr.Type())
			assert.True(t, appErr.NonRetryable())
			assert.Contains(t, appErr.Error(), strconv.Itoa(port))
			assert.Empty(t, containerProcs(func(v string) bool { return v == id }), "no process started")
			assert.False(t, f.hasRecord(id), "no record written")

			// Once the port is free, the same container starts on it.
			require.NoError(t, l.Close())
			res, err := start(t, n, id, port)
			require.NoError(t, err)
			assert.False(t, res.Attached)
			assert.True(t, f.hasRecord(id))
		})
	}
}

func TestReattachAfterRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old := f.node("s1", "m1", graceful)
	live1, live2 := f.id("live1"), f.id("live2")
	killed, orphaned, reused := f.id("killed"), f.id("orphaned"), f.id("reused")
	otherServer, otherManager := f.id("other-server"), f.id("other-manager")

	pids := map[string]int{}
	for _, id := range []string{live1, live2, killed, orphaned} {
		pids[id] = mustStart(t, old, id).PID
	}
	pids[otherServer] = mustStart(t, f.node("s2", "m1", graceful), otherServer).PID
	pids[otherManager] = mustStart(t, f.node("s1", "m2", graceful), otherManager).PID

	// killed: the whole container died.
	require.NoError(t, syscall.Kill(-pids[killed], syscall.SIGKILL))
	// orphaned: the agent died, its MicroService runs on in its group.
	waitChild(t, pids[orphaned])
	require.NoError(t, syscall.Kill(pids[orphaned], syscall.SIGKILL))
	waitFor(t, "the dead agents to exit", func() bool { return !aliveNow(pids[killed]) && !aliveNow(pids[orphaned]) })
	require.NotEmpty(t, group(pids[orphaned]), "the orphaned MicroService still runs")
	// reused: the record's PID now belongs to a process the node never started.
	upid, ustart := unrelated(t)
	require.NoError(t, old.save(record{Container: reused, Server: "s1", Manager: "m1", PID: upid, Start: ustart + 1, Started: time.Now()}))

	n := f.node("s1", "m1", graceful) // the restarted node
	want := []string{live1, live2}
	slices.Sort(want)
	for i := range 2 { // calling it twice changes nothing
		kept, err := n.Reattach()
		require.NoError(t, err)
		assert.Equal(t, want, kept, "Reattach call %d", i+1)
	}

	tests := []struct {
		name      string
		id        string
		hasRecord bool
	}{
		{"live container kept", live1, true},
		{"other live container kept", live2, true},
		{"killed container dropped", killed, false},
		{"container whose agent died dropped", orphaned, false},
		{"record with a reused PID dropped", reused, false},
		{"other server's container untouched", otherServer, true},
		{"other manager's container untouched", otherManager, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.hasRecord, f.hasRecord(tc.id))
		})
	}
	assert.True(t, aliveNow(upid), "the process that reused the PID lives on")
	assert.Empty(t, group(pids[orphaned]), "what was left of a dead agent's group is stopped")
	for _, id := range []string{live1, live2, otherServer, otherManager} {
		assert.Equal(t, []int{pids[id]}, agents(id), "%s still runs", id)
	}

	t.Run("start of a live container attaches", func(t *testing.T) {
		res := mustStart(t, n, live1)
		assert.True(t, res.Attached)
		assert.Equal(t, pids[live1], res.PID)
		assert.Equal(t, []int{pids[live1]}, agents(live1))
	})
	t.Run("start of a reused-PID container starts a new one", func(t *testing.T) {
		res := mustStart(t, n, reused)
		assert.False(t, res.Attached)
		assert.NotEqual(t, upid, res.PID)
		assert.Equal(t, []int{res.PID}, agents(reused))
		assert.True(t, aliveNow(upid))
	})
	t.Run("start of a dead container starts a new one", func(t *testing.T) {
		res := mustStart(t, n, killed)
		assert.False(t, res.Attached)
		assert.Equal(t, []int{res.PID}, agents(killed))
	})
	t.Run("a stop through the restarted node stops the whole group", func(t *testing.T) {
		waitChild(t, pids[live2])
		require.NoError(t, stop(n, live2))
		assert.Empty(t, group(pids[live2]))
		assert.False(t, f.hasRecord(live2))
	})
}

func TestStopContainer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		script  string
		prepare func(t *testing.T, f *fixture, n *Node, id string) (pid int) // makes the container's state
		minTime time.Duration
		maxTime time.Duration
	}{
		{
			name: "agent leaves on SIGTERM", script: graceful,
			prepare: startWithChild, maxTime: stopGrace / 2,
		},
		{
			name: "agent ignores SIGTERM: SIGKILL after the grace period", script: stubborn,
			prepare: startWithChild, minTime: stopGrace - 100*time.Millisecond, maxTime: 2 * stopGrace,
		},
		{
			name: "agent leaves, its MicroService ignores SIGTERM", script: stubbornChild,
			prepare: startWithChild, maxTime: stopGrace / 2,
		},
		{
			name: "agent already died, its MicroService runs on", script: graceful,
			prepare: func(t *testing.T, f *fixture, n *Node, id string) int {
				pid := startWithChild(t, f, n, id)
				require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
				waitFor(t, "the agent to exit", func() bool { return !aliveNow(pid) })
				require.NotEmpty(t, group(pid))
				return pid
			},
			maxTime: stopGrace / 2,
		},
		{
			name: "whole container already gone", script: graceful,
			prepare: func(t *testing.T, f *fixture, n *Node, id string) int {
				pid := startWithChild(t, f, n, id)
				require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
				waitFor(t, "the container to exit", func() bool { return len(group(pid)) == 0 })
				return pid
			},
			maxTime: stopGrace / 2,
		},
		{
			name: "never started", script: graceful,
			prepare: func(*testing.T, *fixture, *Node, string) int { return 0 },
			maxTime: stopGrace / 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			n := f.node("s1", "m1", tc.script)
			id := f.id("c1")
			pid := tc.prepare(t, f, n, id)

			began := time.Now()
			require.NoError(t, stop(n, id))
			took := time.Since(began)
			assert.GreaterOrEqual(t, took, tc.minTime)
			assert.Less(t, took, tc.maxTime)
			if pid > 0 {
				assert.Empty(t, group(pid), "every process of the group is stopped")
			}
			assert.Empty(t, containerProcs(func(v string) bool { return v == id }))
			assert.False(t, f.hasRecord(id), "the record is removed")

			require.NoError(t, stop(n, id), "a second stop finds it gone")
		})
	}
}

func startWithChild(t *testing.T, f *fixture, n *Node, id string) int {
	t.Helper()
	pid := mustStart(t, n, id).PID
	waitChild(t, pid)
	return pid
}

func TestStopContainerLeavesReusedPIDAlone(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := f.node("s1", "m1", graceful)
	id := f.id("c1")
	upid, ustart := unrelated(t)
	require.NoError(t, n.save(record{Container: id, Server: "s1", Manager: "m1", PID: upid, Start: ustart + 1}))

	require.NoError(t, stop(n, id))
	assert.True(t, aliveNow(upid), "a process that reused the PID is not ours to stop")
	assert.False(t, f.hasRecord(id))
}

func TestStopAll(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	mine := map[string]int{}
	// Two agents that ignore SIGTERM: stopped one after the other they would
	// take two grace periods.
	n := f.node("s1", "m1", stubborn)
	for _, name := range []string{"stubborn1", "stubborn2"} {
		mine[f.id(name)] = startWithChild(t, f, n, f.id(name))
	}
	g := f.node("s1", "m1", graceful)
	for _, name := range []string{"graceful1", "graceful2"} {
		mine[f.id(name)] = startWithChild(t, f, g, f.id(name))
	}
	others := map[string]int{
		f.id("other-server"):  mustStart(t, f.node("s2", "m1", graceful), f.id("other-server")).PID,
		f.id("other-manager"): mustStart(t, f.node("s1", "m2", graceful), f.id("other-manager")).PID,
	}

	began := time.Now()
	require.NoError(t, n.StopAll())
	took := time.Since(began)
	t.Logf("StopAll of %d containers took %v", len(mine), took)
	assert.Less(t, took, stopGrace+stopGrace/2, "containers are stopped side by side")

	for id, pid := range mine {
		assert.Empty(t, group(pid), "%s stopped", id)
		assert.False(t, f.hasRecord(id), "%s forgotten", id)
	}
	for id, pid := range others {
		assert.Equal(t, []int{pid}, agents(id), "%s untouched", id)
		assert.True(t, f.hasRecord(id), "%s keeps its record", id)
	}
	kept, err := n.Reattach()
	require.NoError(t, err)
	assert.Empty(t, kept, "none of this node's containers is left")
}

func TestAgentEnvironmentAndLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	script := `echo "args $*"; echo "env $MSM_CONTAINER $MSM_SERVER $MSM_MANAGER $TEMPORAL_ADDRESS" >&2; ` + graceful
	n := f.node("s1", "m1", script,
		"TEMPORAL_ADDRESS=127.0.0.1:7233", "TEMPORAL_NAMESPACE=msm-test",
		"MSM_CONTAINER=not-this-one") // the node's own identity wins
	id := f.id("c1")
	pid := startWithChild(t, f, n, id)

	env := environ(pid)
	for _, kv := range []string{
		"MSM_CONTAINER=" + id, "MSM_SERVER=s1", "MSM_MANAGER=m1",
		"TEMPORAL_ADDRESS=127.0.0.1:7233", "TEMPORAL_NAMESPACE=msm-test",
	} {
		assert.Contains(t, env, kv)
	}
	assert.NotContains(t, env, "MSM_CONTAINER=not-this-one")
	// An explicit environment: of the node's own, only the basics (make
	// test's MSM_BIN, a cloud's credentials, anything else stays out).
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		basic := len(agentapi.BasicEnv([]string{kv})) == 1
		assert.True(t, basic || strings.HasPrefix(name, "TEMPORAL_") || name == agentapi.KeyFDEnv || name == heartbeat.Env,
			"the agent got %s from its node", name)
	}
	assert.Contains(t, env, heartbeat.Env+"="+filepath.Join(f.dir, id+".alive"), "its heartbeat file, in the node's state")
	for _, child := range group(pid) {
		if child != pid {
			assert.Contains(t, environ(child), "MSM_CONTAINER="+id, "the MicroService inherits the container's identity")
		}
	}

	logPath := filepath.Join(f.dir, id+".log")
	want := "args --container " + id + " --server s1 --manager m1\n" +
		"env " + id + " s1 m1 127.0.0.1:7233\n"
	var got string
	waitFor(t, "the agent's output in "+logPath, func() bool {
		b, _ := os.ReadFile(logPath)
		got = string(b)
		return strings.Count(got, "\n") >= 2
	})
	assert.Equal(t, want, got)
}

// TestStartContainerReplacesAStaleContainerOfTheSameID: a live record of the
// same ID with another port (left by an earlier Manager run) is stopped and
// a new agent started, instead of being adopted with the wrong port.
func TestStartContainerReplacesAStaleContainerOfTheSameID(t *testing.T) {
	f := newFixture(t)
	n := f.node("s1", "m1", graceful)
	id := f.id("c1")
	first, err := start(t, n, id, freePort(t))
	require.NoError(t, err)
	second, err := start(t, n, id, freePort(t))
	require.NoError(t, err)
	assert.False(t, second.Attached)
	assert.NotEqual(t, first.PID, second.PID)
	assert.Equal(t, []int{second.PID}, agents(id))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestStatsCountWhatTheNodeDid: starts (one found running already is not
// one), a start that failed, stops, and an agent that ended unasked.
func TestStatsCountWhatTheNodeDid(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	n := f.node("s1", "m1", graceful)
	a, b := f.id("c1"), f.id("c2")
	mustStart(t, n, a)
	mustStart(t, n, a) // attached: not a start
	pid := mustStart(t, n, b).PID
	assert.Equal(t, Stats{Containers: 2, Started: 2}, n.Stats())

	held, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer held.Close()
	_, err = start(t, n, f.id("c3"), held.Addr().(*net.TCPAddr).Port)
	require.Error(t, err, "its port is taken")
	assert.Equal(t, int64(1), n.Stats().StartFailed)

	require.NoError(t, stop(n, a))
	assert.Equal(t, Stats{Containers: 1, Started: 2, StartFailed: 1, Stopped: 1}, n.Stats())

	sig := watching(t, n, 20*time.Millisecond)
	require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
	waitFor(t, "the agent's exit counted", func() bool { return n.Stats().AgentExits == 1 })
	assert.Equal(t, 0, n.Stats().Containers)
	assert.Len(t, sig.reports(), 1, "and reported")
}
