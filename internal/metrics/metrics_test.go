package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/fleet"
	"github.com/msm-project/msm/node"
	"github.com/msm-project/msm/workflows"
)

// scrape serves c and reads /metrics as Prometheus would.
func scrape(t *testing.T, c *Manager) Families {
	t.Helper()
	reg, err := Registry(c)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, err := Serve(ctx, "127.0.0.1:0", reg)
	require.NoError(t, err)
	fams, err := Scrape(ctx, "http://"+addr+"/metrics")
	require.NoError(t, err)
	return fams
}

func TestManagerStatusAsGauges(t *testing.T) {
	retry := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	st := workflows.Status{
		Manager: "m", Kind: "standalone", WarmPool: 2, Operations: 1, Rejected: 3, Reports: workflows.ReportsAuthenticated,
		Servers: []workflows.ServerStatus{{ID: "s1", State: "ready", Slots: 4, Used: 3, CPU: 37, Memory: 52}, {ID: "s2", State: "lost", Slots: 2}},
		Containers: []workflows.ContainerStatus{
			{ID: "m-c1", State: "loaded", Service: "web"}, {ID: "m-c2", State: "loaded", Service: "web"},
			{ID: "m-c3", State: "waiting"}, {ID: "m-c4", State: "failed", Service: "api"},
		},
		Services: []workflows.ServiceStatus{
			{Name: "web", Desired: 3, Ready: 2},
			{Name: "api", Desired: 1, Ready: 0, Failures: 4, RetryAt: &retry, LastError: "exit 3"},
		},
		Unplaced: []fleet.Unplaced{{Service: "web", Count: 1, Code: fleet.UnplacedNoRoom, Reason: "no room"}, {Count: 1, Code: fleet.UnplacedMaxServers, Reason: "max"}},
		Counts: []workflows.Count{
			{Metric: workflows.CountExtensions, Labels: []string{"web", workflows.TriggerAgent, string(fleet.SourceWarmPool)}, N: 2},
			{Metric: workflows.CountRecoveries, Labels: []string{"api", workflows.CauseExit}, N: 4},
			{Metric: workflows.CountShrinks, Labels: []string{"web"}, N: 1},
			{Metric: workflows.CountOperations, Labels: []string{"extend", "ok"}, N: 2},
			{Metric: workflows.CountDecisions, Labels: []string{"extend"}, N: 4},
			{Metric: workflows.CountCatalog, Labels: []string{"applied"}, N: 1},
			{Metric: workflows.CountRejected, Labels: []string{workflows.SignalOverload}, N: 2},
		},
		Durations: []workflows.Durations{{Kind: "extend", Buckets: []int64{0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0}, Count: 2, Sum: 1.2}},
		Ports:     []workflows.PortUse{{Server: "s1", Range: 10, Blocked: 1, Leased: 3}},
	}
	fams := scrape(t, NewManager(StatusFunc(func(context.Context) (workflows.Status, error) { return st, nil })))
	assert.Empty(t, fams.Mismatches(
		Sample{"msm_manager_up", nil, 1},
		Sample{"msm_containers", []string{"state", "loaded"}, 2},
		Sample{"msm_containers", []string{"state", "waiting"}, 1},
		Sample{"msm_containers", []string{"state", "failed"}, 1},
		Sample{"msm_servers", []string{"state", "ready"}, 1},
		Sample{"msm_servers", []string{"state", "lost"}, 1},
		Sample{"msm_server_slots", []string{"server", "s1", "state", "total"}, 4},
		Sample{"msm_server_slots", []string{"server", "s1", "state", "used"}, 3},
		Sample{"msm_service_desired_instances", []string{"service", "web"}, 3},
		Sample{"msm_service_ready_instances", []string{"service", "web"}, 2},
		Sample{"msm_service_ready_instances", []string{"service", "api"}, 0},
		Sample{"msm_service_backoff", []string{"service", "api"}, 1},
		Sample{"msm_service_backoff", []string{"service", "web"}, 0},
		Sample{"msm_service_consecutive_failures", []string{"service", "api"}, 4},
		Sample{"msm_unplaced_instances", []string{"service", "web", "reason", "no_room"}, 1},
		Sample{"msm_unplaced_instances", []string{"service", "api", "reason", ""}, 0},
		Sample{"msm_unplaced_instances", []string{"service", "", "reason", "max_servers"}, 1},
		Sample{"msm_server_ports", []string{"server", "s1", "state", "leased"}, 3},
		Sample{"msm_server_ports", []string{"server", "s1", "state", "blocked"}, 1},
		Sample{"msm_server_ports", []string{"server", "s1", "state", "free"}, 6},
		Sample{"msm_server_cpu_percent", []string{"server", "s1"}, 37},
		Sample{"msm_server_memory_percent", []string{"server", "s1"}, 52},
		Sample{"msm_extensions_total", []string{"service", "web", "trigger", "agent", "source", "warm_pool"}, 2},
		Sample{"msm_recoveries_total", []string{"service", "api", "cause", "exit"}, 4},
		Sample{"msm_shrinks_total", []string{"service", "web"}, 1},
		Sample{"msm_operations_total", []string{"kind", "extend", "result", "ok"}, 2},
		Sample{"msm_decisions_total", []string{"kind", "extend"}, 4},
		Sample{"msm_catalog_reloads_total", []string{"result", "applied"}, 1},
		Sample{"msm_operation_duration_seconds", []string{"kind", "extend"}, 2},
		Sample{"msm_warm_pool_target", nil, 2},
		Sample{"msm_operations_in_flight", nil, 1},
		Sample{"msm_rejected_reports_total", []string{"signal", "overload"}, 2},
		Sample{"msm_rejected_reports_total", []string{"signal", "unknown"}, 1},
		Sample{"msm_reports_authenticated", nil, 1},
		Sample{"msm_catalog_rejected", nil, 0},
	))
	for _, name := range []string{"msm_rejected_reports_total", "msm_extensions_total", "msm_recoveries_total", "msm_operations_total"} {
		assert.Equal(t, dto.MetricType_COUNTER, fams[name].GetType(), name)
	}
	h := fams["msm_operation_duration_seconds"].GetMetric()[0].GetHistogram()
	assert.InDelta(t, 1.2, h.GetSampleSum(), 1e-9)
	var cum []uint64
	for _, b := range h.GetBucket() {
		cum = append(cum, b.GetCumulativeCount())
	}
	assert.Equal(t, []uint64{0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2}, cum, "cumulative buckets, +Inf last")
	_, ok := fams.Value("msm_server_cpu_percent", "server", "s2")
	assert.False(t, ok, "no usage before the node's first report")
	for name := range fams {
		if strings.HasPrefix(name, "msm_") {
			assert.NotEmpty(t, fams[name].GetHelp(), "%s has a help text", name)
			for _, m := range fams[name].Metric {
				for _, l := range m.Label {
					assert.NotContains(t, []string{"container", "workflow", "id"}, l.GetName(), "%s: no high-cardinality label", name)
				}
			}
		}
	}
	assert.Contains(t, fams, "go_goroutines", "the Go runtime's")
	assert.Contains(t, fams, "process_resident_memory_bytes", "the process's")
}

func TestManagerDownIsZeroUp(t *testing.T) {
	fams := scrape(t, NewManager(StatusFunc(func(context.Context) (workflows.Status, error) {
		return workflows.Status{}, errors.New("workflow not found")
	})))
	up, ok := fams.Value("msm_manager_up")
	require.True(t, ok)
	assert.Equal(t, 0.0, up)
	assert.NotContains(t, fams, "msm_containers", "nothing else of a Manager that did not answer")
	assert.Equal(t, []string{"msm_manager_up[]: 0, want 1", "msm_containers[state loaded]: not exported"},
		fams.Mismatches(Sample{"msm_manager_up", nil, 1}, Sample{"msm_containers", []string{"state", "loaded"}, 2}),
		"what Mismatches says of a scrape that differs")
}

// TestStatusIsReadOncePerSecond: scrapes within a second share one query.
func TestStatusIsReadOncePerSecond(t *testing.T) {
	queries := 0
	c := NewManager(StatusFunc(func(context.Context) (workflows.Status, error) {
		queries++
		return workflows.Status{}, nil
	}))
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		_, err := c.read()
		require.NoError(t, err)
	}
	assert.Equal(t, 1, queries)
	now = now.Add(keep)
	_, err := c.read()
	require.NoError(t, err)
	assert.Equal(t, 2, queries)
}

func TestServeRefusesAnAddressInUse(t *testing.T) {
	reg, err := Registry()
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := Serve(ctx, "127.0.0.1:0", reg)
	require.NoError(t, err)
	_, err = Serve(ctx, addr, reg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "serving metrics on "+addr+" (--metrics-addr; empty turns it off)")
}

// TestSDKMetricsGoToTheRegistry: what the Temporal SDK records through SDK
// is scraped with msm's own, counters as _total.
func TestSDKMetricsGoToTheRegistry(t *testing.T) {
	reg, err := Registry()
	require.NoError(t, err)
	h, err := SDK(reg)
	require.NoError(t, err)
	h.WithTags(map[string]string{"operation": "PollActivityTaskQueue"}).Counter("temporal_request").Inc(3)
	h.Gauge("temporal_worker_task_slots_available").Update(5)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := Serve(ctx, "127.0.0.1:0", reg)
	require.NoError(t, err)
	fams, err := Scrape(ctx, "http://"+addr+"/metrics")
	require.NoError(t, err)
	got, ok := fams.Value("temporal_request_total", "operation", "PollActivityTaskQueue")
	require.True(t, ok, "families: %v", keys(fams))
	assert.Equal(t, 3.0, got)
	got, ok = fams.Value("temporal_worker_task_slots_available")
	require.True(t, ok, "families: %v", keys(fams))
	assert.Equal(t, 5.0, got)
}

func keys(f Families) []string {
	var out []string
	for k := range f {
		out = append(out, k)
	}
	return out
}

type nodeStats node.Stats

func (s nodeStats) Stats() node.Stats { return node.Stats(s) }

func TestNodeCounts(t *testing.T) {
	// Two nodes in one registry, as msm dev has them.
	reg, err := Registry(NewNode("s1", nodeStats{Containers: 3, Started: 5, StartFailed: 1, Stopped: 2, AgentExits: 1}),
		NewNode("s2", nodeStats{Containers: 1, Started: 1}))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := Serve(ctx, "127.0.0.1:0", reg)
	require.NoError(t, err)
	fams, err := Scrape(ctx, "http://"+addr+"/metrics")
	require.NoError(t, err)
	assert.Empty(t, fams.Mismatches(
		Sample{"msm_node_containers", []string{"server", "s1"}, 3},
		Sample{"msm_node_container_starts_total", []string{"server", "s1", "result", "started"}, 5},
		Sample{"msm_node_container_starts_total", []string{"server", "s1", "result", "failed"}, 1},
		Sample{"msm_node_container_stops_total", []string{"server", "s1"}, 2},
		Sample{"msm_node_agent_exits_total", []string{"server", "s1"}, 1},
		Sample{"msm_node_containers", []string{"server", "s2"}, 1},
		Sample{"msm_node_container_starts_total", []string{"server", "s2", "result", "started"}, 1},
	))
}
