// Package activities holds the manager-side activities: calls to the
// provider of the Manager's kind. They run on the manager task queue.
package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/standalone"
	"github.com/msm-project/msm/workflows"
)

// Activities are registered once per worker.
type Activities struct {
	// Providers by kind, for kinds whose provider is built at start. The
	// standalone provider is built from each request's server, which comes
	// from the catalog in force.
	Providers map[string]providers.Provider
}

// LaunchServer asks the provider for the server. It is idempotent by
// in.Key: a retry after a crash finds the server already launched.
func (a *Activities) LaunchServer(ctx context.Context, in workflows.LaunchServerInput) (workflows.LaunchServerResult, error) {
	p, err := a.provider(in.Kind, in.Server)
	if err != nil {
		return workflows.LaunchServerResult{}, err
	}
	defer heartbeat(ctx, launchBeat)()
	s, err := p.Create(ctx, in.Key, providers.Spec{Owner: in.Manager, Name: in.Server.ID})
	if err != nil {
		if providers.IsNoCapacity(err) {
			return workflows.LaunchServerResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("launching server %s, %v", in.Server.ID, err), workflows.ErrNoCapacity, err)
		}
		return workflows.LaunchServerResult{}, fmt.Errorf("launching server %s, %w", in.Server.ID, err)
	}
	return workflows.LaunchServerResult{ID: s.ID, Address: s.Address}, nil
}

// ReleaseServer gives an empty server back to its provider. A server
// already gone counts as released.
func (a *Activities) ReleaseServer(ctx context.Context, in workflows.ReleaseServerInput) error {
	p, err := a.provider(in.Kind, fleet.Server{ID: in.Server})
	if err != nil {
		return err
	}
	if err := p.Delete(ctx, in.Server); err != nil && !providers.IsNotFound(err) {
		return fmt.Errorf("releasing server %s, %w", in.Server, err)
	}
	return nil
}

// provider returns the provider of a kind; the standalone one is built from
// the server in hand, which comes from the catalog in force.
func (a *Activities) provider(kind string, s fleet.Server) (providers.Provider, error) {
	if kind == catalog.KindStandalone || kind == "" {
		return standalone.New([]catalog.Server{{Name: s.ID, Address: s.Address, Slots: s.Slots, Ports: s.Ports}}), nil
	}
	if p := a.Providers[kind]; p != nil {
		return p, nil
	}
	return nil, temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("this worker has no provider for kind %q; run a worker built with it", kind),
		workflows.ErrUnknownKind, nil)
}

// launchBeat is how often LaunchServer heartbeats while its provider works:
// well inside the heartbeat timeout the Provision gives it, so only a
// worker that died lets it time out (and be retried, by the same key).
const launchBeat = 5 * time.Second

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
