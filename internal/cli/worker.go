package cli

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/activities"
	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/worker"
)

func (e *env) worker(args []string) error {
	var c common
	fs := e.flags("worker", &c)
	path := fs.String("catalog", e.getenv("MSM_CATALOG"), "catalog `file` (MSM_CATALOG)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(e.stderr, "msm worker: --catalog FILE is required (or set MSM_CATALOG)")
		return errUsage
	}
	cat, err := e.loadCatalog(*path, true)
	if err != nil {
		return err
	}
	ctx, stop := interrupted()
	defer stop()
	cl, err := e.dial(ctx, &c, 2*time.Minute)
	if err != nil {
		return err
	}
	defer cl.Close()
	return runWorker(ctx, cl, &c, cat, *path, e)
}

// runWorker serves the manager task queue and hands the Manager its catalog
// until ctx ends.
func runWorker(ctx context.Context, cl client.Client, c *common, cat *catalog.Catalog, source string, e *env) error {
	if err := starter.EnsureSearchAttributes(ctx, cl, c.namespace); err != nil {
		return err
	}
	w := worker.New(cl, &activities.Activities{})
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting worker, %w", err)
	}
	defer w.Stop()
	if err := starter.StartManager(ctx, cl, c.manager, cat, source); err != nil {
		return err
	}
	e.logger(c).Info("manager worker running", "manager", c.manager, "catalog", source,
		"services", len(cat.Services), "address", c.address, "namespace", c.namespace)
	<-ctx.Done()
	return nil
}
