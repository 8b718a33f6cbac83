// Package agent is the container agent (msm-agent, or `msm agent`): a
// Temporal worker on the container's own task queue, through internal/wire
// (no Temporal SDK: one agent runs per container). It loads the
// MicroService it is told to on the port it was leased, health-checks it,
// and stops it when the agent stops.
package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/cgroup"
	"github.com/msm-project/msm/internal/heartbeat"
	"github.com/msm-project/msm/internal/hostport"
	"github.com/msm-project/msm/internal/proc"
	"github.com/msm-project/msm/internal/traces"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/internal/wire"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Config names the container.
type Config struct {
	Container string
	Server    string
	Manager   string
	Log       *slog.Logger
	// Key is this container's key (trust.ContainerKey), from its node;
	// when Valid, every report is signed with it.
	Key trust.Key
	// Shim is the command of the agent's own binary up to its arguments
	// (e.g. ["/usr/local/bin/msm-agent"] or ["/usr/local/bin/msm", "agent"]):
	// the MicroService is started through `Shim... exec-confined`, which
	// confines it (ExecConfinedMain). Without it the service runs as the
	// agent's user, unbounded.
	Shim []string
	// Cgroup is the directory of the container's cgroup (v2), from its
	// node (agentapi.CgroupEnv): the agent runs its MicroService in a
	// cgroup of its own there, service, whose limits the kernel holds.
	// "": none, the service is confined by its user and rlimits.
	Cgroup string
	// Traces, when set, gets the agent's spans: its reports and the
	// activities it runs, each in the trace of what asked for it
	// (internal/traces). Nil: no tracing.
	Traces *traces.Exporter
	// Heartbeat is the file its node watches to know it is alive
	// (heartbeat.Env): touched every heartbeat.Every, with
	// the window after which its silence means it is hung. "": none (a
	// docker node, or an agent started by hand).
	Heartbeat string
	// Reports is the file its node takes its load reports from
	// (agentapi.ReportsEnv): its node passes them on to the Manager, one
	// summary per node and period. "": it signals the Manager itself.
	Reports string
	// Image is what the container's image runs by itself, when the
	// container is of a service's own image (agentapi.ImageEnv, from a
	// docker node): a service with no command runs it. Nil: none.
	Image *agentapi.ImageCommand
}

// Agent is a running container agent.
type Agent struct {
	cfg Config

	// loading admits one LoadService at a time. Attempts can overlap: the
	// server retries a load whose heartbeat timed out while that attempt
	// still waits for health here. Serialized, the retry attaches to the
	// first attempt's process instead of starting a second one on the same
	// port (which would fail, and whose failure unloaded the first).
	loading chan struct{}

	mu      sync.Mutex
	loaded  *loaded
	healthy http.Client
	// client reports load and failures to the Manager; nil until Run.
	client Signaler
}

// Signaler sends a signal to a running workflow, retrying while Temporal
// is briefly away; an error means the signal was not delivered.
// *wire.Client is one.
type Signaler interface {
	Signal(ctx context.Context, workflowID, name string, arg any) error
}

// outputDelay is how long the agent keeps reading a MicroService's output
// after the MicroService exited.
const outputDelay = time.Second

// loaded is the MicroService this container runs.
type loaded struct {
	service string
	port    int
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process exits
	out     *tail
	// stopMonitor ends the load monitor of this MicroService.
	stopMonitor context.CancelFunc
	// uid is the user it runs as, when it has one of its own (0: the
	// agent's); pids and memory (bytes) its limits, checked by watch.
	uid    uint32
	pids   int
	memory int64
	// cg is its cgroup, nil without (Config.Cgroup); held, whether its
	// limits are set there (else rlimits hold them).
	cg   *cgroup.Group
	held bool
}

// New checks cfg.
func New(cfg Config) (*Agent, error) {
	if cfg.Container == "" || cfg.Manager == "" {
		return nil, errors.New("an agent needs its container ID and manager name (--container, --manager)")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Agent{cfg: cfg, loading: make(chan struct{}, 1)}, nil
}

// Run serves the container's task queue with c and stops the MicroService
// when ctx ends. It sends the Manager nothing at start: the node's
// StartContainer result carries the agent's PID, and a container is
// waiting only once its Ready answers, so the old register signal decided
// nothing. It returns an error only when Temporal refuses the agent's polls
// for good (an unknown namespace, refused credentials).
func (a *Agent) Run(ctx context.Context, c *wire.Client) error {
	a.client = c
	w := wire.NewWorker(c, agentapi.ContainerQueue(a.cfg.Container))
	w.Traces = a.cfg.Traces
	w.Register(agentapi.ActivityLoadService, wire.Activity(a.LoadService))
	w.Register(agentapi.ActivityReady, wire.Activity(a.Ready))
	w.Register(agentapi.ActivityUnloadService, wire.ActivityNoResult(a.UnloadService))
	a.cfg.Log.Info("agent up", "container", a.cfg.Container, "server", a.cfg.Server)
	if a.cfg.Heartbeat != "" {
		go a.beat(ctx)
	}
	err := w.Run(ctx)
	a.unload()
	if err != nil {
		return fmt.Errorf("serving %s, %w", agentapi.ContainerQueue(a.cfg.Container), err)
	}
	return nil
}

// beat touches the heartbeat file until ctx ends. A stopped or wedged
// process touches nothing: that is what its node sees.
func (a *Agent) beat(ctx context.Context) {
	a.window(heartbeat.DefaultWindow)
	tick := time.NewTicker(heartbeat.Every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := heartbeat.Beat(a.cfg.Heartbeat); err != nil {
				a.cfg.Log.Warn("touching the heartbeat file", "error", err)
			}
		}
	}
}

// window tells the node how long a silence of this agent means it is
// hung: its service's health window once one is loaded.
func (a *Agent) window(d time.Duration) {
	if a.cfg.Heartbeat == "" {
		return
	}
	if err := heartbeat.Write(a.cfg.Heartbeat, d); err != nil {
		a.cfg.Log.Warn("writing the heartbeat file", "error", err)
	}
}

// Ready answers once the agent serves its queue: the container is up.
func (a *Agent) Ready(ctx context.Context, container string) (agentapi.ReadyResult, error) {
	if container != a.cfg.Container {
		return agentapi.ReadyResult{}, wire.NonRetryable(
			fmt.Sprintf("this agent is container %s, not %s", a.cfg.Container, container), "WrongContainer", nil)
	}
	return agentapi.ReadyResult{PID: os.Getpid()}, nil
}

// UnloadService stops the MicroService (SIGTERM, then SIGKILL after a
// grace period), leaving the container waiting. Nothing loaded is success.
func (a *Agent) UnloadService(ctx context.Context, container string) error {
	if container != a.cfg.Container {
		return wire.NonRetryable(
			fmt.Sprintf("this agent is container %s, not %s", a.cfg.Container, container), "WrongContainer", nil)
	}
	if err := a.admit(ctx, "unload"); err != nil {
		return err
	}
	defer func() { <-a.loading }()
	a.unload()
	return nil
}

// LoadService starts the MicroService on the leased port and returns once
// it answers its health check. Loading the same service on the same port
// again returns the running one, so retries are harmless.
func (a *Agent) LoadService(ctx context.Context, in agentapi.LoadServiceInput) (agentapi.LoadServiceResult, error) {
	begin := time.Now()
	if err := a.admit(ctx, in.Service.Name); err != nil {
		return agentapi.LoadServiceResult{}, err
	}
	defer func() { <-a.loading }()
	a.mu.Lock()
	cur := a.loaded
	a.mu.Unlock()
	if cur != nil && !exited(cur) {
		if cur.service != in.Service.Name || cur.port != in.Port {
			return agentapi.LoadServiceResult{}, wire.NonRetryable(
				fmt.Sprintf("container %s already runs %s on port %d; unload it first", a.cfg.Container, cur.service, cur.port),
				agentapi.ErrLoadFailed, nil)
		}
		if err := a.waitHealthy(ctx, in, cur); err != nil {
			return agentapi.LoadServiceResult{}, err
		}
		return agentapi.LoadServiceResult{PID: cur.cmd.Process.Pid, Healthy: true, Took: time.Since(begin), Attached: true}, nil
	}
	name, args, env, err := in.Service.Render(catalog.TemplateData{
		Port: in.Port, Service: in.Service.Name, Container: in.Container, Server: in.Server, Address: in.Address,
	})
	if err != nil {
		return agentapi.LoadServiceResult{}, wire.NonRetryable(
			fmt.Sprintf("rendering the command of %s, %v", in.Service.Name, err), agentapi.ErrLoadFailed, err)
	}
	var imageEnv []string // the image's own, under msm's and the catalog's
	if name == "" {
		// No command: the program of the service's own image.
		if a.cfg.Image == nil || len(a.cfg.Image.Argv(args)) == 0 {
			return agentapi.LoadServiceResult{}, wire.NonRetryable(
				fmt.Sprintf("%s names no command, and container %s runs no image of its own that has one: set the service's command (or an image with an ENTRYPOINT or CMD)", in.Service.Name, a.cfg.Container),
				agentapi.ErrLoadFailed, nil)
		}
		argv := a.cfg.Image.Argv(args)
		name, args = argv[0], argv[1:]
		imageEnv = a.cfg.Image.Env
	}
	// The port was free when the node started this container, but a waiting
	// container holds no socket: another process may have taken it since.
	if err := hostport.Free(in.Port); err != nil {
		return agentapi.LoadServiceResult{}, wire.NonRetryable(
			fmt.Sprintf("server %s: %v", in.Server, err), agentapi.ErrPortInUse, err)
	}
	limits := in.Service.Limits.Of()
	b, err := boundsOf(limits)
	if err != nil {
		return agentapi.LoadServiceResult{}, wire.NonRetryable(
			fmt.Sprintf("the limits of %s, %v", in.Service.Name, err), agentapi.ErrLoadFailed, err)
	}
	cg, held, err := a.serviceCgroup(b)
	if err != nil {
		return agentapi.LoadServiceResult{}, wire.NonRetryable(
			fmt.Sprintf("confining %s, %v", in.Service.Name, err), agentapi.ErrLoadFailed, err)
	}
	if b.cpu > 0 && !held {
		a.cfg.Log.Warn("the service's cpu limit is not held: its container has no cgroup v2 with the cpu controller (a node as root on a cgroup v2 host)", "service", in.Service.Name, "cpu", limits.CPU)
	}
	var runAs *account
	if in.Service.RunAs != "" {
		if runAs, err = a.runAs(in.Service.RunAs, cg, held, b); err != nil {
			return agentapi.LoadServiceResult{}, wire.NonRetryable(
				fmt.Sprintf("%s on server %s: %v", in.Service.Name, in.Server, err), agentapi.ErrLoadFailed, err)
		}
	}
	cmd, uid, err := a.confinedCommand(name, args, b, held, runAs)
	if err != nil {
		return agentapi.LoadServiceResult{}, wire.NonRetryable(
			fmt.Sprintf("the limits of %s, %v", in.Service.Name, err), agentapi.ErrLoadFailed, err)
	}
	if cg != nil {
		f, err := cg.Open()
		if err != nil {
			return agentapi.LoadServiceResult{}, err
		}
		defer f.Close()
		// In its cgroup, within its limits, from its first instruction.
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	}
	cmd.Env = append(append(serviceEnv(os.Environ()), imageEnv...), "PORT="+strconv.Itoa(in.Port), "MSM_SERVICE="+in.Service.Name)
	cmd.Env = append(cmd.Env, env...)
	out := &tail{max: 4096}
	cmd.Stdout = io.MultiWriter(os.Stdout, out)
	cmd.Stderr = io.MultiWriter(os.Stderr, out)
	// A child the service leaves behind may hold the output pipes open for
	// ever; without a limit, Wait (and so the exit, and unload) waits for it.
	cmd.WaitDelay = outputDelay
	// The MicroService dies with its agent, so no orphan keeps its port.
	exited, err := proc.StartTied(cmd)
	if err != nil {
		return agentapi.LoadServiceResult{}, wire.NonRetryable(
			fmt.Sprintf("starting %s (%s), %v: check the service's command in the catalog", in.Service.Name, name, err),
			agentapi.ErrLoadFailed, err)
	}
	mctx, stopMonitor := context.WithCancel(context.Background())
	l := &loaded{service: in.Service.Name, port: in.Port, cmd: cmd, done: make(chan struct{}), out: out, stopMonitor: stopMonitor, uid: uid,
		pids: b.pids, memory: b.memory, cg: cg, held: held}
	go func() { <-exited; close(l.done) }()
	a.mu.Lock()
	a.loaded = l
	a.mu.Unlock()
	a.cfg.Log.Info("loading", "service", in.Service.Name, "port", in.Port, "pid", cmd.Process.Pid)
	if err := a.waitHealthy(ctx, in, l); err != nil {
		a.unload()
		return agentapi.LoadServiceResult{}, err
	}
	// Healthy, but already past its limits (a fork bomb it started with):
	// it fails to load, and nothing of it is left.
	if why := l.breach(); why != "" {
		killed := l.kill()
		a.unload()
		return agentapi.LoadServiceResult{}, wire.NonRetryable(
			fmt.Sprintf("%s %s as it started: its %d processes were killed", in.Service.Name, why, killed), agentapi.ErrLoadFailed, nil)
	}
	go a.monitor(mctx, cmd.Process.Pid, in.Service, serviceURL(in, in.Service.Scaling.Metrics))
	go a.watch(mctx, l, in)
	a.window(heartbeat.Window(in.Service.Health))
	return agentapi.LoadServiceResult{PID: cmd.Process.Pid, Healthy: true, Took: time.Since(begin)}, nil
}

// admit waits until no other LoadService runs, heartbeating meanwhile so
// that the wait does not count as a lost agent.
func (a *Agent) admit(ctx context.Context, service string) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case a.loading <- struct{}{}:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("waiting for an earlier load to finish before loading %s, %w", service, ctx.Err())
		case <-tick.C:
			wire.Heartbeat(ctx, "waiting for an earlier load to finish")
		}
	}
}

// waitHealthy polls the health check until it passes, the process exits
// (non-retryable: the command is wrong), or ctx ends.
func (a *Agent) waitHealthy(ctx context.Context, in agentapi.LoadServiceInput, l *loaded) error {
	h := in.Service.Health
	url := serviceURL(in, h.Path)
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		// Past its limits while it starts (a fork bomb it began with, which
		// may collapse before it answers): it fails to load, and nothing of
		// it is left. Sampled with each health poll; a no-op without limits.
		if why := l.breach(); why != "" {
			killed := l.kill()
			return wire.NonRetryable(fmt.Sprintf("%s %s as it started: its %d processes were killed", in.Service.Name, why, killed),
				agentapi.ErrLoadFailed, nil)
		}
		lastErr := a.check(ctx, url, timeout)
		if lastErr == nil {
			return nil
		}
		wire.Heartbeat(ctx, lastErr.Error())
		select {
		case <-l.done:
			return wire.NonRetryable(
				fmt.Sprintf("%s exited before it was healthy (%v%s); its last output: %q", in.Service.Name, l.cmd.ProcessState, l.limitsNote(), l.out.String()),
				agentapi.ErrLoadFailed, nil)
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to answer %s, last error: %v, %w", in.Service.Name, url, lastErr, ctx.Err())
		case <-tick.C:
		}
	}
}

func (a *Agent) check(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := a.healthy.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

// unload stops the MicroService: SIGTERM, then SIGKILL after a grace period.
func (a *Agent) unload() {
	a.mu.Lock()
	l := a.loaded
	a.loaded = nil
	a.mu.Unlock()
	if l != nil {
		l.stopMonitor()
	}
	if l == nil {
		return
	}
	a.window(heartbeat.DefaultWindow)
	// What it left behind (a child in a session of its own, a fork bomb)
	// runs as its user, in its cgroup, and goes with it.
	defer proc.KillUser(l.uid)
	if l.cg != nil {
		defer func() {
			if err := l.cg.Remove(); err != nil {
				a.cfg.Log.Error("unloading", "error", err)
			}
		}()
	}
	if exited(l) {
		return
	}
	_ = l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.done:
	case <-time.After(5 * time.Second):
		_ = l.cmd.Process.Kill()
		<-l.done
	}
}

func exited(l *loaded) bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.TrimSpace(t.buf))
}

// serviceURL is the URL of path on the MicroService this load runs.
func serviceURL(in agentapi.LoadServiceInput, path string) string {
	host := in.Address
	if host == "" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(in.Port)) + path
}

// serviceEnv is what a MicroService inherits of env, its agent's
// environment: only its basics (agentapi.BasicEnv). Nothing else of the
// agent's reaches it: not its Temporal settings and credentials, not a
// cloud's, not whatever the node was started with. The catalog's env,
// PORT and MSM_SERVICE come on top.
func serviceEnv(env []string) []string { return agentapi.BasicEnv(env) }
