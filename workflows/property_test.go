package workflows_test

import (
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/fleet"
	msmworker "github.com/msm-project/msm/worker"
	"github.com/msm-project/msm/workflows"
)

// ppOp is an operation the Manager started, with what it touches.
type ppOp struct {
	id        string
	services  []string
	poolStart bool     // starts warm-pool containers
	unloads   bool     // returns instances to the pool
	servers   []string // launched or released
	steps     []string // servers it has steps on
}

func ppOpOf(info *workflow.Info, args converter.EncodedValues) (ppOp, error) {
	op := ppOp{id: info.WorkflowExecution.ID}
	if info.WorkflowType.Name == workflows.WorkflowShrink {
		var in workflows.ShrinkInput
		if err := args.Get(&in); err != nil {
			return op, err
		}
		op.services, op.unloads, op.servers = in.Plan.Services(), len(in.Plan.Unloads) > 0, in.Plan.Release
		for _, c := range slices.Concat(in.Plan.Unloads, in.Plan.Destroys) {
			op.steps = append(op.steps, c.Server)
		}
		return op, nil
	}
	var in workflows.ProvisionInput
	if err := args.Get(&in); err != nil {
		return op, err
	}
	op.services = in.Plan.Services()
	for _, s := range in.Plan.Servers {
		op.servers = append(op.servers, s.ID)
	}
	for _, c := range slices.Concat(in.Plan.Starts, in.Plan.Loads) {
		op.poolStart = op.poolStart || (c.Service == "" && slices.Contains(in.Plan.Starts, c))
		op.steps = append(op.steps, c.Server)
	}
	return op, nil
}

// conflict says why two operations may not run at once, or "".
func (a ppOp) conflict(b ppOp) string {
	for _, s := range a.services {
		if slices.Contains(b.services, s) {
			return "both work on service " + s
		}
	}
	if (a.poolStart || a.unloads) && (b.poolStart || b.unloads) {
		return "both fill the warm pool"
	}
	for _, s := range a.servers {
		if slices.Contains(b.steps, s) || slices.Contains(b.servers, s) {
			return "one launches or releases server " + s + ", where the other works"
		}
	}
	return ""
}

// TestOperationsSideBySideProperties drives the Manager through random
// fleets and random sequences of operators' and agents' messages
// (extend, scale, drain, overload and error reports) with operations that
// take time, and checks: no two operations running at once work on the
// same service, fill the warm pool together, or touch a server the other
// launches or releases; and once the messages stop, every service is back
// at its desired instances with the pool full and ports unique per server.
func TestOperationsSideBySideProperties(t *testing.T) {
	seeds := 12
	if testing.Short() {
		seeds = 3
	}
	for seed := int64(1); seed <= int64(seeds); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { ppRun(t, seed) })
	}
}

func ppRun(t *testing.T, seed int64) {
	rnd := rand.New(rand.NewSource(seed))
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetTestTimeout(2 * time.Minute)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.ManagerID(tfManager)})
	msmworker.RegisterWorkflows(env)
	fake := &shFleet{tfFleet: &tfFleet{}}
	fake.register(env)
	// Operations take time, so that they overlap.
	env.OnActivity(workflows.ActivityLoadService, mock.Anything, mock.Anything).After(time.Duration(1+rnd.Intn(3)) * time.Second).Return(fake.LoadService)
	env.OnActivity(workflows.ActivityStopContainer, mock.Anything, mock.Anything).After(time.Duration(rnd.Intn(2)) * time.Second).Return(fake.StopContainer)
	fake.holdLeases(env)

	cat := catalog.Catalog{Manager: catalog.Manager{Kind: catalog.KindStandalone, WarmPool: rnd.Intn(3)}}
	for i := range 3 {
		first := 20000 + 100*i
		cat.Manager.Servers = append(cat.Manager.Servers, catalog.Server{Name: fmt.Sprintf("s%d", i+1), Address: fmt.Sprintf("10.0.0.%d", i+1),
			Slots: 8, Ports: catalog.PortRange{First: first, Last: first + 9}})
	}
	services := 2 + rnd.Intn(3)
	for i := range services {
		n := 1 + rnd.Intn(2)
		cat.Services = append(cat.Services, catalog.Service{Name: fmt.Sprintf("svc%d", i+1), Command: "svc", Slots: 1,
			Drain: time.Duration(rnd.Intn(3)) * time.Second, Replicas: catalog.Replicas{Min: 1, Initial: n, Max: 4}})
	}

	var (
		mu       sync.Mutex
		running  []ppOp
		problems []string
		started  int
	)
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, args converter.EncodedValues) {
		op, err := ppOpOf(info, args)
		mu.Lock()
		defer mu.Unlock()
		started++
		if err != nil {
			problems = append(problems, err.Error())
		}
		for _, r := range running {
			if why := op.conflict(r); why != "" {
				problems = append(problems, fmt.Sprintf("%s started while %s ran: %s", op.id, r.id, why))
			}
		}
		running = append(running, op)
	})
	env.SetOnChildWorkflowCompletedListener(func(info *workflow.Info, _ converter.EncodedValue, _ error) {
		mu.Lock()
		defer mu.Unlock()
		running = slices.DeleteFunc(running, func(op ppOp) bool { return op.id == info.WorkflowExecution.ID })
	})

	at := func(d time.Duration, fn func()) { env.RegisterDelayedCallback(fn, d) }
	noop := &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(error) {}, OnComplete: func(any, error) {}}
	var log []string
	at(time.Second, func() {
		env.SignalWorkflow(workflows.SignalCatalog, workflows.CatalogSignal{Catalog: cat, Source: "catalog.yaml"})
	})
	for i := range 12 {
		d := 5*time.Second + time.Duration(rnd.Intn(120))*time.Second + time.Duration(i)*time.Millisecond
		svc := cat.Services[rnd.Intn(services)].Name
		switch rnd.Intn(5) {
		case 0:
			log = append(log, fmt.Sprintf("%s extend %s", d, svc))
			at(d, func() {
				env.UpdateWorkflow(workflows.UpdateExtend, fmt.Sprint("u", i), noop, workflows.ExtendUpdate{Service: svc, Count: 1})
			})
		case 1:
			n := 1 + rnd.Intn(4)
			log = append(log, fmt.Sprintf("%s scale %s to %d", d, svc, n))
			at(d, func() {
				env.UpdateWorkflow(workflows.UpdateScale, fmt.Sprint("u", i), noop, workflows.ScaleUpdate{Service: svc, Replicas: n})
			})
		case 2:
			server := fmt.Sprintf("s%d", 1+rnd.Intn(3))
			log = append(log, fmt.Sprintf("%s drain %s", d, server))
			at(d, func() {
				env.UpdateWorkflow(workflows.UpdateDrain, fmt.Sprint("u", i), noop, workflows.DrainUpdate{Server: server})
			})
		case 3:
			id := fmt.Sprintf("%s-c%d", tfManager, 1+rnd.Intn(20))
			log = append(log, fmt.Sprintf("%s crash %s", d, id))
			at(d, func() {
				env.SignalWorkflow(workflows.SignalErrorReport, workflows.ErrorReport{Container: id, Reason: "exited with status 1"})
			})
		default:
			log = append(log, fmt.Sprintf("%s overload %s", d, svc))
			at(d, func() {
				env.SignalWorkflow(workflows.SignalOverload, workflows.OverloadSignal{Container: "any", Service: svc, Reason: "cpu"})
			})
		}
	}
	var st workflows.Status
	var qerr error
	at(9*time.Minute, func() {
		v, err := env.QueryWorkflow(workflows.QueryStatus)
		if err == nil {
			err = getStatus(v, &st)
		}
		qerr = err
	})
	at(10*time.Minute, func() { env.CancelWorkflow() })
	env.ExecuteWorkflow(workflows.Manager, workflows.ManagerInput{Manager: tfManager})

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, problems, "events:\n%v", log)
	require.NoError(t, qerr)
	require.Greater(t, started, 1)
	require.Zero(t, st.Operations, "events:\n%v\nstatus %+v", log, st)
	for _, s := range st.Services {
		require.Equal(t, s.Desired, s.Ready, "%s back at desired; events:\n%v\nstatus %+v", s.Name, log, st)
	}
	require.Equal(t, cat.Manager.WarmPool, st.Count(string(fleet.Waiting)), "the warm pool is full; events:\n%v", log)
	ports := map[string]bool{}
	for _, c := range st.Containers {
		if c.Port == 0 {
			continue
		}
		key := fmt.Sprintf("%s:%d", c.Server, c.Port)
		require.False(t, ports[key], "port %s leased twice", key)
		ports[key] = true
	}
}
