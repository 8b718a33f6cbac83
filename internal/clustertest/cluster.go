// Package clustertest owns the cluster harness that the end-to-end tests
// and the benchmarks share: a Temporal dev server of the cluster's own (or
// one it shares), a standalone catalog on a port block of its own, `msm
// worker` and `msm node` processes logging to files, the Manager's status
// and a wait on it, the Manager's processes on this host, and the cleanup
// of all of it. It returns errors and never fails a test itself, so that
// bench can use it too; internal/e2e wraps it with require.
package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/internal/devserver"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

// ErrTimeout is what WaitFor wraps when its condition never held.
var ErrTimeout = errors.New("timed out")

// Config says what a Cluster is.
type Config struct {
	// Dir holds the catalog, a log per process (name.log) and the dev
	// server's log (temporal.log); it must exist.
	Dir string
	// Manager is the Manager's name (MSM_MANAGER of every process).
	Manager string
	// Msm is the msm binary.
	Msm string
	// ReportEvery is the nodes' usage report period; "" (made "0") sends
	// none, so the Manager's history holds only what the caller causes.
	ReportEvery string
	// StateDirs gives each process a state directory of its own,
	// Dir/state-<name> (MSM_STATE_DIR), as separate machines would have.
	StateDirs bool
	// Query makes Status ask the Manager through the status query, which
	// is cheap enough to poll every few milliseconds, instead of running
	// `msm status -o json`, which is what a user sees.
	Query bool
	// Poll is how often WaitFor asks for the status; 200 ms when 0.
	Poll time.Duration
	// Grace is how long Close lets the processes stop on SIGTERM before it
	// kills every process of the Manager left.
	Grace time.Duration
	// Docker says the Manager is of the docker kind: Close also removes
	// its Docker containers and networks (DockerClean).
	Docker bool
	// Address and Client are a dev server the cluster shares (it closes
	// neither, and Close terminates its Manager); StartServer starts one
	// of the cluster's own instead.
	Address string
	Client  client.Client
	// Env is added to the environment of every msm process the cluster
	// starts or runs (e.g. MSM_CODEC_KEY_FILE).
	Env []string
}

// Cluster is one Manager's world: a dev server, a catalog, msm processes.
type Cluster struct {
	Config
	// Catalog is the path WriteCatalog writes: Dir/catalog.yaml.
	Catalog string
	// Server is the cluster's own dev server, nil when it shares one.
	Server *devserver.Server

	serverOpts devserver.Options
	serverLog  *os.File
	procs      map[string]*process
}

// process is an msm process the cluster started.
type process struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// New makes a cluster of cfg; it starts nothing.
func New(cfg Config) *Cluster {
	if cfg.ReportEvery == "" {
		cfg.ReportEvery = "0"
	}
	if cfg.Poll == 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	return &Cluster{Config: cfg, Catalog: filepath.Join(cfg.Dir, "catalog.yaml"), procs: map[string]*process{}}
}

// StartServer starts the cluster's own dev server with o (its output in
// Dir/temporal.log unless o.Output is set, msm's search attributes unless
// o.SearchAttributes is) and dials it: Address and Client are then the
// server's.
func (c *Cluster) StartServer(ctx context.Context, o devserver.Options) error {
	if o.SearchAttributes == nil {
		o.SearchAttributes = workflows.SearchAttributeTypes
	}
	if o.Output == nil {
		f, err := os.Create(filepath.Join(c.Dir, "temporal.log"))
		if err != nil {
			return err
		}
		c.serverLog, o.Output = f, f
	}
	c.serverOpts = o
	srv, err := devserver.Start(ctx, o)
	if err != nil {
		return fmt.Errorf("starting the dev server, %w", err)
	}
	c.Server, c.Address = srv, srv.Address()
	c.Client, err = client.Dial(client.Options{HostPort: srv.Address(), Logger: Quiet{}})
	if err != nil {
		return fmt.Errorf("dialling the dev server, %w", err)
	}
	return nil
}

// RestartServer stops the cluster's dev server and starts it again on the
// same address and state file (devserver.Options.DBFile, which it needs),
// and returns how long it was away. The client reconnects by itself.
func (c *Cluster) RestartServer(ctx context.Context) (time.Duration, error) {
	return c.RestartServerAfter(ctx, 0)
}

// RestartServerAfter is RestartServer with the server kept stopped for
// down before it starts again: an outage of Temporal.
func (c *Cluster) RestartServerAfter(ctx context.Context, down time.Duration) (time.Duration, error) {
	if c.Server == nil || c.serverOpts.DBFile == "" {
		return 0, errors.New("restarting the dev server needs one of the cluster's own with its state in a file (DBFile)")
	}
	began := time.Now()
	if err := c.Server.Stop(); err != nil {
		return 0, fmt.Errorf("stopping the dev server, %w", err)
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(down):
	}
	if err := c.StartServerAgain(ctx); err != nil {
		return 0, err
	}
	return time.Since(began), nil
}

// StartServerAgain starts the cluster's dev server, stopped (Server.Stop),
// again on the same address and state file (devserver.Options.DBFile).
func (c *Cluster) StartServerAgain(ctx context.Context) error {
	if c.Server == nil || c.serverOpts.DBFile == "" {
		return errors.New("restarting the dev server needs one of the cluster's own with its state in a file (DBFile)")
	}
	o := c.serverOpts
	o.Address = c.Server.Address()
	srv, err := devserver.Start(ctx, o)
	if err != nil {
		return fmt.Errorf("restarting the dev server, %w", err)
	}
	c.Server = srv
	return nil
}

// WriteCatalog writes yaml to Catalog.
func (c *Cluster) WriteCatalog(yaml string) error {
	return os.WriteFile(c.Catalog, []byte(yaml), 0o644)
}

// env is what every msm process of the cluster runs with, beside more.
func (c *Cluster) env(name string, more []string) []string {
	env := append(os.Environ(), "TEMPORAL_ADDRESS="+c.Address, "MSM_MANAGER="+c.Manager, "MSM_REPORT_EVERY="+c.ReportEvery)
	if c.StateDirs && name != "" {
		env = append(env, "MSM_STATE_DIR="+filepath.Join(c.Dir, "state-"+name))
	}
	env = append(env, c.Env...)
	return append(env, more...)
}

// Start runs `msm ARGS...` in the background under name, with env added to
// the cluster's environment and its output appended to Dir/name.log. The
// channel closes when the process has exited (and Cmd(name).ProcessState
// is set).
func (c *Cluster) Start(name string, env []string, args ...string) (<-chan struct{}, error) {
	cmd := exec.Command(c.Msm, args...)
	cmd.Dir = c.Dir
	cmd.Env = c.env(name, env)
	log, err := os.OpenFile(filepath.Join(c.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close() // the child has its own descriptor
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting msm %s, %w", name, err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	c.procs[name] = p
	return p.exited, nil
}

// Cmd is the process started under name, nil if none (or it was killed).
func (c *Cluster) Cmd(name string) *exec.Cmd {
	if p := c.procs[name]; p != nil {
		return p.cmd
	}
	return nil
}

// Kill kills the process started under name with SIGKILL, as a crash
// would, and forgets it; the channel closes once it has exited.
func (c *Cluster) Kill(name string) (<-chan struct{}, error) {
	p := c.procs[name]
	if p == nil {
		return nil, fmt.Errorf("no process %s", name)
	}
	delete(c.procs, name)
	if err := p.cmd.Process.Kill(); err != nil {
		return nil, fmt.Errorf("killing %s, %w", name, err)
	}
	return p.exited, nil
}

// KillServer kills server's node (started under the server's name) and
// every process of the Manager on server with SIGKILL, as a lost machine
// would take them.
func (c *Cluster) KillServer(server string) {
	if exited, err := c.Kill(server); err == nil {
		<-exited
	}
	for _, p := range Processes(c.Manager) {
		if p.Server == server {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

// Run runs `msm ARGS...` to completion and returns its stdout.
func (c *Cluster) Run(args ...string) (string, error) {
	cmd := exec.Command(c.Msm, args...)
	cmd.Dir, cmd.Env = c.Dir, c.env("", nil)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("msm %v: %v: %s", args, err, errb.String())
	}
	return out.String(), nil
}

// Status is the Manager's status: the status query with Config.Query,
// else `msm status -o json`, decoded.
func (c *Cluster) Status() (workflows.Status, error) {
	if c.Query {
		return starter.Status(context.Background(), c.Client, c.Manager)
	}
	var st workflows.Status
	out, err := c.Run("status", "-o", "json")
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal([]byte(out), &st)
}

// WaitFor polls Status every Poll until ok holds, and returns that status
// and when it was seen; after timeout, the last status and an error
// wrapping ErrTimeout with the last error, the status and where the logs
// are.
func (c *Cluster) WaitFor(what string, timeout time.Duration, ok func(workflows.Status) bool) (workflows.Status, time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last workflows.Status
	var lastErr error
	for time.Now().Before(deadline) {
		st, err := c.Status()
		if err == nil {
			last = st
			if ok(st) {
				return st, time.Now(), nil
			}
		}
		lastErr = err
		time.Sleep(c.Poll)
	}
	b, _ := json.MarshalIndent(last, "", "  ")
	return last, time.Time{}, fmt.Errorf("%w after %s waiting for %s; last error %v; last status:\n%s\nlogs in %s",
		ErrTimeout, timeout, what, lastErr, b, c.Dir)
}

// Close ends the cluster: on a shared dev server it terminates the Manager
// first (every cluster's worker serves the same task queue, so a Manager
// left running would be served, and its dead servers recovered, by the
// next cluster's worker); it stops the processes it started (SIGTERM, up
// to Grace), then kills every process of the Manager left, agents and
// MicroServices included (they outlive a node by design), removes the
// Manager's Docker objects with Config.Docker, and stops its own dev
// server.
func (c *Cluster) Close() {
	if c.Server == nil && c.Client != nil {
		if err := starter.TerminateManager(context.Background(), c.Client, c.Manager, "cluster closed"); err != nil {
			fmt.Fprintf(os.Stderr, "terminating Manager %s: %v\n", c.Manager, err)
		}
	}
	var running []*process
	for name, p := range c.procs {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			running = append(running, p)
		}
		delete(c.procs, name)
	}
	grace := time.After(c.Grace)
wait:
	for _, p := range running {
		select {
		case <-p.exited:
		case <-grace:
			break wait
		}
	}
	if c.Docker {
		DockerClean(c.Manager)
	}
	for _, p := range Processes(c.Manager) {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	if c.Server != nil { // its own: the client is its too
		if c.Client != nil {
			c.Client.Close()
		}
		_ = c.Server.Stop()
	}
	if c.serverLog != nil {
		c.serverLog.Close()
	}
}

// Quiet is the SDK's logger, silenced.
type Quiet struct{}

func (Quiet) Debug(string, ...any) {}
func (Quiet) Info(string, ...any)  {}
func (Quiet) Warn(string, ...any)  {}
func (Quiet) Error(string, ...any) {}
