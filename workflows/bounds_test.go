package workflows_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/fleet/fleettest"
	"github.com/msm-project/msm/workflows"
)

// tbFleet is a Manager's state at fleet scale: n loaded containers, 20 per
// server, over 50 services, on the standalone kind.
func tbFleet(n int) workflows.ManagerInput {
	inv, cat := fleettest.Loaded(n, 0, tfManager)
	return workflows.ManagerInput{Manager: tfManager, Catalog: cat, CatalogSource: "catalog.yaml", Inventory: inv}
}

// TestStateStaysUnderItsBoundAtFleetScale: at 10,000 containers, with
// five services crash-looping on 4 KB outputs (error reports, failed loads
// and a rejected catalog all carry them), the state the Manager carries
// into its next run stays under 1 MB, and every text in it is clipped.
func (s *ManagerSuite) TestStateStaysUnderItsBoundAtFleetScale() {
	in := tbFleet(tbN)
	in.HistoryLimit = 100000
	// Every instance carries the revision it runs, and its agent's version
	// (half of them mid-upgrade: two versions in the list).
	for i := range in.Inventory.Containers {
		c := &in.Inventory.Containers[i]
		c.Agent = []string{"8a0307d1c2b3", "4c1e9b2f7a60+dirty"}[i%2]
		for _, svc := range in.Catalog.Services {
			if svc.Name == c.Service {
				c.Revision = svc.Revision()
			}
		}
	}
	// What this test measures is the state's size: a first workflow task
	// over 10,000 containers, 500 servers and their leases may outlast the
	// detector's 1 s under -race on a machine busy with other tests.
	s.env.SetWorkerOptions(sdkworker.Options{DeadlockDetectionTimeout: 20 * time.Second})
	output := func(who string) string {
		return strings.Repeat(who+": panic: runtime error\n\tgoroutine 1 [running]\n", 100)
	}
	crashing := in.Catalog.Services[:5]
	s.fake.serviceErr = map[string]error{}
	for _, svc := range crashing {
		s.fake.serviceErr[svc.Name] = temporal.NewNonRetryableApplicationError(output(svc.Name), workflows.ErrLoadFailed, nil)
	}
	// Every instance of the crash-looping services reports its crash, in
	// batches (the test environment queues at most 1,000 signals at once).
	var reports []workflows.ErrorReport
	for _, c := range in.Inventory.Containers {
		if c.Service <= crashing[len(crashing)-1].Name {
			reports = append(reports, workflows.ErrorReport{Container: c.ID, Service: c.Service, Reason: output(c.ID)})
		}
	}
	for i := 0; i < len(reports); i += 200 {
		batch := reports[i:min(i+200, len(reports))]
		s.at(time.Second+time.Duration(i)*time.Millisecond, func() {
			for _, r := range batch {
				s.env.SignalWorkflow(workflows.SignalErrorReport, r)
			}
		})
	}
	s.signal(2*time.Second, workflows.SignalCatalogRejected, workflows.CatalogRejectedSignal{Source: "catalog.yaml", Error: output("catalog")})
	s.at(90*time.Second, func() { s.env.SetCurrentHistoryLength(in.HistoryLimit) })
	s.run(in, time.Hour)

	var can *workflow.ContinueAsNewError
	s.Require().True(errors.As(s.env.GetWorkflowError(), &can), "want continue-as-new, got %v", s.env.GetWorkflowError())
	s.Equal(5*time.Second, can.WorkflowTaskTimeout, "the next run of a Manager of some 9,000 containers (10,000 less the crash-looping ones) gives a worker taking it over 5 s to replay it")
	size := 0
	for _, p := range can.Input.Payloads {
		size += len(p.Data)
	}
	s.LessOrEqual(size, 1<<20, "the state carried through continue-as-new")
	var next workflows.ManagerInput
	s.Require().NoError(json.Unmarshal(can.Input.Payloads[0].Data, &next))
	// The crash-looping services' containers were destroyed (their
	// replacements keep failing); the other 45 services' all stay.
	s.Equal(tbN*45/50, len(next.Inventory.Containers), "containers carried")
	texts := []string{next.CatalogError}
	s.LessOrEqual(len(next.Log), workflows.MaxRecords, "records carried")
	for _, r := range next.Log {
		texts = append(texts, r.Message, r.Why, r.Trigger, r.Outcome)
	}
	s.LessOrEqual(len(next.Counts), 7*50+20, "counters carried: a few per service")
	for _, b := range next.Backoffs {
		texts = append(texts, b.LastError)
	}
	for _, c := range append(next.Inventory.Containers, next.Inventory.Failed...) {
		texts = append(texts, c.Error)
	}
	clipped := 0
	for _, t := range texts {
		s.LessOrEqual(len(t), fleet.MaxText)
		if strings.Contains(t, "more bytes in the log") {
			clipped++
		}
	}
	s.NotZero(clipped, "the outputs reached the state, clipped")
	s.T().Logf("state carried at 10,000 containers: %d bytes (%d backoffs, %d records, %d failed kept)", size, len(next.Backoffs), len(next.Log), len(next.Inventory.Failed))
}

var tbN = 10000

// TestRequestsPastTheFleetBoundAreRefused: a catalog that would start more
// containers than a Manager holds is refused with the reason and the one in
// force stays; at the bound, extend and scale are rejected before anything
// happens and overload reports make no decision; the Manager serves on.
func (s *ScaleSuite) TestRequestsPastTheFleetBoundAreRefused() {
	atBound := tfCatalog()
	atBound.Services = slices.Clone(atBound.Services)
	atBound.Services[0].Replicas = catalog.Replicas{Min: 1, Initial: catalog.MaxContainers - 2, Max: catalog.MaxContainers}
	past := tfCatalog()
	past.Services = slices.Clone(past.Services)
	past.Services[1].Replicas = catalog.Replicas{Min: 1, Initial: catalog.MaxContainers, Max: catalog.MaxContainers}

	// A catalog at the bound needs more slots than the two servers have, so
	// no valid catalog signal brings it: it is the carried state of a run
	// whose catalog listed more servers.
	s.catalog(2*time.Second, past)
	extend := s.extend(3*time.Second, "extend", workflows.ExtendUpdate{Service: "api", Count: 1})
	scale := s.scale(3*time.Second, "scale", workflows.ScaleUpdate{Service: "web", Replicas: catalog.MaxContainers - 1})
	s.overload(4*time.Second, "m1-c1", "web", "cpu")
	snap := s.snapshot(10 * time.Second)
	s.run(workflows.ManagerInput{Manager: tfManager, Catalog: &atBound, CatalogSource: "catalog.yaml", Pending: true}, time.Minute)
	s.requireCancelled()

	full := fmt.Sprintf("the Manager already holds its most containers (%d, desired instances and warm pool); shrink another service, or run this service under a Manager of its own", catalog.MaxContainers)
	s.requireRejected(extend, full)
	s.requireRejected(scale, full)
	st := s.status(snap)
	s.Equal(fmt.Sprintf("the catalog starts %d containers but one Manager holds at most %d; split the services into several catalogs, each run by a Manager of its own",
		catalog.MaxContainers+3, catalog.MaxContainers), st.CatalogError)
	s.Equal([]workflows.ServiceStatus{{Name: "web", Desired: catalog.MaxContainers - 2, Ready: 8}, {Name: "api", Desired: 1, Ready: 0}},
		scServices(st), "the catalog at the bound stays in force (web fills both servers); no decision grew it")
	s.Zero(scCountEvents(st, "extend "), "the overload report made no decision")
}

// scServices is the services of a status without their back-off fields.
func scServices(st workflows.Status) []workflows.ServiceStatus {
	var out []workflows.ServiceStatus
	for _, s := range st.Services {
		out = append(out, workflows.ServiceStatus{Name: s.Name, Desired: s.Desired, Ready: s.Ready})
	}
	return out
}
