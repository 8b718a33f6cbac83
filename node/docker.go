package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"go.temporal.io/sdk/activity"
	tclient "go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/providers/docker"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// DockerConfig is what the node of a Docker engine needs.
type DockerConfig struct {
	Server  string
	Manager string
	// Engine is the engine this node runs containers on.
	Engine client.APIClient
	// Image holds the container agent at AgentCommand[0] and the services'
	// programs; Network is the bridge network the containers join.
	Image        string
	Network      string
	AgentCommand []string
	// AgentEnv is added to each agent's environment (Temporal settings).
	AgentEnv []string
	Log      *slog.Logger
	// Key is this server's key, as in Config: when Valid, the node signs
	// its reports.
	Key trust.Key
	// CodecKeys are the payload keys, handed to each agent container with
	// its key.
	CodecKeys []trust.Key
}

// Docker is the node agent of a Docker engine (`msm node --docker`, in a
// container on that engine): each msm container is a Docker container of
// the Manager's image running the container agent, its leased port
// published on the engine's host. The engine is the node's only state: what
// a container is and which port it has are its labels. The engine's events tell the node at
// once of a container that died or was cut from the network, which it
// reports to the Manager as it reports an exited agent process.
type Docker struct {
	cfg DockerConfig

	mu sync.Mutex
	// stopped are the containers this node stopped on purpose lately, whose
	// die events are not failures; reported are those already reported.
	stopped  map[string]time.Time
	reported map[string]bool
	// counts are what it did since it started (Stats).
	started, startFailed, stops, agentExits atomic.Int64
	// images are the services' own images it pulled and the agent it
	// copies into their containers (dockerimage.go).
	images images
	// beats heartbeats its leases (its client, set by Run).
	beats heartbeater
}

// statsTimeout bounds the engine's listing Stats makes.
const statsTimeout = 2 * time.Second

// Stats reads n's counts, and how many of its containers the engine runs
// now (Containers is -1 when the engine did not answer).
func (n *Docker) Stats() Stats {
	ctx, cancel := context.WithTimeout(context.Background(), statsTimeout)
	defer cancel()
	running := -1
	if list, err := docker.Owned(ctx, n.cfg.Engine, n.mine()); err == nil {
		running = 0
		for _, ctr := range list {
			if ctr.State == container.StateRunning {
				running++
			}
		}
	}
	return Stats{Containers: running, Started: n.started.Load(), StartFailed: n.startFailed.Load(),
		Stopped: n.stops.Load(), AgentExits: n.agentExits.Load()}
}

// NewDocker checks cfg.
func NewDocker(cfg DockerConfig) (*Docker, error) {
	if cfg.Server == "" || cfg.Manager == "" || cfg.Engine == nil || cfg.Image == "" || cfg.Network == "" || len(cfg.AgentCommand) == 0 {
		return nil, errors.New("a docker node needs its server, manager, engine, image, network and agent command")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Docker{cfg: cfg, stopped: map[string]time.Time{}, reported: map[string]bool{}}, nil
}

// mine are the labels of this node's containers.
func (n *Docker) mine() map[string]string {
	return map[string]string{docker.LabelOwner: n.cfg.Manager, docker.LabelServer: n.cfg.Server, docker.LabelRole: docker.RoleContainer}
}

// Run removes the containers of this server whose agent is gone, tells the
// Manager which still run, watches the engine's events and serves the
// node's task queue until ctx ends. Containers keep running when the node
// stops.
func (n *Docker) Run(ctx context.Context, c tclient.Client) error {
	kept, err := n.Reattach(ctx)
	if err != nil {
		return err
	}
	n.cfg.Log.Info("docker node up", "server", n.cfg.Server, "reattached", len(kept))
	n.beats = c
	go n.watchEvents(ctx, c)
	return serve(ctx, c, n.cfg.Log, n.cfg.Server, n.cfg.Manager, kept, activitiesOf{
		start: n.StartContainer, stop: n.StopContainer, lease: n.Lease, reconcile: n.Reconcile,
	}, n.cfg.Key)
}

// Reattach returns the containers of this server that still run, in ID
// order, and removes the others: their agent is gone, and the Manager,
// told they are missing, replaces them.
func (n *Docker) Reattach(ctx context.Context) ([]string, error) {
	list, err := docker.Owned(ctx, n.cfg.Engine, n.mine())
	if err != nil {
		return nil, err
	}
	kept := []string{}
	for _, ctr := range list {
		if ctr.State == container.StateRunning {
			kept = append(kept, ctr.Labels[docker.LabelContainer])
			continue
		}
		if err := n.remove(ctx, ctr.ID, 0); err != nil {
			return nil, err
		}
	}
	slices.Sort(kept)
	return kept, nil
}

// AgentCapabilities are all the capabilities a container's agent keeps
// (every other is dropped, and nothing it executes may gain one:
// no-new-privileges). It runs as root with these alone, to start its
// MicroService as the container's own user (SETUID, SETGID: the service
// then holds none) and to kill every process of that user (KILL); as
// another user than its agent, the service cannot read the agent's
// environment, which holds its key and Temporal settings.
var AgentCapabilities = []string{"CAP_KILL", "CAP_SETGID", "CAP_SETUID"}

// StartContainer runs the Docker container of one msm container: of the
// Manager's image, or of the service's own (in.Image; pulled when
// missing, the agent copied in: dockerimage.go). The
// container ID (with its port) is the idempotency key: a container of that
// name already running is adopted and nothing new is started. A port the
// engine cannot publish fails with the non-retryable PortInUse, so the
// Manager leases another; an image that cannot be pulled with
// ImageNotFound.
func (n *Docker) StartContainer(ctx context.Context, in workflows.StartContainerInput) (workflows.StartContainerResult, error) {
	spec := docker.Container{
		Name: docker.ContainerName(in.Container),
		Key:  in.Container + "@" + strconv.Itoa(in.Port),
		Labels: map[string]string{
			docker.LabelOwner: in.Manager, docker.LabelServer: in.Server, docker.LabelRole: docker.RoleContainer,
			docker.LabelContainer: in.Container, docker.LabelPort: strconv.Itoa(in.Port),
		},
		Config: container.Config{
			Image:      n.cfg.Image,
			Entrypoint: n.cfg.AgentCommand[:1],
			Cmd: append(slices.Clone(n.cfg.AgentCommand[1:]),
				"--container", in.Container, "--server", in.Server, "--manager", in.Manager),
			Env: append(append(append([]string{}, n.cfg.AgentEnv...),
				"MSM_CONTAINER="+in.Container, "MSM_SERVER="+in.Server, "MSM_MANAGER="+in.Manager), n.agentKeyEnv(in.Container)...),
		},
		Host: container.HostConfig{
			NetworkMode: container.NetworkMode(n.cfg.Network),
			ExtraHosts:  []string{docker.HostGateway},
			// A dead agent is replaced by the Manager, not restarted here.
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
			CapDrop:       []string{"ALL"},
			CapAdd:        AgentCapabilities,
			SecurityOpt:   []string{"no-new-privileges:true"},
		},
		Port: in.Port,
	}
	if in.Image != "" {
		if err := n.imageContainer(ctx, in, &spec); err != nil {
			n.startFailed.Add(1)
			return workflows.StartContainerResult{}, err
		}
	}
	r, err := docker.Run(ctx, n.cfg.Engine, spec)
	defer func() {
		switch {
		case err != nil:
			n.startFailed.Add(1)
		case !r.Adopted:
			n.started.Add(1)
		}
	}()
	if errors.Is(err, docker.ErrNotOurs) {
		// Ours, for another port (a stale container of the same ID from
		// an earlier Manager run): it goes, and the new one is made.
		got, ierr := n.cfg.Engine.ContainerInspect(ctx, spec.Name, client.ContainerInspectOptions{})
		if ierr == nil && got.Container.Config != nil && got.Container.Config.Labels[docker.LabelOwner] == in.Manager {
			if err := n.remove(ctx, got.Container.ID, 0); err != nil {
				return workflows.StartContainerResult{}, err
			}
			r, err = docker.Run(ctx, n.cfg.Engine, spec)
		}
	}
	if errors.Is(err, docker.ErrPortInUse) {
		return workflows.StartContainerResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("server %s: %v", n.cfg.Server, err), workflows.ErrPortInUse, err)
	}
	if errors.Is(err, docker.ErrNotOurs) {
		return workflows.StartContainerResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("server %s: %v; remove it (docker rm -f %s)", n.cfg.Server, err, spec.Name), "ContainerNameTaken", err)
	}
	if err != nil {
		return workflows.StartContainerResult{}, err
	}
	n.mu.Lock()
	delete(n.reported, in.Container)
	n.mu.Unlock()
	activity.GetLogger(ctx).Info("container started", "container", in.Container, "docker", r.ID[:12], "port", in.Port, "adopted", r.Adopted)
	return workflows.StartContainerResult{PID: r.PID, Attached: r.Adopted}, nil
}

// StopContainer stops (SIGTERM, then SIGKILL after stopGrace) and removes
// the Docker container of one msm container. One already gone counts as
// stopped.
func (n *Docker) StopContainer(ctx context.Context, in workflows.StopContainerInput) error {
	if err := n.remove(ctx, docker.ContainerName(in.Container), stopGrace); err != nil {
		return err
	}
	n.stops.Add(1)
	n.mu.Lock()
	delete(n.reported, in.Container)
	n.mu.Unlock()
	return nil
}

// remove stops a container within grace and removes it, remembering that
// its death is no failure.
func (n *Docker) remove(ctx context.Context, nameOrID string, grace time.Duration) error {
	got, err := n.cfg.Engine.ContainerInspect(ctx, nameOrID, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspecting container %s, %w", nameOrID, err)
	}
	n.mu.Lock()
	n.stopped[got.Container.ID] = time.Now()
	for id, at := range n.stopped {
		if time.Since(at) > time.Minute {
			delete(n.stopped, id)
		}
	}
	n.mu.Unlock()
	if ns := got.Container.NetworkSettings; ns != nil && ns.Networks[n.cfg.Network] == nil {
		grace = 0 // cut off: its agent cannot say goodbye to anyone
	}
	if grace > 0 && got.Container.State != nil && got.Container.State.Running {
		secs := int(grace / time.Second)
		_, err := n.cfg.Engine.ContainerStop(ctx, got.Container.ID, client.ContainerStopOptions{Timeout: &secs})
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("stopping container %s, %w", nameOrID, err)
		}
	}
	return docker.Remove(ctx, n.cfg.Engine, got.Container.ID)
}

// Lease heartbeats while this node runs (see Node.Lease).
func (n *Docker) Lease(ctx context.Context, in workflows.LeaseInput) error {
	return lease(ctx, in, n.cfg.Server, n.cfg.Manager, n.beats, n.cfg.Log)
}

// Reconcile removes the containers of this server the Manager does not
// keep (see Node.Reconcile).
func (n *Docker) Reconcile(ctx context.Context, in workflows.ReconcileInput) (workflows.ReconcileResult, error) {
	if err := wrongNode(in, n.cfg.Server, n.cfg.Manager); err != nil {
		return workflows.ReconcileResult{}, err
	}
	list, err := docker.Owned(ctx, n.cfg.Engine, n.mine())
	if err != nil {
		return workflows.ReconcileResult{}, err
	}
	hs := make([]held, 0, len(list))
	for _, ctr := range list {
		hs = append(hs, held{container: ctr.Labels[docker.LabelContainer], running: ctr.State == container.StateRunning})
	}
	return reconcile(ctx, in, hs, func(ctx context.Context, id string) error {
		return n.StopContainer(ctx, workflows.StopContainerInput{Container: id})
	})
}

// sweepEvery is how often the node also looks for dead containers, in case
// the event stream missed one (it was reconnecting).
const sweepEvery = 5 * time.Second

// watchEvents reports to the Manager, as an error report, every container
// of this server that dies without being stopped (killed, crashed, out of
// memory) or is disconnected from the Manager's network while it runs. The
// engine's event stream tells at once; a sweep every sweepEvery catches what
// a reconnecting stream missed.
func (n *Docker) watchEvents(ctx context.Context, c signaler) {
	f := client.Filters{}
	f.Add("type", string(events.ContainerEventType), string(events.NetworkEventType))
	f.Add("event", string(events.ActionDie), string(events.ActionDisconnect))
	sweep := time.NewTicker(sweepEvery)
	defer sweep.Stop()
	for ctx.Err() == nil {
		sub, cancel := context.WithCancel(ctx)
		res := n.cfg.Engine.Events(sub, client.EventsListOptions{Filters: f})
		n.sweep(ctx, c)
	stream:
		for {
			select {
			case <-ctx.Done():
				cancel()
				return
			case m := <-res.Messages:
				n.event(ctx, c, m)
			case err := <-res.Err:
				if ctx.Err() == nil {
					n.cfg.Log.Warn("engine event stream ended; reconnecting", "error", err)
				}
				break stream
			case <-sweep.C:
				n.sweep(ctx, c)
			}
		}
		cancel()
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// event handles one engine event.
func (n *Docker) event(ctx context.Context, c signaler, m events.Message) {
	switch {
	case m.Type == events.ContainerEventType && m.Action == events.ActionDie:
		a := m.Actor.Attributes // a container's attributes are its labels
		if a[docker.LabelOwner] != n.cfg.Manager || a[docker.LabelServer] != n.cfg.Server || a[docker.LabelRole] != docker.RoleContainer {
			return
		}
		why := "died"
		if code := a["exitCode"]; code != "" {
			why = "died (exit code " + code + ")"
		}
		n.failed(ctx, c, m.Actor.ID, a[docker.LabelContainer], "its Docker container "+why)
	case m.Type == events.NetworkEventType && m.Action == events.ActionDisconnect:
		if m.Actor.Attributes["name"] != n.cfg.Network {
			return
		}
		id := m.Actor.Attributes["container"]
		got, err := n.cfg.Engine.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil || got.Container.Config == nil || got.Container.State == nil || !got.Container.State.Running {
			return // gone or stopped: its die event tells
		}
		l := got.Container.Config.Labels
		if l[docker.LabelOwner] != n.cfg.Manager || l[docker.LabelServer] != n.cfg.Server || l[docker.LabelRole] != docker.RoleContainer {
			return
		}
		n.failed(ctx, c, id, l[docker.LabelContainer], "its Docker container was disconnected from network "+n.cfg.Network)
	}
}

// sweep reports the containers of this server found dead.
func (n *Docker) sweep(ctx context.Context, c signaler) {
	list, err := docker.Owned(ctx, n.cfg.Engine, n.mine())
	if err != nil {
		if ctx.Err() == nil {
			n.cfg.Log.Warn("listing containers", "error", err)
		}
		return
	}
	for _, ctr := range list {
		if ctr.State != container.StateRunning && ctr.State != container.StateCreated && ctr.State != container.StateRemoving {
			n.failed(ctx, c, ctr.ID, ctr.Labels[docker.LabelContainer], "its Docker container is "+string(ctr.State))
		}
	}
}

// failed reports a container to the Manager once, unless this node stopped
// it on purpose.
func (n *Docker) failed(ctx context.Context, c signaler, dockerID, container, reason string) {
	n.mu.Lock()
	_, stopped := n.stopped[dockerID]
	seen := n.reported[container]
	if !stopped && !seen {
		n.reported[container] = true
	}
	n.mu.Unlock()
	if stopped || seen || container == "" {
		return
	}
	n.agentExits.Add(1)
	n.cfg.Log.Warn("container failed", "container", container, "why", reason)
	rep := workflows.ErrorReport{Container: container, Reason: reason, Cause: agentapi.CauseAgentExit}
	rep.Auth = agentapi.Sign(n.cfg.Key, rep.Fields())
	if err := c.SignalWorkflow(ctx, workflows.ManagerID(n.cfg.Manager), "", workflows.SignalErrorReport, rep); err != nil && ctx.Err() == nil {
		n.cfg.Log.Warn("reporting a failed container", "container", container, "error", err)
		n.mu.Lock()
		delete(n.reported, container) // the sweep tries again
		n.mu.Unlock()
	}
}

// agentKeyEnv hands an agent container its container's key and the
// payload keys in its environment (agentapi.KeyEnv): there is no pipe into
// another container. Its MicroService runs as a user of its own and cannot
// read its agent's environment.
func (n *Docker) agentKeyEnv(container string) []string {
	var ck trust.Key
	if n.cfg.Key.Valid() {
		ck = trust.ContainerKey(n.cfg.Key, container)
	}
	if !ck.Valid() && len(n.cfg.CodecKeys) == 0 {
		return nil
	}
	return []string{agentapi.KeyEnv + "=" + agentapi.KeyLines(ck, n.cfg.CodecKeys)}
}
