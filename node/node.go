// Package node is the node agent: one per server, a Temporal worker on the
// server's own task queue that starts and stops container processes (the
// container agent: msm-agent, or `msm agent`), verifies that a leased port
// is really free before a container gets it, and re-attaches to the
// containers still running when it restarts.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/msm-project/msm/internal/cgroup"
	"github.com/msm-project/msm/internal/heartbeat"
	"github.com/msm-project/msm/internal/hostport"
	procfs "github.com/msm-project/msm/internal/proc"
	"github.com/msm-project/msm/internal/startbatch"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Config is what a node agent needs.
type Config struct {
	Server  string
	Manager string
	// StateDir keeps one record per container, so a restarted node finds
	// its containers again; container logs are written beside them.
	StateDir string
	// AgentCommand starts a container agent, e.g. ["/usr/local/bin/msm-agent"]
	// or ["/usr/local/bin/msm", "agent"] (AgentCommand chooses).
	AgentCommand []string
	// AgentEnv is added to each agent's environment (its Temporal
	// settings), which otherwise holds only agentapi.BasicEnv of the node's.
	AgentEnv []string
	Log      *slog.Logger
	// ReportEvery is how often the node sends the Manager a usage
	// summary; 0 sends none.
	ReportEvery time.Duration
	// Meter measures the whole server for those reports (nil: containers only).
	Meter ServerMeter
	// ReportsEvery is how often the node passes on, as one summary, the
	// load reports its agents left it (agentapi.ReportsEnv); 0: its agents
	// signal the Manager themselves, one signal per report.
	ReportsEvery time.Duration
	// Key is this server's key (its join token, trust.ServerKey): when
	// Valid, the node signs its reports with it and hands each agent its
	// container's key (trust.ContainerKey) on a pipe.
	Key trust.Key
	// CodecKeys are the payload encryption keys, handed to each agent on
	// the same pipe (none: payloads are not encrypted).
	CodecKeys []trust.Key
	// Cgroup is the cgroup (v2) the node makes each container's cgroup
	// in: its agent runs in <container>/agent and its MicroService in
	// <container>/service, which the agent makes and limits, and stopping
	// the container kills the whole cgroup. Nil when the host has none for
	// it: containers are confined by their users and rlimits alone.
	Cgroup *cgroup.Group
}

// record is what the node keeps of a container it started.
type record struct {
	Container string    `json:"container"`
	Server    string    `json:"server"`
	Manager   string    `json:"manager"`
	Port      int       `json:"port"`
	PID       int       `json:"pid"`
	Start     uint64    `json:"start"` // process start time, to tell a reused PID apart
	Started   time.Time `json:"started"`
}

// stopGrace is how long a container gets to leave after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Node is a running node agent.
type Node struct {
	cfg Config
	mu  sync.Mutex
	// locks keeps the starts and stops of one container apart, while those
	// of different containers (StopAll's, each up to stopGrace) overlap.
	locks map[string]*containerLock
	// agents are the agent processes watched for an exit nobody asked for,
	// by container; exited hears at once of those this node started.
	agents map[string]record
	exited chan agentExit
	// counts are what it did since it started (Stats).
	started, startFailed, stopped, agentExits atomic.Int64
	// beats heartbeats its leases (its client, set by Run).
	beats heartbeater
}

// Stats are what a node did since it started, and runs now: its metrics
// (internal/metrics reads them).
type Stats struct {
	// Containers counts the containers whose agents it watches.
	Containers int
	// Started and StartFailed count container starts (those that found
	// the container running already are neither); Stopped the stops asked
	// of it; AgentExits the agents that ended unasked, each reported.
	Started, StartFailed, Stopped, AgentExits int64
}

// Stats reads n's counts.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	running := len(n.agents)
	n.mu.Unlock()
	return Stats{Containers: running, Started: n.started.Load(), StartFailed: n.startFailed.Load(),
		Stopped: n.stopped.Load(), AgentExits: n.agentExits.Load()}
}

// agentExit is an agent process of this node that ended.
type agentExit struct {
	container string
	pid       int
	why       string
}

type containerLock struct {
	sync.Mutex
	users int
}

// New checks cfg and prepares the state directory.
func New(cfg Config) (*Node, error) {
	if cfg.Server == "" || cfg.Manager == "" {
		return nil, errors.New("a node needs its server name and manager name")
	}
	if len(cfg.AgentCommand) == 0 {
		return nil, errors.New("a node needs the command that starts a container agent")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating node state directory, %w", err)
	}
	// Records and logs are the node's own: a MicroService (another user,
	// when confined) may not read or rewrite them.
	if err := os.Chmod(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("securing the state directory, %w", err)
	}
	return &Node{cfg: cfg, locks: map[string]*containerLock{}, agents: map[string]record{}, exited: make(chan agentExit, 64)}, nil
}

// Run re-attaches to the containers still running, tells the Manager which
// they are, and serves the node's task queue until ctx ends. Containers keep
// running when the node stops.
func (n *Node) Run(ctx context.Context, c client.Client) error {
	kept, err := n.Reattach()
	if err != nil {
		return err
	}
	n.cfg.Log.Info("node agent up", "server", n.cfg.Server, "reattached", len(kept))
	n.beats = c
	go n.watchAgents(ctx, c, agentPoll)
	if n.cfg.ReportEvery > 0 {
		go n.reportUsage(ctx, c, n.cfg.ReportEvery, n.cfg.Meter)
	}
	if n.cfg.ReportsEvery > 0 {
		go n.forwardReports(ctx, c, n.cfg.ReportsEvery)
	}
	return serve(ctx, c, n.cfg.Log, n.cfg.Server, n.cfg.Manager, kept, activitiesOf{
		start: n.StartContainer, stop: n.StopContainer, lease: n.Lease, reconcile: n.Reconcile,
	}, n.cfg.Key)
}

// activitiesOf are the activities a node serves on its task queue.
type activitiesOf struct {
	start                  func(context.Context, workflows.StartContainerInput) (workflows.StartContainerResult, error)
	stop, lease, reconcile any
}

// serve tells the Manager the node is up with the containers it kept, and
// serves the node's task queue until ctx ends.
func serve(ctx context.Context, c client.Client, log *slog.Logger, server, manager string, kept []string, acts activitiesOf, key trust.Key) error {
	up := workflows.NodeUpSignal{Server: server, Containers: kept}
	up.Auth = agentapi.Sign(key, up.Fields())
	if err := c.SignalWorkflow(ctx, workflows.ManagerID(manager), "", workflows.SignalNodeUp, up); err != nil {
		// No Manager yet: it has nothing to reconcile either.
		log.Info("manager not running yet", "manager", manager, "error", err)
	}
	// In-flight starts finish before Run returns, so a StopAll after it
	// finds every container it must stop.
	w := worker.New(c, workflows.NodeQueue(server), worker.Options{
		// Activities only: no workflow task ever comes to this queue.
		DisableWorkflowWorker: true,
		WorkerStopTimeout:     10 * time.Second,
		// The lease's heartbeats must reach the server well inside the
		// liveness window, not at 80% of it (the SDK's default throttle).
		MaxHeartbeatThrottleInterval: time.Second,
	})
	w.RegisterActivityWithOptions(acts.start, activity.RegisterOptions{Name: workflows.ActivityStartContainer})
	w.RegisterActivityWithOptions(func(ctx context.Context, in workflows.StartContainersInput) (workflows.StartContainersResult, error) {
		return startbatch.Each(ctx, in, acts.start), nil
	}, activity.RegisterOptions{Name: workflows.ActivityStartContainers})
	w.RegisterActivityWithOptions(acts.stop, activity.RegisterOptions{Name: workflows.ActivityStopContainer})
	w.RegisterActivityWithOptions(acts.lease, activity.RegisterOptions{Name: workflows.ActivityLease})
	w.RegisterActivityWithOptions(acts.reconcile, activity.RegisterOptions{Name: workflows.ActivityReconcile})
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting node worker on %s, %w", workflows.NodeQueue(server), err)
	}
	<-ctx.Done()
	w.Stop()
	return nil
}

// forkMu keeps a port check (hostport.Free binds the port) and a fork
// apart: a child forked while a check's socket is open holds a copy of it
// until its exec, so a start beside it (StartContainers runs several at
// once) saw its own free port in use and skipped it.
var forkMu sync.Mutex

// StartContainer starts the agent process of one container. The container
// ID is the idempotency key: if it already runs, its PID is returned and
// nothing new is started. A port held by a process msm does not own fails
// with the non-retryable PortInUse, so the Manager leases another.
func (n *Node) StartContainer(ctx context.Context, in workflows.StartContainerInput) (res workflows.StartContainerResult, err error) {
	defer n.lock(in.Container)()
	defer func() {
		switch {
		case err != nil:
			n.startFailed.Add(1)
		case !res.Attached:
			n.started.Add(1)
		}
	}()
	if r, err := n.load(in.Container); err == nil {
		if alive(r.PID, r.Start) && r.Port == in.Port && r.Manager == in.Manager {
			return workflows.StartContainerResult{PID: r.PID, Attached: true}, nil
		}
		// Its agent died, or it is a stale container of the same ID from an
		// earlier Manager run (another port): stop what is left running (a
		// MicroService may hold the port) before its record is overwritten.
		stopGroup(r.PID, r.Start, stopGrace)
	}
	forkMu.Lock()
	err = hostport.Free(in.Port)
	forkMu.Unlock()
	if err != nil {
		return workflows.StartContainerResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("server %s: %v", n.cfg.Server, err), workflows.ErrPortInUse, err)
	}
	logf, err := os.OpenFile(n.path(in.Container, ".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return workflows.StartContainerResult{}, fmt.Errorf("opening container log, %w", err)
	}
	defer logf.Close()
	args := append(slices.Clone(n.cfg.AgentCommand[1:]),
		"--container", in.Container, "--server", in.Server, "--manager", in.Manager)
	cmd := exec.Command(n.cfg.AgentCommand[0], args...)
	// An explicit environment: the basics and the Temporal settings, not
	// whatever else this node was started with (a cloud's credentials).
	cmd.Env = append(agentapi.BasicEnv(os.Environ()), n.cfg.AgentEnv...)
	cmd.Env = append(cmd.Env, "MSM_CONTAINER="+in.Container, "MSM_SERVER="+in.Server, "MSM_MANAGER="+in.Manager)
	// Its heartbeat file, touched now: its window starts with its start.
	if err := heartbeat.Write(n.path(in.Container, ".alive"), heartbeat.DefaultWindow); err != nil {
		return workflows.StartContainerResult{}, err
	}
	cmd.Env = append(cmd.Env, heartbeat.Env+"="+n.path(in.Container, ".alive"))
	if n.cfg.ReportsEvery > 0 {
		// Its load reports go through this node, one summary per period.
		cmd.Env = append(cmd.Env, agentapi.ReportsEnv+"="+n.reportsPath(in.Container))
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if n.cfg.Key.Valid() || len(n.cfg.CodecKeys) > 0 {
		keyPipe, err := agentKeyPipe(n.cfg.Key, n.cfg.CodecKeys, in.Container)
		if err != nil {
			return workflows.StartContainerResult{}, err
		}
		defer keyPipe.Close()
		cmd.ExtraFiles = []*os.File{keyPipe}
		cmd.Env = append(cmd.Env, agentapi.KeyFDEnv+"=3")
	}
	// Its own process group: the agent and its MicroService outlive this
	// node (re-attached on restart) and are stopped together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if n.cfg.Cgroup != nil {
		cg, err := n.agentCgroup(in.Container)
		if err != nil {
			return workflows.StartContainerResult{}, err
		}
		defer cg.Close()
		// In its cgroup from its first instruction.
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(cg.Fd())
		cmd.Env = append(cmd.Env, agentapi.CgroupEnv+"="+n.containerCgroup(in.Container).Path)
	}
	forkMu.Lock()
	err = cmd.Start()
	forkMu.Unlock()
	if err != nil {
		return workflows.StartContainerResult{}, fmt.Errorf("starting agent for %s, %w", in.Container, err)
	}
	go func() { // reap it (a restarted node leaves that to init), and say so
		err := cmd.Wait()
		why := "exited"
		if err != nil {
			why = err.Error() // "signal: killed", "exit status 2"
		}
		select {
		case n.exited <- agentExit{container: in.Container, pid: cmd.Process.Pid, why: why}:
		default: // the poll finds it
		}
	}()
	start, err := startTime(cmd.Process.Pid)
	if err != nil {
		return workflows.StartContainerResult{}, fmt.Errorf("reading agent process of %s, %w", in.Container, err)
	}
	r := record{Container: in.Container, Server: in.Server, Manager: in.Manager, Port: in.Port,
		PID: cmd.Process.Pid, Start: start, Started: time.Now()}
	if err := n.save(r); err != nil {
		stopGroup(r.PID, r.Start, time.Second)
		return workflows.StartContainerResult{}, err
	}
	n.watch(r)
	activity.GetLogger(ctx).Info("container started", "container", in.Container, "pid", r.PID, "port", in.Port)
	return workflows.StartContainerResult{PID: r.PID}, nil
}

// StopContainer stops a container's agent and MicroService. A container that
// is already gone counts as stopped.
func (n *Node) StopContainer(ctx context.Context, in workflows.StopContainerInput) error {
	defer n.lock(in.Container)()
	r, err := n.load(in.Container)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	n.unwatch(in.Container)
	n.stopped.Add(1)
	stopGroup(r.PID, r.Start, stopGrace)
	// A confined MicroService runs as its container's user: what it left
	// outside the group (a child in a session of its own) goes too.
	if os.Geteuid() == 0 {
		procfs.KillUser(agentapi.ServiceUID(n.cfg.Manager, in.Container))
	}
	return n.forget(in.Container)
}

// Reattach reads the container records and returns the containers still
// running, in ID order; records of dead ones are removed, and what their
// agent left running (its MicroService) is stopped, since nothing could find
// it again. Calling it twice changes nothing.
func (n *Node) Reattach() ([]string, error) {
	recs, err := n.records()
	if err != nil {
		return nil, err
	}
	var kept []string
	for _, r := range recs {
		ok, err := n.reattach(r.Container)
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, r.Container)
			n.watch(r)
		}
	}
	return kept, nil
}

func (n *Node) reattach(container string) (bool, error) {
	defer n.lock(container)()
	r, err := n.load(container) // again, under the container's lock
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if alive(r.PID, r.Start) {
		return true, nil
	}
	stopGroup(r.PID, r.Start, stopGrace)
	return false, n.forget(container)
}

// StopAll stops every container of this node (used by `msm dev` on exit).
func (n *Node) StopAll() error {
	recs, err := n.records()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, r := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = n.StopContainer(context.Background(), workflows.StopContainerInput{Container: r.Container})
		}()
	}
	wg.Wait()
	return nil
}

// lock takes the lock of one container and returns its release.
func (n *Node) lock(container string) (unlock func()) {
	n.mu.Lock()
	l := n.locks[container]
	if l == nil {
		l = &containerLock{}
		n.locks[container] = l
	}
	l.users++
	n.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		n.mu.Lock()
		if l.users--; l.users == 0 {
			delete(n.locks, container)
		}
		n.mu.Unlock()
	}
}

func (n *Node) path(container, ext string) string {
	return filepath.Join(n.cfg.StateDir, container+ext)
}

func (n *Node) load(container string) (record, error) {
	var r record
	b, err := os.ReadFile(n.path(container, ".json"))
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("reading record of %s, %w", container, err)
	}
	return r, nil
}

func (n *Node) save(r record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := n.path(r.Container, ".json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("saving record of %s, %w", r.Container, err)
	}
	return os.Rename(tmp, n.path(r.Container, ".json"))
}

// containerCgroup is the cgroup of a container (with Config.Cgroup).
func (n *Node) containerCgroup(container string) cgroup.Group {
	return cgroup.Group{Path: filepath.Join(n.cfg.Cgroup.Path, container)}
}

// agentCgroup makes a container's cgroup, and in it its agent's, and opens
// the latter for the agent's start.
func (n *Node) agentCgroup(container string) (*os.File, error) {
	cg, err := n.cfg.Cgroup.Child(container)
	if err != nil {
		return nil, fmt.Errorf("the cgroup of %s, %w", container, err)
	}
	agent, err := cg.Child("agent")
	if err != nil {
		return nil, fmt.Errorf("the cgroup of %s, %w", container, err)
	}
	return agent.Open()
}

// forget removes a stopped container's record and, with cgroups, kills
// what is left in its cgroup and removes it.
func (n *Node) forget(container string) error {
	if n.cfg.Cgroup != nil {
		if err := n.containerCgroup(container).Remove(); err != nil {
			return fmt.Errorf("stopping %s, %w", container, err)
		}
	}
	_ = os.Remove(n.path(container, ".alive"))
	n.forgetReport(container)
	err := os.Remove(n.path(container, ".json"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing record of %s, %w", container, err)
	}
	return nil
}

func (n *Node) records() ([]record, error) {
	entries, err := os.ReadDir(n.cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("reading node state, %w", err)
	}
	var out []record
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		r, err := n.load(name)
		if errors.Is(err, os.ErrNotExist) {
			continue // stopped since the directory was read
		}
		if err != nil {
			return nil, err
		}
		if r.Manager == n.cfg.Manager && r.Server == n.cfg.Server {
			out = append(out, r)
		}
	}
	return out, nil
}

// agentKeyPipe returns the read end of a pipe holding the container's key
// (when the server has one) and the codec keys (agentapi.KeyLines), for
// its agent to read once: the keys never sit in an environment or a file
// its MicroService could read.
func agentKeyPipe(server trust.Key, codecKeys []trust.Key, container string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("handing %s its key, %w", container, err)
	}
	var ck trust.Key
	if server.Valid() {
		ck = trust.ContainerKey(server, container)
	}
	_, err = w.WriteString(agentapi.KeyLines(ck, codecKeys))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("handing %s its key, %w", container, err)
	}
	return r, nil
}
