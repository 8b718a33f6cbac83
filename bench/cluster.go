package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	dockerkind "github.com/msm-project/msm/providers/docker"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

// cluster is one Manager on the standalone kind: a worker and one node
// process per server, all on this machine.
type cluster struct {
	e       *benchEnv
	manager string
	dir     string
	procs   map[string]*exec.Cmd // by name: worker, s1, s2…
	// reportEvery is the nodes' usage report period ("0": none).
	reportEvery string
	// docker says the cluster is of the docker kind: its node and
	// containers are Docker containers labelled with the Manager's name.
	docker bool
}

// portBase keeps the clusters of a run (and of runs side by side, mostly)
// on ports of their own, below the kernel's ephemeral range.
var portBase = 24000 + int(time.Now().UnixNano()%40)*100

// newCluster starts a Manager with servers s1..sN of slots each and the
// given manager and services YAML (indented as in a catalog).
func (e *benchEnv) newCluster(servers, slots int, manager, services string) (*cluster, error) {
	return e.newClusterReporting(servers, slots, manager, services, "0")
}

// newClusterReporting is newCluster with nodes that send the Manager a
// usage report every reportEvery.
func (e *benchEnv) newClusterReporting(servers, slots int, manager, services, reportEvery string) (*cluster, error) {
	cl, err := e.prepare(reportEvery)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "manager:\n  kind: standalone\n%s  servers:\n", manager)
	base := portBase + (e.n%20)*300
	for i := 1; i <= servers; i++ {
		first := base + (i-1)*60
		fmt.Fprintf(&b, "    - {name: s%d, address: 127.0.0.1, slots: %d, ports: %d-%d}\n", i, slots, first, first+59)
	}
	b.WriteString("services:\n" + services)
	for i := 1; i <= servers; i++ {
		if err := cl.startNode(fmt.Sprintf("s%d", i)); err != nil {
			cl.close()
			return nil, err
		}
	}
	if err := cl.startWorker(b.String()); err != nil {
		cl.close()
		return nil, err
	}
	return cl, nil
}

// prepare names the next cluster and makes its directory.
func (e *benchEnv) prepare(reportEvery string) (*cluster, error) {
	e.n++
	cl := &cluster{e: e, manager: fmt.Sprintf("bench%d-%d", os.Getpid(), e.n), dir: filepath.Join(e.work, fmt.Sprint(e.n)),
		procs: map[string]*exec.Cmd{}, reportEvery: reportEvery}
	return cl, os.MkdirAll(cl.dir, 0o755)
}

// startWorker writes the catalog and starts the Manager's worker on it.
func (cl *cluster) startWorker(catalog string) error {
	path := filepath.Join(cl.dir, "catalog.yaml")
	if err := os.WriteFile(path, []byte(catalog), 0o644); err != nil {
		return err
	}
	return cl.start("worker", "worker", "--catalog", path)
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
	cl, err := e.prepare("0")
	if err != nil {
		return nil, err
	}
	cl.docker = true
	first := portBase + (e.n%20)*300
	catalog := fmt.Sprintf("manager:\n  kind: docker\n%s  docker: {image: %s}\n  node: {temporal: %q}\n  servers:\n"+
		"    - {name: local, address: 127.0.0.1, slots: %d, ports: %d-%d}\nservices:\n%s",
		manager, image, e.bridgeAddress, slots, first, first+59, services)
	if err := cl.startWorker(catalog); err != nil {
		cl.close()
		return nil, err
	}
	return cl, nil
}

func (cl *cluster) startNode(server string) error {
	return cl.start(server, "node", "--server", server)
}

func (cl *cluster) start(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(cl.e.bin, "msm"), args...)
	cmd.Dir = cl.dir
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS="+cl.e.address, "MSM_MANAGER="+cl.manager, "MSM_REPORT_EVERY="+cl.reportEvery,
		"MSM_STATE_DIR="+filepath.Join(cl.dir, "state-"+name))
	log, err := os.OpenFile(filepath.Join(cl.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting msm %s, %w", name, err)
	}
	cl.procs[name] = cmd
	return nil
}

// killServer kills server's node and every container process of it with
// SIGKILL, as a lost machine would take them.
func (cl *cluster) killServer(server string) {
	if p := cl.procs[server]; p != nil {
		_ = p.Process.Kill()
		_ = p.Wait()
		delete(cl.procs, server)
	}
	for _, pid := range cl.pids(nil) {
		env, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if bytes.Contains(env, []byte("\x00MSM_SERVER="+server+"\x00")) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// close stops the worker and nodes, then every process left with the
// Manager's name in its environment (agents and their MicroServices, which
// outlive a node by design).
func (cl *cluster) close() {
	// Its Manager ends with it (and its operations with the Manager):
	// every cluster's worker serves task queue msm, so a Manager left
	// running would be served, and its dead servers recovered, by the
	// next cluster's worker, in the middle of that cluster's figures.
	if err := cl.e.c.TerminateWorkflow(cl.e.ctx, workflows.ManagerID(cl.manager), "", "benchmark cluster closed"); err != nil {
		fmt.Fprintf(os.Stderr, "terminating Manager %s: %v\n", cl.manager, err)
	}
	for _, p := range cl.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range cl.procs {
		_ = p.Wait()
	}
	if cl.docker { // what make docker-clean removes
		// The node first: it may still take a start the worker asked for
		// and make a container after the list below was read.
		owner := "label=" + dockerkind.LabelOwner + "=" + cl.manager
		for _, filter := range [][]string{{owner, "label=" + dockerkind.LabelRole + "=" + dockerkind.RoleNode}, {owner}} {
			args := []string{"ps", "-aq"}
			for _, f := range filter {
				args = append(args, "--filter", f)
			}
			if ids, _ := dockerCLI(args...); ids != "" {
				_, _ = dockerCLI(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
			}
		}
		if ids, _ := dockerCLI("network", "ls", "-q", "--filter", owner); ids != "" {
			_, _ = dockerCLI(append([]string{"network", "rm"}, strings.Fields(ids)...)...)
		}
	}
	for _, pid := range cl.pids(nil) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// pids returns the processes whose environment names this Manager and
// whose command line holds every one of args.
func (cl *cluster) pids(args []string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, []byte("MSM_MANAGER="+cl.manager+"\x00")) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		all := true
		for _, a := range args {
			if !bytes.Contains(cmdline, []byte(a)) {
				all = false
			}
		}
		if all {
			out = append(out, pid)
		}
	}
	return out
}

func (cl *cluster) status() (workflows.Status, error) {
	return starter.Status(cl.e.ctx, cl.e.c, cl.manager)
}

// waitFor polls the Manager's status every 5 ms until ok holds, and returns
// that status and when it was seen.
func (cl *cluster) waitFor(what string, timeout time.Duration, ok func(workflows.Status) bool) (workflows.Status, time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last workflows.Status
	for time.Now().Before(deadline) {
		st, err := cl.status()
		if err == nil {
			last = st
			if ok(st) {
				return st, time.Now(), nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	b, _ := jsonIndent(last)
	return last, time.Time{}, fmt.Errorf("%w after %s waiting for %s (logs in %s); last status:\n%s", errTimeout, timeout, what, cl.dir, b)
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
