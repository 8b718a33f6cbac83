package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/fleet"
)

// recommendation is one autoscaling computation, kept for the service's
// stabilization window.
type recommendation struct {
	at       time.Time
	replicas int
}

// onUsage records a node's usage summary and lets the autoscaler decide.
// Usage lives in memory only: it is rebuilt from the next reports after a
// continue-as-new, and only decisions become state.
func (m *manager) onUsage(ctx workflow.Context, u UsageSignal) {
	m.serverUsage[u.Server] = u
	for _, c := range u.Containers {
		m.cpu[c.Container] = c.CPU
	}
	m.autoscale(ctx)
}

// autoscale keeps each service with a target near it, as the Kubernetes
// HPA does: recommended = ceil(instances × average CPU / target), no action
// within the tolerance, scale out at once (after the cooldown), scale in
// only to the highest recommendation of the stabilization window.
func (m *manager) autoscale(ctx workflow.Context) {
	if m.st.Catalog == nil {
		return
	}
	now := workflow.Now(ctx)
	for _, s := range m.st.Catalog.Services {
		p := s.Scaling
		if p.Target <= 0 {
			continue
		}
		ready, n, sum := 0, 0, 0
		for _, c := range m.st.Inventory.Containers {
			if c.Service != s.Name || c.State != fleet.Loaded || !c.Healthy {
				continue
			}
			ready++
			if cpu, ok := m.cpu[c.ID]; ok {
				n++
				sum += cpu
			}
		}
		if n == 0 {
			continue
		}
		avg := sum / n
		cur := m.desired(s)
		// off reports whether a total CPU use over k instances is more than
		// Tolerance percent away from the target (in integers: 55 against
		// 50 within 10% is not off).
		off := func(total, k int) bool {
			d := total - k*p.Target
			return d*100 > p.Tolerance*k*p.Target || -d*100 > p.Tolerance*k*p.Target
		}
		rec := cur
		if off(sum, n) {
			// As the HPA does, instances not measured yet count at the
			// target when scaling in and idle when scaling out; a
			// recommendation they turn around or bring within the
			// tolerance is dropped.
			adj := sum
			if sum < n*p.Target {
				adj += (ready - n) * p.Target
			}
			if (adj > ready*p.Target) == (sum > n*p.Target) && off(adj, ready) {
				rec = (adj + p.Target - 1) / p.Target
			}
		}
		rec = min(max(rec, s.Replicas.Min, m.floor(s.Name)), s.Replicas.Max)
		// Keep the recommendations of the stabilization window.
		recs := append(m.recs[s.Name], recommendation{at: now, replicas: rec})
		for len(recs) > 0 && now.Sub(recs[0].at) > p.Stabilization {
			recs = recs[1:]
		}
		m.recs[s.Name] = recs
		t := m.target(s.Name)
		cooling := t != nil && now.Before(t.CooldownUntil)
		why := fmt.Sprintf("monitoring: %d instance(s) at %d%% CPU on average, target %d%%", n, avg, p.Target)
		switch {
		case rec > cur && !cooling:
			m.extend(ctx, s.Name, cur, rec, TriggerMonitoring, why, "")
		case rec < cur && !cooling:
			// The highest recommendation over a full window: one busy
			// moment in it keeps the instances.
			if now.Sub(m.watchedSince(s.Name, now)) < p.Stabilization {
				continue
			}
			stable := 0
			for _, r := range recs {
				stable = max(stable, r.replicas)
			}
			if stable < cur {
				t := m.setDesired(s.Name, stable)
				t.CooldownUntil = now.Add(m.cooldown(s.Name))
				m.record(ctx, Record{Kind: RecordShrink, Services: []string{s.Name}, Trigger: fmt.Sprintf("%s, for %s", why, p.Stabilization),
					Message: fmt.Sprintf("shrink %s from %d to %d instance(s)", s.Name, cur, stable)})
			}
		}
	}
}

// watchedSince is when the autoscaler first had a recommendation for the
// service in this run, so a shrink waits for a whole window of them.
func (m *manager) watchedSince(service string, now time.Time) time.Time {
	if t, ok := m.firstRec[service]; ok {
		return t
	}
	m.firstRec[service] = now
	return now
}
