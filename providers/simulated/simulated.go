// Package simulated is the simulated kind: servers and containers that live
// inside the worker process, so a fleet of thousands of containers can be
// tried on one machine. The Manager, its workflows and the Temporal server
// are the real ones; what is simulated is the provider (servers launched
// and released in memory), the node agents (container starts and stops,
// leases, reconciles) and the container agents (loads, unloads), which one
// worker serves on workflows.SimulatedQueue with the same activities'
// contract as the real ones. Nothing is started and no port is bound.
//
// Faults are injected in process: Lose cuts servers off (their leases stop
// heartbeating and their steps hang, as on a partition), Crash reports a
// MicroService failure the way its agent would.
package simulated

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/startbatch"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/internal/version"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Signaler sends a signal to a workflow, as client.Client does; the
// simulated agents report failed MicroServices through it.
type Signaler interface {
	SignalWorkflow(ctx context.Context, workflowID, runID, signalName string, arg any) error
}

// World holds one Manager's simulated servers and containers.
type World struct {
	manager string
	cfg     catalog.Simulated

	mu         sync.Mutex
	servers    map[string]*server
	keys       map[string]string // launch key → server ID
	containers map[string]*container
	pid        int
	// changed is closed and replaced each time servers are restored, so
	// that steps hanging on a lost server look again.
	changed chan struct{}
	// Root, when Valid, signs the reports the world sends for its servers'
	// agents, each under its server's key (the Manager authenticates them).
	Root trust.Key
}

type server struct {
	id, owner string
	lost      bool
}

type container struct {
	id, server, manager string
	port, pid           int
	service             string
}

// New returns an empty world for manager with cfg's shape and delays.
func New(manager string, cfg catalog.Simulated) *World {
	return &World{manager: manager, cfg: cfg, servers: map[string]*server{}, keys: map[string]string{},
		containers: map[string]*container{}, pid: 100000, changed: make(chan struct{})}
}

// Address is the address a simulated server reports: nothing listens there.
func Address(server string) string { return server + ".simulated" }

// Create launches a simulated server; one key launches one server. The
// world holds at most cfg.Servers at once.
func (w *World) Create(_ context.Context, key string, spec providers.Spec) (providers.Server, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if id, ok := w.keys[key]; ok {
		if s := w.servers[id]; s != nil {
			return w.view(s), nil
		}
	}
	if len(w.servers) >= w.cfg.Servers {
		return providers.Server{}, fmt.Errorf("the simulated fleet holds its %d server(s) (manager.simulated.servers), %w", w.cfg.Servers, providers.ErrNoCapacity)
	}
	s := &server{id: spec.Name, owner: spec.Owner}
	w.servers[s.id] = s
	w.keys[key] = s.id
	return w.view(s), nil
}

func (w *World) view(s *server) providers.Server {
	return providers.Server{ID: s.id, Address: Address(s.id), Owner: s.owner}
}

// Get returns a simulated server.
func (w *World) Get(_ context.Context, id string) (providers.Server, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.servers[id]
	if s == nil {
		return providers.Server{}, fmt.Errorf("simulated server %s, %w", id, providers.ErrNotFound)
	}
	return w.view(s), nil
}

// List returns the simulated servers of owner, in ID order.
func (w *World) List(_ context.Context, owner string) ([]providers.Server, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []providers.Server
	for _, s := range w.servers {
		if s.owner == owner {
			out = append(out, w.view(s))
		}
	}
	slices.SortFunc(out, func(a, b providers.Server) int { return fleet.SeqOf(a.ID) - fleet.SeqOf(b.ID) })
	return out, nil
}

// Delete releases a simulated server and whatever still runs on it.
func (w *World) Delete(_ context.Context, id string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.servers, id)
	for cid, c := range w.containers {
		if c.server == id {
			delete(w.containers, cid)
		}
	}
	return nil
}

// Start serves the simulated nodes and agents of the world on
// workflows.SimulatedQueue, until the returned worker is stopped.
func (w *World) Start(c client.Client) (worker.Worker, error) {
	wk := worker.New(c, workflows.SimulatedQueue(w.manager), worker.Options{
		// Activities only; room for a lease per server beside the steps
		// in flight.
		DisableWorkflowWorker:              true,
		MaxConcurrentActivityExecutionSize: w.cfg.Servers + 4000,
		MaxConcurrentActivityTaskPollers:   8,
	})
	register(wk, w)
	if err := wk.Start(); err != nil {
		return nil, fmt.Errorf("starting the simulated fleet's worker on %s, %w", workflows.SimulatedQueue(w.manager), err)
	}
	return wk, nil
}

func register(r worker.ActivityRegistry, w *World) {
	for name, fn := range map[string]any{
		workflows.ActivityStartContainer:  w.StartContainer,
		workflows.ActivityStartContainers: w.StartContainers,
		workflows.ActivityStopContainer:   w.StopContainer,
		workflows.ActivityLease:           w.Lease,
		workflows.ActivityReconcile:       w.Reconcile,
		workflows.ActivityLoadService:     w.LoadService,
		workflows.ActivityReady:           w.Ready,
		workflows.ActivityUnloadService:   w.UnloadService,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}

// reach returns once server answers, as a node agent would: at once, or,
// while it is lost, when it is restored or ctx ends (a partition: the step
// hangs until the Manager gives up on it).
func (w *World) reach(ctx context.Context, server string) error {
	for {
		w.mu.Lock()
		s, changed := w.servers[server], w.changed
		lost := s != nil && s.lost
		w.mu.Unlock()
		if s == nil {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("server %s is not in the simulated fleet of manager %s", server, w.manager), "UnknownServer", nil)
		}
		if !lost {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// sleep waits d, or until ctx ends. In an activity that has a heartbeat
// timeout it heartbeats meanwhile, as a real agent's long load does: a
// load_delay longer than the load's heartbeat timeout is a slow load,
// not a dead agent.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	var beat <-chan time.Time
	if activity.IsActivity(ctx) && activity.GetInfo(ctx).HeartbeatTimeout > 0 {
		tick := time.NewTicker(max(activity.GetInfo(ctx).HeartbeatTimeout/5, 100*time.Millisecond))
		defer tick.Stop()
		beat = tick.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		case <-beat:
			activity.RecordHeartbeat(ctx)
		}
	}
}

// StartContainer starts a simulated container after cfg.StartDelay; the
// container ID is the idempotency key, and a port another container of the
// server holds fails with PortInUse, as on a real node.
func (w *World) StartContainer(ctx context.Context, in workflows.StartContainerInput) (workflows.StartContainerResult, error) {
	if err := w.reach(ctx, in.Server); err != nil {
		return workflows.StartContainerResult{}, err
	}
	w.mu.Lock()
	if c := w.containers[in.Container]; c != nil && c.server == in.Server && c.port == in.Port {
		w.mu.Unlock()
		return workflows.StartContainerResult{PID: c.pid, Attached: true}, nil
	}
	w.mu.Unlock()
	if err := sleep(ctx, w.cfg.StartDelay); err != nil {
		return workflows.StartContainerResult{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.containers {
		if c.server == in.Server && c.port == in.Port && c.id != in.Container {
			return workflows.StartContainerResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("server %s: port %d is held by container %s", in.Server, in.Port, c.id), workflows.ErrPortInUse, nil)
		}
	}
	w.pid++
	c := &container{id: in.Container, server: in.Server, manager: in.Manager, port: in.Port, pid: w.pid}
	w.containers[c.id] = c
	return workflows.StartContainerResult{PID: c.pid}, nil
}

// StartContainers starts a batch of simulated containers of one server,
// side by side, as a node does.
func (w *World) StartContainers(ctx context.Context, in workflows.StartContainersInput) (workflows.StartContainersResult, error) {
	return startbatch.Each(ctx, in, w.StartContainer), nil
}

// StopContainer stops a simulated container; one already gone counts as
// stopped.
func (w *World) StopContainer(ctx context.Context, in workflows.StopContainerInput) error {
	w.mu.Lock()
	c := w.containers[in.Container]
	w.mu.Unlock()
	if c == nil {
		return nil
	}
	if err := w.reach(ctx, c.server); err != nil {
		return err
	}
	w.mu.Lock()
	delete(w.containers, in.Container)
	w.mu.Unlock()
	return nil
}

// Lease heartbeats for server until the Manager cancels it; a lost server
// stops heartbeating, so the lease times out as with a dead node.
func (w *World) Lease(ctx context.Context, in workflows.LeaseInput) error {
	if in.Manager != w.manager {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("lease for manager %s reached the simulated fleet of manager %s", in.Manager, w.manager), "WrongNode", nil)
	}
	every := max(activity.GetInfo(ctx).HeartbeatTimeout/5, 100*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		w.mu.Lock()
		s := w.servers[in.Server]
		lost := s != nil && s.lost
		w.mu.Unlock()
		if s == nil {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("server %s is not in the simulated fleet of manager %s", in.Server, w.manager), "UnknownServer", nil)
		}
		if !lost {
			activity.RecordHeartbeat(ctx)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Reconcile stops the containers of the server that in does not keep (and
// that are not newer than its snapshot), and says what still runs.
func (w *World) Reconcile(ctx context.Context, in workflows.ReconcileInput) (workflows.ReconcileResult, error) {
	if err := w.reach(ctx, in.Server); err != nil {
		return workflows.ReconcileResult{}, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	out := workflows.ReconcileResult{Stopped: []string{}, Running: []string{}, Version: version.Get(), Wire: agentapi.Wire}
	for id, c := range w.containers {
		if c.server != in.Server || c.manager != in.Manager {
			continue
		}
		if slices.Contains(in.Keep, id) || fleet.SeqOf(id) > in.Seq {
			out.Running = append(out.Running, id)
			continue
		}
		delete(w.containers, id)
		out.Stopped = append(out.Stopped, id)
	}
	slices.Sort(out.Stopped)
	slices.Sort(out.Running)
	return out, nil
}

// agent returns a running container, as its agent answering on its queue.
func (w *World) agent(ctx context.Context, id string) (*container, error) {
	w.mu.Lock()
	c := w.containers[id]
	w.mu.Unlock()
	if c == nil {
		return nil, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("container %s is not running in the simulated fleet", id), "AgentAway", nil)
	}
	return c, w.reach(ctx, c.server)
}

// LoadService loads a service into a simulated container after
// cfg.LoadDelay; loading the same service again returns the loaded one.
func (w *World) LoadService(ctx context.Context, in workflows.LoadServiceInput) (workflows.LoadServiceResult, error) {
	begin := time.Now()
	c, err := w.agent(ctx, in.Container)
	if err != nil {
		return workflows.LoadServiceResult{}, err
	}
	w.mu.Lock()
	loaded := c.service == in.Service.Name && c.port == in.Port
	w.mu.Unlock()
	if loaded {
		return workflows.LoadServiceResult{PID: c.pid, Healthy: true, Attached: true}, nil
	}
	if err := sleep(ctx, w.cfg.LoadDelay); err != nil {
		return workflows.LoadServiceResult{}, err
	}
	w.mu.Lock()
	c.service = in.Service.Name
	w.mu.Unlock()
	return workflows.LoadServiceResult{PID: c.pid, Healthy: true, Took: time.Since(begin)}, nil
}

// Ready answers for a running simulated container.
func (w *World) Ready(ctx context.Context, id string) (workflows.ReadyResult, error) {
	c, err := w.agent(ctx, id)
	if err != nil {
		return workflows.ReadyResult{}, err
	}
	return workflows.ReadyResult{PID: c.pid}, nil
}

// UnloadService leaves a simulated container waiting.
func (w *World) UnloadService(ctx context.Context, id string) error {
	c, err := w.agent(ctx, id)
	if err != nil {
		return err
	}
	w.mu.Lock()
	c.service = ""
	w.mu.Unlock()
	return nil
}

// Lose cuts servers off: their leases stop heartbeating and their steps
// hang, as on a partition, until Restore.
func (w *World) Lose(servers ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range servers {
		if s := w.servers[id]; s != nil {
			s.lost = true
		}
	}
}

// Restore heals the partition of servers: their containers are still
// there, for the Manager's fence to stop.
func (w *World) Restore(servers ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range servers {
		if s := w.servers[id]; s != nil {
			s.lost = false
		}
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// Crash fails the MicroService of a container: it is unloaded and the
// Manager gets the error report its agent would send.
func (w *World) Crash(ctx context.Context, s Signaler, id, reason string) error {
	w.mu.Lock()
	c := w.containers[id]
	var service string
	if c != nil {
		service, c.service = c.service, ""
	}
	w.mu.Unlock()
	if c == nil || service == "" {
		return fmt.Errorf("container %s runs no service in the simulated fleet", id)
	}
	r := workflows.ErrorReport{Container: id, Service: service, Reason: reason, Cause: agentapi.CauseExit}
	if w.Root.Valid() {
		r.Auth = trust.Sign(trust.ServerKey(w.Root, w.manager, c.server), r.Fields()...)
	}
	if err := s.SignalWorkflow(ctx, workflows.ManagerID(w.manager), "", workflows.SignalErrorReport, r); err != nil {
		return fmt.Errorf("reporting the crash of %s, %w", id, err)
	}
	return nil
}

// Counts says how many servers and containers the world holds, and how
// many containers run a service.
func (w *World) Counts() (servers, containers, loaded int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.containers {
		if c.service != "" {
			loaded++
		}
	}
	return len(w.servers), len(w.containers), loaded
}
