// Package activities holds the manager-side activities: calls to the
// provider of the Manager's kind. They run on the manager task queue.
package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/azure"
	"github.com/msm-project/msm/providers/docker"
	"github.com/msm-project/msm/providers/ec2"
	"github.com/msm-project/msm/providers/standalone"
	"github.com/msm-project/msm/workflows"
)

// Activities are registered once per worker.
type Activities struct {
	// Providers by kind, for kinds whose provider is built at start. The
	// standalone provider is built from each request's server, which comes
	// from the catalog in force.
	Providers map[string]providers.Provider
	// Cloud builds the provider of a kind with a provider API (ec2, azure,
	// docker) from the catalog's manager section; nil builds the real
	// clients.
	Cloud func(ctx context.Context, kind string, m catalog.Manager, manager string) (providers.Provider, error)
	// Ring is the Manager's key ring, nil when reports are not
	// authenticated: the servers a kind launches get their node's key
	// from it.
	Ring *trust.Ring
	// Codec are the payload keys, none when payloads are not encrypted:
	// the servers a kind launches get them for their node and agents.
	Codec []trust.Key
	// Client reaches Temporal for the activities that act on it rather
	// than on a provider: keeping the schedules of the catalog's rules
	// (SyncSchedules) and sending a scheduled floor (SendFloor).
	Client client.Client

	mu    sync.Mutex
	cache map[string]providers.Provider // by manager, kind and settings
}

// Build is the default Cloud: the real SDK clients.
func Build(ctx context.Context, kind string, m catalog.Manager, manager string) (providers.Provider, error) {
	switch kind {
	case catalog.KindEC2:
		return ec2.New(ctx, m, manager)
	case catalog.KindAzure:
		return azure.New(ctx, m, manager)
	case catalog.KindDocker:
		return docker.New(m, manager), nil
	}
	return nil, fmt.Errorf("this msm has no provider for kind %q", kind)
}

// LaunchServer asks the provider for the server. It is idempotent by
// in.Key: a retry after a crash finds the server already launched.
func (a *Activities) LaunchServer(ctx context.Context, in workflows.LaunchServerInput) (workflows.LaunchServerResult, error) {
	p, err := a.provider(ctx, in.Kind, in.Server, in.Config, in.Manager)
	if err != nil {
		return workflows.LaunchServerResult{}, err
	}
	defer heartbeat(ctx, launchBeat)()
	spec := providers.Spec{Owner: in.Manager, Name: in.Server.ID}
	if a.Ring != nil {
		spec.JoinToken = trust.ServerKey(a.Ring.Current(), in.Manager, in.Server.ID).Encode()
	}
	if len(a.Codec) > 0 {
		spec.CodecKeys = trust.EncodeKeys(a.Codec...)
	}
	s, err := p.Create(ctx, in.Key, spec)
	if err != nil {
		if providers.IsNoCapacity(err) {
			return workflows.LaunchServerResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("launching server %s, %v", in.Server.ID, err), workflows.ErrNoCapacity, err)
		}
		if providers.IsPermanent(err) {
			return workflows.LaunchServerResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("launching server %s, %v", in.Server.ID, err), workflows.ErrProviderConfig, err)
		}
		return workflows.LaunchServerResult{}, fmt.Errorf("launching server %s, %w", in.Server.ID, err)
	}
	return workflows.LaunchServerResult{ID: s.ID, Address: s.Address}, nil
}

// ReleaseServer gives an empty server back to its provider. It asks the
// provider first (Get): a server already gone (terminated behind msm's
// back, say) counts as released; one still there is deleted.
func (a *Activities) ReleaseServer(ctx context.Context, in workflows.ReleaseServerInput) error {
	p, err := a.provider(ctx, in.Kind, fleet.Server{ID: in.Server}, in.Config, in.Manager)
	if err != nil {
		return err
	}
	if _, err := p.Get(ctx, in.Server); providers.IsNotFound(err) {
		activity.GetLogger(ctx).Info("server already gone at its provider: released", "server", in.Server)
		return nil
	}
	if err := p.Delete(ctx, in.Server); err != nil && !providers.IsNotFound(err) {
		return fmt.Errorf("releasing server %s, %w", in.Server, err)
	}
	return nil
}

// provider returns the provider of a kind; the standalone one is built from
// the server in hand, which comes from the catalog in force.
func (a *Activities) provider(ctx context.Context, kind string, s fleet.Server, cfg *catalog.Manager, manager string) (providers.Provider, error) {
	if kind == catalog.KindStandalone || kind == "" {
		return standalone.New([]catalog.Server{{Name: s.ID, Address: s.Address, Slots: s.Slots, Ports: s.Ports}}), nil
	}
	if p := a.Providers[kind]; p != nil {
		return p, nil
	}
	if cfg != nil {
		return a.cloud(ctx, kind, *cfg, manager)
	}
	return nil, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("this worker has no provider for kind %q; run a worker built with it", kind),
		workflows.ErrUnknownKind, nil)
}

// Check verifies that a kind with a provider API (ec2, azure, docker) can
// work with the catalog's settings (credentials, endpoint, image), for a
// worker to refuse to start when it cannot; standalone and simulated pass.
func Check(ctx context.Context, m catalog.Manager, manager string) error {
	if m.Kind == catalog.KindStandalone || m.Kind == catalog.KindSimulated {
		return nil
	}
	p, err := Build(ctx, m.Kind, m, manager)
	if err != nil {
		return err
	}
	if c, ok := p.(interface{ Check(context.Context) error }); ok {
		return c.Check(ctx)
	}
	return nil
}

// cloud returns the provider of a launching kind for these settings,
// built once.
func (a *Activities) cloud(ctx context.Context, kind string, m catalog.Manager, manager string) (providers.Provider, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	key := manager + "\x00" + kind + "\x00" + string(b)
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.cache[key]; p != nil {
		return p, nil
	}
	build := a.Cloud
	if build == nil {
		build = Build
	}
	p, err := build(ctx, kind, m, manager)
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("building the %s provider, %v", kind, err), workflows.ErrProviderConfig, err)
	}
	if a.cache == nil {
		a.cache = map[string]providers.Provider{}
	}
	a.cache[key] = p
	return p, nil
}

// launchBeat is how often LaunchServer heartbeats while its provider works:
// well inside the heartbeat timeout the Provision gives it, so only a
// worker that died lets it time out (and be retried, by the same key).
// The SDK sends them to the server at most every 80 % of the timeout, and
// a heartbeat writes no history event.
const launchBeat = 500 * time.Millisecond

// heartbeat records a heartbeat every period until the returned stop is
// called.
func heartbeat(ctx context.Context, period time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}
