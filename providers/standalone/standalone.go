// Package standalone is the provider of the standalone kind: the servers are
// hosts from the catalog's list, each running `msm node`. Creating a server
// adopts a listed host; deleting it stops using the host, which keeps running.
package standalone

import (
	"context"
	"fmt"
	"sync"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/providers"
)

// Provider hands out the listed hosts.
type Provider struct {
	mu      sync.Mutex
	hosts   []catalog.Server
	adopted map[string]string // server name -> owner
}

// New returns a provider over the listed hosts.
func New(hosts []catalog.Server) *Provider {
	return &Provider{hosts: hosts, adopted: map[string]string{}}
}

func (p *Provider) host(name string) (catalog.Server, bool) {
	for _, h := range p.hosts {
		if h.Name == name {
			return h, true
		}
	}
	return catalog.Server{}, false
}

// Create adopts the listed host spec.Name; the key adds nothing, since a
// host's name already makes adoption idempotent.
func (p *Provider) Create(_ context.Context, _ string, spec providers.Spec) (providers.Server, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.host(spec.Name)
	if !ok {
		return providers.Server{}, fmt.Errorf("%w: %q is not in the catalog's server list; add it under manager.servers", providers.ErrNoCapacity, spec.Name)
	}
	if owner, taken := p.adopted[h.Name]; taken && owner != spec.Owner {
		return providers.Server{}, fmt.Errorf("%w: host %q is used by manager %q", providers.ErrNoCapacity, h.Name, owner)
	}
	p.adopted[h.Name] = spec.Owner
	return providers.Server{ID: h.Name, Address: h.Address, Owner: spec.Owner}, nil
}

// Get returns an adopted host.
func (p *Provider) Get(_ context.Context, id string) (providers.Server, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	owner, ok := p.adopted[id]
	h, listed := p.host(id)
	if !ok || !listed {
		return providers.Server{}, fmt.Errorf("%w: %q", providers.ErrNotFound, id)
	}
	return providers.Server{ID: h.Name, Address: h.Address, Owner: owner}, nil
}

// List returns the hosts adopted by owner, in list order.
func (p *Provider) List(_ context.Context, owner string) ([]providers.Server, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []providers.Server
	for _, h := range p.hosts {
		// Checked, not just compared: a host nobody adopted reads as owner
		// "" and is held for no one.
		if o, ok := p.adopted[h.Name]; ok && o == owner {
			out = append(out, providers.Server{ID: h.Name, Address: h.Address, Owner: owner})
		}
	}
	return out, nil
}

// Delete stops using the host.
func (p *Provider) Delete(_ context.Context, id string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.adopted, id)
	return nil
}
