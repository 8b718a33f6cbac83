package main

import (
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

// sideBySide is B10: 20 services extended at once against one alone. Each
// of the 20 services has one instance and the warm pool 20 waiting
// containers, so every extension is one load; one alone (B10a) is the
// baseline, and 20 at once (B10) should take at most 1.5× its time, as
// their operations run side by side.
func sideBySide(e *benchEnv) ([]Figure, error) {
	const n = 20
	var services strings.Builder
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("svc%02d", i+1)
		fmt.Fprintf(&services, "  - name: %s\n    command: %s/demo\n    args: [\"--port={{.Port}}\", \"--name={{.Service}}\"]\n    replicas: {min: 1, initial: 1, max: 3}\n",
			names[i], e.bin)
	}
	cl, err := e.newCluster(2, 2*n, fmt.Sprintf("  warm_pool: %d\n", n), services.String())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	// cpu adds up, by kind of process, the CPU used while the 20 were
	// extended: what bounds B10 on a machine of few cores.
	cpu := map[string]uint64{}
	// extend asks for one more instance of each service at once, and
	// returns how long until every one has two healthy instances.
	extend := func(svcs []string) (time.Duration, error) {
		if _, _, err := cl.WaitFor("every service at 1 and the warm pool full", 2*time.Minute, settled(n)); err != nil {
			return 0, err
		}
		before, err := e.historyLength(workflows.ManagerID(cl.Manager))
		if err != nil {
			return 0, err
		}
		cpuBefore := e.cpuByKind(cl.Manager)
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, len(svcs))
		for i, s := range svcs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = starter.Update(e.ctx, e.c, cl.Manager, workflows.UpdateExtend, workflows.ExtendUpdate{Service: s, Count: 1, Reason: "bench"})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return 0, err
			}
		}
		_, at, err := cl.WaitFor("the extended services at 2", time.Minute, func(st workflows.Status) bool {
			for _, s := range svcs {
				if len(healthy(st, s)) != 2 {
					return false
				}
			}
			return true
		})
		if err != nil {
			return 0, err
		}
		took := at.Sub(start)
		if len(svcs) == n {
			for k, t := range e.cpuByKind(cl.Manager) {
				cpu[k] += t - min(t, cpuBefore[k])
			}
		}
		if e.trace != nil { // -trace: the Manager's history of the extensions
			child := ""
			if len(svcs) == 1 {
				child = workflows.WorkflowExtend
			}
			if _, err := e.costUntil(workflows.ManagerID(cl.Manager), before+1, child); err != nil {
				return 0, err
			}
			if len(svcs) == 1 {
				it := e.c.GetWorkflowHistory(e.ctx, workflows.ManagerID(cl.Manager), "", false, 0)
				for it.HasNext() {
					ev, _ := it.Next()
					if a := ev.GetChildWorkflowExecutionStartedEventAttributes(); a != nil && ev.EventId > before {
						_, _ = e.cost(a.WorkflowExecution.WorkflowId, 1)
						break
					}
				}
			}
		}
		// Scaled back once the pool's refill is over, so each run starts
		// from the same fleet.
		if _, _, err := cl.WaitFor("the pool refilled", time.Minute, func(st workflows.Status) bool {
			return st.Operations == 0 && st.Count("waiting") == n
		}); err != nil {
			return 0, err
		}
		for _, s := range svcs {
			if _, err := starter.Update(e.ctx, e.c, cl.Manager, workflows.UpdateScale, workflows.ScaleUpdate{Service: s, Replicas: 1}); err != nil {
				return 0, fmt.Errorf("scaling %s back to 1, %w", s, err)
			}
		}
		return took, nil
	}
	var one, all, floor []time.Duration
	for range e.runs {
		// The floor, in the same run: the 20 MicroServices started by
		// hand at once, which 20 extensions cannot beat.
		d, err := execHealthy(e.bin, n)
		if err != nil {
			return nil, err
		}
		floor = append(floor, d)
		if d, err = extend(names[:1]); err != nil {
			return nil, err
		}
		one = append(one, d)
		if d, err = extend(names); err != nil {
			return nil, err
		}
		all = append(all, d)
	}
	a := summarize("B10a", "one service extended alone (a waiting container loads it) → healthy", one)
	b := summarize("B10", fmt.Sprintf("%d services extended at once → all healthy (target ≤ 1.5× B10a)", n), all)
	b.Baseline, b.Target = a.ID, a.P50*3/2
	var total uint64
	for _, t := range cpu {
		total += t
	}
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(cpu)) {
		kinds = append(kinds, fmt.Sprintf("%s %.0f ms", k, float64(cpu[k])*10/float64(len(all))))
	}
	b.Note = fmt.Sprintf("CPU used per run of the %d at once: %.0f ms in all (%s), on %d cores", n, float64(total)*10/float64(len(all)), strings.Join(kinds, ", "), runtime.NumCPU())
	f := summarize("B10f", fmt.Sprintf("floor: the %d MicroServices (demo) exec'd at once by hand → all healthy", n), floor)
	f.Baseline = "B0"
	return []Figure{a, b, f}, nil
}
