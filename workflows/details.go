package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"
)

// publish asks for the Manager's current details to be set anew once the
// handlers running now are done: a storm of signals in one workflow task
// renders them once, not once per event.
func (m *manager) publish(workflow.Context) { m.stale = true }

// publisher renders the details whenever they went stale, for the life of
// the run. A coroutine, so it runs after the ones that made them stale.
func (m *manager) publisher(ctx workflow.Context) {
	workflow.Go(ctx, func(ctx workflow.Context) {
		for workflow.Await(ctx, func() bool { return m.stale }) == nil {
			m.stale = false
			m.render(ctx)
		}
	})
}

// render sets the Manager's current details, which the Web UI shows on
// the run's page: each service's ready/desired count, what could not be
// placed and why, a rejected catalog, and the latest events. It writes no
// history event.
func (m *manager) render(ctx workflow.Context) {
	var b []string
	// A blank line after each heading: the Web UI's markdown starts no
	// list right after a paragraph.
	b = append(b, fmt.Sprintf("**Manager %s**", m.st.Manager), "")
	if m.st.Catalog != nil {
		ready := m.st.Inventory.ReadyByService()
		for _, s := range m.st.Catalog.Services {
			b = append(b, fmt.Sprintf("- %s: %d/%d ready", s.Name, ready[s.Name], m.desired(s)))
		}
	}
	for _, u := range m.unplaced {
		what := "the warm pool"
		if u.Service != "" {
			what = u.Service
		}
		b = append(b, fmt.Sprintf("- **cannot place** %d instance(s) of %s: %s", u.Count, what, u.Reason))
	}
	if m.st.CatalogError != "" {
		b = append(b, "- **catalog change rejected**: "+m.st.CatalogError)
	}
	now := workflow.Now(ctx)
	for _, bo := range m.st.Backoffs {
		if bo.RetryAt.After(now) {
			b = append(b, fmt.Sprintf("- **crash-loop back-off** %s until %s (%d failures): %s", reasonOr(bo.Service, "the warm pool"),
				bo.RetryAt.UTC().Format(time.TimeOnly), bo.Failures, bo.LastError))
		}
	}
	for _, op := range m.ops {
		b = append(b, "- running: "+op.id)
	}
	log := m.st.Log
	if len(log) > 5 {
		log = log[len(log)-5:]
	}
	if len(log) > 0 {
		b = append(b, "", "**Last decisions** (`msm events`, `msm why SERVICE`)", "")
	}
	for _, r := range log {
		b = append(b, fmt.Sprintf("- %s %s", r.Time.UTC().Format(time.TimeOnly), r.Text()))
	}
	workflow.SetCurrentDetails(ctx, strings.Join(b, "\n"))
}
