// Package e2e runs msm for real: the Temporal dev server from bin/temporal,
// `msm worker` and `msm node` processes, real container agents (msm-agent)
// and MicroService processes. Tests assert what a user sees: `msm status
// -o json`, the services' own answers on their ports, and the processes on
// the host.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/internal/devserver"
	"github.com/msm-project/msm/internal/hostport"
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
	return m.Run()
}

// cluster is one test's world: a dev server, a catalog, msm processes.
type cluster struct {
	t       *testing.T
	dir     string
	srv     *devserver.Server
	client  client.Client
	manager string
	catalog string
	base    int // first port of s1; s<i> has base+(i-1)*20 .. +19
	// reportEvery is spec.reportEvery.
	reportEvery string
	procs       map[string]*exec.Cmd
	srvOpts     devserver.Options
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
	// liveness is the catalog's manager.liveness ("" for the default).
	liveness string
	// persistent keeps the dev server's state in a file, so that
	// restartServer resumes every workflow.
	persistent bool
	// serverSlots sets the slots of the first servers, in order (slots
	// the rest's).
	serverSlots []int
	// drain is a service's drain period (catalog `drain`), by name.
	drain map[string]string
}

func newCluster(t *testing.T, s spec) *cluster {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := &cluster{t: t, dir: dir, manager: fmt.Sprintf("e2e%d", rand.IntN(1e6)), procs: map[string]*exec.Cmd{}, ranges: map[string][2]int{}}
	if s.hosts {
		c.net = newDockerNet(t, c.manager)
	}
	c.srvOpts = devserver.Options{
		Binary: bins.temporal, SearchAttributes: workflows.SearchAttributeTypes,
		Output: logFile(t, dir, "temporal.log"),
	}
	if s.persistent {
		c.srvOpts.DBFile = filepath.Join(dir, "temporal.db")
	}
	srv, err := devserver.Start(ctx, c.srvOpts)
	require.NoError(t, err)
	c.srv = srv
	c.frontend = srv.Address()
	if s.hosts {
		// The hosts reach the dev server on their network's gateway, through
		// a proxy: the dev server itself only answers on loopback when
		// bound to one address.
		c.frontend = proxy(t, c.net.gateway, srv.Address())
	}
	c.client, err = client.Dial(client.Options{HostPort: srv.Address(), Logger: quiet{}})
	require.NoError(t, err)
	c.reportEvery = s.reportEvery
	c.catalog = filepath.Join(dir, "catalog.yaml")
	require.NoError(t, os.WriteFile(c.catalog, []byte(c.catalogYAML(s)), 0o644))
	t.Cleanup(c.close)
	return c
}

// blocks counts the port blocks handed out from blockStart.
var (
	blocks     atomic.Int64
	blockStart = int64(rand.IntN(100))
)

// catalogYAML writes servers s1..sN on 127.0.0.1 with disjoint port ranges
// in a randomly chosen block (kept for the cluster's later catalogs), so
// parallel runs rarely meet.
func (c *cluster) catalogYAML(s spec) string {
	// Below the kernel's ephemeral range (32768+), where client sockets
	// would make ports look taken, and away from the example catalog's.
	// Blocks go round from a random start, so the clusters of one run
	// (parallel ones included) never share one, and two runs rarely meet.
	// A block some other process of the machine holds a port of (a
	// server of another package's tests) would move a container to
	// another port or server, and the test's layout with it: such a block
	// is passed over.
	for tries := 0; c.base == 0; tries++ {
		base := 22000 + int((blockStart+blocks.Add(1))%100)*100
		if tries < 100 && !blockFree(base) {
			continue
		}
		c.base = base
	}
	base := c.base
	var b strings.Builder
	fmt.Fprintf(&b, "manager:\n  kind: standalone\n  warm_pool: %d\n  consolidate: %t\n", s.warmPool, s.consolidate)
	if s.liveness != "" {
		fmt.Fprintf(&b, "  liveness: %s\n", s.liveness)
	}
	b.WriteString("  servers:\n")
	for i := 1; i <= s.servers; i++ {
		first := base + (i-1)*20
		address := "127.0.0.1"
		if c.net != nil {
			address = c.net.ip(i)
		}
		c.ranges[fmt.Sprintf("s%d", i)] = [2]int{first, first + 19}
		slots := s.slots
		if i <= len(s.serverSlots) {
			slots = s.serverSlots[i-1]
		}
		fmt.Fprintf(&b, "    - {name: s%d, address: %s, slots: %d, ports: %d-%d}\n", i, address, slots, first, first+19)
	}
	b.WriteString("services:\n")
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
	}
	return b.String()
}

// blockFree reports whether nothing on this host listens on a port of the
// block of 100 ports from base.
func blockFree(base int) bool {
	for p := base; p < base+100; p++ {
		if hostport.Free(p) != nil {
			return false
		}
	}
	return true
}

func (c *cluster) env() []string {
	every := c.reportEvery
	if every == "" {
		every = "0"
	}
	address := c.frontend // a Temporal server the cluster did not start
	if c.srv != nil {
		address = c.srv.Address()
	}
	return append(os.Environ(), "TEMPORAL_ADDRESS="+address, "MSM_MANAGER="+c.manager, "MSM_REPORT_EVERY="+every)
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
	delete(c.procs, "worker")
	c.startEnv("worker2", env, "worker", "--catalog", c.catalog)
}

// restartServer stops the dev server and starts it again on the same
// address and state file, and returns how long it was away.
func (c *cluster) restartServer() time.Duration {
	c.t.Helper()
	require.NotEmpty(c.t, c.srvOpts.DBFile, "restartServer needs spec.persistent")
	began := time.Now()
	require.NoError(c.t, c.srv.Stop())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := c.srvOpts
	o.Address = c.srv.Address()
	srv, err := devserver.Start(ctx, o)
	require.NoError(c.t, err)
	c.srv = srv
	return time.Since(began)
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
	cmd := exec.Command(bins.msm, args...)
	cmd.Dir = c.dir
	cmd.Env = append(c.env(), env...)
	out := logFile(c.t, c.dir, name+".log")
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(c.t, cmd.Start())
	c.procs[name] = cmd
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return exited
}

// kill9 kills a background msm process with SIGKILL, as a crash would.
func (c *cluster) kill9(name string) {
	c.t.Helper()
	cmd := c.procs[name]
	require.NotNil(c.t, cmd, name)
	require.NoError(c.t, cmd.Process.Kill())
	delete(c.procs, name)
}

// msm runs `msm ARGS...` to completion and returns its stdout.
func (c *cluster) msm(args ...string) (string, error) {
	cmd := exec.Command(bins.msm, args...)
	cmd.Dir, cmd.Env = c.dir, c.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("msm %v: %v: %s", args, err, errb.String())
	}
	return out.String(), nil
}

// status is `msm status -o json`, decoded.
func (c *cluster) status() (workflows.Status, error) {
	var st workflows.Status
	out, err := c.msm("status", "-o", "json")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(out), &st)
}

// waitFor polls status until ok holds, failing the test after timeout.
func (c *cluster) waitFor(what string, timeout time.Duration, ok func(workflows.Status) bool) workflows.Status {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last workflows.Status
	var lastErr error
	for time.Now().Before(deadline) {
		st, err := c.status()
		if err == nil {
			last = st
			if ok(st) {
				return st
			}
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(last, "", "  ")
	c.t.Fatalf("timed out after %s waiting for %s; last error %v; last status:\n%s\nlogs in %s", timeout, what, lastErr, b, c.dir)
	return last
}

// converged: every service has ready == desired and the warm pool is full.
func converged(warm int) func(workflows.Status) bool {
	return func(st workflows.Status) bool { return st.Settled(warm) }
}

func count(st workflows.Status, state string) int { return st.Count(state) }

// proc is an msm-owned process found on the host.
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
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		if !contains(vars, "MSM_MANAGER="+manager) {
			continue
		}
		container, server := "", ""
		for _, v := range vars {
			if s, ok := strings.CutPrefix(v, "MSM_CONTAINER="); ok {
				container = s
			}
			if s, ok := strings.CutPrefix(v, "MSM_SERVER="); ok {
				server = s
			}
		}
		if container == "" {
			continue // a node or worker
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue // exited, not yet reaped
		}
		agent := filepath.Base(args[0]) == "msm-agent" || len(args) > 1 && args[1] == "agent"
		out = append(out, proc{pid: pid, container: container, server: server, agent: agent})
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

func (c *cluster) close() {
	for name, cmd := range c.procs {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		delete(c.procs, name)
	}
	time.Sleep(300 * time.Millisecond)
	// Nodes leave their containers running by design; this test owns them.
	for _, p := range c.hostProcs() {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	if c.client != nil {
		c.client.Close()
	}
	_ = c.srv.Stop()
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

func logFile(t *testing.T, dir, name string) *os.File {
	f, err := os.Create(filepath.Join(dir, name))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// quiet drops the SDK's client logs.
type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

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
