package e2e

import (
	"context"
	"fmt"
	"go.temporal.io/api/workflowservice/v1"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

// TestDrainNeverDropsHealthyInstances: `msm drain s1` while status is
// sampled continuously: web never has fewer healthy instances than before
// (extend there, then destroy here), and afterwards s1 is released and
// holds no container.
func TestDrainNeverDropsHealthyInstances(t *testing.T) {
	c := drainCluster(t)
	out, err := c.msm("drain", "s1", "--dry-run")
	require.NoError(t, err)
	assert.Contains(t, out, "dry run: move web")
	assert.Contains(t, out, "release s1")
	_, err = c.msm("drain", "nope")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unknown server "nope"`)

	drainWithoutDrop(t, c, func() {
		out, err := c.msm("drain", "s1")
		require.NoError(t, err)
		assert.Contains(t, out, "draining s1")
	})
	c.assertVisible(fmt.Sprintf("MsmManager = '%s' AND MsmOperation = 'rearrange'", c.manager))
	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager-drain.json")
		resp, err := c.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: fmt.Sprintf("MsmManager = '%s' AND MsmOperation IN ('rearrange', 'shrink')", c.manager)})
		require.NoError(t, err)
		for _, e := range resp.Executions {
			op := "rearrange"
			if strings.Contains(e.Execution.WorkflowId, "/shrink/") {
				op = "shrink"
			}
			c.saveHistory(e.Execution.WorkflowId, "../../workflows/testdata/"+op+".json")
		}
	}
}

// TestServerRemovedFromTheCatalogIsDrained (issue 16, acceptance 2): s1
// taken out of the catalog file is drained as `msm drain s1` does — no
// drop in healthy instances — and released; the decision log says why.
func TestServerRemovedFromTheCatalogIsDrained(t *testing.T) {
	c := drainCluster(t)
	st := drainWithoutDrop(t, c, func() {
		b, err := os.ReadFile(c.catalog)
		require.NoError(t, err)
		var kept []string
		for _, line := range strings.SplitAfter(string(b), "\n") {
			if !strings.Contains(line, "{name: s1,") {
				kept = append(kept, line)
			}
		}
		require.Len(t, kept, len(strings.SplitAfter(string(b), "\n"))-1, "one line of s1 in:\n%s", b)
		require.NoError(t, os.WriteFile(c.catalog, []byte(strings.Join(kept, "")), 0o644))
	})
	var events []string
	for _, e := range st.Events {
		events = append(events, e.Message)
	}
	assert.Contains(t, strings.Join(events, "\n"), "(removed from the catalog ("+c.catalog+"))")
	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager-drain-removed.json")
	}
}

// drainCluster is two servers of 4 slots, web ×2 on s1.
func drainCluster(t *testing.T) *cluster {
	// A drain period of 3 s keeps the old instances serving a while after
	// their replacements are healthy: samples see the whole hand-over even
	// on a loaded machine (each sample is a query and two requests).
	c := newCluster(t, spec{servers: 2, slots: 4, services: map[string]int{"web": 2}, order: []string{"web"},
		drain: map[string]string{"web": "3s"}})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web on s1", 60*time.Second, converged(0))
	require.Len(t, before.Servers, 1, "both instances fit on s1")
	return c
}

// drainWithoutDrop samples web's healthy instances, and the answers on
// their ports, while drain empties s1; it requires web never below its 2
// and s1 released with nothing on it, and returns the status then.
func drainWithoutDrop(t *testing.T, c *cluster, drain func()) workflows.Status {
	var minReady, minAnswering atomic.Int32
	minReady.Store(100)
	minAnswering.Store(100)
	var samples atomic.Int32
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			// The query itself, not `msm status` (a process each time):
			// enough samples through the drain on a loaded machine too.
			st, err := starter.Status(context.Background(), c.client, c.manager)
			if err != nil {
				continue
			}
			ready, answering := int32(st.Services[0].Ready), int32(0)
			for _, ct := range st.Containers {
				if ct.State == "loaded" && ct.Healthy {
					if code, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/healthz", ct.Port)); err == nil && code == 200 {
						answering++
					}
				}
			}
			samples.Add(1)
			if ready < minReady.Load() {
				minReady.Store(ready)
			}
			if answering < minAnswering.Load() {
				minAnswering.Store(answering)
			}
		}
	}()
	drain()
	st := c.waitFor("s1 drained and released", 60*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && len(st.Servers) == 1 && st.Servers[0].ID == "s2"
	})
	close(stop)
	wg.Wait()
	t.Logf("%d samples; fewest healthy %d, fewest answering %d", samples.Load(), minReady.Load(), minAnswering.Load())
	require.Greater(t, samples.Load(), int32(3))
	assert.GreaterOrEqual(t, minReady.Load(), int32(2), "never fewer healthy instances than before the drain")
	assert.GreaterOrEqual(t, minAnswering.Load(), int32(2), "never fewer instances answering than before the drain")
	for _, ct := range st.Containers {
		assert.Equal(t, "s2", ct.Server, "s1 holds no container")
	}
	c.assertFleet(st, 2)
	return st
}

// TestConsolidationReleasesTheLeastUsedServer: with the policy on, once the
// servers in use have room for all of the least-used one, it is drained
// (extend there, then destroy here) and released.
func TestConsolidationReleasesTheLeastUsedServer(t *testing.T) {
	c := newCluster(t, spec{servers: 2, slots: 3, consolidate: true,
		services: map[string]int{"web": 3, "api": 1}, order: []string{"web", "api"}})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web on s1, api on s2", 60*time.Second, converged(0))
	require.Len(t, before.Servers, 2)

	_, err := c.msm("scale", "web", "1")
	require.NoError(t, err)
	st := c.waitFor("one server left", 60*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && len(st.Servers) == 1
	})
	assert.Equal(t, "s1", st.Servers[0].ID)
	assert.Equal(t, []workflows.ServiceStatus{{Name: "web", Desired: 1, Ready: 1}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
	c.assertFleet(st, 2)
	var events []string
	for _, e := range st.Events {
		events = append(events, e.Message)
	}
	assert.Contains(t, strings.Join(events, "\n"), "consolidation: drain s2")
}

// TestRecoveryDoesNotWaitForASlowDrain: web's old instances on s1 keep
// serving for their drain period (a minute) while api, which runs only on
// s2, is killed: its recovery runs beside the drain, and api is back at
// desired while s1 is still draining, in the time a recovery takes alone.
func TestRecoveryDoesNotWaitForASlowDrain(t *testing.T) {
	c := newCluster(t, spec{servers: 2, serverSlots: []int{2, 4}, services: map[string]int{"web": 2, "api": 1},
		order: []string{"web", "api"}, drain: map[string]string{"web": "60s"}})
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("web on s1, api on s2", 60*time.Second, converged(0))
	var api workflows.ContainerStatus
	for _, ct := range before.Containers {
		want := map[string]string{"web": "s1", "api": "s2"}[ct.Service]
		require.Equal(t, want, ct.Server, "%s of %s", ct.ID, ct.Service)
		if ct.Service == "api" {
			api = ct
		}
	}

	_, err := c.msm("drain", "s1")
	require.NoError(t, err)
	c.waitFor("web's old instances draining on s1", 60*time.Second, func(st workflows.Status) bool {
		n := 0
		for _, ct := range st.Containers {
			if ct.Server == "s1" && ct.Service == "web" && ct.State == "draining" {
				n++
			}
		}
		return n == 2
	})

	var pid int
	for _, p := range c.hostProcs() {
		if p.container == api.ID && !p.agent {
			pid = p.pid
		}
	}
	require.NotZero(t, pid, "api's MicroService process")
	began := time.Now()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	st := c.waitFor("api back at desired", 50*time.Second, func(st workflows.Status) bool {
		for _, s := range st.Services {
			if s.Name == "api" && s.Ready == 1 && stateOf(st, api.ID) == "failed" {
				return true
			}
		}
		return false
	})
	took := time.Since(began)
	figure(t, "kill -9 of a MicroService during a minute-long drain of another server → back at desired", took)
	// Not after the drain: s1 still drains web's old instances.
	draining := 0
	for _, ct := range st.Containers {
		if ct.Server == "s1" && ct.State == "draining" {
			draining++
		}
	}
	assert.Equal(t, 2, draining, "api recovered while s1 still drains: %+v", st.Containers)
	assert.Contains(t, eventsOf(st), "recover api: container "+api.ID)

	st = c.waitFor("s1 drained and released", 120*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && len(st.Servers) == 1 && st.Servers[0].ID == "s2"
	})
	for _, ct := range st.Containers {
		assert.Equal(t, "s2", ct.Server, "s1 holds no container")
	}
	c.requireInvariants(30 * time.Second)
}
