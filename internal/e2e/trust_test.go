package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/workflows"
)

// TestForgedReportsChangeNothing (issue 14, acceptance 2): the worker has a
// key ring and the node its join token. A client of the namespace that is
// neither (this test's own client, with the namespace's credentials) sends
// a forged error-report, node-up, result, usage, overload and catalog and
// starts an Extend directly: the containers, their processes and ports
// stay as they were, each forgery is counted and shown as rejected, and the
// Extend fails without doing anything. The signed reports of the node, the
// agents, the operations and the worker are acted on: the fleet converges
// with nothing rejected, and a killed MicroService, reported by its agent
// with its container's key, is recovered.
func TestForgedReportsChangeNothing(t *testing.T) {
	c := newCluster(t, spec{servers: 1, slots: 4, warmPool: 1, services: map[string]int{"web": 2}, order: []string{"web"}})
	ring := filepath.Join(c.dir, "keys", "ring")
	token := filepath.Join(c.dir, "s1.token")
	_, err := c.msm("keys", "new", ring)
	require.NoError(t, err)
	_, err = c.msm("keys", "join-token", "--key-file", ring, "--server", "s1", "--out", token)
	require.NoError(t, err)
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"), "--join-token-file", token)
	c.start("worker", "worker", "--catalog", c.catalog, "--key-file", ring)
	before := c.waitFor("web ×2 and a waiting container", 60*time.Second, converged(1))
	assert.Equal(t, workflows.ReportsAuthenticated, before.Reports)
	require.Zero(t, before.Rejected, "the node's, the operations' and the worker's reports pass: %v", before.Events)
	procs := c.hostProcs()
	require.Len(t, procs, 5, "three agents and two MicroServices")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := workflows.ManagerID(c.manager)
	web := before.Containers[0]
	forged := []struct {
		name string
		arg  any
	}{
		{workflows.SignalErrorReport, workflows.ErrorReport{Container: web.ID, Service: "web", Reason: "forged", Auth: "k1:AAAA"}},
		{workflows.SignalNodeUp, workflows.NodeUpSignal{Server: "s1"}},
		{workflows.SignalResult, workflows.StepResult{Op: id + "/provision/1", Step: workflows.StepServer, Server: "s1", OK: true, Address: "10.6.6.6"}},
		{workflows.SignalUsage, workflows.UsageSignal{Server: "s1", CPU: 100, Memory: 100, Containers: []workflows.ContainerUsage{{Container: web.ID, CPU: 100}}}},
		{workflows.SignalOverload, workflows.OverloadSignal{Container: web.ID, Service: "web", Reason: "forged"}},
		{workflows.SignalCatalog, workflows.CatalogSignal{Source: "forged.yaml"}},
	}
	for _, f := range forged {
		require.NoError(t, c.client.SignalWorkflow(ctx, id, "", f.name, f.arg), f.name)
	}
	run, err := c.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id + "/extend/web/forged", TaskQueue: workflows.TaskQueue},
		workflows.WorkflowExtend, workflows.ProvisionInput{
			Op: id + "/extend/web/forged", Manager: c.manager, Kind: catalog.KindStandalone,
			Plan: fleet.Plan{Starts: []fleet.Container{{ID: c.manager + "-c99", Server: "s1", Port: c.ranges["s1"][1],
				State: fleet.Starting, Service: "web"}}},
			Services:  []catalog.Service{{Name: "web", Command: "/bin/sleep", Args: []string{"600"}, Replicas: catalog.Replicas{Min: 1, Initial: 1, Max: 1}}},
			Addresses: map[string]string{"s1": "127.0.0.1"},
		})
	require.NoError(t, err)
	err = run.Get(ctx, nil)
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app, "the forged Extend must fail")
	assert.Equal(t, workflows.ErrNotByManager, app.Type())

	after := c.waitFor("every forgery rejected", 30*time.Second, func(st workflows.Status) bool { return st.Rejected >= len(forged) })
	assert.Equal(t, len(forged), after.Rejected)
	var rejected []string
	for _, e := range after.Events {
		if strings.HasPrefix(e.Message, "rejected ") {
			rejected = append(rejected, e.Message)
		}
	}
	require.Len(t, rejected, len(forged), "each forgery shown: %q", rejected)
	for _, f := range forged {
		// Signals of different names reach their handlers in no set order.
		assert.True(t, slices.ContainsFunc(rejected, func(m string) bool { return strings.HasPrefix(m, "rejected "+f.name+" report") }),
			"%s shown as rejected: %q", f.name, rejected)
	}
	assert.Equal(t, before.Containers, after.Containers, "same containers, states and ports")
	assert.Equal(t, before.Servers, after.Servers, "s1 keeps its address")
	assert.Equal(t, before.Services, after.Services, "web keeps its desired instances")
	assert.Equal(t, procs, c.hostProcs(), "same processes")
	assert.Equal(t, "", after.CatalogError)

	// The genuine path: the agent's own report of its MicroService's death.
	pid := 0
	for _, p := range procs {
		if p.container == web.ID && !p.agent {
			pid = p.pid
		}
	}
	require.NotZero(t, pid)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	healed := c.waitFor("web recovered", 60*time.Second, func(st workflows.Status) bool {
		return converged(1)(st) && slices.ContainsFunc(st.Containers, func(ct workflows.ContainerStatus) bool {
			return ct.ID == web.ID && ct.State == string(fleet.Failed)
		})
	})
	assert.Equal(t, len(forged), healed.Rejected, "the agent's report passed")
	var recovered bool
	for _, e := range healed.Events {
		recovered = recovered || strings.HasPrefix(e.Message, "recover web: container "+web.ID)
	}
	assert.True(t, recovered, "recovered on its agent's report: %v", healed.Events)
	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		// The replay test checks the tags again, with this ring.
		c.waitFor("the recovery done", 60*time.Second, func(st workflows.Status) bool { return st.Operations == 0 })
		c.saveHistory(id, "../../workflows/testdata/manager-trust.json")
		b, err := os.ReadFile(ring)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile("../../workflows/testdata/manager-trust.keys", b, 0o644))
	}
}

// keyRing writes a new key ring for the cluster's worker and returns its
// path.
func (c *cluster) keyRing() string {
	c.t.Helper()
	ring := filepath.Join(c.dir, "ring")
	out, err := c.msm("keys", "new", ring)
	require.NoError(c.t, err, out)
	return ring
}

// assertAuthenticated checks that the Manager checks reports and rejected
// none: every node and agent signed with its key.
func (c *cluster) assertAuthenticated(st workflows.Status) {
	c.t.Helper()
	assert.Equal(c.t, workflows.ReportsAuthenticated, st.Reports)
	assert.Zero(c.t, st.Rejected, "rejected reports; the events: %s", eventsOf(st))
}
