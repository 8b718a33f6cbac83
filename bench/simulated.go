package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"go.temporal.io/api/workflowservice/v1"

	"github.com/msm-project/msm/activities"
	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/providers"
	"github.com/msm-project/msm/providers/simulated"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/worker"
	"github.com/msm-project/msm/workflows"
)

// simContainers is how many instances B9 provisions (-sim-containers).
var simContainers = 10000

// fleetScale is B9: the simulated kind through the real dev server, with
// the Manager's worker and the simulated fleet in this process. It
// provisions 0 → simContainers instances over 50 services, then sends 500
// overload reports over the 50 services, loses 20 servers at once and
// crashes 50 MicroServices, and waits after each until every service is
// back at desired. Decision latency is from a report (an overload signal,
// a lease timed out, a crash report) to the start of the operation that
// carries it out.
func fleetScale(e *benchEnv) ([]Figure, error) {
	const services, slots = 50, 21
	per := simContainers / services
	servers := simContainers/(slots-1) + 20 // room for what 20 lost servers held
	e.n++
	manager := fmt.Sprintf("sim%d", e.n)
	var b strings.Builder
	fmt.Fprintf(&b, "manager:\n  kind: simulated\n  warm_pool: %d\n  liveness: 30s\n  simulated: {servers: %d, slots: %d, start_delay: 5ms, load_delay: 5ms}\nservices:\n",
		services, servers, slots)
	for i := range services {
		fmt.Fprintf(&b, "  - name: svc-%02d\n    replicas: {initial: %d, min: 1, max: %d}\n", i+1, per, per+20)
	}
	cat, err := catalog.Parse([]byte(b.String()), "B9 catalog")
	if err != nil {
		return nil, fmt.Errorf("the B9 catalog, %w", err)
	}
	world := simulated.New(manager, cat.Manager.Simulated)
	w := worker.New(e.c, &activities.Activities{Providers: map[string]providers.Provider{catalog.KindSimulated: world}, Client: e.c}, worker.Deployment{})
	if err := w.Start(); err != nil {
		return nil, err
	}
	defer w.Stop()
	sim, err := world.Start(e.c)
	if err != nil {
		return nil, err
	}
	defer sim.Stop()
	defer func() { _ = starter.TerminateManager(e.ctx, e.c, manager, "bench over") }()

	desiredAll := func(st workflows.Status) bool {
		if len(st.Services) != services {
			return false
		}
		for _, s := range st.Services {
			if s.Ready < s.Desired {
				return false
			}
		}
		return true
	}
	began := time.Now()
	if err := starter.StartManager(e.ctx, e.c, manager, cat, "bench", trust.Key{}); err != nil {
		return nil, err
	}
	st, err := e.simWait(manager, "every service at its initial replicas", 30*time.Minute, desiredAll)
	if err != nil {
		return nil, err
	}
	took := time.Since(began)
	rate := float64(simContainers) / took.Seconds()
	events, runs, err := e.managerEvents(manager)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "B9: %d containers in %.1fs (%.0f/s), %d history events in %d runs (%.1f per container)\n",
		simContainers, took.Seconds(), rate, events, runs, float64(events)/float64(simContainers))
	figs := []Figure{
		{ID: "B9", Name: fmt.Sprintf("simulated kind: provisioning 0 → %d containers on up to %d servers (goal ≥ 200/s)", simContainers, servers),
			Runs: 1, Value: rate, Unit: "containers/s", Note: fmt.Sprintf("%.1f s; %.1f history events per container over %d workflow runs", took.Seconds(), float64(events)/float64(simContainers), runs)},
	}
	containersOf := func(st workflows.Status, service string) []string {
		var ids []string
		for _, c := range st.Containers {
			if c.Service == service && c.Healthy {
				ids = append(ids, c.ID)
			}
		}
		return ids
	}

	// 500 overload reports over the 50 services, 10 each.
	at := map[string]time.Time{}
	for i := range services {
		svc := fmt.Sprintf("svc-%02d", i+1)
		ids := containersOf(st, svc)
		at[svc] = time.Now()
		for j := range 10 {
			o := workflows.OverloadSignal{Container: ids[j%len(ids)], Service: svc, Reason: "bench"}
			if err := e.c.SignalWorkflow(e.ctx, workflows.ManagerID(manager), "", workflows.SignalOverload, o); err != nil {
				return nil, err
			}
		}
	}
	if _, err = e.simWait(manager, "every service back at desired after the overload reports", 10*time.Minute, func(st workflows.Status) bool {
		return desiredAll(st) && slices.ContainsFunc(st.Services, func(s workflows.ServiceStatus) bool { return s.Desired > per })
	}); err != nil {
		return nil, err
	}
	f, err := e.latencies(manager, "B9a", "overload report → extension started (500 reports over 50 services)", "extend", at)
	if err != nil {
		return nil, err
	}
	figs = append(figs, f)

	// 20 servers lost at once: the report is the lease timing out, which
	// the Manager's event log dates. A service's recovery is timed from
	// the loss of the first lost server it had an instance on.
	var lost []string
	hosted := map[string][]string{} // lost server → the services it ran
	for i := range 20 {
		s := fmt.Sprintf("%s-s%d", manager, i+1)
		lost = append(lost, s)
		for _, c := range st.Containers {
			if c.Server == s && c.Service != "" && !slices.Contains(hosted[s], c.Service) {
				hosted[s] = append(hosted[s], c.Service)
			}
		}
	}
	world.Lose(lost...)
	cut := time.Now()
	if st, err = e.simWait(manager, "every service back at desired after 20 servers were lost", 10*time.Minute, func(st workflows.Status) bool {
		n := 0
		for _, s := range st.Servers {
			if s.State == "lost" {
				n++
			}
		}
		return n == len(lost) && desiredAll(st) && st.Operations == 0
	}); err != nil {
		return nil, err
	}
	at = map[string]time.Time{}
	for _, ev := range st.Events {
		server, ok := strings.CutPrefix(ev.Message, "server ")
		if i := strings.Index(server, " lost: "); ok && i > 0 && ev.Time.After(cut) {
			for _, svc := range hosted[server[:i]] {
				if t, ok := at[svc]; !ok || ev.Time.Before(t) {
					at[svc] = ev.Time
				}
			}
		}
	}
	f, err = e.latencies(manager, "B9b", "20 servers lost at once: lease timed out → recovery started", "recover", at)
	if err != nil {
		return nil, err
	}
	f.Note = strings.TrimPrefix(fmt.Sprintf("%s; %d services had instances on the lost servers; detection (liveness 30s) not counted: %s from the cut to the last loss recorded",
		f.Note, len(at), lastLoss(st, cut).Sub(cut).Round(time.Second)), "; ")
	figs = append(figs, f)

	// 50 crashes, one per service.
	at = map[string]time.Time{}
	for i := range services {
		svc := fmt.Sprintf("svc-%02d", i+1)
		at[svc] = time.Now()
		if err := world.Crash(e.ctx, e.c, containersOf(st, svc)[0], "bench: exit status 2"); err != nil {
			return nil, err
		}
	}
	if _, err = e.simWait(manager, "every service back at desired after 50 crashes", 10*time.Minute, func(st workflows.Status) bool {
		return desiredAll(st) && st.Operations == 0
	}); err != nil {
		return nil, err
	}
	f, err = e.latencies(manager, "B9c", "50 MicroServices crashed: error report → recovery started", "recover", at)
	if err != nil {
		return nil, err
	}
	figs = append(figs, f)
	return figs, nil
}

// lastLoss is when the Manager recorded the last server lost after cut.
func lastLoss(st workflows.Status, cut time.Time) time.Time {
	last := cut
	for _, ev := range st.Events {
		if strings.Contains(ev.Message, " lost: ") && ev.Time.After(last) {
			last = ev.Time
		}
	}
	return last
}

// simWait polls the Manager's status until ok, printing progress.
func (e *benchEnv) simWait(manager, what string, timeout time.Duration, ok func(workflows.Status) bool) (workflows.Status, error) {
	deadline := time.Now().Add(timeout)
	var st workflows.Status
	var err error
	last := time.Now()
	for time.Now().Before(deadline) {
		st, err = starter.Status(e.ctx, e.c, manager)
		if err == nil && ok(st) {
			return st, nil
		}
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			fmt.Fprintf(os.Stderr, "  %s: %d healthy, %d operation(s) running\n", what, st.Count("loaded"), st.Operations)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return st, fmt.Errorf("%s: not within %s (last error %v), %w", what, timeout, err, errTimeout)
}

// managerEvents sums the history events of every workflow run of a
// Manager: its own runs (one per continue-as-new) and its operations'.
func (e *benchEnv) managerEvents(manager string) (events int64, managerRuns int, err error) {
	var token []byte
	for {
		resp, err := e.c.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("MsmManager = %q", manager), NextPageToken: token})
		if err != nil {
			return 0, 0, err
		}
		for _, x := range resp.Executions {
			events += x.GetHistoryLength()
			if x.GetExecution().GetWorkflowId() == workflows.ManagerID(manager) {
				managerRuns++
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			return events, managerRuns, nil
		}
	}
}

// latencies measures, per service reported at at[service], how long until
// the first operation of kind naming it started.
func (e *benchEnv) latencies(manager, id, name, kind string, at map[string]time.Time) (Figure, error) {
	first := map[string]time.Time{}
	var token []byte
	for {
		resp, err := e.c.ListWorkflow(e.ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("MsmManager = %q AND MsmOperation = %q", manager, kind), NextPageToken: token})
		if err != nil {
			return Figure{}, err
		}
		for _, x := range resp.Executions {
			started := x.GetStartTime().AsTime()
			for _, svc := range opServices(x.GetExecution().GetWorkflowId()) {
				if r, ok := at[svc]; ok && !started.Before(r) && (first[svc].IsZero() || started.Before(first[svc])) {
					first[svc] = started
				}
			}
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	var samples []time.Duration
	missing := 0
	for svc, r := range at {
		if s, ok := first[svc]; ok {
			samples = append(samples, s.Sub(r))
		} else {
			missing++
		}
	}
	f := summarize(id, name, samples)
	f.Target = time.Second
	if missing > 0 {
		f.Note = fmt.Sprintf("%d service(s) reported had no %s operation named for them (carried by another kind of operation)", missing, kind)
	}
	return f, nil
}

// opServices are the services an operation's workflow ID names:
// msm/<manager>/<kind>/<svc>[+<svc>…]/<n>.
func opServices(id string) []string {
	parts := strings.Split(id, "/")
	if len(parts) < 5 {
		return nil
	}
	return strings.Split(parts[3], "+")
}
