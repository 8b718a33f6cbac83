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
	return runWorker(ctx, cl, &c, cat, catalog.File{Path: *path}, e)
}

// runWorker serves the manager task queue, hands the Manager its catalog,
// and keeps handing it every valid change of the source until ctx ends.
func runWorker(ctx context.Context, cl client.Client, c *common, cat *catalog.Catalog, src catalog.Source, e *env) error {
	if err := starter.EnsureSearchAttributes(ctx, cl, c.namespace); err != nil {
		return err
	}
	w := worker.New(cl, &activities.Activities{})
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting worker, %w", err)
	}
	defer w.Stop()
	log := e.logger(c)
	if err := starter.StartManager(ctx, cl, c.manager, cat, src.String()); err != nil {
		return err
	}
	log.Info("manager worker running", "manager", c.manager, "catalog", src.String(),
		"services", len(cat.Services), "address", c.address, "namespace", c.namespace)
	first := true
	err := src.Watch(ctx, func(next *catalog.Catalog) {
		if first { // the catalog just handed over
			first = false
			return
		}
		log.Info("catalog changed", "source", src.String(), "services", len(next.Services))
		if err := starter.StartManager(ctx, cl, c.manager, next, src.String()); err != nil {
			log.Error("handing the Manager the changed catalog", "error", err)
		}
	}, func(err error) {
		log.Error("catalog change rejected; the catalog in force stays", "source", src.String(), "problems", err.Error())
		if err := starter.RejectCatalog(ctx, cl, c.manager, src.String(), err); err != nil {
			log.Error("telling the Manager", "error", err)
		}
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("watching the catalog %s, %w", src, err)
	}
	<-ctx.Done()
	return nil
}
