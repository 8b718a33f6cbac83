package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/workflows"
)

// TestYAMLCatalogEditsWhileRunning: the worker picks up edits of its
// catalog file: a removed service's containers go to waiting, an added
// service is provisioned, changed replicas converge, and an invalid edit is
// rejected and shown in status while the catalog in force stays.
func TestYAMLCatalogEditsWhileRunning(t *testing.T) {
	s := spec{servers: 1, slots: 8, warmPool: 1, services: map[string]int{"web": 1, "api": 1}, order: []string{"web", "api"}}
	c := newCluster(t, s)
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web and api healthy", 60*time.Second, converged(1))
	var apiContainer string
	for _, ct := range before.Containers {
		if ct.Service == "api" {
			apiContainer = ct.ID
		}
	}
	require.NotEmpty(t, apiContainer)
	write := func(s spec) {
		t.Helper()
		require.NoError(t, os.WriteFile(c.catalog, []byte(c.catalogYAML(s)), 0o644))
	}

	// Remove api: its container goes back to waiting.
	s.services, s.order = map[string]int{"web": 1}, []string{"web"}
	write(s)
	st := c.waitFor("api gone, its container waiting", 30*time.Second, func(st workflows.Status) bool {
		return len(st.Services) == 1 && st.Operations == 0 && stateOf(st, apiContainer) == "waiting"
	})
	assert.Equal(t, "web", st.Services[0].Name)
	assert.Equal(t, 2, count(st, "waiting"), "api's container joined the warm pool")
	c.assertFleet(st, 3)

	// Add extra and raise web to 3: both converge.
	s.services, s.order = map[string]int{"web": 3, "extra": 1}, []string{"web", "extra"}
	write(s)
	st = c.waitFor("web at 3, extra provisioned", 60*time.Second, func(st workflows.Status) bool {
		return len(st.Services) == 2 && st.Services[0].Ready == 3 && st.Services[1].Ready == 1 && st.Operations == 0 && count(st, "waiting") >= 1
	})
	assert.Equal(t, []workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "extra", Desired: 1, Ready: 1}}, st.Services)
	c.assertFleet(st, len(st.Containers))

	// An invalid edit is rejected; the catalog in force stays.
	bad := c.catalogYAML(s) + "    health: {failure_threshold: 0, interval: 5}\n"
	require.NoError(t, os.WriteFile(c.catalog, []byte(bad), 0o644))
	st = c.waitFor("the rejection in status", 30*time.Second, func(st workflows.Status) bool { return st.CatalogError != "" })
	assert.Contains(t, st.CatalogError, "health.interval: 5 has no unit")
	assert.Equal(t, c.catalog, st.CatalogSource)
	assert.Equal(t, []workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "extra", Desired: 1, Ready: 1}}, st.Services)

	// Fixed again: the error clears.
	write(s)
	c.waitFor("the rejection cleared", 30*time.Second, func(st workflows.Status) bool { return st.CatalogError == "" })
}

func stateOf(st workflows.Status, id string) string {
	for _, c := range st.Containers {
		if c.ID == id {
			return c.State
		}
	}
	return ""
}
