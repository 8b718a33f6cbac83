// Package docker is the provider of the docker kind: its servers are the
// Docker engines listed in the catalog (this machine's by default, others by
// endpoint, over TLS). Creating a server starts its node container there
// (`msm node --docker`, from the Manager's image, with the engine's socket
// mounted), which starts and stops the server's containers through the same
// engine and watches its events; deleting the server removes the node
// container, anything of the Manager's left on that engine, and the
// Manager's network once nothing uses it.
//
// Everything msm creates on an engine carries the owner label
// (LabelOwner = the Manager's name), and containers are created by name, so
// a repeated create finds what the first one made (409 conflict → inspect →
// adopt when the labels say it is ours).
package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/cloudinit"
)

// Provider holds the Manager's engines.
type Provider struct {
	manager string
	cfg     catalog.Manager

	mu      sync.Mutex
	clients map[string]*client.Client // by server name
}

// New returns the provider of manager over the catalog's engines. It does
// no I/O; Check does.
func New(m catalog.Manager, manager string) *Provider {
	return &Provider{manager: manager, cfg: m, clients: map[string]*client.Client{}}
}

// Network is the network the Manager's containers join on every engine.
func Network(m catalog.Manager, manager string) string {
	if m.Docker.Network != "" {
		return m.Docker.Network
	}
	return "msm-" + manager
}

// NodeName is the name of server's node container.
func NodeName(manager, server string) string { return "msm-" + manager + "-node-" + server }

// ContainerName is the name of the Docker container of an msm container
// (whose ID already names its Manager).
func ContainerName(id string) string { return "msm-" + id }

func (p *Provider) engine(name string) (catalog.Server, *client.Client, error) {
	i := slices.IndexFunc(p.cfg.Servers, func(s catalog.Server) bool { return s.Name == name })
	if i < 0 {
		return catalog.Server{}, nil, fmt.Errorf("%w: %q is not an engine of the catalog; add it under manager.servers", providers.ErrNotFound, name)
	}
	s := p.cfg.Servers[i]
	p.mu.Lock()
	defer p.mu.Unlock()
	if c := p.clients[name]; c != nil {
		return s, c, nil
	}
	c, err := Dial(s.Endpoint, s.TLS)
	if err != nil {
		return s, nil, providers.Permanent(err)
	}
	p.clients[name] = c
	return s, c, nil
}

// Check asks every engine for its version and for the image, so a worker
// with an engine it cannot reach, or without the image, starts nothing and
// names the setting to fix.
func (p *Provider) Check(ctx context.Context) error {
	var errs []error
	for i, s := range p.cfg.Servers {
		_, c, err := p.engine(s.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("manager.servers[%d] (%s): %w", i, s.Name, err))
			continue
		}
		if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("manager.servers[%d] (%s): the Docker engine %s does not answer (%v); start it, or fix endpoint and tls", i, s.Name, endpointName(s.Endpoint), err))
			continue
		}
		if _, err := c.ImageInspect(ctx, p.cfg.Docker.Image); err != nil {
			errs = append(errs, fmt.Errorf("manager.docker.image: the engine of %s has no image %q (%v); build it there (`make image`) or load it, since msm never pulls", s.Name, p.cfg.Docker.Image, err))
		}
	}
	return errors.Join(errs...)
}

// Create starts the node container of engine spec.Name, or finds the one
// already started for key. An engine the catalog does not list is no
// capacity, as a standalone host that is not listed.
func (p *Provider) Create(ctx context.Context, key string, spec providers.Spec) (providers.Server, error) {
	s, c, err := p.engine(spec.Name)
	if providers.IsNotFound(err) {
		return providers.Server{}, fmt.Errorf("%w: %v", providers.ErrNoCapacity, err)
	}
	if err != nil {
		return providers.Server{}, err
	}
	net := Network(p.cfg, spec.Owner)
	if err := EnsureNetwork(ctx, c, net, spec.Owner); err != nil {
		return providers.Server{}, err
	}
	_, err = Run(ctx, c, Container{
		Name:   NodeName(spec.Owner, spec.Name),
		Key:    key,
		Labels: map[string]string{LabelOwner: spec.Owner, LabelServer: spec.Name, LabelRole: RoleNode},
		Config: container.Config{
			Image:      p.cfg.Docker.Image,
			Entrypoint: []string{p.cfg.Node.MSM},
			Cmd:        NodeArgs(p.cfg, spec.Name, spec.Owner),
			Env:        nodeEnv(spec),
		},
		Host: container.HostConfig{
			Binds:         []string{p.cfg.Docker.Socket + ":/var/run/docker.sock"},
			NetworkMode:   container.NetworkMode(net),
			ExtraHosts:    []string{HostGateway},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		},
	})
	if errors.Is(err, ErrNotOurs) {
		return providers.Server{}, fmt.Errorf("%w: engine %s: %v (another Manager of the same name, or an older key); remove it to use this engine", providers.ErrNoCapacity, spec.Name, err)
	}
	if err != nil {
		return providers.Server{}, fmt.Errorf("starting the node container on engine %s, %w", spec.Name, err)
	}
	return providers.Server{ID: spec.Name, Address: s.Address, Owner: spec.Owner}, nil
}

// NodeArgs are the arguments of `msm` in server's node container.
func NodeArgs(m catalog.Manager, server, manager string) []string {
	return append(cloudinit.NodeArgs(m.Node, server, manager),
		"--docker", "--docker-image", m.Docker.Image, "--docker-network", Network(m, manager))
}

// Get returns the server whose node container this Manager runs on the
// engine id.
func (p *Provider) Get(ctx context.Context, id string) (providers.Server, error) {
	s, c, err := p.engine(id)
	if err != nil {
		return providers.Server{}, err
	}
	got, err := c.ContainerInspect(ctx, NodeName(p.manager, id), client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return providers.Server{}, fmt.Errorf("%w: no node container of manager %s on engine %s", providers.ErrNotFound, p.manager, id)
	}
	if err != nil {
		return providers.Server{}, fmt.Errorf("inspecting the node container on engine %s, %w", id, err)
	}
	if got.Container.Config == nil || got.Container.Config.Labels[LabelOwner] != p.manager {
		return providers.Server{}, fmt.Errorf("%w: the node container on engine %s is not manager %s's", providers.ErrNotFound, id, p.manager)
	}
	return providers.Server{ID: id, Address: s.Address, Owner: p.manager}, nil
}

// List returns the engines on which owner's node container is, in catalog
// order.
func (p *Provider) List(ctx context.Context, owner string) ([]providers.Server, error) {
	var out []providers.Server
	for _, s := range p.cfg.Servers {
		_, c, err := p.engine(s.Name)
		if err != nil {
			return nil, err
		}
		nodes, err := Owned(ctx, c, map[string]string{LabelOwner: owner, LabelRole: RoleNode, LabelServer: s.Name})
		if err != nil {
			return nil, fmt.Errorf("engine %s: %w", s.Name, err)
		}
		if len(nodes) > 0 {
			out = append(out, providers.Server{ID: s.Name, Address: s.Address, Owner: owner})
		}
	}
	return out, nil
}

// Delete removes the node container of engine id and what this Manager
// left there for that server, then the Manager's network if it is unused.
// An engine the catalog no longer lists has nothing msm can reach: done.
func (p *Provider) Delete(ctx context.Context, id string) error {
	_, c, err := p.engine(id)
	if providers.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	left, err := Owned(ctx, c, map[string]string{LabelOwner: p.manager, LabelServer: id})
	if err != nil {
		return fmt.Errorf("engine %s: %w", id, err)
	}
	for _, ctr := range left {
		if err := Remove(ctx, c, ctr.ID); err != nil {
			return err
		}
	}
	return RemoveNetworkIfUnused(ctx, c, Network(p.cfg, p.manager), p.manager)
}

// JoinTokenEnv names the environment variable a node container gets its
// join token in: the node reads it and removes it from its environment;
// the agents' containers, where the MicroServices run, never get it.
const JoinTokenEnv = "MSM_JOIN_TOKEN"

// CodecKeysEnv names the environment variable a node container gets the
// payload keys in (trust.EncodeKeys), when payloads are encrypted: the node
// reads them, removes them from its environment and hands them to its
// agents' containers with their keys.
const CodecKeysEnv = "MSM_CODEC_KEYS"

// nodeEnv is the environment of a node container: its join token and the
// payload keys, those of spec it has.
func nodeEnv(spec providers.Spec) []string {
	var env []string
	if spec.JoinToken != "" {
		env = append(env, JoinTokenEnv+"="+spec.JoinToken)
	}
	if spec.CodecKeys != "" {
		env = append(env, CodecKeysEnv+"="+spec.CodecKeys)
	}
	return env
}
