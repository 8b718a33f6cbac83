package docker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/msm-project/msm/catalog"
)

// Labels msm puts on what it creates on an engine. The owner label is the
// Manager's name: what carries it belongs to that Manager and is collected
// when the Manager no longer knows it.
const (
	LabelOwner     = "io.msm.owner"
	LabelServer    = "io.msm.server"
	LabelRole      = "io.msm.role" // RoleNode, RoleContainer or RoleAgentCopy
	LabelKey       = "io.msm.key"  // the idempotency key the object was created for
	LabelContainer = "io.msm.container"
	LabelPort      = "io.msm.port"

	RoleNode      = "node"
	RoleContainer = "container"
	// RoleAgentCopy is the short-lived container a docker node copies the
	// agent out of, for the containers of a service's own image (never
	// started; removed at once).
	RoleAgentCopy = "agent-copy"
)

// HostGateway names the engine's host inside every container msm starts,
// so a Temporal server on that host is host.docker.internal:PORT.
const HostGateway = "host.docker.internal:host-gateway"

// ErrPortInUse means the engine could not publish a container's port: a
// process or another container holds it on the engine's host.
var ErrPortInUse = errors.New("port in use on the engine's host")

// ErrNotOurs means a container of the name msm wanted is there, but was not
// created by msm for this key.
var ErrNotOurs = errors.New("name taken by a container msm did not create for this")

// Dial returns a client of the engine at endpoint ("" is the one the
// environment names: DOCKER_HOST, else the local socket), with TLS when
// given. The client negotiates the API version (its default), so older
// engines answer; it does no I/O.
func Dial(endpoint string, tls catalog.EngineTLS) (*client.Client, error) {
	var opts []client.Opt
	if endpoint == "" {
		opts = append(opts, client.FromEnv)
	} else {
		opts = append(opts, client.WithHost(endpoint))
	}
	if tls != (catalog.EngineTLS{}) {
		opts = append(opts, client.WithTLSClientConfig(tls.CA, tls.Cert, tls.Key))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("connecting to the Docker engine %s, %w", endpointName(endpoint), err)
	}
	return c, nil
}

func endpointName(endpoint string) string {
	if endpoint == "" {
		return "of this machine"
	}
	return "at " + endpoint
}

// EnsureNetwork creates the bridge network name with the owner label, unless
// it exists. A network of that name that another owner made is refused:
// containers on it would be another Manager's neighbours.
func EnsureNetwork(ctx context.Context, c client.APIClient, name, owner string) error {
	n, err := c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if err == nil {
		if o, ok := n.Network.Labels[LabelOwner]; ok && o != owner {
			return fmt.Errorf("the Docker network %s belongs to manager %q; set manager.docker.network to another name", name, o)
		}
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspecting Docker network %s, %w", name, err)
	}
	_, err = c.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: map[string]string{LabelOwner: owner},
	})
	if err != nil && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("creating Docker network %s, %w", name, err)
	}
	return nil
}

// RemoveNetworkIfUnused removes the network name of owner when no container
// is attached to it any more. One in use, gone, or not the owner's is left.
func RemoveNetworkIfUnused(ctx context.Context, c client.APIClient, name, owner string) error {
	n, err := c.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspecting Docker network %s, %w", name, err)
	}
	if n.Network.Labels[LabelOwner] != owner || len(n.Network.Containers) > 0 {
		return nil
	}
	_, err = c.NetworkRemove(ctx, name, client.NetworkRemoveOptions{})
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("removing Docker network %s, %w", name, err)
	}
	return nil
}

// Container is what Run needs to create one container.
type Container struct {
	Name   string
	Key    string // the idempotency key: a container of Name with another key is not this one
	Labels map[string]string
	Config container.Config // Image, Cmd, Entrypoint, Env; Labels are set from Labels and Key
	Host   container.HostConfig
	// Port, when set, is published on the engine's host as the same port.
	Port int
	// Prepare, when set, runs on the created container before it starts
	// (it copies files in); an error leaves nothing behind.
	Prepare func(ctx context.Context, id string) error
}

// Running is the container Run made or found.
type Running struct {
	ID      string
	PID     int
	Adopted bool // it already ran: nothing was created
}

// Run creates and starts c, idempotently by name: when a container of that
// name exists (409 conflict), it is inspected and adopted if it carries
// c's key and runs; if it is ours but stopped (its process died), it is
// removed and created anew; if it is not ours, ErrNotOurs. A port the host
// cannot publish fails with ErrPortInUse, leaving nothing behind.
func Run(ctx context.Context, cli client.APIClient, c Container) (Running, error) {
	labels := maps.Clone(c.Labels)
	labels[LabelKey] = c.Key
	cfg := c.Config
	cfg.Labels = labels
	host := c.Host
	if c.Port > 0 {
		p, err := network.ParsePort(fmt.Sprintf("%d/tcp", c.Port))
		if err != nil {
			return Running{}, err
		}
		cfg.ExposedPorts = network.PortSet{p: {}}
		host.PortBindings = network.PortMap{p: {{HostPort: fmt.Sprint(c.Port)}}}
	}
	for range 3 { // create; or adopt; or clear a dead one of ours and create again
		created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: c.Name, Config: &cfg, HostConfig: &host})
		if err == nil {
			return start(ctx, cli, c, created.ID)
		}
		if !cerrdefs.IsConflict(err) {
			return Running{}, fmt.Errorf("creating container %s, %w", c.Name, err)
		}
		got, err := cli.ContainerInspect(ctx, c.Name, client.ContainerInspectOptions{})
		if cerrdefs.IsNotFound(err) {
			continue // removed since the conflict
		}
		if err != nil {
			return Running{}, fmt.Errorf("inspecting container %s, %w", c.Name, err)
		}
		ctr := got.Container
		if ctr.Config == nil || ctr.Config.Labels[LabelKey] != c.Key || ctr.Config.Labels[LabelOwner] != c.Labels[LabelOwner] {
			return Running{}, fmt.Errorf("%w: container %s", ErrNotOurs, c.Name)
		}
		if ctr.State != nil && (ctr.State.Running || ctr.State.Restarting) {
			return Running{ID: ctr.ID, PID: ctr.State.Pid, Adopted: true}, nil
		}
		if ctr.State != nil && ctr.State.Status == container.StateCreated {
			return start(ctx, cli, c, ctr.ID) // created, then the creator died
		}
		if err := Remove(ctx, cli, ctr.ID); err != nil {
			return Running{}, err
		}
	}
	return Running{}, fmt.Errorf("creating container %s: its name stays taken; remove the container of that name", c.Name)
}

// start starts a created container; if the engine cannot publish its
// port, the container is removed and ErrPortInUse returned.
func start(ctx context.Context, cli client.APIClient, c Container, id string) (Running, error) {
	if c.Prepare != nil {
		if err := c.Prepare(ctx, id); err != nil {
			_ = Remove(context.WithoutCancel(ctx), cli, id)
			return Running{}, fmt.Errorf("preparing container %s, %w", c.Name, err)
		}
	}
	if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if portTaken(err) {
			_ = Remove(context.WithoutCancel(ctx), cli, id)
			return Running{}, fmt.Errorf("%w: port %d for %s: %v", ErrPortInUse, c.Port, c.Name, err)
		}
		return Running{}, fmt.Errorf("starting container %s, %w", c.Name, err)
	}
	got, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return Running{}, fmt.Errorf("inspecting container %s, %w", c.Name, err)
	}
	pid := 0
	if got.Container.State != nil {
		pid = got.Container.State.Pid
	}
	return Running{ID: id, PID: pid}, nil
}

// portTaken tells the engine's "cannot publish" errors: another container
// has the port ("port is already allocated"), or a host process ("address
// already in use").
func portTaken(err error) bool {
	s := err.Error()
	return strings.Contains(s, "port is already allocated") || strings.Contains(s, "address already in use")
}

// Remove stops and removes a container at once (the engine kills it); one
// already gone counts as removed.
func Remove(ctx context.Context, cli client.APIClient, id string) error {
	_, err := cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		if strings.Contains(err.Error(), "already in progress") {
			return nil
		}
		return fmt.Errorf("removing container %s, %w", id, err)
	}
	return nil
}

// Owned lists the containers (running or not) that carry every label of
// want, such as {LabelOwner: manager, LabelRole: RoleContainer}.
func Owned(ctx context.Context, cli client.APIClient, want map[string]string) ([]container.Summary, error) {
	f := client.Filters{}
	for k, v := range want {
		f.Add("label", k+"="+v)
	}
	out, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("listing containers, %w", err)
	}
	return out.Items, nil
}
