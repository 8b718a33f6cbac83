package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/msm-project/msm/workflows"
)

var standard = spec{
	servers: 2, slots: 3, warmPool: 1,
	services: map[string]int{"web": 2, "api": 1}, order: []string{"web", "api"},
}

// TestProvisionServesEveryService: from nothing to every service healthy,
// with what the user sees checked against what really runs.
func TestProvisionServesEveryService(t *testing.T) {
	c := newCluster(t, standard)
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	began := time.Now()
	c.start("worker", "worker", "--catalog", c.catalog)
	st := c.waitFor("every service healthy", 60*time.Second, converged(1))
	t.Logf("provisioned in %s", time.Since(began))

	assert.Equal(t, c.manager, st.Manager)
	assert.Equal(t, "standalone", st.Kind)
	assert.Equal(t, []workflows.ServiceStatus{{Name: "web", Desired: 2, Ready: 2}, {Name: "api", Desired: 1, Ready: 1}}, st.Services)
	// Three one-slot instances fill s1; the warm pool needs a second server.
	require.Len(t, st.Servers, 2)
	if skipped := strings.Contains(eventsOf(st), "is held by another process: skipped"); skipped {
		// A port of the block was taken by another process of the machine
		// (seen in 2 of 6 runs beside the other packages' tests): the
		// container moved on, as it should, and the layout with it.
		t.Logf("a leased port was held by another process; the layout is not the usual one: %+v", st.Servers)
		assert.Equal(t, 4, st.Servers[0].Used+st.Servers[1].Used)
	} else {
		// Their nodes' versions are checked below: they may answer after.
		s1, s2 := st.Servers[0], st.Servers[1]
		s1.Node, s2.Node = "", ""
		assert.Equal(t, workflows.ServerStatus{ID: "s1", State: "ready", Address: "127.0.0.1", Slots: 3, Used: 3}, s1)
		assert.Equal(t, workflows.ServerStatus{ID: "s2", State: "ready", Address: "127.0.0.1", Slots: 3, Used: 1}, s2)
	}
	c.assertFleet(st, 4)
	built := builtVersion(t, c.msm)
	c.waitFor("each node says its version, each agent has it", 10*time.Second, func(st workflows.Status) bool {
		for _, s := range st.Servers {
			if s.Node != built {
				return false
			}
		}
		for _, ct := range st.Containers {
			if ct.Agent != built {
				return false
			}
		}
		return true
	})

	// The Web UI finds the runs by search attribute.
	c.assertVisible(fmt.Sprintf("MsmManager = '%s' AND MsmOperation = 'provision'", c.manager))
	c.assertVisible(fmt.Sprintf("MsmManager = '%s' AND MsmService = 'api'", c.manager))

	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		c.saveHistory(workflows.ManagerID(c.manager), "../../workflows/testdata/manager.json")
		c.saveHistory(workflows.ManagerID(c.manager)+"/provision/1", "../../workflows/testdata/provision.json")
	}
}

// TestProvisionSurvivesWorkerKill: kill -9 the worker in the middle of
// Provision and start it again: the operation completes with no duplicate
// container process and no port leased twice.
func TestProvisionSurvivesWorkerKill(t *testing.T) {
	s := standard
	s.startupDelay = 2 * time.Second // services take 2 s to answer: time to kill mid-way
	c := newCluster(t, s)
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	c.start("worker", "worker", "--catalog", c.catalog)
	mid := c.waitFor("a Provision under way with containers started", 30*time.Second, func(st workflows.Status) bool {
		return st.Operations > 0 && len(c.hostProcs()) > 0
	})
	ready := 0
	for _, s := range mid.Services {
		ready += s.Ready
	}
	require.Zero(t, ready, "the kill must land before any service is ready")
	c.kill9("worker")
	t.Logf("killed the worker with %d msm processes up", len(c.hostProcs()))
	time.Sleep(500 * time.Millisecond)
	c.start("worker2", "worker", "--catalog", c.catalog)
	st := c.waitFor("every service healthy after the restart", 60*time.Second, converged(1))

	// The decisions made before the crash stood: the same four containers.
	var ids []string
	for _, ct := range st.Containers {
		ids = append(ids, ct.ID)
	}
	m := c.manager
	assert.Equal(t, []string{m + "-c1", m + "-c2", m + "-c3", m + "-c4"}, ids)
	c.assertFleet(st, 4)
}

// TestPortHeldByAnotherProcessIsSkipped: a port of the range held by a
// process msm does not own is never handed out.
func TestPortHeldByAnotherProcessIsSkipped(t *testing.T) {
	c := newCluster(t, spec{servers: 1, slots: 4, services: map[string]int{"web": 2}, order: []string{"web"}})
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(c.base))
	require.NoError(t, err, "the test holds the first port of the range")
	defer l.Close()
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	st := c.waitFor("web healthy", 60*time.Second, converged(0))
	for _, ct := range st.Containers {
		assert.NotEqual(t, c.base, ct.Port, "container %s got the port another process holds", ct.ID)
	}
	assert.Len(t, st.Containers, 2)
	c.assertFleet(st, 2)
	found := false
	for _, e := range st.Events {
		found = found || (contains([]string{e.Message}, fmt.Sprintf("port %d on s1 is held by another process: skipped", c.base)))
	}
	assert.True(t, found, "status events say the port was skipped: %v", st.Events)
}

// assertFleet checks status against the host: each loaded container answers
// as its service on its port, ports are unique per server, and each
// container has exactly one agent process (and one service if loaded).
func (c *cluster) assertFleet(st workflows.Status, containers int) {
	t := c.t
	t.Helper()
	require.Len(t, st.Containers, containers)
	seen := map[string]string{}
	agents, services := map[string]int{}, map[string]int{}
	for _, p := range c.hostProcs() {
		if p.agent {
			agents[p.container]++
		} else {
			services[p.container]++
		}
	}
	for _, ct := range st.Containers {
		key := ct.Server + ":" + strconv.Itoa(ct.Port)
		require.Empty(t, seen[key], "port %s leased to %s and %s", key, seen[key], ct.ID)
		seen[key] = ct.ID
		assert.Equal(t, 1, agents[ct.ID], "agent processes of %s", ct.ID)
		switch ct.State {
		case "loaded":
			assert.True(t, ct.Healthy, "%s healthy", ct.ID)
			assert.Equal(t, 1, services[ct.ID], "service processes of %s", ct.ID)
			code, body, err := get(fmt.Sprintf("http://127.0.0.1:%d/", ct.Port))
			require.NoError(t, err, "%s (%s) answers on %d", ct.ID, ct.Service, ct.Port)
			require.Equal(t, 200, code)
			var who struct {
				Service string `json:"service"`
				Port    int    `json:"port"`
			}
			require.NoError(t, json.Unmarshal(body, &who))
			assert.Equal(t, ct.Service, who.Service, "the process on %d is %s", ct.Port, ct.Service)
			assert.Equal(t, ct.Port, who.Port)
		case "waiting":
			assert.Empty(t, ct.Service)
			assert.Zero(t, services[ct.ID], "a waiting container runs no service")
		default:
			t.Errorf("container %s is %s: %s", ct.ID, ct.State, ct.Error)
		}
	}
	assert.Len(t, agents, containers, "agent processes on the host: %v", agents)
}

// assertVisible waits for the visibility store to list a run for query.
func (c *cluster) assertVisible(query string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		require.NoError(c.t, err)
		if len(resp.Executions) > 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.t.Errorf("no workflow run matches %q", query)
}

// saveOperation saves the history of the first operation of a kind (its
// MsmOperation) of this Manager, for the replay tests.
func (c *cluster) saveOperation(kind, path string) {
	c.t.Helper()
	resp, err := c.client.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("MsmManager = '%s' AND MsmOperation = '%s'", c.manager, kind)})
	require.NoError(c.t, err)
	require.NotEmpty(c.t, resp.Executions, "no %s operation to save", kind)
	c.saveHistory(resp.Executions[0].Execution.WorkflowId, path)
}

// saveHistory writes a run's history as JSON for the replay tests.
func (c *cluster) saveHistory(id, path string) {
	c.t.Helper()
	saveHistoryOf(c.t, c.client, id, path)
}

// saveHistoryOf writes the history of workflow id, as cl reads it, to path.
func saveHistoryOf(t *testing.T, cl client.Client, id, path string) {
	t.Helper()
	saveRunHistory(t, cl, id, "", path)
}

// saveRunHistory writes the history of one run of workflow id ("" its
// current) to path.
func saveRunHistory(t *testing.T, cl client.Client, id, run, path string) {
	t.Helper()
	iter := cl.GetWorkflowHistory(context.Background(), id, run, false, 0)
	var hist = &historyBuilder{}
	for iter.HasNext() {
		e, err := iter.Next()
		require.NoError(t, err)
		hist.h.Events = append(hist.h.Events, e)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&hist.h)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, b, 0o644))
	t.Logf("wrote %s (%d events)", path, len(hist.h.Events))
}

// TestNodeRestartReattaches: a node agent killed and started again finds
// its running containers and adopts them: nothing is started twice and the
// Manager replaces nothing.
func TestNodeRestartReattaches(t *testing.T) {
	c := newCluster(t, standard)
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("s2", "node", "--server", "s2", "--state-dir", filepath.Join(c.dir, "s2"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("every service healthy", 60*time.Second, converged(1))
	procs := len(c.hostProcs())

	c.kill9("s1")
	c.start("s1b", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(c.dir, "s1b.log"))
		return strings.Contains(string(b), "reattached=3")
	}, 20*time.Second, 100*time.Millisecond, "the restarted node re-attaches to the 3 containers of s1")
	// Let the Manager take the node-up signal, then compare.
	time.Sleep(time.Second)
	after := c.waitFor("still converged", 10*time.Second, converged(1))
	assert.Equal(t, before.Containers, after.Containers, "the Manager kept every container")
	assert.Equal(t, procs, len(c.hostProcs()), "no process started twice")
	c.assertFleet(after, 4)
}
