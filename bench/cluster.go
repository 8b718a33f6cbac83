package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/msm-project/msm/internal/clustertest"
	"github.com/msm-project/msm/workflows"
)

// cluster is one Manager on the run's dev server: a worker and one node
// process per server (the standalone kind), or a worker and the engine's
// containers (the docker kind), all on this machine.
type cluster struct {
	*clustertest.Cluster
	e *benchEnv
}

// blocks keep the clusters of a run (and of runs side by side: each locks
// its blocks) on ports of their own, below the kernel's ephemeral range.
var blocks = &clustertest.Blocks{First: 24000, Size: 300, Count: 20, Start: int(time.Now().UnixNano() % 20),
	SkipTaken: true, LockDir: filepath.Join(os.TempDir(), "msm-bench-port-blocks")}

// newCluster starts a Manager with servers s1..sN of slots each and the
// given manager and services YAML (indented as in a catalog).
func (e *benchEnv) newCluster(servers, slots int, manager, services string) (*cluster, error) {
	return e.newClusterReporting(servers, slots, manager, services, "0")
}

// newClusterReporting is newCluster with nodes that send the Manager a
// usage report every reportEvery.
func (e *benchEnv) newClusterReporting(servers, slots int, manager, services, reportEvery string) (*cluster, error) {
	cl, base, err := e.prepare(reportEvery, false)
	if err != nil {
		return nil, err
	}
	for i := 1; i <= servers; i++ {
		if err := cl.startNode(fmt.Sprintf("s%d", i)); err != nil {
			cl.Close()
			return nil, err
		}
	}
	if err := cl.startWorker(clustertest.Standalone(manager, clustertest.Servers(servers, slots, base, 60), services)); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

// prepare names the next cluster, makes its directory and returns the
// first port of its block. Its processes keep their state apart, and its
// status is the query, sampled every 5 ms.
func (e *benchEnv) prepare(reportEvery string, docker bool) (*cluster, int, error) {
	e.n++
	dir := filepath.Join(e.work, fmt.Sprint(e.n))
	cl := &cluster{e: e, Cluster: clustertest.New(clustertest.Config{
		Dir: dir, Manager: fmt.Sprintf("bench%d-%d", os.Getpid(), e.n), Msm: filepath.Join(e.bin, "msm"),
		ReportEvery: reportEvery, StateDirs: true, Query: true, Poll: 5 * time.Millisecond, Grace: time.Minute,
		Docker: docker, Address: e.address, Client: e.c,
	})}
	return cl, blocks.Next(), os.MkdirAll(dir, 0o755)
}

// startWorker writes the catalog and starts the Manager's worker on it.
func (cl *cluster) startWorker(catalog string) error {
	if err := cl.WriteCatalog(catalog); err != nil {
		return err
	}
	_, err := cl.Start("worker", nil, "worker", "--catalog", cl.Catalog)
	return err
}

// newDockerCluster starts a Manager of the docker kind on this machine's
// engine: one server ("local") of slots, the worker here, and the node and
// every container as Docker containers of the msm image, which reach the
// dev server on Docker's default bridge.
func (e *benchEnv) newDockerCluster(slots int, manager, services string) (*cluster, error) {
	if e.bridgeAddress == "" {
		return nil, errors.New("the docker kind needs the dev server on Docker's default bridge (docker0), and this machine has none")
	}
	image, err := e.msmImage()
	if err != nil {
		return nil, err
	}
	cl, first, err := e.prepare("0", true)
	if err != nil {
		return nil, err
	}
	catalog := fmt.Sprintf("manager:\n  kind: docker\n%s  docker: {image: %s}\n  node: {temporal: %q}\n  servers:\n"+
		"    - {name: local, address: 127.0.0.1, slots: %d, ports: %d-%d}\nservices:\n%s",
		manager, image, e.bridgeAddress, slots, first, first+59, services)
	if err := cl.startWorker(catalog); err != nil {
		cl.Close()
		return nil, err
	}
	return cl, nil
}

func (cl *cluster) startNode(server string) error {
	_, err := cl.Start(server, nil, "node", "--server", server)
	return err
}

// pids returns the processes of this Manager whose command line holds
// every one of args.
func (cl *cluster) pids(args []string) []int {
	var out []int
	for _, p := range clustertest.Processes(cl.Manager) {
		cmdline := strings.Join(p.Args, "\x00") + "\x00"
		all := true
		for _, a := range args {
			all = all && strings.Contains(cmdline, a)
		}
		if all {
			out = append(out, p.PID)
		}
	}
	return out
}

// settled: nothing in flight, every service at desired, and the warm pool
// full.
func settled(warm int) func(workflows.Status) bool {
	return func(st workflows.Status) bool { return st.Settled(warm) }
}

// healthy returns the loaded, healthy instances of service.
func healthy(st workflows.Status, service string) []workflows.ContainerStatus {
	var out []workflows.ContainerStatus
	for _, c := range st.Containers {
		if c.State == "loaded" && c.Healthy && c.Service == service {
			out = append(out, c)
		}
	}
	return out
}
