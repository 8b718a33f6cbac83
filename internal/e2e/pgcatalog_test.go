package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/pgtest"
	"github.com/msm-project/msm/workflows"
)

// TestPostgresCatalogEditsWhileRunning: the catalog lives in PostgreSQL
// (loaded with `msm catalog import`); SQL edits reach the running Manager:
// a deleted service's container goes to waiting, an inserted service is
// provisioned, changed replicas converge, an invalid change is rejected and
// shown in status.
func TestPostgresCatalogEditsWhileRunning(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("a real PostgreSQL is needed: %v", err)
		}
		t.Skipf("no PostgreSQL here (with CI=true this fails): %v", err)
	}
	t.Cleanup(pg.Stop)
	ctx := context.Background()
	dsn, err := pg.NewDB(ctx)
	require.NoError(t, err)

	s := spec{servers: 1, slots: 8, warmPool: 1, services: map[string]int{"web": 1, "api": 1}, order: []string{"web", "api"}}
	c := newCluster(t, s)
	out, err := c.msm("catalog", "import", c.catalog, "--postgres", dsn)
	require.NoError(t, err)
	assert.Contains(t, out, "imported 2 services")
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", dsn)
	before := c.waitFor("web and api healthy", 60*time.Second, converged(1))
	assert.NotContains(t, before.CatalogSource, "s3cret", "status hides the password")
	var apiContainer string
	for _, ct := range before.Containers {
		if ct.Service == "api" {
			apiContainer = ct.ID
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := conn.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}

	exec(`DELETE FROM msm_services WHERE name = 'api'`)
	st := c.waitFor("api gone, its container waiting", 30*time.Second, func(st workflows.Status) bool {
		return len(st.Services) == 1 && st.Operations == 0 && stateOf(st, apiContainer) == "waiting"
	})
	c.assertFleet(st, 3)

	spec := fmt.Sprintf(`{"command": %q, "args": ["--port={{.Port}}", "--name={{.Service}}"], "replicas": {"min": 1, "initial": 1, "max": 4}}`, bins.demo)
	exec(`INSERT INTO msm_services (name, spec, position) VALUES ('extra', $1, 2)`, spec)
	exec(`UPDATE msm_services SET spec = jsonb_set(spec, '{replicas,initial}', '3') WHERE name = 'web'`)
	st = c.waitFor("web at 3, extra provisioned", 60*time.Second, func(st workflows.Status) bool {
		return len(st.Services) == 2 && st.Services[0].Ready == 3 && st.Services[1].Ready == 1 && st.Operations == 0
	})
	assert.Equal(t, []workflows.ServiceStatus{{Name: "web", Desired: 3, Ready: 3}, {Name: "extra", Desired: 1, Ready: 1}}, st.Services)
	c.assertFleet(st, len(st.Containers))

	exec(`UPDATE msm_services SET spec = jsonb_set(spec, '{replicas,min}', '9') WHERE name = 'web'`)
	st = c.waitFor("the rejection in status", 30*time.Second, func(st workflows.Status) bool { return st.CatalogError != "" })
	assert.Contains(t, st.CatalogError, "msm_services[web]")
	assert.Contains(t, st.CatalogError, "min 9 is greater than max")
	assert.Equal(t, 3, st.Services[0].Desired, "the catalog in force stays")
}
