package workflows

import (
	"fmt"
	"strings"

	"go.temporal.io/sdk/workflow"
)

// publish sets the Manager's current details, which the Web UI shows on
// the run's page: each service's ready/desired count, what could not be
// placed and why, a rejected catalog, and the latest events. It writes no
// history event.
func (m *manager) publish(ctx workflow.Context) {
	var b []string
	b = append(b, fmt.Sprintf("**Manager %s**", m.st.Manager))
	if m.st.Catalog != nil {
		for _, s := range m.st.Catalog.Services {
			_, ready := m.st.Inventory.Instances(s.Name)
			b = append(b, fmt.Sprintf("- %s: %d/%d ready", s.Name, ready, m.desired(s)))
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
	events := m.st.Events
	if len(events) > 5 {
		events = events[len(events)-5:]
	}
	for _, e := range events {
		b = append(b, "- "+e.Message)
	}
	workflow.SetCurrentDetails(ctx, strings.Join(b, "\n"))
}
