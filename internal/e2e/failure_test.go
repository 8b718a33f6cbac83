package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/workflows"
)

// TestBrokenServiceBacksOffAndLeavesNothing: a service whose command exits
// at once is reported with its output, retried with a growing back-off, and
// its failed containers leave no process and no lease behind; the other
// services are not held up.
func TestBrokenServiceBacksOffAndLeavesNothing(t *testing.T) {
	c := newCluster(t, spec{servers: 1, slots: 6, warmPool: 1,
		services: map[string]int{"web": 1, "bad": 1}, order: []string{"web", "bad"}, broken: []string{"bad"}})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)

	st := c.waitFor("bad failing twice while web is healthy", 60*time.Second, func(st workflows.Status) bool {
		return len(st.Services) == 2 && st.Services[0].Ready == 1 && st.Services[1].Failures >= 2 && count(st, "waiting") == 1
	})
	bad := st.Services[1]
	assert.Equal(t, "bad", bad.Name)
	assert.Zero(t, bad.Ready)
	assert.Contains(t, bad.LastError, "boom", "the service's own output says what went wrong")
	assert.Contains(t, bad.LastError, "exit status 3")
	require.NotNil(t, bad.RetryAt)

	failed := 0
	for _, ct := range st.Containers {
		if ct.State == "failed" {
			failed++
			assert.Equal(t, "bad", ct.Service)
			assert.Zero(t, ct.Port, "a destroyed container holds no lease")
			assert.Contains(t, ct.Error, "boom")
		}
	}
	assert.GreaterOrEqual(t, failed, 2)
	// Only web's and the warm container's processes run; every failed
	// container was stopped.
	live := map[string]bool{}
	for _, p := range c.hostProcs() {
		live[p.container] = true
	}
	for _, ct := range st.Containers {
		if ct.State == "failed" {
			assert.False(t, live[ct.ID], "failed container %s still has a process", ct.ID)
		}
	}
	// How the back-off grows is proven in workflow time by the Manager's
	// test-suite tests; here, the user sees each failure as an event.
	var events []string
	for _, e := range st.Events {
		events = append(events, e.Message)
	}
	assert.Contains(t, strings.Join(events, "\n"), "failed to load bad")

	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager-backoff.json")
		c.saveHistory(workflows.ManagerID(c.manager)+"/provision/1", "../../workflows/testdata/provision-failed-load.json")
	}
}
