package main

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/msm-project/msm/internal/clustertest"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

// webService is the demo (at command) as service web: scaling decisions
// without a cooldown (the benchmark asks for them), a health check every
// 100 ms. In a Docker container it listens on all the container's
// addresses, so its published port reaches it.
func webService(command string, inDocker bool) string {
	listen := ""
	if inDocker {
		listen = `, "--listen=0.0.0.0"`
	}
	return fmt.Sprintf(`  - name: web
    command: %s
    args: ["--port={{.Port}}", "--name={{.Service}}"%s]
    replicas: {min: 1, initial: 1, max: 4}
    health: {path: /healthz, interval: 100ms, timeout: 1s}
    drain: 10ms
    scaling: {overload: 95, window: 1h, idle: 1, stabilization: 1h, cooldown: 1ms}
`, command, listen)
}

// webCluster is one server of 8 slots with service web and a warm pool of
// warm: on the standalone kind (nodes and containers as processes here),
// or on the docker kind (this machine's engine).
func (e *benchEnv) webCluster(onDocker bool, warm int) (*cluster, error) {
	pool := fmt.Sprintf("  warm_pool: %d\n", warm)
	if onDocker {
		return e.newDockerCluster(8, pool, webService(demoInImage, true))
	}
	return e.newCluster(1, 8, pool, webService(filepath.Join(e.bin, "demo"), false))
}

// demoInImage is where the msm image holds the demo MicroService.
const demoInImage = "/usr/local/bin/demo"

// healthyAt polls GET /healthz on port every millisecond until it answers
// 200, and returns when it did.
func healthyAt(port int, timeout time.Duration) (time.Time, error) {
	cl := &http.Client{Timeout: time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := cl.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("%w: nothing healthy on port %d after %s", errTimeout, port, timeout)
}

// baselineStart is the floor of B1 and B2: the same MicroService binary
// started by hand, from exec to its first healthy answer.
func baselineStart(e *benchEnv) ([]Figure, error) {
	var samples []time.Duration
	for range e.runs {
		d, err := execHealthy(e.bin, 1)
		if err != nil {
			return nil, err
		}
		samples = append(samples, d)
	}
	return []Figure{summarize("B0", "baseline: exec demo → first healthy answer", samples)}, nil
}

// execHealthy starts n demo MicroServices at once by hand, each on a port
// of its own, and returns how long until every one has answered healthy;
// it stops them before it returns.
func execHealthy(bin string, n int) (time.Duration, error) {
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	cmds := make([]*exec.Cmd, 0, n)
	defer func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	start := time.Now()
	for _, port := range ports {
		cmd := exec.Command(filepath.Join(bin, "demo"), "--port="+strconv.Itoa(port), "--name=web")
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		cmds = append(cmds, cmd)
	}
	ats := make([]time.Time, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, port := range ports {
		wg.Go(func() { ats[i], errs[i] = healthyAt(port, 10*time.Second) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	return slices.MaxFunc(ats, time.Time.Compare).Sub(start), nil
}

// scaleOut measures overload report → new instance healthy, as the
// Manager reports it, runs times; warm says whether a waiting container is
// kept for it.
func scaleOut(e *benchEnv, onDocker bool, id, name string, warm int, target time.Duration) ([]Figure, error) {
	cl, err := e.webCluster(onDocker, warm)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var samples []time.Duration
	var mgr opCost // what the extensions added to the Manager's history
	for range e.runs {
		st, _, err := cl.WaitFor("web at 1 and the warm pool full", time.Minute, func(st workflows.Status) bool {
			return settled(warm)(st) && len(healthy(st, "web")) == 1
		})
		if err != nil {
			return nil, err
		}
		from := healthy(st, "web")[0]
		before, err := e.historyLength(workflows.ManagerID(cl.Manager))
		if err != nil {
			return nil, err
		}
		// What the agent of an overloaded instance sends.
		start := time.Now()
		err = e.c.SignalWorkflow(e.ctx, workflows.ManagerID(cl.Manager), "", workflows.SignalOverload,
			workflows.OverloadSignal{Container: from.ID, Service: "web", Reason: "bench"})
		if err != nil {
			return nil, err
		}
		_, at, err := cl.WaitFor("a second healthy web", 30*time.Second, func(st workflows.Status) bool {
			return len(healthy(st, "web")) == 2
		})
		if err != nil {
			return nil, err
		}
		samples = append(samples, at.Sub(start))
		if _, _, err := cl.WaitFor("the extension over", 30*time.Second, func(st workflows.Status) bool { return st.Operations == 0 }); err != nil {
			return nil, err
		}
		c, err := e.costUntil(workflows.ManagerID(cl.Manager), before+1, workflows.WorkflowExtend)
		if err != nil {
			return nil, err
		}
		mgr.events += c.events
		mgr.actions += c.actions
		if _, err := starter.Update(e.ctx, e.c, cl.Manager, workflows.UpdateScale, workflows.ScaleUpdate{Service: "web", Replicas: 1}); err != nil {
			return nil, fmt.Errorf("scaling web back to 1, %w", err)
		}
	}
	f := summarize(id, name, samples)
	f.Baseline, f.Target = "B0", target
	// B6: each extension's child workflow, found by its search attributes.
	var child opCost
	q := fmt.Sprintf("MsmManager = '%s' AND MsmOperation = 'extend'", cl.Manager)
	var ops int
	var token []byte
	for {
		page, err := e.c.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("listing the extensions, %w", err)
		}
		for _, w := range page.Executions {
			c, err := e.cost(w.Execution.WorkflowId, 1)
			if err != nil {
				return nil, err
			}
			child.events += c.events
			child.actions += c.actions
			ops++
		}
		if token = page.NextPageToken; len(token) == 0 {
			break
		}
	}
	if ops == 0 {
		return nil, fmt.Errorf("no extension found with %s", q)
	}
	runs := float64(len(samples))
	cost := Figure{ID: id + "c", Name: "Temporal cost per " + strings.SplitN(name, ":", 2)[0] + ": actions (target ≤ 20 warm)", Runs: len(samples),
		Value: float64(mgr.actions)/runs + float64(child.actions)/float64(ops), Unit: "actions",
		Note: fmt.Sprintf("history events per operation: %.1f in the Manager + %.1f in the operation's own workflow (%d found); actions %.1f + %.1f",
			float64(mgr.events)/runs, float64(child.events)/float64(ops), ops, float64(mgr.actions)/runs, float64(child.actions)/float64(ops))}
	return []Figure{f, cost}, nil
}

func warmScaleOut(e *benchEnv) ([]Figure, error) {
	return scaleOut(e, false, "B1", "warm scale-out: overload → new instance healthy (waiting container)", 1, 250*time.Millisecond)
}

func coldScaleOut(e *benchEnv) ([]Figure, error) {
	return scaleOut(e, false, "B2", "scale-out: overload → new instance healthy (new container process)", 0, 400*time.Millisecond)
}

// settleThenScale waits until the Manager has settled, with a warm pool of
// warm, then scales web to n.
func (cl *cluster) settleThenScale(warm, n int) error {
	if _, _, err := cl.WaitFor("the Manager up", time.Minute, settled(warm)); err != nil {
		return err
	}
	_, err := starter.Update(cl.e.ctx, cl.e.c, cl.Manager, workflows.UpdateScale, workflows.ScaleUpdate{Service: "web", Replicas: n})
	return err
}

// dockerFigures are B1, B2 and B3 on the docker kind: the node and each
// container a Docker container on this machine's engine.
func dockerFigures(e *benchEnv) ([]Figure, error) {
	if _, err := clustertest.Docker("version"); err != nil || e.bridgeAddress == "" {
		fmt.Fprintln(os.Stderr, "docker kind figures skipped: no Docker engine with a default bridge answers")
		return nil, nil
	}
	floor, err := dockerBaseline(e)
	if err != nil {
		return nil, err
	}
	out := []Figure{floor}
	for _, f := range []func() ([]Figure, error){
		func() ([]Figure, error) {
			return scaleOut(e, true, "B1d", "docker kind: warm scale-out (waiting container)", 1, 250*time.Millisecond)
		},
		func() ([]Figure, error) {
			return scaleOut(e, true, "B2d", "docker kind: scale-out with a new container", 0, 400*time.Millisecond)
		},
		func() ([]Figure, error) {
			return recoverCrash(e, true, "B3d", "docker kind: MicroService crash (kill -9) → back at desired")
		},
	} {
		got, err := f()
		if err != nil {
			return nil, err
		}
		// The Temporal cost is the standalone figures' (B1c, B2c): the
		// same workflows whatever the kind.
		got = slices.DeleteFunc(got, func(f Figure) bool { return strings.HasSuffix(f.ID, "c") })
		for i := range got {
			if got[i].ID == "B2d" {
				got[i].Baseline = floor.ID // a new Docker container each
			}
		}
		out = append(out, got...)
	}
	return out, nil
}

// dockerBaseline is B2d's floor: `docker run` of the demo from the msm
// image, shaped as the docker node makes a container (on a network of its
// own, the port published on every address, host.docker.internal added),
// to its first healthy answer on the published port.
func dockerBaseline(e *benchEnv) (Figure, error) {
	image, err := e.msmImage()
	if err != nil {
		return Figure{}, err
	}
	network := fmt.Sprintf("msm-bench-floor-%d", os.Getpid())
	if out, err := clustertest.Docker("network", "create", network); err != nil {
		return Figure{}, fmt.Errorf("docker network create: %v: %s", err, out)
	}
	defer func() { _, _ = clustertest.Docker("network", "rm", network) }()
	var samples []time.Duration
	for i := range e.runs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return Figure{}, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		name := fmt.Sprintf("%s-%d", network, i)
		start := time.Now()
		out, err := clustertest.Docker("run", "-d", "--name", name, "--network", network, "-p", fmt.Sprintf("%d:%d", port, port),
			"--add-host", "host.docker.internal:host-gateway",
			"--entrypoint", demoInImage, image, fmt.Sprintf("--port=%d", port), "--listen=0.0.0.0", "--name=web")
		if err != nil {
			return Figure{}, fmt.Errorf("docker run: %v: %s", err, out)
		}
		at, err := healthyAt(port, 30*time.Second)
		_, _ = clustertest.Docker("rm", "-f", name)
		if err != nil {
			return Figure{}, err
		}
		samples = append(samples, at.Sub(start))
	}
	return summarize("B0d", "docker kind baseline: docker run of the demo, shaped as the node does → healthy", samples), nil
}

// crashRecovery kills the MicroService of one of two web instances and
// measures until two are healthy again.
func crashRecovery(e *benchEnv) ([]Figure, error) {
	return recoverCrash(e, false, "B3", "MicroService crash (kill -9) → back at desired replicas")
}

// recoverCrash is crashRecovery on either kind.
func recoverCrash(e *benchEnv, onDocker bool, id, name string) ([]Figure, error) {
	cl, err := e.webCluster(onDocker, 1)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := cl.settleThenScale(1, 2); err != nil {
		return nil, err
	}
	var samples []time.Duration
	for range e.runs {
		st, _, err := cl.WaitFor("web at 2 and the warm pool full", time.Minute, func(st workflows.Status) bool {
			return settled(1)(st) && len(healthy(st, "web")) == 2
		})
		if err != nil {
			return nil, err
		}
		victim := healthy(st, "web")[0]
		pids := cl.pids([]string{"demo", "--port=" + strconv.Itoa(victim.Port) + "\x00"})
		if len(pids) != 1 {
			return nil, fmt.Errorf("found %d MicroService processes on port %d", len(pids), victim.Port)
		}
		start := time.Now()
		if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
			return nil, err
		}
		_, at, err := cl.WaitFor("web back at 2", 30*time.Second, func(st workflows.Status) bool {
			h := healthy(st, "web")
			return len(h) == 2 && h[0].ID != victim.ID && h[1].ID != victim.ID
		})
		if err != nil {
			return nil, err
		}
		samples = append(samples, at.Sub(start))
	}
	f := summarize(id, name, samples)
	f.Target, f.Baseline = 500*time.Millisecond, "B0"
	return []Figure{f}, nil
}

// serverLoss kills the node and every container process of the server
// holding a web instance (a lost machine), and measures until web is back
// at desired on the other server. The node is then started again, and its
// stale containers fenced, before the next run.
func serverLoss(e *benchEnv) ([]Figure, error) {
	cl, err := e.newCluster(2, 4, "  warm_pool: 0\n", webService(filepath.Join(e.bin, "demo"), false))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := cl.settleThenScale(0, 2); err != nil {
		return nil, err
	}
	var samples []time.Duration
	for range e.runs {
		st, _, err := cl.WaitFor("web at 2 on ready servers", 2*time.Minute, func(st workflows.Status) bool {
			for _, s := range st.Servers {
				if s.State != "ready" {
					return false
				}
			}
			return settled(0)(st) && len(healthy(st, "web")) == 2
		})
		if err != nil {
			return nil, err
		}
		lost := healthy(st, "web")[0].Server
		start := time.Now()
		cl.KillServer(lost)
		_, at, err := cl.WaitFor("web back at 2 without "+lost, time.Minute, func(st workflows.Status) bool {
			h := healthy(st, "web")
			return len(h) == 2 && h[0].Server != lost && h[1].Server != lost
		})
		if err != nil {
			return nil, err
		}
		samples = append(samples, at.Sub(start))
		if err := cl.startNode(lost); err != nil {
			return nil, err
		}
	}
	f := summarize("B4", "server loss (node and containers killed) → back at desired, 5 s liveness window", samples)
	f.Target, f.Baseline = 5500*time.Millisecond, "B0"
	f.Note = "detection is the liveness window (manager.liveness, default 5 s): the lease's heartbeat timeout"
	return []Figure{f}, nil
}

// bulkService is the demo as service web with `initial` instances and the
// default health check interval.
const bulkService = `  - name: web
    command: %s
    args: ["--port={{.Port}}", "--name={{.Service}}"]
    replicas: {min: 1, initial: %d, max: %d}
`

// provisionAndIdle starts a Manager whose catalog asks for 200 instances on
// 4 servers of 50 slots and measures the time to all healthy (B5); then,
// with the 200 idle, the worker's memory and CPU (B7).
func provisionAndIdle(e *benchEnv) ([]Figure, error) {
	const n, servers = 200, 4
	// The dev server serves the whole run: its CPU is counted from here.
	serverCPU := e.serverCPU()
	start := time.Now()
	// The nodes report usage every 30 s, the default, which is what the
	// Manager's history takes at steady state.
	cl, err := e.newClusterReporting(servers, n/servers, "  warm_pool: 0\n", fmt.Sprintf(bulkService, filepath.Join(e.bin, "demo"), n, n), "30s")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	_, at, err := cl.WaitFor(fmt.Sprintf("%d healthy instances", n), 10*time.Minute, func(st workflows.Status) bool {
		return len(healthy(st, "web")) == n
	})
	if err != nil {
		return nil, err
	}
	took := at.Sub(start)
	e.profileProvision(cl, workflows.ManagerID(cl.Manager)+"/provision/1", serverCPU)
	b5 := Figure{ID: "B5", Name: fmt.Sprintf("provisioning 0 → %d containers on %d servers (one run)", n, servers), Runs: 1, P50: took, P95: took,
		Note: fmt.Sprintf("%.1f containers/s (target ≥ 20/s); from starting the worker and nodes to %d healthy", float64(n)/took.Seconds(), n)}

	// B7 and B6's steady state: the worker and the Manager's history, with
	// the 200 idle, over a window of two report periods.
	worker := cl.Cmd("worker").Process.Pid
	const window = 60 * time.Second
	cpu0, err := cpuTicks(worker)
	if err != nil {
		return nil, err
	}
	ev0, err := e.historyLength(workflows.ManagerID(cl.Manager))
	if err != nil {
		return nil, err
	}
	time.Sleep(window)
	cpu1, err := cpuTicks(worker)
	if err != nil {
		return nil, err
	}
	ev1, err := e.historyLength(workflows.ManagerID(cl.Manager))
	if err != nil {
		return nil, err
	}
	perHour := float64(ev1-ev0) / n / (window.Hours())
	steady := Figure{ID: "B6s", Name: "Temporal cost at steady state: history events per container-hour (target ≤ 30)", Runs: 1,
		Value: perHour, Unit: "ev/c·h",
		Note: fmt.Sprintf("%d events in the Manager's history over %s with %d containers idle on %d servers reporting usage every 30 s", ev1-ev0, window, n, servers)}
	rss, err := rssBytes(worker)
	if err != nil {
		return nil, err
	}
	cpu := float64(cpu1-cpu0) / 100 / window.Seconds() * 100 // percent of one core
	b7 := Figure{ID: "B7", Name: fmt.Sprintf("msm worker RSS with %d containers idle (target ≤ 150 MiB)", n), Runs: 1,
		Value: float64(rss) / (1 << 20), Unit: "MiB",
		Note: fmt.Sprintf("CPU %.2f%% of one core over %s idle", cpu, window)}
	return []Figure{b5, steady, b7}, nil
}

// cpuTicks is a process's user + system CPU time in clock ticks (1/100 s).
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	k, _ := strconv.ParseUint(f[12], 10, 64)
	return u + k, nil
}

// rssBytes is a process's resident set size.
func rssBytes(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for process %d", pid)
}

// historyLength is the number of events in the history of the workflow's
// current run (continue-as-new starts a new one).
func (e *benchEnv) historyLength(id string) (int64, error) {
	d, err := e.c.DescribeWorkflow(e.ctx, id, "")
	if err != nil {
		return 0, err
	}
	return d.RawResponse.GetWorkflowExecutionInfo().GetHistoryLength(), nil
}

// opCost is what one operation costs in Temporal: its child workflow's
// history, and what it added to the Manager's.
type opCost struct {
	events, actions int
}

// actionEvents are the history events that count as actions: workflow
// tasks, activities, signals, updates, child workflows and timers.
var actionEvents = map[enumspb.EventType]bool{
	enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:                           true,
	enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:                              true,
	enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:                              true,
	enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:                          true,
	enumspb.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED:         true,
	enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:             true,
	enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:                   true,
	enumspb.EVENT_TYPE_TIMER_STARTED:                                        true,
	enumspb.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: true,
}

// cost counts the events and actions of a workflow's history from event
// `from` (1-based) on.
func (e *benchEnv) cost(id string, from int64) (opCost, error) {
	return e.costUntil(id, from, "")
}

// costUntil is cost that stops, when child is not "", at the workflow task
// that follows the completion of the first child workflow of that type: the
// Manager's share of one operation, without the operation it starts next
// (a warm pool refill).
func (e *benchEnv) costUntil(id string, from int64, child string) (opCost, error) {
	var c opCost
	childDone := false
	it := e.c.GetWorkflowHistory(e.ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var first time.Time
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return c, err
		}
		if ev.EventId < from {
			continue
		}
		if e.trace != nil {
			if first.IsZero() {
				first = ev.EventTime.AsTime()
				fmt.Fprintf(e.trace, "%s\n", id)
			}
			fmt.Fprintf(e.trace, "  %7.1f ms  %3d %s\n", float64(ev.EventTime.AsTime().Sub(first))/1e6, ev.EventId, ev.EventType)
		}
		c.events++
		if actionEvents[ev.EventType] {
			c.actions++
		}
		if a := ev.GetChildWorkflowExecutionCompletedEventAttributes(); child != "" && a != nil && a.GetWorkflowType().GetName() == child {
			childDone = true
		}
		if childDone && ev.EventType == enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED {
			break
		}
	}
	return c, nil
}

// swarm is Docker Swarm on this machine's engine, serving the demo from
// the msm image as service msm-bench-web, each task's port published on the
// host (mode=host, a port the engine picks), so each task is checked alone.
type swarm struct {
	name   string
	joined bool // this run made the engine a swarm manager, and leaves
}

func startSwarm(image string) (*swarm, error) {
	sw := &swarm{name: fmt.Sprintf("msm-bench-web-%d", os.Getpid())}
	if state, err := clustertest.Docker("info", "--format", "{{.Swarm.LocalNodeState}}"); err != nil {
		return nil, fmt.Errorf("no Docker engine answers: %v: %s", err, state)
	} else if state != "active" {
		if out, err := clustertest.Docker("swarm", "init", "--advertise-addr", "127.0.0.1"); err != nil {
			return nil, fmt.Errorf("docker swarm init: %v: %s", err, out)
		}
		sw.joined = true
	}
	out, err := clustertest.Docker("service", "create", "-d", "--name", sw.name, "--replicas", "1",
		"--entrypoint", "/usr/local/bin/demo", "--publish", "mode=host,target=8080", image, "--port=8080", "--listen=0.0.0.0", "--name=web")
	if err != nil {
		sw.close()
		return nil, fmt.Errorf("docker service create: %v: %s", err, out)
	}
	return sw, nil
}

func (sw *swarm) close() {
	_, _ = clustertest.Docker("service", "rm", sw.name)
	if sw.joined {
		_, _ = clustertest.Docker("swarm", "leave", "--force")
		// swarm init made it, and leaving keeps it.
		_, _ = clustertest.Docker("network", "rm", "docker_gwbridge")
	}
}

// tasks returns the service's running task containers and their host ports.
func (sw *swarm) tasks() (map[string]int, error) {
	ids, err := clustertest.Docker("ps", "-q", "--filter", "label=com.docker.swarm.service.name="+sw.name, "--filter", "status=running")
	if err != nil {
		return nil, fmt.Errorf("docker ps: %v: %s", err, ids)
	}
	out := map[string]int{}
	for _, id := range strings.Fields(ids) {
		p, err := clustertest.Docker("port", id, "8080/tcp")
		if err != nil {
			continue // leaving
		}
		_, port, _ := strings.Cut(strings.Fields(p)[0], ":")
		if n, err := strconv.Atoi(port); err == nil {
			out[id] = n
		}
	}
	return out, nil
}

// newHealthy waits for a task container not in known to answer /healthz.
func (sw *swarm) newHealthy(known map[string]int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ts, err := sw.tasks()
		if err != nil {
			return time.Time{}, err
		}
		for id, port := range ts {
			if _, old := known[id]; old {
				continue
			}
			if at, err := healthyAt(port, time.Until(deadline)); err == nil {
				return at, nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("%w: no new healthy task of %s after %s", errTimeout, sw.name, timeout)
}

// settle waits until the service runs exactly n healthy tasks.
func (sw *swarm) settle(n int) (map[string]int, error) {
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		ts, err := sw.tasks()
		if err != nil {
			return nil, err
		}
		if len(ts) == n {
			ok := true
			for _, port := range ts {
				if _, err := healthyAt(port, time.Second); err != nil {
					ok = false
				}
			}
			if ok {
				return ts, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("%w: %s not at %d healthy tasks", errTimeout, sw.name, n)
}

// swarmFigures measures Docker Swarm beside B1 and B3, on the same engine
// and image: `docker service scale` to N+1 → the new task healthy, and a
// killed task → its replacement healthy.
func swarmFigures(e *benchEnv) ([]Figure, error) {
	if _, err := clustertest.Docker("version"); err != nil {
		fmt.Fprintln(os.Stderr, "Swarm figures skipped: no Docker engine answers")
		return nil, nil
	}
	image, err := e.msmImage() // the demo at /usr/local/bin
	if err != nil {
		return nil, err
	}
	sw, err := startSwarm(image)
	if err != nil {
		return nil, err
	}
	defer sw.close()
	var scale, kill []time.Duration
	for range e.runs {
		known, err := sw.settle(1)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if out, err := clustertest.Docker("service", "scale", "-d", sw.name+"=2"); err != nil {
			return nil, fmt.Errorf("docker service scale: %v: %s", err, out)
		}
		at, err := sw.newHealthy(known, time.Minute)
		if err != nil {
			return nil, err
		}
		scale = append(scale, at.Sub(start))
		if out, err := clustertest.Docker("service", "scale", "-d", sw.name+"=1"); err != nil {
			return nil, fmt.Errorf("docker service scale: %v: %s", err, out)
		}
	}
	for range e.runs {
		known, err := sw.settle(1)
		if err != nil {
			return nil, err
		}
		var victim string
		for id := range known {
			victim = id
		}
		start := time.Now()
		if out, err := clustertest.Docker("kill", victim); err != nil {
			return nil, fmt.Errorf("docker kill: %v: %s", err, out)
		}
		at, err := sw.newHealthy(known, time.Minute)
		if err != nil {
			return nil, err
		}
		kill = append(kill, at.Sub(start))
	}
	s1 := summarize("S1", "Swarm: docker service scale N+1 → new task healthy (beside B1)", scale)
	s1.Baseline = "B0"
	s1.Note = "includes the docker CLI's own start (~50 ms); a task answering its health check counts as healthy"
	s3 := summarize("S3", "Swarm: docker kill of a task → replacement healthy (beside B3)", kill)
	s3.Baseline = "B0"
	return []Figure{s1, s3}, nil
}

// profileProvision prints, on the trace, where a large provisioning spent
// its time: each activity type's count, wait (scheduled → started) and run
// (started → completed) in the operation's history, when its first and last
// completed, and the CPU each kind of process used.
func (e *benchEnv) profileProvision(cl *cluster, op string, serverCPU uint64) {
	if e.trace == nil {
		return
	}
	type span struct{ sched, start time.Time }
	open := map[int64]*span{}
	kind := map[int64]string{}
	waits, runs := map[string][]time.Duration{}, map[string][]time.Duration{}
	first, last := map[string]time.Time{}, map[string]time.Time{}
	var t0 time.Time
	it := e.c.GetWorkflowHistory(e.ctx, op, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	events := 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			fmt.Fprintf(e.trace, "reading %s: %v\n", op, err)
			return
		}
		events++
		at := ev.EventTime.AsTime()
		if t0.IsZero() {
			t0 = at
		}
		switch {
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			open[ev.EventId] = &span{sched: at}
			kind[ev.EventId] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
		case ev.GetActivityTaskStartedEventAttributes() != nil:
			id := ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()
			if s := open[id]; s != nil {
				s.start = at
				waits[kind[id]] = append(waits[kind[id]], at.Sub(s.sched))
			}
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			id := ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()
			if s := open[id]; s != nil && !s.start.IsZero() {
				k := kind[id]
				runs[k] = append(runs[k], at.Sub(s.start))
				if first[k].IsZero() {
					first[k] = at
				}
				last[k] = at
			}
		}
	}
	fmt.Fprintf(e.trace, "%s: %d events over %s\n", op, events, last["LoadService"].Sub(t0).Round(time.Millisecond))
	for _, k := range slices.Sorted(maps.Keys(waits)) {
		w, r := summarize("", "", waits[k]), summarize("", "", runs[k])
		fmt.Fprintf(e.trace, "  %-16s %4d  wait p50 %9s p95 %9s  run p50 %9s p95 %9s  completed %9s … %9s\n",
			k, len(waits[k]), ms(w.P50), ms(w.P95), ms(r.P50), ms(r.P95), ms(first[k].Sub(t0)), ms(last[k].Sub(t0)))
	}
	cpu := e.cpuByKind(cl.Manager)
	cpu[devServerCPU] -= serverCPU
	for _, k := range slices.Sorted(maps.Keys(cpu)) {
		fmt.Fprintf(e.trace, "  CPU %-22s %6.1f s\n", k, float64(cpu[k])/100)
	}
}

// devServerCPU is the dev server's key in cpuByKind.
const devServerCPU = "temporal (dev server)"

// cpuByKind is the CPU time used so far by the processes of a Manager, in
// clock ticks, by kind of process ("msm worker", "msm node", "msm-agent",
// "demo"), and by the dev server (devServerCPU).
func (e *benchEnv) cpuByKind(manager string) map[string]uint64 {
	cpu := map[string]uint64{}
	for _, p := range clustertest.Processes(manager) {
		name := filepath.Base(p.Args[0])
		if name == "msm" && len(p.Args) > 1 {
			name += " " + p.Args[1]
		}
		t, err := cpuTicks(p.PID)
		if err == nil {
			cpu[name] += t
		}
	}
	cpu[devServerCPU] = e.serverCPU()
	return cpu
}

// serverCPU is the CPU the dev server has used so far, in clock ticks (0
// when it cannot be read).
func (e *benchEnv) serverCPU() uint64 {
	pid, err := e.serverPID()
	if err != nil {
		return 0
	}
	t, _ := cpuTicks(pid)
	return t
}

// serverPID finds the dev server this run started, by its port.
func (e *benchEnv) serverPID() (int, error) {
	_, port, _ := strings.Cut(e.address, ":")
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if slices.Contains(args, "start-dev") && slices.Contains(args, port) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no dev server process with port %s", port)
}
