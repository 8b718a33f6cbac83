package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// stormCatalog is a simulated fleet of services × replicas on servers of
// 21 slots, whose loads take loadDelay: an extension decided in a storm
// is still running while the storm goes on.
func stormCatalog(services, replicas, servers int, loadDelay time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "manager:\n  kind: simulated\n  warm_pool: 0\n  simulated:\n    servers: %d\n    slots: 21\n    start_delay: 5ms\n    load_delay: %s\n\nservices:\n",
		servers, loadDelay)
	for i := 1; i <= services; i++ {
		fmt.Fprintf(&b, "  - name: svc-%02d\n    replicas: {initial: %d, min: 1, max: %d}\n", i, replicas, 2*replicas)
	}
	return b.String()
}

// runFigures are what one run of the Manager's history holds.
type runFigures struct {
	run       string
	events    int
	signals   int
	continued bool
}

// managerRuns walks the Manager's runs from the current one back to the
// first (each run's first event names the run it continues), oldest
// first, counting each one's events and signals.
func managerRuns(t *testing.T, c *cluster) []runFigures {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := workflows.ManagerID(c.manager)
	d, err := c.client.DescribeWorkflow(ctx, id, "")
	require.NoError(t, err)
	run := d.RawResponse.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	var out []runFigures
	for run != "" {
		f := runFigures{run: run}
		prev := ""
		it := c.client.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			e, err := it.Next()
			require.NoError(t, err)
			f.events++
			switch e.GetEventType() {
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
				prev = e.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
				f.signals++
			case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
				f.continued = true
			}
		}
		out = append([]runFigures{f}, out...)
		run = prev
	}
	return out
}

// TestSignalStormKeepsTheManagerInBounds (issue 17, acceptance 4): 5,000
// overload and usage reports in 10 s, signed as the old agents (one
// signal per report) and the nodes sign them, reach a Manager of 10
// services of 10 simulated instances while the extensions they cause
// are still loading. No report is refused by the server, every run of
// the Manager stays under its history and signal bounds (it continues as
// new, handing over the operations still running), and each service is
// extended once.
func TestSignalStormKeepsTheManagerInBounds(t *testing.T) {
	const (
		services, replicas, servers = 10, 10, 10
		senders                     = 50
	)
	// MSM_STORM="REPORTS SECONDS LOAD_DELAY" measures other storms (the
	// default is the acceptance's: "5000 10 15s").
	reports, secs, loadDelay := 5000, 10, 15*time.Second
	if v := os.Getenv("MSM_STORM"); v != "" {
		var d string
		_, err := fmt.Sscan(v, &reports, &secs, &d)
		require.NoError(t, err, "MSM_STORM")
		loadDelay, err = time.ParseDuration(d)
		require.NoError(t, err, "MSM_STORM")
	}
	over := time.Duration(secs) * time.Second
	c := newCluster(t, spec{})
	require.NoError(t, c.h.WriteCatalog(stormCatalog(services, replicas, servers, loadDelay)))
	ringFile := c.keyRing()
	c.start("worker", "worker", "--catalog", c.catalog, "--key-file", ringFile)
	ready := func(n int) func(workflows.Status) bool {
		return func(st workflows.Status) bool {
			if len(st.Services) != services || st.Operations > 0 {
				return false
			}
			for _, s := range st.Services {
				if s.Desired != n || s.Ready != n {
					return false
				}
			}
			return true
		}
	}
	st := c.waitFor("every service ready", 3*time.Minute, ready(replicas))
	c.assertAuthenticated(st)
	before := managerRuns(t, c)
	// The decision log's last record before the storm.
	var page workflows.LogPage
	v, err := c.client.QueryWorkflow(context.Background(), workflows.ManagerID(c.manager), "", workflows.QueryLog, workflows.LogQuery{})
	require.NoError(t, err)
	require.NoError(t, v.Get(&page))
	seq := page.Seq

	ring, err := trust.LoadRing(ringFile)
	require.NoError(t, err)
	root := ring.Current()
	type loaded struct{ id, server, service string }
	var instances []loaded
	byServer := map[string][]string{}
	for _, ct := range st.Containers {
		instances = append(instances, loaded{ct.ID, ct.Server, ct.Service})
		byServer[ct.Server] = append(byServer[ct.Server], ct.ID)
	}
	var serverNames []string
	for s := range byServer {
		serverNames = append(serverNames, s)
	}
	require.Len(t, instances, services*replicas)
	// Report i: every tenth a node's usage summary, the rest an agent's
	// overload report, round the instances.
	signal := func(ctx context.Context, i int) error {
		id := workflows.ManagerID(c.manager)
		if i%10 == 9 {
			s := serverNames[i%len(serverNames)]
			u := workflows.UsageSignal{Server: s, CPU: 95, Memory: 60}
			for _, ct := range byServer[s] {
				u.Containers = append(u.Containers, workflows.ContainerUsage{Container: ct, CPU: 97})
			}
			u.Auth = agentapi.Sign(trust.ServerKey(root, c.manager, s), u.Fields())
			return c.client.SignalWorkflow(ctx, id, "", workflows.SignalUsage, u)
		}
		in := instances[i%len(instances)]
		o := workflows.OverloadSignal{Container: in.id, Service: in.service, Reason: fmt.Sprintf("storm report %d", i)}
		o.Auth = agentapi.Sign(trust.ContainerKey(trust.ServerKey(root, c.manager, in.server), in.id), o.Fields())
		return c.client.SignalWorkflow(ctx, id, "", workflows.SignalOverload, o)
	}
	var refused atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	var wg sync.WaitGroup
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each sender sends its share evenly over the storm.
			per := reports / senders
			gap := over / time.Duration(per)
			next := began.Add(time.Duration(w) * gap / senders)
			for k := range per {
				time.Sleep(time.Until(next))
				next = next.Add(gap)
				if err := signal(ctx, k*senders+w); err != nil {
					refused.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	stormTook := time.Since(began)
	settled := c.waitFor("each service extended once and settled", 3*time.Minute, ready(replicas+1))
	settleTook := time.Since(began) - stormTook
	runs := managerRuns(t, c)[len(before)-1:]

	// The figures, before the assertions.
	t.Logf("storm: %d reports in %.1fs, %d refused by the server (first: %v); settled %.1fs after it",
		reports, stormTook.Seconds(), refused.Load(), firstErr.Load(), settleTook.Seconds())
	maxEvents, maxSignals := 0, 0
	for _, r := range runs {
		t.Logf("run %s: %d events, %d signals, continued as new: %t", r.run, r.events, r.signals, r.continued)
		maxEvents, maxSignals = max(maxEvents, r.events), max(maxSignals, r.signals)
	}
	t.Logf("%d run(s) from the storm on (the first began before it); the longest %d events, the most signals %d",
		len(runs), maxEvents, maxSignals)
	var decisions, ops []string
	for i := 1; i <= services; i++ {
		svc := fmt.Sprintf("svc-%02d", i)
		var page workflows.LogPage
		v, err := c.client.QueryWorkflow(ctx, workflows.ManagerID(c.manager), "", workflows.QueryLog, workflows.LogQuery{After: seq, Service: svc})
		require.NoError(t, err)
		require.NoError(t, v.Get(&page))
		// Since the storm began: one extension decided, and one operation
		// placing its instance (an Extend, or one shared with the services
		// placed on a server it launches).
		n, o := 0, 0
		for _, r := range page.Records {
			switch {
			case r.Seq <= seq:
			case r.Kind == workflows.RecordExtend && r.Op == "":
				n++
				decisions = append(decisions, r.Message)
			case r.Op != "" && r.Kind != workflows.RecordDone && r.Kind != workflows.RecordFailed:
				o++
				ops = append(ops, r.Op)
			}
		}
		assert.Equal(t, 1, n, "%s: one extension decision", svc)
		assert.Equal(t, 1, o, "%s: one operation placing its instance", svc)
	}
	t.Logf("extension decisions: %q; their operations: %q", decisions, ops)

	assert.Zero(t, refused.Load(), "reports refused by the server: %v", firstErr.Load())
	assert.Greater(t, len(runs), 1, "the Manager continued as new in the storm")
	for _, r := range runs {
		assert.LessOrEqual(t, r.events, workflows.HandoverLimit(workflows.DefaultHistoryLimit)+500, "events of run %s", r.run)
		assert.Less(t, r.signals, workflows.DefaultSignalLimit+500, "signals of run %s", r.run)
	}
	c.assertAuthenticated(settled)
}
