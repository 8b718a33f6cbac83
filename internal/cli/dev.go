package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/codec"
	"github.com/msm-project/msm/internal/devserver"
	"github.com/msm-project/msm/internal/metrics"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/node"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/worker"
	"github.com/msm-project/msm/workflows"
)

func (e *env) dev(args []string) error {
	var c common
	fs := e.flags("dev", &c)
	path := fs.String("catalog", e.or("MSM_CATALOG", "examples/catalog.yaml"), "catalog `file`")
	temporalBin := fs.String("temporal", e.getenv("MSM_TEMPORAL"), "Temporal CLI `binary` (default: temporal beside msm, then bin/temporal)")
	uiPort := fs.Int("ui-port", 8233, "Web UI `port` of the dev server msm starts")
	state := fs.String("state", ".msm", "`dir` for the dev server's database, node state and logs")
	codecAddr := fs.String("codec-listen", "127.0.0.1:8234", "`host:port` of the codec server msm dev runs for the Web UI and the temporal CLI")
	metricsAddr := fs.String("metrics-addr", e.or("MSM_METRICS_ADDR", "127.0.0.1:9464"), "serve the worker's Prometheus metrics on http://`host:port`/metrics (MSM_METRICS_ADDR; empty: none)")
	encrypt := fs.Bool("codec", true, "encrypt payloads (with --codec-key-file, else a key made under --state) and run the codec server; false leaves them in plain JSON")
	workers := fs.Int("workers", 0, "how many Manager workers to run: msm dev's own and `msm worker` processes beside it, to fail over to (MSM_WORKERS; default 2, 1 on the simulated kind)")
	if err := parse(fs, args); err != nil {
		return err
	}
	cat, err := e.loadCatalog(*path, true)
	if err != nil {
		return err
	}
	if cat.Manager.Kind != catalog.KindStandalone && cat.Manager.Kind != catalog.KindSimulated {
		return fmt.Errorf("msm dev runs the standalone and simulated kinds, and %s says kind %q; use `msm worker` for other kinds", *path, cat.Manager.Kind)
	}
	if *workers == 0 {
		if *workers, err = devWorkers(e.getenv("MSM_WORKERS"), cat.Manager.Kind); err != nil {
			return err
		}
	}
	if *workers < 1 {
		return fmt.Errorf("--workers %d: msm dev runs at least its own worker; give 1 or more", *workers)
	}
	if *workers > 1 && cat.Manager.Kind == catalog.KindSimulated {
		return fmt.Errorf("--workers %d: the simulated kind's servers and containers live inside one worker process, so it runs one worker; give --workers 1", *workers)
	}
	if err := os.MkdirAll(*state, 0o755); err != nil {
		return fmt.Errorf("creating %s, %w", *state, err)
	}
	// Reports are authenticated: the Manager's key ring is made once and
	// kept with the rest of the state.
	ringFile := filepath.Join(*state, "keys", "ring")
	if _, err := os.Stat(ringFile); errors.Is(err, os.ErrNotExist) {
		if err := trust.WriteKeys(ringFile, trust.Generate("dev1")); err != nil {
			return err
		}
	}
	ring, err := trust.LoadRing(ringFile)
	if err != nil {
		return err
	}
	// Payloads are encrypted too, with a key made once beside the ring,
	// and a codec server lets the Web UI and the temporal CLI read them.
	log := e.logger(&c)
	ctx, stop := interrupted()
	defer stop()
	codecURL := ""
	if !*encrypt {
		c.CodecKeyFile = ""
	} else {
		if c.CodecKeyFile == "" {
			c.CodecKeyFile = filepath.Join(*state, "keys", "codec")
		}
		if _, err := os.Stat(c.CodecKeyFile); errors.Is(err, os.ErrNotExist) {
			if err := trust.WriteKeys(c.CodecKeyFile, trust.Generate("dev1")); err != nil {
				return err
			}
		}
		cdc, err := codec.Load(c.CodecKeyFile)
		if err != nil {
			return fmt.Errorf("--codec-key-file: %w", err)
		}
		codecLn, err := net.Listen("tcp", *codecAddr)
		if err != nil {
			return fmt.Errorf("the codec server's address %s, %w (choose another with --codec-listen)", *codecAddr, err)
		}
		codecURL = "http://" + codecLn.Addr().String()
		go func() {
			origins := []string{fmt.Sprintf("http://localhost:%d", *uiPort), fmt.Sprintf("http://127.0.0.1:%d", *uiPort)}
			if err := serveCodec(ctx, codecLn, codecHandler(cdc, origins, "")); err != nil {
				log.Error("codec server", "error", err)
			}
		}()
	}

	if devserver.Answers(ctx, c.Address) {
		fmt.Fprintf(e.stdout, "Using the Temporal server already answering at %s\n", c.Address)
	} else {
		bin, err := findTemporal(*temporalBin)
		if err != nil {
			return err
		}
		logf, err := os.OpenFile(filepath.Join(*state, "temporal.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer logf.Close()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		srv, err := devserver.Start(sctx, devserver.Options{
			Binary: bin, Address: c.Address, UIPort: *uiPort, Namespace: c.Namespace,
			DBFile: filepath.Join(*state, "temporal.db"), SearchAttributes: workflows.SearchAttributeTypes,
			Output: logf, ExtraArgs: uiCodec(codecURL),
		})
		cancel()
		if err != nil {
			return fmt.Errorf("starting the Temporal dev server, %w", err)
		}
		defer func() {
			fmt.Fprintln(e.stdout, "Stopping the Temporal dev server")
			_ = srv.Stop()
		}()
		fmt.Fprintf(e.stdout, "Temporal dev server on %s (state in %s), Web UI at %s\n",
			srv.Address(), filepath.Join(*state, "temporal.db"), srv.UIURL())
		if codecURL != "" {
			fmt.Fprintf(e.stdout, "Payloads encrypted with %s; the Web UI and `temporal ... --codec-endpoint %s` read them\n", c.CodecKeyFile, codecURL)
		}
	}
	reg, err := e.metricsRegistry(*metricsAddr)
	if err != nil {
		return err
	}
	cl, err := e.dial(ctx, &c, 30*time.Second)
	if err != nil {
		return err
	}
	defer cl.Close()

	// Node agents for the servers on this machine, then the Manager.
	var nodes []*node.Node
	rctx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var wg sync.WaitGroup
	errs := make(chan error, len(cat.Manager.Servers)+1)
	for _, s := range cat.Manager.Servers {
		if !isLocal(s.Address) {
			fmt.Fprintf(e.stdout, "Server %s at %s is not on this machine: write its join token with `msm keys join-token --key-file %s --server %s --out FILE` and start `msm node --server %s --join-token-file FILE` there\n",
				s.Name, s.Address, ringFile, s.Name, s.Name)
			continue
		}
		cg, err := e.nodeCgroup(&c, e.getenv("MSM_CGROUPS"), s.Name)
		if err != nil {
			return err
		}
		n, err := e.newNode(&c, s.Name, filepath.Join(*state, "nodes", s.Name), e.durationOr("MSM_REPORT_EVERY", 30*time.Second),
			e.durationOr("MSM_REPORTS_EVERY", node.DefaultReportsEvery), trust.ServerKey(ring.Current(), c.Manager, s.Name), cg)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
		if reg != nil { // its nodes' metrics beside its worker's
			if err := reg.Register(metrics.NewNode(s.Name, n)); err != nil {
				return fmt.Errorf("registering the metrics of node %s, %w", s.Name, err)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.Run(rctx, cl); err != nil {
				errs <- fmt.Errorf("node %s, %w", s.Name, err)
			}
		}()
	}
	defer func() {
		cancelRun()
		wg.Wait()
		fmt.Fprintln(e.stdout, "Stopping containers")
		for _, n := range nodes {
			if err := n.StopAll(); err != nil {
				log.Error("stopping containers", "error", err)
			}
		}
	}()
	if err := e.serveMetrics(rctx, &c, *metricsAddr, reg, cl); err != nil {
		return err
	}
	if *metricsAddr != "" {
		fmt.Fprintf(e.stdout, "Metrics: http://%s/metrics\n", *metricsAddr)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := runWorker(rctx, cl, &c, catalog.File{Path: *path}, cat, ring, worker.Deployment{}, e); err != nil {
			errs <- fmt.Errorf("worker, %w", err)
		}
	}()

	if *workers > 1 {
		spec, err := e.devWorkerSpec(&c, *path, ringFile, *state, *metricsAddr != "")
		if err != nil {
			return err
		}
		var extra extraWorkers
		extra.start(rctx, spec, *workers-1, e.stdout)
		defer func() {
			cancelRun()
			extra.wait()
		}()
	}

	began := time.Now()
	done := false
	last := ""
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(e.stdout, "\nInterrupted: stopping everything msm dev started")
			return nil
		case err := <-errs:
			return err
		case <-tick.C:
		}
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := starter.Status(qctx, cl, c.Manager)
		cancel()
		if err != nil {
			continue
		}
		// A status of thousands of containers is megabytes the Manager's
		// worker renders between its own workflow tasks: ask less often.
		tick.Reset(pollEvery(len(st.Containers)))
		if line := progress(st); line != last {
			fmt.Fprintf(e.stdout, "[%5.1fs] %s\n", time.Since(began).Seconds(), line)
			last = line
		}
		if !done && converged(st, cat) {
			done = true
			fmt.Fprintf(e.stdout, "\nAll %d services healthy in %.1fs.\n\n", len(st.Services), time.Since(began).Seconds())
			printStatus(e.stdout, st)
			fmt.Fprintf(e.stdout, "\nTry:  bin/msm status        curl http://127.0.0.1:%d/\n", firstPort(st))
			fmt.Fprintln(e.stdout, "Ctrl-C stops the dev server, the Manager and every container.")
		}
	}
}

// devWorkers is how many workers msm dev runs by default on kind, or as
// MSM_WORKERS says.
func devWorkers(setting, kind string) (int, error) {
	if setting != "" {
		n, err := strconv.Atoi(setting)
		if err != nil {
			return 0, fmt.Errorf("MSM_WORKERS=%q is not a number of workers: give 1 or more", setting)
		}
		return n, nil
	}
	if kind == catalog.KindSimulated {
		return 1, nil
	}
	return 2, nil
}

// pollEvery is how often msm dev asks the Manager for its status when it
// holds n containers: every 500 ms up to 2,000, then 500 ms more per
// 2,000 (10,000 containers: every 2.5 s).
func pollEvery(n int) time.Duration {
	return 500 * time.Millisecond * time.Duration(max(1, (n+1999)/2000))
}

// findTemporal locates the Temporal CLI without ever downloading it.
func findTemporal(flagValue string) (string, error) {
	var candidates []string
	if flagValue != "" {
		candidates = append(candidates, flagValue)
	} else {
		if self, err := os.Executable(); err == nil {
			candidates = append(candidates, filepath.Join(filepath.Dir(self), "temporal"))
		}
		candidates = append(candidates, filepath.Join("bin", "temporal"))
	}
	for _, p := range candidates {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("no Temporal CLI at %s: build it with `make bin/temporal` (or pass --temporal)", strings.Join(candidates, " or "))
}

func isLocal(address string) bool {
	if address == "localhost" {
		return true
	}
	ip := net.ParseIP(address)
	return ip != nil && ip.IsLoopback()
}

func progress(st workflows.Status) string {
	var parts []string
	for _, s := range st.Services {
		parts = append(parts, fmt.Sprintf("%s %d/%d", s.Name, s.Ready, s.Desired))
	}
	parts = append(parts, fmt.Sprintf("warm pool %d", waiting(st)))
	return strings.Join(parts, ", ")
}

func converged(st workflows.Status, cat *catalog.Catalog) bool {
	for _, s := range st.Services {
		if s.Ready < s.Desired {
			return false
		}
	}
	return len(st.Services) == len(cat.Services) && waiting(st) >= cat.Manager.WarmPool
}

func waiting(st workflows.Status) int {
	n := 0
	for _, c := range st.Containers {
		if c.State == string(fleet.Waiting) {
			n++
		}
	}
	return n
}

func firstPort(st workflows.Status) int {
	i := slices.IndexFunc(st.Containers, func(c workflows.ContainerStatus) bool { return c.Healthy })
	if i < 0 {
		return 0
	}
	return st.Containers[i].Port
}

// uiCodec is the dev server's arguments for the Web UI's codec server.
func uiCodec(url string) []string {
	if url == "" {
		return nil
	}
	return []string{"--ui-codec-endpoint", url}
}
