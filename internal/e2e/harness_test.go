// Package e2e runs msm for real: the Temporal dev server from bin/temporal,
// `msm worker` and `msm node` processes, real container agents (msm-agent)
// and MicroService processes. Tests assert what a user sees: `msm status
// -o json`, the services' own answers on their ports, and the processes on
// the host.
package e2e

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/internal/clustertest"
	"github.com/msm-project/msm/internal/devserver"
	"github.com/msm-project/msm/workflows"
)

// bins holds the paths of msm, demo and temporal.
var bins struct{ msm, demo, temporal string }

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := filepath.Abs("../..")
	if err != nil {
		panic(err)
	}
	dir := os.Getenv("MSM_BIN")
	if dir == "" {
		// `go test` without make: build msm, the lean agent beside it (which
		// the nodes start) and demo here; temporal must already be built
		// (make bin/temporal), it is never downloaded.
		tmp, err := os.MkdirTemp("", "msm-e2e-bin")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(tmp)
		for _, b := range [][2]string{{"msm", "./cmd/msm"}, {"msm-agent", "./cmd/msm-agent"}, {"demo", "./examples/demo"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(tmp, b[0]), b[1])
			cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stderr, os.Stderr
			if b[0] == "msm-agent" { // static, as make build makes it
				cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			}
			if err := cmd.Run(); err != nil {
				fmt.Fprintln(os.Stderr, "building", b[1], err)
				return 1
			}
		}
		bins.msm, bins.demo = filepath.Join(tmp, "msm"), filepath.Join(tmp, "demo")
		bins.temporal = filepath.Join(root, "bin", "temporal")
	} else {
		bins.msm, bins.demo, bins.temporal = filepath.Join(dir, "msm"), filepath.Join(dir, "demo"), filepath.Join(dir, "temporal")
	}
	// Without the lean agent the nodes would fall back to `msm agent`, and
	// the tests would not run what is deployed.
	for _, p := range []string{bins.msm, filepath.Join(filepath.Dir(bins.msm), "msm-agent"), bins.demo, bins.temporal} {
		if _, err := os.Stat(p); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s is missing: run `make test` (it builds bin/temporal once)\n", p)
			return 1
		}
	}
	// Nodes run as root here, so each MicroService runs as a user of its
	// own, who must be able to run the demo: a copy in a directory anyone
	// may enter (the checkout may be in one only its owner may).
	shared, err := os.MkdirTemp("", "msm-e2e-demo")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(shared)
	if err := os.Chmod(shared, 0o755); err != nil {
		panic(err)
	}
	b, err := os.ReadFile(bins.demo)
	if err != nil {
		panic(err)
	}
	bins.demo = filepath.Join(shared, "demo")
	if err := os.WriteFile(bins.demo, b, 0o755); err != nil {
		panic(err)
	}
	return m.Run()
}

// cluster is one test's world: the shared cluster harness (a dev server,
// a catalog, msm processes), failing the test on its errors, and what the
// tests' spec adds to it.
type cluster struct {
	t *testing.T
	h *clustertest.Cluster
	// dir, manager, client and srv are h's, under the tests' names.
	dir     string
	manager string
	client  client.Client
	srv     *devserver.Server
	catalog string
	base    int // first port of s1; s<i> has base+(i-1)*20 .. +19
	// frontend is the dev server's address as the hosts dial it.
	frontend string
	// net is the Docker network of spec.hosts, else nil.
	net *dockerNet
	// ranges are the servers' port ranges, by server name.
	ranges map[string][2]int
}

// spec shapes the catalog of a test.
type spec struct {
	servers      int
	slots        int
	warmPool     int
	services     map[string]int // name -> initial replicas
	order        []string
	startupDelay time.Duration
	// broken services run a command that exits at once with "boom".
	broken []string
	// scaling is every service's scaling policy, in YAML flow style.
	scaling string
	// consolidate turns the consolidation policy on.
	consolidate bool
	// reportEvery is the nodes' usage report period; "" sends none, so the
	// Manager's history holds only what a test causes.
	reportEvery string
	// hosts runs each server as a separate host: a container of the msm
	// image on a private Docker network, with its own address (hosts_test.go).
	hosts bool
	// liveness is the catalog's manager.liveness ("" for the default),
	// forgetAfter its manager.forget_after, outageGrace its
	// manager.outage_grace.
	liveness, forgetAfter, outageGrace string
	// persistent keeps the dev server's state in a file, so that
	// restartServer resumes every workflow.
	persistent bool
	// serverSlots sets the slots of the first servers, in order (slots
	// the rest's).
	serverSlots []int
	// drain is a service's drain period (catalog `drain`), by name.
	drain map[string]string
	// env is every service's catalog env.
	env map[string]string
	// schedules are a service's schedule rules, in YAML flow style, by name.
	schedules map[string]string
}

func newCluster(t *testing.T, s spec) *cluster {
	t.Helper()
	c := clusterOn(t, fmt.Sprintf("e2e%d", rand.IntN(1e6)), "", s.reportEvery)
	if s.hosts {
		c.net = newDockerNet(t, c.manager)
	}
	o := devserver.Options{Binary: bins.temporal}
	if s.persistent {
		o.DBFile = filepath.Join(c.dir, "temporal.db")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.h.StartServer(ctx, o); err != nil {
		c.h.Close()
		require.NoError(t, err)
	}
	c.client, c.srv, c.frontend = c.h.Client, c.h.Server, c.h.Address
	if s.hosts {
		// The hosts reach the dev server on their network's gateway, through
		// a proxy: the dev server itself only answers on loopback when
		// bound to one address.
		c.frontend = proxy(t, c.net.gateway, c.srv.Address())
	}
	require.NoError(t, c.h.WriteCatalog(c.catalogYAML(s)))
	t.Cleanup(c.close)
	return c
}

// clusterOn is a cluster on a Temporal server it does not start, at
// frontend (none yet when ""); its processes report every reportEvery.
func clusterOn(t *testing.T, manager, frontend, reportEvery string) *cluster {
	h := clustertest.New(clustertest.Config{Dir: t.TempDir(), Manager: manager, Msm: bins.msm, ReportEvery: reportEvery,
		Address: frontend, Grace: 300 * time.Millisecond})
	return &cluster{t: t, h: h, dir: h.Dir, manager: manager, catalog: h.Catalog, frontend: frontend, ranges: map[string][2]int{}}
}

// blocks are the tests' port blocks: below the kernel's ephemeral range
// (32768+), where client sockets would make ports look taken, and away
// from the example catalog's and the other packages' tests'. They go round
// from a random start, so the clusters of one run (parallel ones included)
// never share one; a block another run on this machine locked, or another
// process holds a port of, is passed over.
var blocks = &clustertest.Blocks{First: 22000, Size: 100, Count: 100, Start: rand.IntN(100), SkipTaken: true,
	LockDir: filepath.Join(os.TempDir(), "msm-e2e-port-blocks")}

// catalogYAML writes servers s1..sN on 127.0.0.1 (their hosts' addresses
// with spec.hosts) with disjoint port ranges in the cluster's block,
// chosen on the first call.
func (c *cluster) catalogYAML(s spec) string {
	if c.base == 0 {
		c.base = blocks.Next()
	}
	servers := clustertest.Servers(s.servers, s.slots, c.base, 20)
	for i := range servers {
		if c.net != nil {
			servers[i].Address = c.net.ip(i + 1)
		}
		if i < len(s.serverSlots) {
			servers[i].Slots = s.serverSlots[i]
		}
		c.ranges[servers[i].Name] = [2]int{servers[i].First, servers[i].Last}
	}
	manager := fmt.Sprintf("  warm_pool: %d\n  consolidate: %t\n", s.warmPool, s.consolidate)
	if s.liveness != "" {
		manager += fmt.Sprintf("  liveness: %s\n", s.liveness)
	}
	if s.forgetAfter != "" {
		manager += fmt.Sprintf("  forget_after: %s\n", s.forgetAfter)
	}
	if s.outageGrace != "" {
		manager += fmt.Sprintf("  outage_grace: %s\n", s.outageGrace)
	}
	var b strings.Builder
	for _, name := range s.order {
		command := bins.demo
		args := fmt.Sprintf(`["--port={{.Port}}", "--name={{.Service}}", "--startup-delay=%s"]`, s.startupDelay)
		if c.net != nil { // the image's demo, answering on the host's address
			command = "/usr/local/bin/demo"
			args = `["--port={{.Port}}", "--name={{.Service}}", "--listen=0.0.0.0"]`
		}
		if contains(s.broken, name) {
			command, args = "/bin/sh", `["-c", "echo boom >&2; exit 3"]`
		}
		fmt.Fprintf(&b, "  - name: %s\n    command: %s\n    args: %s\n    replicas: {min: 1, initial: %d, max: 8}\n",
			name, command, args, s.services[name])
		if s.scaling != "" {
			fmt.Fprintf(&b, "    scaling: %s\n", s.scaling)
		}
		if d := s.drain[name]; d != "" {
			fmt.Fprintf(&b, "    drain: %s\n", d)
		}
		if r := s.schedules[name]; r != "" {
			fmt.Fprintf(&b, "    schedules: %s\n", r)
		}
		if len(s.env) > 0 {
			b.WriteString("    env:\n")
			for _, k := range slices.Sorted(maps.Keys(s.env)) {
				fmt.Fprintf(&b, "      %s: %q\n", k, s.env[k])
			}
		}
	}
	return clustertest.Standalone(manager, servers, b.String())
}

// restartWorker waits (up to timeout) for the worker that its MSM_FAULT
// killed, then starts a new one, worker2, with env and the same catalog.
func (c *cluster) restartWorker(died <-chan struct{}, timeout time.Duration, env ...string) {
	c.t.Helper()
	select {
	case <-died:
	case <-time.After(timeout):
		c.t.Fatalf("the worker was not killed by its fault; see %s", filepath.Join(c.dir, "worker.log"))
	}
	c.startEnv("worker2", env, "worker", "--catalog", c.catalog)
}

// restartServer stops the dev server and starts it again on the same
// address and state file (spec.persistent), and returns how long it was
// away.
func (c *cluster) restartServer() time.Duration { return c.restartServerAfter(0) }

// restartServerAfter is restartServer with the dev server kept stopped for
// down before it starts again.
func (c *cluster) restartServerAfter(down time.Duration) time.Duration {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute+down)
	defer cancel()
	away, err := c.h.RestartServerAfter(ctx, down)
	require.NoError(c.t, err, "restartServer needs spec.persistent")
	c.srv = c.h.Server
	return away
}

// start runs `msm ARGS...` in the background under name.
func (c *cluster) start(name string, args ...string) <-chan struct{} {
	c.t.Helper()
	return c.startEnv(name, nil, args...)
}

// startEnv is start with more environment; the channel closes when the
// process exits.
func (c *cluster) startEnv(name string, env []string, args ...string) <-chan struct{} {
	c.t.Helper()
	exited, err := c.h.Start(name, env, args...)
	require.NoError(c.t, err)
	return exited
}

// kill9 kills a background msm process with SIGKILL, as a crash would.
func (c *cluster) kill9(name string) {
	c.t.Helper()
	_, err := c.h.Kill(name)
	require.NoError(c.t, err)
}

// msm runs `msm ARGS...` to completion and returns its stdout.
func (c *cluster) msm(args ...string) (string, error) { return c.h.Run(args...) }

// status is `msm status -o json`, decoded.
func (c *cluster) status() (workflows.Status, error) { return c.h.Status() }

// waitFor polls status until ok holds, failing the test after timeout.
func (c *cluster) waitFor(what string, timeout time.Duration, ok func(workflows.Status) bool) workflows.Status {
	c.t.Helper()
	st, _, err := c.h.WaitFor(what, timeout, ok)
	if err != nil {
		c.t.Fatal(err)
	}
	return st
}

// converged: every service has ready == desired and the warm pool is full.
func converged(warm int) func(workflows.Status) bool {
	return func(st workflows.Status) bool { return st.Settled(warm) }
}

func count(st workflows.Status, state string) int { return st.Count(state) }

// proc is a container process (agent or MicroService) found on the host.
type proc struct {
	pid       int
	container string
	server    string
	agent     bool // the container agent itself (msm-agent or `msm agent`), else its MicroService
}

// hostProcs lists the container processes of this test's manager.
func (c *cluster) hostProcs() []proc { return managerProcs(c.manager) }

// managerProcs lists the container processes (agents and MicroServices) of
// a manager, read from /proc.
func managerProcs(manager string) []proc {
	var out []proc
	for _, p := range clustertest.Processes(manager) {
		if p.Container != "" { // not a node or worker
			out = append(out, proc{pid: p.PID, container: p.Container, server: p.Server, agent: p.Agent})
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// get fetches a URL on loopback.
func get(url string) (int, []byte, error) {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// close stops everything the cluster started, and on failure quotes the
// ends of its logs.
func (c *cluster) close() {
	c.h.Close()
	if c.t.Failed() {
		for _, name := range []string{"worker.log", "worker2.log", "s1.log", "s2.log"} {
			if b, err := os.ReadFile(filepath.Join(c.dir, name)); err == nil {
				c.t.Logf("--- %s (last 3000 bytes)\n%s", name, tailOf(b, 3000))
			}
		}
	}
}

func tailOf(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// quiet drops the SDK's client logs.
type quiet = clustertest.Quiet

type historyBuilder struct{ h historypb.History }

// drive sends requests to path on port from n clients until ctx ends; wait
// returns once they have stopped.
func drive(ctx context.Context, port, n int, path string) (wait func()) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				_, _, _ = get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
			}
		}()
	}
	return wg.Wait
}
