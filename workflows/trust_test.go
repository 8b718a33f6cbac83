package workflows_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/workflows"
)

// trRoot is the Manager's root key in these tests; trForger holds a key of
// the same ID that the Manager's ring does not hold.
var (
	trRoot   = trust.Key{ID: "k1", Secret: []byte(strings.Repeat("r", trust.KeySize))}
	trForger = trust.Key{ID: "k1", Secret: []byte(strings.Repeat("f", trust.KeySize))}
)

// withRing gives the test environment's worker the Manager's key ring.
func (s *ManagerSuite) withRing() {
	ring, err := trust.NewRing(trRoot)
	s.Require().NoError(err)
	s.env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{workflows.TrustInterceptor(ring)}})
}

// trSignedCatalog is tmCatalogSignal signed by the Manager's worker.
func trSignedCatalog() workflows.CatalogSignal {
	c := tmCatalogSignal()
	c.Auth = trust.Sign(trust.WorkerKey(trRoot, tfManager), c.Fields()...)
	return c
}

// trContainerKey is the key of a container's agent on s1 under root.
func trContainerKey(root trust.Key, container string) trust.Key {
	return trust.ContainerKey(trust.ServerKey(root, tfManager, "s1"), container)
}

// TestForgedReportsAreRejected: with a key ring, the Manager acts on the
// reports of its worker, nodes, agents and operations (the first Provision
// runs on its operation's signed results), and on nothing else: reports
// without a tag, signed by a key it does not hold, signed by another
// container's agent, or about a server or container the signer does not
// own are counted, shown, and change nothing. A report its container's
// agent signs is then acted on, so the check can tell.
func (s *ManagerSuite) TestForgedReportsAreRejected() {
	s.withRing()
	start := s.env.Now()
	var before, forged, after workflows.Status
	var err1, err2, err3 error
	s.signal(time.Second, workflows.SignalCatalog, trSignedCatalog())
	s.snapshot(5*time.Second, &before, &err1)

	forgedCatalog := workflows.CatalogSignal{Catalog: tfCatalog(), Source: "forged.yaml"}
	forgedCatalog.Catalog.Services = forgedCatalog.Catalog.Services[:1]
	forgedCatalog.Auth = trust.Sign(trust.WorkerKey(trForger, tfManager), forgedCatalog.Fields()...)
	unsignedCatalog := workflows.CatalogSignal{Catalog: catalog.Catalog{}, Source: "empty.yaml"}
	errorReport := workflows.ErrorReport{Container: "m1-c1", Service: "web", Reason: "forged"}
	errorReport.Auth = trust.Sign(trContainerKey(trForger, "m1-c1"), errorReport.Fields()...)
	// Signed by m1-c2's real agent, about m1-c1.
	otherAgent := workflows.ErrorReport{Container: "m1-c1", Service: "web", Reason: "neighbour"}
	otherAgent.Auth = trust.Sign(trContainerKey(trRoot, "m1-c2"), otherAgent.Fields()...)
	nodeUp := workflows.NodeUpSignal{Server: "s1"}
	nodeUp.Auth = trust.Sign(trust.ServerKey(trForger, tfManager, "s1"), nodeUp.Fields()...)
	result := workflows.StepResult{Op: "msm/m1/provision/1", Step: workflows.StepServer, Server: "s1", OK: true, Address: "10.6.6.6"}
	result.Auth = trust.Sign(trust.OperationKey(trRoot, result.Op), result.Fields()...)
	usage := workflows.UsageSignal{Server: "s1", CPU: 100, Memory: 100, Containers: []workflows.ContainerUsage{{Container: "m1-c1", CPU: 100}}}
	overload := workflows.OverloadSignal{Container: "m1-c1", Service: "web", Reason: "forged"}
	// A node's real key for s2, reporting a container of s1.
	usageElsewhere := workflows.UsageSignal{Server: "s2", Containers: []workflows.ContainerUsage{{Container: "m1-c1", CPU: 100}}}
	usageElsewhere.Auth = trust.Sign(trust.ServerKey(trRoot, tfManager, "s2"), usageElsewhere.Fields()...)
	forgeries := []struct {
		name string
		arg  any
		why  string
	}{
		{workflows.SignalCatalog, forgedCatalog, "rejected catalog report from worker (forged.yaml): bad tag for the Manager's worker"},
		{workflows.SignalCatalog, unsignedCatalog, "rejected catalog report from worker (empty.yaml): no tag"},
		{workflows.SignalErrorReport, errorReport, "rejected error-report report from container m1-c1: bad tag for container m1-c1 on server s1"},
		{workflows.SignalErrorReport, otherAgent, "rejected error-report report from container m1-c1: bad tag for container m1-c1 on server s1"},
		{workflows.SignalNodeUp, nodeUp, "rejected node-up report from server s1: bad tag for server s1"},
		{workflows.SignalResult, result, `rejected result report from operation msm/m1/provision/1: operation "msm/m1/provision/1" is not running`},
		{workflows.SignalUsage, usage, "rejected usage report from server s1: no tag"},
		{workflows.SignalOverload, overload, "rejected overload report from container m1-c1: no tag"},
		{workflows.SignalUsage, usageElsewhere, `rejected usage report from server s2: server "s2" is not one of the Manager's`},
	}
	for i, f := range forgeries {
		s.signal(6*time.Second+time.Duration(i)*time.Second, f.name, f.arg)
	}
	s.snapshot(20*time.Second, &forged, &err2)
	genuine := workflows.ErrorReport{Container: "m1-c1", Service: "web", Reason: "exited with status 3"}
	genuine.Auth = trust.Sign(trContainerKey(trRoot, "m1-c1"), genuine.Fields()...)
	s.signal(21*time.Second, workflows.SignalErrorReport, genuine)
	s.snapshot(40*time.Second, &after, &err3)
	s.run(workflows.ManagerInput{Manager: tfManager}, time.Minute)
	s.requireCancelled()
	s.Require().NoError(err1)
	s.Require().NoError(err2)
	s.Require().NoError(err3)

	s.Equal(workflows.ReportsAuthenticated, before.Reports)
	s.Zero(before.Rejected, "the worker's catalog and the operation's results pass")
	s.Equal(tmProvisioned("waiting").Containers, before.Containers)

	s.Equal(len(forgeries), forged.Rejected)
	msgs := eventMessages(forged.Events)
	s.Require().Len(msgs, len(before.Events)+len(forgeries), "one event per forgery, nothing else")
	for i, f := range forgeries {
		s.Equal(f.why, msgs[len(before.Events)+i])
	}
	rejected := int64(0)
	for _, c := range forged.Counts {
		if c.Metric == workflows.CountRejected {
			rejected += c.N
		}
	}
	s.Equal(int64(len(forgeries)), rejected, "counted by signal: %+v", forged.Counts)
	same := forged
	same.Rejected, same.Events, same.Counts, same.RunSignals = 0, before.Events, before.Counts, before.RunSignals
	s.Equal(before, same, "no forgery changed the catalog, a server, a container or a service")
	at := s.startedAt(start)
	s.Require().Greater(len(at), 1)
	s.GreaterOrEqual(at[1], 21*time.Second, "no operation before the genuine report")

	s.Equal(len(forgeries), after.Rejected)
	s.Contains(eventMessages(after.Events), "recover web: container m1-c1 on s1 reported exited with status 3")
}

// TestOperationsRefuseToStartUnlessByTheirManager: with a key ring, an
// operation a client starts directly (any client of the namespace can)
// fails at once with ErrNotByManager and calls no activity; Shrink too.
func TestOperationsRefuseToStartUnlessByTheirManager(t *testing.T) {
	ring, err := trust.NewRing(trRoot)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		wf   any
		in   any
	}{
		{"extend", workflows.Provision, workflows.ProvisionInput{Op: "attack", Manager: tfManager, Kind: catalog.KindStandalone,
			Plan:     fleet.Plan{Starts: []fleet.Container{tfStart("c9", "s1", 20009, "web")}},
			Services: []catalog.Service{tfWeb}, Addresses: map[string]string{"s1": tfS1.Address}}},
		{"shrink", workflows.Shrink, workflows.ShrinkInput{Op: "attack", Manager: tfManager, Kind: catalog.KindStandalone,
			Plan: fleet.ShrinkPlan{Destroys: []fleet.Container{shDraining("c1", "s1", 20000, "web")}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ts testsuite.WorkflowTestSuite
			env := ts.NewTestWorkflowEnvironment()
			env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{workflows.TrustInterceptor(ring)}})
			fake := &tfFleet{}
			fake.register(env)
			env.ExecuteWorkflow(tc.wf, tc.in)
			require.True(t, env.IsWorkflowCompleted())
			var app *temporal.ApplicationError
			require.ErrorAs(t, env.GetWorkflowError(), &app)
			assert.Equal(t, workflows.ErrNotByManager, app.Type())
			assert.Contains(t, app.Message(), "was started by a client, not by its Manager msm/m1; nothing was done")
			assert.Empty(t, fake.calls, "no activity ran")
		})
	}
}
