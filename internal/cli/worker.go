package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/activities"
	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/catalog/pgcatalog"
	"github.com/msm-project/msm/internal/faults"
	"github.com/msm-project/msm/internal/metrics"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/internal/version"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/simulated"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/worker"
	"github.com/msm-project/msm/workflows"
)

func (e *env) worker(args []string) error {
	var c common
	fs := e.flags("worker", &c)
	path := fs.String("catalog", e.getenv("MSM_CATALOG"), "catalog: a YAML `file`, or a PostgreSQL DSN postgres://… (MSM_CATALOG)")
	keyFile := fs.String("key-file", e.getenv("MSM_KEY_FILE"), "the Manager's key ring, a `file` from `msm keys new`: reports are authenticated with it (MSM_KEY_FILE; without it any client of the namespace can report)")
	metricsAddr := fs.String("metrics-addr", e.getenv("MSM_METRICS_ADDR"), "serve Prometheus metrics on http://`host:port`/metrics (MSM_METRICS_ADDR; empty: none)")
	versioned := fs.Bool("versioned", e.getenv("MSM_VERSIONED") == "true", "serve as a version (this build) of the Worker Deployment msm-<manager>: operations stay on the build that began them, the Manager moves to the current version (MSM_VERSIONED=true; docs/operations.md, Upgrading msm)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(e.stderr, "msm worker: --catalog FILE is required (or set MSM_CATALOG)")
		return errUsage
	}
	var (
		src   catalog.Source
		first *catalog.Catalog
	)
	if isDSN(*path) {
		src = pgcatalog.Source{DSN: *path}
	} else {
		// A file is checked before anything else, so a bad one starts nothing.
		cat, err := e.loadCatalog(*path, true)
		if err != nil {
			return err
		}
		src = catalog.File{Path: *path}
		first = cat
	}
	var ring *trust.Ring
	if *keyFile != "" {
		r, err := trust.LoadRing(*keyFile)
		if err != nil {
			return fmt.Errorf("--key-file: %w", err)
		}
		ring = r
	}
	ctx, stop := interrupted()
	defer stop()
	if first != nil {
		// The cloud answers, with these credentials, and knows the image:
		// otherwise nothing starts and the setting is named.
		if err := activities.Check(ctx, first.Manager, c.Manager); err != nil {
			return fmt.Errorf("the %s kind cannot work with this catalog (nothing was started): %w", first.Manager.Kind, err)
		}
	}
	reg, err := e.metricsRegistry(*metricsAddr)
	if err != nil {
		return err
	}
	cl, err := e.dial(ctx, &c, 2*time.Minute)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := e.serveMetrics(ctx, &c, *metricsAddr, reg, cl); err != nil {
		return err
	}
	var dep worker.Deployment
	if *versioned {
		dep = worker.Deployment{Name: DeploymentOf(c.Manager), BuildID: version.Get()}
	}
	return runWorker(ctx, cl, &c, src, first, ring, dep, e)
}

// metricsRegistry is the registry of this process's metrics when they are
// served (addr not ""): the Go runtime's and the process's, and the
// Temporal SDK's, whose handler the clients this process dials from now on
// get (env.sdkMetrics).
func (e *env) metricsRegistry(addr string) (*prometheus.Registry, error) {
	if addr == "" {
		return nil, nil
	}
	reg, err := metrics.Registry()
	if err != nil {
		return nil, err
	}
	if e.sdkMetrics, err = metrics.SDK(reg); err != nil {
		return nil, err
	}
	if e.rejectedUpdates, err = metrics.RejectedUpdates(reg); err != nil {
		return nil, err
	}
	return reg, nil
}

// serveMetrics serves reg (nil: none) with the metrics of the Manager (its
// status, read by a query on each scrape) on addr, until ctx ends.
func (e *env) serveMetrics(ctx context.Context, c *common, addr string, reg *prometheus.Registry, cl client.Client) error {
	return e.serveWith(ctx, c, addr, reg, "the Manager's", metrics.NewManager(metrics.StatusFunc(func(ctx context.Context) (workflows.Status, error) {
		return starter.Status(ctx, cl, c.Manager)
	})))
}

// serveWith serves reg (nil: none), with what's metrics col, on addr
// until ctx ends.
func (e *env) serveWith(ctx context.Context, c *common, addr string, reg *prometheus.Registry, what string, col prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	if err := reg.Register(col); err != nil {
		return fmt.Errorf("registering %s metrics, %w", what, err)
	}
	at, err := metrics.Serve(ctx, addr, reg)
	if err != nil {
		return err
	}
	e.logger(c).Info("serving metrics", "url", "http://"+at+"/metrics")
	return nil
}

// isDSN tells a PostgreSQL connection string from a file path.
func isDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// runWorker serves the manager task queue, starts the Manager with the
// source's catalog, and keeps handing it every valid change until ctx ends.
// A first catalog (a file's) of the simulated kind also brings up its
// simulated fleet in this process.
//
// With a key ring, the Manager authenticates reports: the worker signs the
// catalogs it hands over, and the simulated fleet its reports.
func runWorker(ctx context.Context, cl client.Client, c *common, src catalog.Source, first *catalog.Catalog, ring *trust.Ring, dep worker.Deployment, e *env) error {
	if err := starter.EnsureSearchAttributes(ctx, cl, c.Namespace); err != nil {
		return err
	}
	crash, err := faults.FromEnv(e.getenv)
	if err != nil {
		return err
	}
	codecKeys, err := e.codecKeys(c)
	if err != nil {
		return err
	}
	acts := &activities.Activities{Codec: codecKeys, Client: cl}
	if first != nil && first.Manager.Kind == catalog.KindSimulated {
		world := simulated.New(c.Manager, first.Manager.Simulated)
		if ring != nil {
			world.Root = ring.Current()
		}
		acts.Providers = map[string]providers.Provider{catalog.KindSimulated: world}
		sim, err := world.Start(cl)
		if err != nil {
			return err
		}
		defer sim.Stop()
	}
	var key trust.Key
	interceptors := crash
	if ring != nil {
		key = trust.WorkerKey(ring.Current(), c.Manager)
		interceptors = append(interceptors, workflows.TrustInterceptor(ring))
		acts.Ring = ring
	}
	if e.tracing != nil {
		interceptors = append(interceptors, e.tracing.Decisions)
	}
	if e.rejectedUpdates != nil {
		interceptors = append(interceptors, e.rejectedUpdates)
	}
	w := worker.New(cl, acts, dep, interceptors...)
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting worker, %w", err)
	}
	defer w.Stop()
	log := e.logger(c)
	if dep != (worker.Deployment{}) {
		go firstVersion(ctx, cl, dep, log)
	}
	begun := false
	err = src.Watch(ctx, func(next *catalog.Catalog) {
		if err := starter.StartManager(ctx, cl, c.Manager, next, src.String(), key); err != nil {
			log.Error("handing the Manager its catalog", "error", err)
			return
		}
		if !begun {
			begun = true
			log.Info("manager worker running", "manager", c.Manager, "catalog", src.String(),
				"services", len(next.Services), "address", c.Address, "namespace", c.Namespace, "reports", reportsMode(ring))
			return
		}
		log.Info("catalog changed", "source", src.String(), "services", len(next.Services))
	}, func(err error) {
		log.Error("catalog change rejected; the catalog in force stays", "source", src.String(), "problems", err.Error())
		if err := starter.RejectCatalog(ctx, cl, c.Manager, src.String(), err, key); err != nil {
			log.Error("telling the Manager", "error", err)
		}
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("reading the catalog %s, %w", src, err)
	}
	<-ctx.Done()
	return nil
}

// reportsMode says how the Manager takes reports, for the log.
func reportsMode(ring *trust.Ring) string {
	if ring == nil {
		return "not authenticated (no --key-file)"
	}
	return "authenticated, keys " + strings.Join(ring.IDs(), ",")
}
