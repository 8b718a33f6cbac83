package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/devserver"
	"github.com/msm-project/msm/internal/metrics"
	"github.com/msm-project/msm/workflows"
)

// devRun is one `msm dev` process.
type devRun struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// syncBuffer is a buffer the test reads while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dev is one `msm dev` setup: its directory (bin/demo in it, its state
// under .msm), ports, Manager name and the environment msm commands run
// with; each start is a new `msm dev` process on the same state.
type dev struct {
	t                           *testing.T
	root, dir, catalog, manager string
	address, metricsURL         string
	uiPort, codecPort, mport    int
	env                         []string
}

// newDev prepares `msm dev` on catalog (a path; "" for the example
// catalog) as `make dev` runs it, with free ports of its own.
func newDev(t *testing.T, catalog string) *dev {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	d := &dev{t: t, root: root, dir: t.TempDir(), catalog: catalog, manager: fmt.Sprintf("dev%d", rand.IntN(1e6))}
	if d.catalog == "" {
		d.catalog = filepath.Join(root, "examples", "catalog.yaml")
	}
	// The MicroServices run as users of their own (msm dev runs as root
	// here): bin/demo is found from this directory, which they must enter.
	require.NoError(t, os.Chmod(filepath.Dir(d.dir), 0o755))
	require.NoError(t, os.Chmod(d.dir, 0o755))
	// The example catalog runs bin/demo from the working directory.
	require.NoError(t, os.MkdirAll(filepath.Join(d.dir, "bin"), 0o755))
	require.NoError(t, os.Symlink(bins.demo, filepath.Join(d.dir, "bin", "demo")))
	port := func() int {
		p, err := devserver.FreePort()
		require.NoError(t, err)
		return p
	}
	d.address = "127.0.0.1:" + strconv.Itoa(port())
	d.uiPort, d.codecPort, d.mport = port(), port(), port()
	d.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", d.mport)
	// msm dev encrypts payloads with a key it makes under its state: msm
	// status reads them with it.
	d.env = append(os.Environ(), "MSM_MANAGER="+d.manager, "TEMPORAL_ADDRESS="+d.address,
		"MSM_CODEC_KEY_FILE="+filepath.Join(d.dir, ".msm", "keys", "codec"))
	return d
}

// msm runs an msm command against the dev setup's Manager.
func (d *dev) msm(args ...string) (string, error) {
	cmd := exec.Command(bins.msm, args...)
	cmd.Env, cmd.Dir = d.env, d.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *dev) status() (workflows.Status, error) {
	var st workflows.Status
	cmd := exec.Command(bins.msm, "status", "-o", "json")
	cmd.Env = d.env
	out, err := cmd.Output()
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(out, &st)
}

// start runs `msm dev`; the test's end kills it and what it started.
func (d *dev) start() *devRun {
	t := d.t
	cmd := exec.Command(bins.msm, "dev", "--catalog", d.catalog,
		"--temporal", bins.temporal, "--ui-port", strconv.Itoa(d.uiPort), "--state", filepath.Join(d.dir, ".msm"), "--codec-listen", "127.0.0.1:"+strconv.Itoa(d.codecPort),
		"--metrics-addr", "127.0.0.1:"+strconv.Itoa(d.mport))
	cmd.Dir, cmd.Env = d.dir, d.env
	r := &devRun{cmd: cmd, out: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = r.out, r.out
	require.NoError(t, cmd.Start())
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- msm dev output\n%s", tailOf([]byte(r.out.String()), 4000))
			logs, _ := filepath.Glob(filepath.Join(d.dir, ".msm", "nodes", "*", "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("--- %s\n%s", l, tailOf(b, 1500))
			}
		}
		_ = cmd.Process.Kill()
		for _, p := range managerProcs(d.manager) {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	})
	return r
}

// waitFor polls the status until it satisfies ok, failing the test after
// within or if msm dev exits.
func (d *dev) waitFor(r *devRun, what string, within time.Duration, ok func(workflows.Status) bool) workflows.Status {
	t := d.t
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		st, err := d.status()
		if err == nil && ok(st) {
			return st
		}
		select {
		case err := <-r.done:
			t.Fatalf("msm dev exited early: %v\n%s", err, r.out)
		case <-time.After(250 * time.Millisecond):
		}
	}
	st, err := d.status()
	t.Fatalf("%s: not within %s (status error: %v):\n%+v\n%s", what, within, err, st, tailOf([]byte(r.out.String()), 3000))
	return workflows.Status{}
}

// waitHealthy waits for the catalog's services healthy and the pool of
// one waiting, and also.
func (d *dev) waitHealthy(r *devRun, also func(workflows.Status) bool) workflows.Status {
	return d.waitFor(r, "msm dev brings the catalog up", 60*time.Second, func(st workflows.Status) bool { return converged(1)(st) && also(st) })
}

// stop is Ctrl-C: msm dev exits 0 and leaves nothing running.
func (d *dev) stop(r *devRun) {
	t := d.t
	require.NoError(t, r.cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-r.done:
		require.NoError(t, err, "msm dev exits 0 on Ctrl-C:\n%s", r.out)
	case <-time.After(30 * time.Second):
		t.Fatalf("msm dev did not stop within 30 s of Ctrl-C:\n%s", r.out)
	}
	assert.Empty(t, managerProcs(d.manager), "container processes left after Ctrl-C")
	assert.False(t, devserver.Answers(context.Background(), d.address), "the dev server still answers after Ctrl-C")
}

// TestDevBringsUpTheExampleCatalog runs `msm dev` on the example catalog as
// `make dev` does: every service healthy on the port status reports, the
// warm pool waiting, the runs in the Web UI; Ctrl-C leaves no process
// behind; a second `msm dev` on the same state resumes and converges again.
func TestDevBringsUpTheExampleCatalog(t *testing.T) {
	d := newDev(t, "")
	manager, metricsURL, uiPort := d.manager, d.metricsURL, d.uiPort
	start, stop, waitHealthy := d.start, d.stop, d.waitHealthy

	began := time.Now()
	first := start()
	st := waitHealthy(first, func(workflows.Status) bool { return true })
	t.Logf("example catalog healthy in %s", time.Since(began))
	assert.Equal(t, "standalone", st.Kind)
	assert.Equal(t, []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
	ports := checkServing(t, st)

	// Its worker's metrics: the Manager's status as Prometheus reads it.
	fams, err := metrics.Scrape(context.Background(), metricsURL)
	require.NoError(t, err)
	assert.Empty(t, fams.Mismatches(
		metrics.Sample{Name: "msm_manager_up", Labels: nil, Want: 1},
		metrics.Sample{Name: "msm_service_desired_instances", Labels: []string{"service", "web"}, Want: 2},
		metrics.Sample{Name: "msm_service_ready_instances", Labels: []string{"service", "web"}, Want: 2},
		metrics.Sample{Name: "msm_service_ready_instances", Labels: []string{"service", "api"}, Want: 1},
		metrics.Sample{Name: "msm_containers", Labels: []string{"state", "loaded"}, Want: 3},
		metrics.Sample{Name: "msm_containers", Labels: []string{"state", "waiting"}, Want: 1},
		metrics.Sample{Name: "msm_warm_pool_target", Labels: nil, Want: 1},
		metrics.Sample{Name: "msm_servers", Labels: []string{"state", "ready"}, Want: 2},
		metrics.Sample{Name: "msm_operations_in_flight", Labels: nil, Want: 0},
		metrics.Sample{Name: "msm_reports_authenticated", Labels: nil, Want: 1},
		metrics.Sample{Name: "msm_catalog_reloads_total", Labels: []string{"result", "applied"}, Want: 1},
	))
	assert.Contains(t, first.out.String(), "Metrics: "+metricsURL)
	var sdk []string
	for name := range fams {
		if strings.HasPrefix(name, "temporal_") {
			sdk = append(sdk, name)
		}
	}
	// Its nodes' counts, by server: four containers run, each started.
	running, started := 0.0, 0.0
	for _, server := range []string{"local-1", "local-2"} {
		v, ok := fams.Value("msm_node_containers", "server", server)
		assert.True(t, ok, "msm_node_containers of %s", server)
		running += v
		v, ok = fams.Value("msm_node_container_starts_total", "server", server, "result", "started")
		assert.True(t, ok, "msm_node_container_starts_total of %s", server)
		started += v
	}
	assert.Equal(t, 4.0, running)
	assert.Equal(t, 4.0, started)
	assert.Contains(t, sdk, "temporal_request_total", "the Temporal SDK's own metrics: %v", sdk)
	// Its worker's own: which of msm dev's two workers runs a workflow to
	// its end is Temporal's choice, so no workflow metric is sure to be
	// here; that the worker started is.
	assert.Contains(t, sdk, "temporal_worker_start_total", "the Temporal SDK's own metrics: %v", sdk)

	// The Web UI's own API lists the Manager and the Provision runs.
	for _, q := range []string{
		fmt.Sprintf("WorkflowId = 'msm/%s'", manager),
		fmt.Sprintf("MsmManager = '%s' AND MsmOperation = 'provision'", manager),
	} {
		u := fmt.Sprintf("http://127.0.0.1:%d/api/v1/namespaces/default/workflows?query=%s", uiPort, url.QueryEscape(q))
		assert.Eventually(t, func() bool {
			code, body, err := get(u)
			return err == nil && code == 200 && strings.Contains(string(body), "msm/"+manager)
		}, 10*time.Second, 200*time.Millisecond, "Web UI lists %s", q)
	}
	assert.Eventually(t, func() bool { return strings.Contains(first.out.String(), "All 2 services healthy") },
		5*time.Second, 100*time.Millisecond, "msm dev says when the catalog is healthy")
	stop(first)
	for _, p := range ports {
		_, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/", p))
		assert.Error(t, err, "port %d still answers after Ctrl-C", p)
	}

	// Restart: the Manager resumes from .msm; the restarted nodes report
	// that the containers Ctrl-C stopped are gone, and it replaces them.
	// (Until the nodes' reports are taken, status still shows the old ones.)
	second := start()
	st = waitHealthy(second, func(st workflows.Status) bool {
		for _, c := range st.Containers {
			if n, _ := strconv.Atoi(strings.TrimPrefix(c.ID, manager+"-c")); n <= 4 {
				return false
			}
		}
		return true
	})
	checkServing(t, st)
	stop(second)
}

// checkServing asserts every loaded container answers as its service on its
// port, ports are unique per server, and returns the ports.
func checkServing(t *testing.T, st workflows.Status) []int {
	t.Helper()
	var ports []int
	seen := map[string]bool{}
	waiting := 0
	for _, c := range st.Containers {
		key := c.Server + ":" + strconv.Itoa(c.Port)
		require.False(t, seen[key], "port %s leased twice", key)
		seen[key] = true
		ports = append(ports, c.Port)
		if c.State == "waiting" {
			waiting++
			continue
		}
		require.Equal(t, "loaded", c.State, "%s: %s", c.ID, c.Error)
		code, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", c.Port))
		require.NoError(t, err)
		require.Equal(t, 200, code)
		assert.Contains(t, string(body), `"service":"`+c.Service+`"`)
	}
	assert.Equal(t, 1, waiting, "warm pool")
	return ports
}

// TestDevRunsTwoWorkers: `msm dev` runs a second Manager worker, an `msm
// worker` process beside its own (--workers 2, the default): killed -9, the
// Manager carries on (an extension completes while it is away), msm dev
// says so and starts it again; Ctrl-C stops it with the rest.
func TestDevRunsTwoWorkers(t *testing.T) {
	d := newDev(t, "")
	r := d.start()
	d.waitHealthy(r, func(workflows.Status) bool { return true })
	// Every part says its version: the worker that answered, each node,
	// each container's agent; all of this build.
	built := builtVersion(t, d.msm)
	st := d.waitFor(r, "every node and agent says its version", 10*time.Second, agentsKnown)
	assert.Equal(t, built, st.Worker)
	for _, s := range st.Servers {
		assert.Equal(t, built, s.Node, "node of %s", s.ID)
	}
	for _, c := range st.Containers {
		assert.Equal(t, built, c.Agent, "agent of %s", c.ID)
	}
	pidOf := func(after int) int {
		var pid int
		require.Eventually(t, func() bool {
			out := r.out.String()
			i := strings.LastIndex(out, "Worker worker-2 running (pid ")
			if i < 0 {
				return false
			}
			_, err := fmt.Sscanf(out[i:], "Worker worker-2 running (pid %d", &pid)
			return err == nil && pid != after
		}, 30*time.Second, 50*time.Millisecond, "msm dev says worker-2 runs:\n%s", r.out)
		return pid
	}
	first := pidOf(0)
	require.NoError(t, syscall.Kill(first, 0), "worker-2 (pid %d) runs", first)
	b, err := os.ReadFile(filepath.Join(d.dir, ".msm", "worker-2.log"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "manager worker running", "worker-2 serves the Manager")
	// It serves its own metrics, said with its start: what it counts in its
	// own memory (the SDK's, the updates it refused) is there.
	out := r.out.String()
	i := strings.LastIndex(out, "Worker worker-2 running (pid ")
	require.GreaterOrEqual(t, i, 0)
	line, _, _ := strings.Cut(out[i:], "\n")
	_, url, ok := strings.Cut(line, ", metrics ")
	require.True(t, ok, "msm dev says where worker-2's metrics are: %s", line)
	url = strings.TrimSuffix(url, ")")
	require.Eventually(t, func() bool {
		fams, err := metrics.Scrape(context.Background(), url)
		if err != nil {
			return false
		}
		fam := fams["temporal_worker_start_total"]
		return fam != nil && len(fam.Metric) > 0
	}, 20*time.Second, 200*time.Millisecond, "worker-2's metrics at %s count its start", url)

	require.NoError(t, syscall.Kill(first, syscall.SIGKILL))
	killed := time.Now()
	_, err = d.msm("extend", "web", "--count", "1")
	require.NoError(t, err)
	d.waitFor(r, "web extended to 3 while worker-2 is away", 30*time.Second, func(st workflows.Status) bool {
		return len(st.Services) > 0 && st.Services[0].Name == "web" && st.Services[0].Ready == 3 && st.Operations == 0
	})
	t.Logf("web extended %s after worker-2 was killed", time.Since(killed).Round(time.Millisecond))
	assert.Contains(t, r.out.String(), fmt.Sprintf("Worker worker-2 (pid %d) exited (signal: killed); the other workers carry on", first))
	second := pidOf(first)
	require.NoError(t, syscall.Kill(second, 0), "worker-2 started again (pid %d)", second)

	d.stop(r)
	assert.Eventually(t, func() bool { return syscall.Kill(second, 0) != nil }, 5*time.Second, 50*time.Millisecond,
		"worker-2 (pid %d) stopped with msm dev", second)
}
