package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/worker"

	"github.com/msm-project/msm/starter"
	msmworker "github.com/msm-project/msm/worker"
	"github.com/msm-project/msm/workflows"
)

// previousRelease is the commit the upgrade tests start from: msm as it
// was before the Manager's last workflow changes (agent upgrades, a new
// lease for a restarted node, msm upgrade manager), so an upgrade from it
// runs a changed workflow over the histories the old build wrote. Move it
// forward when an upgrade from it no longer says anything new.
const previousRelease = "6cbea5c"

// oldVersion marks that build (linked with it as its version).
const oldVersion = "e2e-old"

// buildOld builds msm and msm-agent of commit previousRelease as version
// oldVersion into a directory of their own (the agent beside msm, as nodes
// look for it): the source from `git archive`, the repository's history
// being the test's to read.
func buildOld(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	src, dir := filepath.Join(t.TempDir(), "src"), filepath.Join(t.TempDir(), "old")
	require.NoError(t, os.MkdirAll(src, 0o755))
	archive := exec.Command("sh", "-c", "git -C \"$1\" archive \"$2\" | tar -x -C \"$3\"", "sh", root, previousRelease, src)
	out, err := archive.CombinedOutput()
	require.NoError(t, err, "taking the source of commit %s (the upgrade tests need the repository's history: a full clone): %s", previousRelease, out)
	for _, b := range [][2]string{{"msm", "./cmd/msm"}, {"msm-agent", "./cmd/msm-agent"}} {
		cmd := exec.Command("go", "build", "-ldflags", "-X github.com/msm-project/msm/internal/version.Version="+oldVersion,
			"-o", filepath.Join(dir, b[0]), b[1])
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "building %s of commit %s: %s", b[1], previousRelease, out)
	}
	return filepath.Join(dir, "msm")
}

// TestUpgradeWorkersAndNodesWhileRunning starts a Manager and its fleet
// with the previous release (two workers, two nodes, their agents), then,
// while an extension and a recovery run, replaces the workers one by one
// (each stopped as a deployment does, with SIGTERM, and the new one
// started), has the Manager continue as a run of the new build (msm
// upgrade manager; msm upgrade agents refuses before), and then the nodes (each adopting the containers and agents of the one
// before; a second crash is recovered meanwhile). Every MicroService
// instance that served keeps serving (sampled every 50 ms) but the two the
// test crashes; every operation completes;
// `msm status` shows which part runs which build: the new workers and
// nodes, the adopted agents still of the old build, those started since of
// the new. Then `msm upgrade agents --wait` replaces the loaded instances
// of the old agents (the waiting one went through the pool as its node
// changed), the sampler still going: every agent is of the new build. Every
// history of the run replays against this code.
func TestUpgradeWorkersAndNodesWhileRunning(t *testing.T) {
	old := buildOld(t)
	c := newCluster(t, spec{servers: 2, slots: 4, warmPool: 1, services: map[string]int{"web": 2, "api": 1}, order: []string{"web", "api"}})
	newBin := c.h.Msm
	withOld := func(fn func()) {
		c.h.Msm = old
		defer func() { c.h.Msm = newBin }()
		fn()
	}
	withOld(func() {
		c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
		c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
		c.start("w1", "worker", "--catalog", c.catalog)
		c.start("w2", "worker", "--catalog", c.catalog)
	})
	before := c.waitFor("the fleet of the old build", 60*time.Second, func(st workflows.Status) bool {
		return converged(1)(st) && agentsKnown(st)
	})
	assert.Equal(t, oldVersion, before.Worker)
	for _, s := range before.Servers {
		assert.Equal(t, oldVersion, s.Node, "node of %s", s.ID)
	}
	for _, ct := range before.Containers {
		assert.Equal(t, oldVersion, ct.Agent, "agent of %s", ct.ID)
	}
	built := builtVersion(t, c.msm)
	require.NotEqual(t, oldVersion, built)

	// Sample every instance of every service that is loaded and healthy.
	crashed := ""
	samp := sampleInstances(t, c)

	// An extension and a recovery in flight while the workers change.
	_, err := c.msm("extend", "web", "--count", "1")
	require.NoError(t, err)
	replace := func(name string, args ...string) {
		t.Helper()
		cmd := c.h.Cmd(name)
		require.NotNil(t, cmd, name)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		exited := make(chan struct{})
		go func() { _, _ = cmd.Process.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not stop within 20s of SIGTERM", name)
		}
		c.start(name+"-new", args...)
	}
	replace("w1", "worker", "--catalog", c.catalog)
	for _, p := range c.hostProcs() {
		if !p.agent && p.container == before.Containers[0].ID {
			crashed = p.container
			samp.except(p.container)
			require.NoError(t, syscall.Kill(p.pid, syscall.SIGKILL))
		}
	}
	require.NotEmpty(t, crashed, "web's first instance runs")
	time.Sleep(time.Second)
	replace("w2", "worker", "--catalog", c.catalog)

	// The Manager's run, begun by the old build, keeps what that build
	// decided at its start: no agent upgrade yet. msm upgrade manager has
	// it continue as a new run, the new build's from its start.
	out, err := c.msm("upgrade", "agents")
	require.Error(t, err, "the old build's run has no agent upgrades: %s", out)
	assert.Contains(t, err.Error(), "`msm upgrade manager` has it continue as a new run")
	firstRun, err := starter.RunID(context.Background(), c.client, c.manager)
	require.NoError(t, err)
	out, err = c.msm("upgrade", "manager", "--wait", "60s")
	t.Logf("msm upgrade manager:\n%s", out)
	require.NoError(t, err)
	assert.Contains(t, out, "answered by a worker of msm "+built)
	replace("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	// A second crash: its recovery runs while s2's node is replaced.
	second := ""
	st, err := c.status()
	require.NoError(t, err)
	for _, ct := range st.Containers {
		if second == "" && ct.Service == "web" && ct.State == "loaded" && ct.ID != crashed {
			second = ct.ID
		}
	}
	require.NotEmpty(t, second, "web has another instance")
	samp.except(second)
	for _, p := range c.hostProcs() {
		if !p.agent && p.container == second {
			require.NoError(t, syscall.Kill(p.pid, syscall.SIGKILL))
		}
	}
	replace("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))

	after := c.waitFor("web at 3, api at 1, on the new build", 90*time.Second, func(st workflows.Status) bool {
		if !converged(1)(st) || st.Worker != built {
			return false
		}
		for _, s := range st.Services {
			if (s.Name == "web" && s.Ready != 3) || (s.Name == "api" && s.Ready != 1) {
				return false
			}
		}
		for _, s := range st.Servers {
			if s.Node != built {
				return false
			}
		}
		return true
	})
	n, served := samp.counts()
	t.Logf("%d samples of %d instance(s); stopped serving: %v (crashed on purpose: %s, %s)", n, served, samp.stopped(), crashed, second)
	assert.Empty(t, samp.stopped(), "an instance that served stopped serving during the upgrade of the workers and nodes")
	require.Greater(t, n, 20)

	// Which part runs which build.
	agents := map[string]int{}
	for _, ct := range after.Containers {
		if ct.State == "failed" { // records of what failed (the crash)
			continue
		}
		agents[ct.Agent]++
		if ct.ID == crashed || ct.ID == second {
			t.Errorf("the crashed instance %s is still an instance: %+v", ct.ID, ct)
		}
	}
	t.Logf("agents by version after the workers and nodes: %v", agents)
	assert.Positive(t, agents[oldVersion], "the adopted agents still run the old build")
	assert.Positive(t, agents[built], "the containers started since run the new build's agent")
	assert.Zero(t, agents[""], "every agent's version is known")
	text, err := c.msm("status")
	require.NoError(t, err)
	assert.Contains(t, text, "answered by a worker of msm "+built)
	assert.Contains(t, text, oldVersion, "msm status shows the old agents")

	// Then the agents: the loaded ones of the old build are replaced, extend
	// then destroy, while the sampler goes on.
	began := time.Now()
	up, err := c.msm("upgrade", "agents", "--wait", "3m")
	t.Logf("msm upgrade agents --wait 3m (%.1f s):\n%s", time.Since(began).Seconds(), up)
	require.NoError(t, err)
	assert.Contains(t, up, "whose agent is behind their node, extend then destroy")
	assert.Contains(t, up, "Every agent runs its node's version")
	final := c.waitFor("web at 3, api at 1, every agent of the new build", 30*time.Second, func(st workflows.Status) bool {
		for _, s := range st.Services {
			if (s.Name == "web" && s.Ready != 3) || (s.Name == "api" && s.Ready != 1) {
				return false
			}
		}
		for _, ct := range st.Containers {
			if ct.State != "failed" && ct.Agent != built {
				return false
			}
		}
		return true
	})
	samp.stop()
	n, served = samp.counts()
	t.Logf("%d samples of %d instance(s); stopped serving: %v (crashed on purpose: %s, %s)", n, served, samp.stopped(), crashed, second)
	assert.Empty(t, samp.stopped(), "an instance that served stopped serving during the upgrade of the agents")
	for _, ct := range final.Containers {
		if ct.State != "failed" {
			assert.Equal(t, built, ct.Agent, "agent of %s", ct.ID)
		}
	}
	text, err = c.msm("status")
	require.NoError(t, err)
	assert.NotContains(t, text, oldVersion, "msm status shows no agent of the old build left")
	rolls, err := c.msm("rollout", "status")
	require.NoError(t, err)
	t.Logf("msm rollout status:\n%s", rolls)
	// A node replaced within the liveness window takes a new lease at
	// once: no server is taken for lost (its instances recovered elsewhere
	// and fenced when it came back, which the sampler would not see: it
	// samples what the status lists as loaded).
	evs, err := c.msm("events")
	require.NoError(t, err)
	for _, srv := range []string{"s1", "s2"} {
		assert.NotContains(t, evs, "server "+srv+" lost", "msm events:\n%s", evs)
	}
	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		// The run the old build began and the new one went on with, to
		// its renewal; then the new run: nodes restarted, agents replaced.
		saveRunHistory(t, c.client, workflows.ManagerID(c.manager), firstRun, "../../workflows/testdata/manager-upgraded-from-previous.json")
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager-upgrade-agents.json")
	}

	// Every operation of the run completed.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := c.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("MsmManager = '%s'", c.manager)})
	require.NoError(t, err)
	kinds := map[string]int{}
	for _, e := range resp.Executions {
		kinds[e.GetType().GetName()]++
		if e.GetExecution().GetWorkflowId() == workflows.ManagerID(c.manager) {
			continue
		}
		assert.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, e.GetStatus(), "%s", e.GetExecution().GetWorkflowId())
	}
	t.Logf("runs: %v", kinds)
	assert.Positive(t, kinds[workflows.WorkflowExtend], "the extension ran")
	assert.Equal(t, 2, kinds[workflows.WorkflowRecover], "the recoveries of the two crashes ran, and no other")
	assert.Positive(t, kinds[workflows.WorkflowRoll], "the agents' rolls ran")
	assert.Equal(t, 2, kinds["Manager"], "the Manager's run of the old build, then the new build's")

	// Every history replays against this code.
	for _, e := range resp.Executions {
		h, err := fullHistory(ctx, c.client, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
		require.NoError(t, err)
		r := worker.NewWorkflowReplayer()
		msmworker.RegisterWorkflows(r)
		assert.NoError(t, r.ReplayWorkflowHistory(quiet{}, h), "replaying %s", e.GetExecution().GetWorkflowId())
	}
}

// instanceSampler asks, every 50 ms, every loaded and healthy instance the
// status lists for /healthz on its port, and remembers which answered and
// which, having answered, later did not while still listed.
type instanceSampler struct {
	mu      sync.Mutex
	samples int
	served  map[string]bool
	failed  map[string]int
	skip    map[string]bool
	done    chan struct{}
	wg      sync.WaitGroup
}

func sampleInstances(t *testing.T, c *cluster) *instanceSampler {
	s := &instanceSampler{served: map[string]bool{}, failed: map[string]int{}, skip: map[string]bool{}, done: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := starter.Status(ctx, c.client, c.manager)
			cancel()
			if err != nil {
				continue
			}
			for _, ct := range st.Containers {
				if ct.Service == "" || ct.State != "loaded" || !ct.Healthy {
					continue
				}
				code, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/healthz", ct.Port))
				s.mu.Lock()
				switch {
				case err == nil && code == 200:
					s.served[ct.ID] = true
				case s.served[ct.ID] && !s.skip[ct.ID]:
					s.failed[ct.ID]++
				}
				s.mu.Unlock()
			}
			s.mu.Lock()
			s.samples++
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// except leaves out an instance the test stops on purpose.
func (s *instanceSampler) except(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.skip[id] = true
	delete(s.failed, id)
}

// counts are the samples taken so far and the instances that served.
func (s *instanceSampler) counts() (samples, served int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples, len(s.served)
}

// stopped are the instances that served and then did not, with how many
// samples found them not answering.
func (s *instanceSampler) stopped() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for id, n := range s.failed {
		out[id] = n
	}
	return out
}

func (s *instanceSampler) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.wg.Wait()
}

// agentsKnown reports whether every container's agent has said its
// version.
func agentsKnown(st workflows.Status) bool {
	for _, ct := range st.Containers {
		if ct.Agent == "" {
			return false
		}
	}
	return true
}

// TestVersionedWorkersUpgrade runs the Manager's workers as versions of its
// Worker Deployment (msm worker --versioned): the first build's workers
// make their version current; a new build's workers wait beside them;
// `msm upgrade workers` makes the new build current while an extension
// that began on the old build runs. The Manager moves to the new build at
// its next task; the extension ends on the build that began it (every one
// of its workflow tasks completed by the old build) and the next one
// begins on the new; `msm upgrade workers --wait` then says the old
// build's workers may go, and the fleet goes on without them. Every
// history replays against this code.
func TestVersionedWorkersUpgrade(t *testing.T) {
	old := buildOld(t)
	c := newCluster(t, spec{servers: 2, slots: 4, warmPool: 0, services: map[string]int{"web": 1}, order: []string{"web"}, startupDelay: 3 * time.Second})
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"w1", "w2", "n1", "n2"} {
				if b, err := os.ReadFile(filepath.Join(c.dir, name+".log")); err == nil {
					t.Logf("--- %s.log (last 3000 bytes)\n%s", name, tailOf(b, 3000))
				}
			}
		}
	})
	newBin := c.h.Msm
	c.h.Msm = old
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	c.start("w1", "worker", "--catalog", c.catalog, "--versioned")
	c.start("w2", "worker", "--catalog", c.catalog, "--versioned")
	c.h.Msm = newBin
	before := c.waitFor("web on the old build", 90*time.Second, converged(0))
	assert.Equal(t, oldVersion, before.Worker)
	built := builtVersion(t, c.msm)

	// The new build's workers wait: the old one is current.
	c.start("n1", "worker", "--catalog", c.catalog, "--versioned")
	c.start("n2", "worker", "--catalog", c.catalog, "--versioned")
	time.Sleep(2 * time.Second)
	st, err := c.status()
	require.NoError(t, err)
	assert.Equal(t, oldVersion, st.Worker, "the new build takes no task before it is current")

	// An extension begins on the old build (its new instance takes 3 s
	// to start); the new build becomes current meanwhile.
	_, err = c.msm("extend", "web", "--count", "1")
	require.NoError(t, err)
	ext := workflows.ManagerID(c.manager) + "/extend/web/2"
	c.until("the extension runs", 20*time.Second, func() (bool, string) {
		_, err := c.client.DescribeWorkflow(context.Background(), ext, "")
		return err == nil, fmt.Sprint(err)
	})
	var up string
	c.until("msm upgrade workers makes the new build current", 30*time.Second, func() (bool, string) {
		up, err = c.msm("upgrade", "workers")
		return err == nil, fmt.Sprint(err)
	})
	assert.Contains(t, up, "build "+built+" is current (was build "+oldVersion+")")
	t.Logf("msm upgrade workers:\n%s", up)

	after := c.waitFor("web at 2 on the new build", 60*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && st.Services[0].Ready == 2 && st.Worker == built
	})
	assert.Equal(t, built, after.Worker)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	builds := func(id string) map[string]int {
		h, err := fullHistory(ctx, c.client, id, "")
		require.NoError(t, err)
		n := map[string]int{}
		for _, e := range h.Events {
			if a := e.GetWorkflowTaskCompletedEventAttributes(); a != nil {
				n[a.GetDeploymentVersion().GetBuildId()]++
			}
		}
		return n
	}
	extBuilds := builds(ext)
	t.Logf("the extension's workflow tasks by build: %v", extBuilds)
	assert.Equal(t, []string{oldVersion}, keysOf(extBuilds), "the extension ended on the build that began it")

	out, err := c.msm("upgrade", "workers", "--wait", "30s")
	require.NoError(t, err, out)
	assert.Contains(t, out, "No operation runs on an older build: its workers may be stopped")
	for _, w := range []string{"w1", "w2"} {
		cmd := c.h.Cmd(w)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		_, _ = cmd.Process.Wait()
	}
	_, err = c.msm("extend", "web", "--count", "1")
	require.NoError(t, err)
	c.waitFor("web at 3 with the new build's workers alone", 60*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && st.Services[0].Ready == 3
	})
	next := builds(workflows.ManagerID(c.manager) + "/extend/web/3")
	assert.Equal(t, []string{built}, keysOf(next), "the next extension began and ended on the new build")
	mgrBuilds := builds(workflows.ManagerID(c.manager))
	t.Logf("the Manager's workflow tasks by build: %v", mgrBuilds)
	assert.Positive(t, mgrBuilds[oldVersion])
	assert.Positive(t, mgrBuilds[built], "the Manager moved to the new build")

	resp, err := c.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: fmt.Sprintf("MsmManager = '%s'", c.manager)})
	require.NoError(t, err)
	for _, e := range resp.Executions {
		h, err := fullHistory(ctx, c.client, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId())
		require.NoError(t, err)
		r := worker.NewWorkflowReplayer()
		msmworker.RegisterWorkflows(r)
		assert.NoError(t, r.ReplayWorkflowHistory(quiet{}, h), "replaying %s", e.GetExecution().GetWorkflowId())
	}
}

func keysOf(m map[string]int) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// builtVersion is the version `msm version` says this build is (run by
// msm, the test's way of running msm commands).
func builtVersion(t *testing.T, msm func(...string) (string, error)) string {
	t.Helper()
	out, err := msm("version")
	require.NoError(t, err)
	var v string
	_, err = fmt.Sscanf(out, "msm %s", &v)
	require.NoError(t, err, out)
	return v
}

// TestNewNodesAndAgentsUnderTheOldManager is the other order: nodes and
// agents of this build under the previous release's workers (a node
// upgraded first, or a server launched with the new image before its
// Manager's workers were upgraded). The old Manager provisions through
// them, recovers a MicroService its new agent reports crashed (into a new
// agent's waiting container) and extends the service; msm status (answered
// by the old build) shows which part runs which build.
func TestNewNodesAndAgentsUnderTheOldManager(t *testing.T) {
	old := buildOld(t)
	c := newCluster(t, spec{servers: 2, slots: 4, warmPool: 1, services: map[string]int{"web": 2, "api": 1}, order: []string{"web", "api"}})
	built := builtVersion(t, c.msm)
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	newBin := c.h.Msm
	c.h.Msm = old
	c.start("w1", "worker", "--catalog", c.catalog)
	c.h.Msm = newBin
	before := c.waitFor("the fleet on new nodes under the old Manager", 60*time.Second, func(st workflows.Status) bool {
		return converged(1)(st) && agentsKnown(st)
	})
	assert.Equal(t, oldVersion, before.Worker)
	for _, ct := range before.Containers {
		assert.Equal(t, built, ct.Agent, "agent of %s", ct.ID)
	}

	// A MicroService of a new agent crashes: its report reaches the old
	// Manager, which replaces it.
	victim := ""
	for _, ct := range before.Containers {
		if ct.Service == "web" && victim == "" {
			victim = ct.ID
		}
	}
	killed := false
	for _, p := range c.hostProcs() {
		if !p.agent && p.container == victim {
			require.NoError(t, syscall.Kill(p.pid, syscall.SIGKILL))
			killed = true
		}
	}
	require.True(t, killed, "web's instance %s runs", victim)
	// And an extension loads the new agent's waiting container.
	waiting := ""
	for _, ct := range before.Containers {
		if ct.Service == "" {
			waiting = ct.ID
		}
	}
	_, err := c.msm("extend", "web", "--count", "1")
	require.NoError(t, err)
	after := c.waitFor("web at 3, api at 1, the crash replaced", 60*time.Second, func(st workflows.Status) bool {
		if !converged(1)(st) {
			return false
		}
		for _, s := range st.Services {
			if (s.Name == "web" && s.Ready != 3) || (s.Name == "api" && s.Ready != 1) {
				return false
			}
		}
		for _, ct := range st.Containers {
			if ct.ID == victim && ct.State != "failed" { // its record stays, as the failure
				return false
			}
		}
		return true
	})
	for _, ct := range after.Containers {
		if ct.State == "failed" {
			continue
		}
		assert.Equal(t, built, ct.Agent, "agent of %s", ct.ID)
		if ct.ID == waiting {
			assert.Equal(t, "web", ct.Service, "the recovery or the extension took the new agent's waiting container")
		}
	}
	for _, s := range after.Servers {
		if s.State == "ready" {
			assert.Equal(t, built, s.Node, "node of %s", s.ID)
		}
	}
	c.requireInvariants(30 * time.Second)
	evs, err := c.msm("events", "--service", "web")
	require.NoError(t, err)
	assert.Contains(t, evs, "container "+victim+" on ", "the old Manager took the new agent's crash report:\n%s", evs)
	assert.Contains(t, evs, "reported web exited")
	st, err := c.msm("status")
	require.NoError(t, err)
	assert.Contains(t, st, "answered by a worker of msm "+oldVersion)
	assert.Contains(t, st, built, "msm status shows the new nodes and agents")
}
