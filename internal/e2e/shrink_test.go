package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/workflows"
)

// TestScaleDownShrinksAndReleasesTheServer: `msm scale web 1` removes the
// instances on the emptiest server first, stops their processes, releases
// their ports, and releases the server left empty.
func TestScaleDownShrinksAndReleasesTheServer(t *testing.T) {
	c := newCluster(t, spec{servers: 2, slots: 2, services: map[string]int{"web": 3}, order: []string{"web"}})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web at 3", 60*time.Second, converged(0))
	require.Len(t, before.Servers, 2)

	out, err := c.msm("scale", "web", "1")
	require.NoError(t, err)
	assert.Equal(t, "scaling web from 3 to 1 instance(s)\n", out)
	st := c.waitFor("web at 1 on one server", 60*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && len(st.Containers) == 1 && len(st.Servers) == 1
	})
	assert.Equal(t, []workflows.ServiceStatus{{Name: "web", Desired: 1, Ready: 1}}, st.Services)
	assert.Equal(t, "s1", st.Servers[0].ID, "s2, the emptier server, was emptied and released")
	assert.Equal(t, 1, st.Servers[0].Used)
	assert.Equal(t, before.Containers[0].ID, st.Containers[0].ID, "the oldest instance stays")
	c.assertFleet(st, 1)
	for _, gone := range before.Containers[1:] {
		_, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/", gone.Port))
		assert.Error(t, err, "%s's port %d is closed", gone.ID, gone.Port)
	}
	c.assertVisible(fmt.Sprintf("MsmManager = '%s' AND MsmOperation = 'shrink' AND MsmService = 'web'", c.manager))

	// Below min is refused before anything happens.
	_, err = c.msm("scale", "web", "0")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "outside its replicas 1..8")
}
