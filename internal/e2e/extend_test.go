package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/msm-project/msm/workflows"
)

// TestExtendUsesTheWaitingContainerFirst: `msm extend web --count 2` loads
// the waiting container first and starts a new container process for the
// second instance; the warm pool is refilled by the next decision, a
// provision of its own once the extension ended. Bad requests are refused
// by the validators with what is allowed.
func TestExtendUsesTheWaitingContainerFirst(t *testing.T) {
	c := newCluster(t, spec{servers: 1, slots: 6, warmPool: 1, services: map[string]int{"web": 1}, order: []string{"web"}})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web healthy", 60*time.Second, converged(1))
	var warm string
	for _, ct := range before.Containers {
		if ct.State == "waiting" {
			warm = ct.ID
		}
	}
	require.NotEmpty(t, warm)

	out, err := c.msm("extend", "web", "--count", "2", "--reason", "e2e")
	require.NoError(t, err)
	assert.Equal(t, "extending web from 1 to 3 instance(s)\n", out)
	st := c.waitFor("web at 3", 60*time.Second, func(st workflows.Status) bool {
		return converged(1)(st) && st.Services[0].Desired == 3
	})
	byID := map[string]workflows.ContainerStatus{}
	for _, ct := range st.Containers {
		byID[ct.ID] = ct
	}
	assert.Equal(t, "loaded", byID[warm].State, "the waiting container was used first")
	assert.Equal(t, "web", byID[warm].Service)
	newWeb, newWarm := 0, 0
	for _, ct := range st.Containers {
		if _, old := indexOf(before.Containers, ct.ID); old {
			continue
		}
		switch ct.State {
		case "loaded":
			newWeb++
		case "waiting":
			newWarm++
		}
	}
	assert.Equal(t, 1, newWeb, "the second instance is a new container process")
	assert.Equal(t, 1, newWarm, "the warm pool is refilled")
	// IDs follow the decisions: web m1-c1 and the pool's m1-c2 first; the
	// extension starts m1-c3 for web, the provision after it m1-c4 to wait.
	assert.Equal(t, "loaded", stateOf(st, c.manager+"-c3"))
	assert.Equal(t, "waiting", stateOf(st, c.manager+"-c4"))
	events := eventsOf(st)
	ext, refill := fmt.Sprintf("msm/%s/extend/web/2", c.manager), fmt.Sprintf("msm/%s/refill/3", c.manager)
	assert.Contains(t, events, ext+": 0 server(s) to launch, 1 container(s) to start, 1 to load", "no start for the pool in the extension")
	assert.Contains(t, events, ext+" done: 1 started, 2 loaded, 0 failed")
	assert.Contains(t, events, refill+": 0 server(s) to launch, 1 container(s) to start, 0 to load")
	assert.Contains(t, events, refill+" done: 1 started, 0 loaded, 0 failed")
	assert.Less(t, strings.Index(events, ext+" done"), strings.Index(events, refill+":"), "the refill is decided once the extension ended")
	c.assertFleet(st, 4)
	c.assertVisible(fmt.Sprintf("WorkflowId = '%s' AND MsmOperation = 'extend'", ext))
	c.assertVisible(fmt.Sprintf("WorkflowId = '%s' AND MsmOperation = 'refill'", refill))

	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"extend", "nope"}, `unknown service "nope"`},
		{[]string{"extend", "web", "--count", "0"}, "count 0: extend adds at least 1 instance"},
		{[]string{"scale", "web", "99"}, "99 instance(s) of web is outside its replicas 1..8"},
	} {
		_, err := c.msm(tc.args...)
		require.Error(t, err, "msm %v", tc.args)
		assert.Contains(t, err.Error(), tc.says)
	}
	// Capped: web allows 8.
	out, err = c.msm("extend", "web", "--count", "10")
	require.NoError(t, err)
	assert.Equal(t, "extending web from 3 to 8 instance(s) (capped at its max of 8)\n", out)
	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		c.waitFor("the capped extension decided and done", 60*time.Second, func(st workflows.Status) bool {
			return st.Services[0].Desired == 8 && st.Operations == 0
		})
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager-extend.json")
		c.saveHistory(workflows.ManagerID(c.manager)+"/extend/web/2", "../../workflows/testdata/extend.json")
	}
}

// TestOverloadStormMakesOneExtension: 50 overload reports for one service at
// once make exactly one extension.
func TestOverloadStormMakesOneExtension(t *testing.T) {
	c := newCluster(t, spec{servers: 1, slots: 6, services: map[string]int{"web": 1}, order: []string{"web"}})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	st := c.waitFor("web healthy", 60*time.Second, converged(0))
	from := st.Containers[0].ID

	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.client.SignalWorkflow(context.Background(), workflows.ManagerID(c.manager), "", workflows.SignalOverload,
				workflows.OverloadSignal{Container: from, Service: "web", Reason: fmt.Sprintf("report %d", i)})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	st = c.waitFor("web extended", 60*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && st.Services[0].Ready == 2
	})
	assert.Equal(t, 2, st.Services[0].Desired, "one extension, not more")
	c.assertFleet(st, 2)
	query := fmt.Sprintf("MsmManager = '%s' AND MsmOperation = 'extend'", c.manager)
	c.assertVisible(query) // the visibility store catches up
	resp, err := c.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
	require.NoError(t, err)
	assert.Len(t, resp.Executions, 1, "one Extend operation")
	var events []string
	for _, e := range st.Events {
		events = append(events, e.Message)
	}
	assert.Equal(t, 1, strings.Count(strings.Join(events, "\n"), "extend web from 1 to 2"), "%q", events)
}

func indexOf(list []workflows.ContainerStatus, id string) (int, bool) {
	for i, c := range list {
		if c.ID == id {
			return i, true
		}
	}
	return -1, false
}

// TestNothingToPlaceIsExplicit: an extension beyond the room there is ends
// with what could be placed, and the rest is shown with its reason in
// `msm status` and in the Manager's current details (the Web UI's view).
func TestNothingToPlaceIsExplicit(t *testing.T) {
	c := newCluster(t, spec{servers: 1, slots: 2, services: map[string]int{"web": 1}, order: []string{"web"}})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	c.waitFor("web healthy", 60*time.Second, converged(0))
	_, err := c.msm("extend", "web", "--count", "3")
	require.NoError(t, err)
	st := c.waitFor("web at 2, the rest unplaced", 60*time.Second, func(st workflows.Status) bool {
		return st.Services[0].Ready == 2 && st.Operations == 0 && len(st.Unplaced) > 0
	})
	require.Len(t, st.Unplaced, 1)
	assert.Equal(t, "web", st.Unplaced[0].Service)
	assert.Equal(t, 2, st.Unplaced[0].Count)
	assert.Contains(t, st.Unplaced[0].Reason, "no server in use has 1 free slot(s)")
	out, err := exec.Command(bins.temporal, "workflow", "metadata", "--address", c.srv.Address(),
		"--workflow-id", workflows.ManagerID(c.manager)).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "cannot place")
	assert.Contains(t, string(out), "2 instance(s) of web")
}
