// Package metrics serves the Prometheus metrics of msm's long-running
// processes on /metrics. The Manager's figures come from its status, a
// query of its workflow (so reading them writes nothing to its history),
// asked once per scrape and kept for a second; never from workflow code.
// Names are prefixed msm_; labels are low-cardinality (service, server,
// state), never a container or workflow ID. docs/observability.md lists
// every metric.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/opentelemetry"

	"github.com/msm-project/msm/workflows"
)

// Statuser answers the Manager's status. It is a query: asking writes
// nothing to the Manager's history. An error means the Manager did not
// answer (not running yet, Temporal unreachable).
type Statuser interface {
	Status(ctx context.Context) (workflows.Status, error)
}

// StatusFunc adapts a function to Statuser.
type StatusFunc func(ctx context.Context) (workflows.Status, error)

// Status calls f.
func (f StatusFunc) Status(ctx context.Context) (workflows.Status, error) { return f(ctx) }

// keep is how long a status read serves scrapes.
const keep = time.Second

// queryTimeout bounds one status query.
const queryTimeout = 5 * time.Second

var (
	upDesc = prometheus.NewDesc("msm_manager_up",
		"1 when the Manager answered its status query at the last scrape, 0 when it did not (then no other msm_ gauge of it is exported).", nil, nil)
	containersDesc = prometheus.NewDesc("msm_containers",
		"Containers the Manager holds, by state (starting, waiting, loading, loaded, draining, stopping, failed: failed ones are kept for status until replaced).", []string{"state"}, nil)
	serversDesc = prometheus.NewDesc("msm_servers",
		"Servers the Manager uses, by state.", []string{"state"}, nil)
	slotsDesc = prometheus.NewDesc("msm_server_slots",
		"Slots of each server in use: its size, and how many its containers use.", []string{"server", "state"}, nil)
	desiredDesc = prometheus.NewDesc("msm_service_desired_instances",
		"Instances the Manager wants of each service.", []string{"service"}, nil)
	readyDesc = prometheus.NewDesc("msm_service_ready_instances",
		"Instances of each service loaded and healthy.", []string{"service"}, nil)
	backoffDesc = prometheus.NewDesc("msm_service_backoff",
		"1 while a service is in crash-loop back-off (no new instance is tried before its retry time), else 0.", []string{"service"}, nil)
	failuresDesc = prometheus.NewDesc("msm_service_consecutive_failures",
		"Failures in a row of a service's new instances (its crash-loop back-off grows with them).", []string{"service"}, nil)
	unplacedDesc = prometheus.NewDesc("msm_unplaced_instances",
		"Instances the last decision could not place, by service (\"\" for the warm pool) and reason (no_room, max_servers, server_too_small, port_lease; \"\" when all are placed); msm why SERVICE says it with the figures.", []string{"service", "reason"}, nil)
	portsDesc = prometheus.NewDesc("msm_server_ports",
		"Ports of each server's range: leased to its containers, blocked (held by another process, never leased), free.", []string{"server", "state"}, nil)
	cpuDesc = prometheus.NewDesc("msm_server_cpu_percent",
		"CPU use of each server, in percent of all its cores, over its node's last report period.", []string{"server"}, nil)
	memDesc = prometheus.NewDesc("msm_server_memory_percent",
		"Memory use of each server, in percent, at its node's last report.", []string{"server"}, nil)
	durationDesc = prometheus.NewDesc("msm_operation_duration_seconds",
		"How long the Manager's operations ran, from the decision that started them to their end, by kind.", []string{"kind"}, nil)
	warmDesc = prometheus.NewDesc("msm_warm_pool_target",
		"Waiting containers the catalog asks for (msm_containers{state=\"waiting\"} is the pool).", nil, nil)
	operationsDesc = prometheus.NewDesc("msm_operations_in_flight",
		"Operations (Provision, Extend, Shrink, Rearrange, Recover) running.", nil, nil)
	runSignalsDesc = prometheus.NewDesc("msm_manager_run_signals",
		"Signals the Manager's current run has taken; it continues as new at msm_manager_signal_limit.", nil, nil)
	signalLimitDesc = prometheus.NewDesc("msm_manager_signal_limit",
		"The most signals one run of the Manager takes before it continues as new.", nil, nil)
	rejectedDesc = prometheus.NewDesc("msm_rejected_reports_total",
		"Reports the Manager refused (not signed by who may send them), by signal; msm events says which and why.", []string{"signal"}, nil)
	authDesc = prometheus.NewDesc("msm_reports_authenticated",
		"1 when the Manager checks every report's tag (its worker has a key ring), else 0.", nil, nil)
	catalogErrDesc = prometheus.NewDesc("msm_catalog_rejected",
		"1 while the last change of the catalog was rejected (the one in force stays), else 0.", nil, nil)
)

// countDescs are the Manager's counters (workflows.Count), by metric.
var countDescs = map[string]*prometheus.Desc{
	workflows.CountDecisions: prometheus.NewDesc("msm_decisions_total",
		"Decisions the Manager made, by kind (extend, shrink, recover, rearrange, provision, refill, consolidate, drain, unplaced, catalog, rejected); msm events lists them.", workflows.CountLabels[workflows.CountDecisions], nil),
	workflows.CountExtensions: prometheus.NewDesc("msm_extensions_total",
		"Instances added by extensions, by service, trigger (agent: an overload report, operator: msm extend or scale, monitoring: the autoscaler) and source (warm_pool, new_container, new_server).", workflows.CountLabels[workflows.CountExtensions], nil),
	workflows.CountRecoveries: prometheus.NewDesc("msm_recoveries_total",
		"Instances failed and replaced, by service and cause (exit, health, limit, agent_exit, agent_hung, server_lost, node_restart, start_failed, load_failed).", workflows.CountLabels[workflows.CountRecoveries], nil),
	workflows.CountShrinks: prometheus.NewDesc("msm_shrinks_total",
		"Instances removed by Shrink operations (back to the warm pool or destroyed), by service.", workflows.CountLabels[workflows.CountShrinks], nil),
	workflows.CountOperations: prometheus.NewDesc("msm_operations_total",
		"Operations that ended, by kind (provision, refill, extend, recover, rearrange, shrink) and result (ok, failed).", workflows.CountLabels[workflows.CountOperations], nil),
	workflows.CountCatalog: prometheus.NewDesc("msm_catalog_reloads_total",
		"Catalogs the Manager received, by result (applied, rejected: the one in force stays).", workflows.CountLabels[workflows.CountCatalog], nil),
}

// countOrder is countDescs' keys in a fixed order.
var countOrder = []string{workflows.CountDecisions, workflows.CountExtensions, workflows.CountRecoveries,
	workflows.CountShrinks, workflows.CountOperations, workflows.CountCatalog}

// Manager exports the Manager's status as gauges (a prometheus.Collector).
type Manager struct {
	src Statuser

	mu   sync.Mutex
	at   time.Time
	st   workflows.Status
	err  error
	now  func() time.Time
	wait time.Duration
}

// NewManager is the collector of the Manager src answers for.
func NewManager(src Statuser) *Manager {
	return &Manager{src: src, now: time.Now, wait: queryTimeout}
}

// Describe sends the descriptors of every metric Collect may send.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, containersDesc, serversDesc, slotsDesc, desiredDesc, readyDesc,
		backoffDesc, failuresDesc, unplacedDesc, warmDesc, operationsDesc, runSignalsDesc, signalLimitDesc, rejectedDesc, authDesc, catalogErrDesc,
		portsDesc, cpuDesc, memDesc, durationDesc} {
		ch <- d
	}
	for _, k := range countOrder {
		ch <- countDescs[k]
	}
}

// read returns the status, asking the Manager when the last answer is
// older than keep.
func (m *Manager) read() (workflows.Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.at.IsZero() && m.now().Sub(m.at) < keep {
		return m.st, m.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.wait)
	defer cancel()
	m.st, m.err = m.src.Status(ctx)
	m.at = m.now()
	return m.st, m.err
}

// Collect sends the gauges of the Manager's status.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	st, err := m.read()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(upDesc, 1)
	for _, kv := range counts(len(st.Containers), func(i int) string { return st.Containers[i].State }) {
		gauge(containersDesc, float64(kv.n), kv.key)
	}
	for _, kv := range counts(len(st.Servers), func(i int) string { return st.Servers[i].State }) {
		gauge(serversDesc, float64(kv.n), kv.key)
	}
	for _, s := range st.Servers {
		gauge(slotsDesc, float64(s.Slots), s.ID, "total")
		gauge(slotsDesc, float64(s.Used), s.ID, "used")
	}
	for _, s := range st.Services {
		gauge(desiredDesc, float64(s.Desired), s.Name)
		gauge(readyDesc, float64(s.Ready), s.Name)
		gauge(backoffDesc, b2f(s.RetryAt != nil), s.Name)
		gauge(failuresDesc, float64(s.Failures), s.Name)
	}
	// Each service (and the pool) once: with its reasons, or at 0.
	type key struct{ service, reason string }
	unplaced := map[key]int{}
	var order []key
	for _, u := range st.Unplaced {
		k := key{u.Service, u.Code}
		if _, ok := unplaced[k]; !ok {
			order = append(order, k)
		}
		unplaced[k] += u.Count
	}
	for _, k := range order {
		gauge(unplacedDesc, float64(unplaced[k]), k.service, k.reason)
	}
	for _, s := range append(st.Services, workflows.ServiceStatus{}) {
		if !slices.ContainsFunc(order, func(k key) bool { return k.service == s.Name }) {
			gauge(unplacedDesc, 0, s.Name, "")
		}
	}
	gauge(warmDesc, float64(st.WarmPool))
	gauge(operationsDesc, float64(st.Operations))
	if st.SignalLimit > 0 {
		gauge(runSignalsDesc, float64(st.RunSignals))
		gauge(signalLimitDesc, float64(st.SignalLimit))
	}
	for _, p := range st.Ports {
		gauge(portsDesc, float64(p.Leased), p.Server, "leased")
		gauge(portsDesc, float64(p.Blocked), p.Server, "blocked")
		gauge(portsDesc, float64(max(p.Range-p.Leased-p.Blocked, 0)), p.Server, "free")
	}
	for _, s := range st.Servers {
		if s.CPU != 0 || s.Memory != 0 {
			gauge(cpuDesc, float64(s.CPU), s.ID)
			gauge(memDesc, float64(s.Memory), s.ID)
		}
	}
	rejected := 0
	for _, c := range st.Counts {
		if c.Metric == workflows.CountRejected && len(c.Labels) == 1 {
			ch <- prometheus.MustNewConstMetric(rejectedDesc, prometheus.CounterValue, float64(c.N), c.Labels...)
			rejected += int(c.N)
			continue
		}
		if d := countDescs[c.Metric]; d != nil && len(c.Labels) == len(workflows.CountLabels[c.Metric]) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(c.N), c.Labels...)
		}
	}
	if st.Rejected > rejected {
		// Refused before the Manager counted them by signal.
		ch <- prometheus.MustNewConstMetric(rejectedDesc, prometheus.CounterValue, float64(st.Rejected-rejected), "unknown")
	}
	for _, d := range st.Durations {
		buckets := map[float64]uint64{}
		var cum uint64
		for i, b := range workflows.DurationBuckets {
			if i < len(d.Buckets) {
				cum += uint64(d.Buckets[i])
			}
			buckets[b] = cum
		}
		ch <- prometheus.MustNewConstHistogram(durationDesc, uint64(d.Count), d.Sum, buckets, d.Kind)
	}
	gauge(authDesc, b2f(st.Reports == workflows.ReportsAuthenticated))
	gauge(catalogErrDesc, b2f(st.CatalogError != ""))
}

type count struct {
	key string
	n   int
}

// counts tallies n items by key, in key order.
func counts(n int, key func(int) string) []count {
	by := map[string]int{}
	for i := 0; i < n; i++ {
		by[key(i)]++
	}
	out := make([]count, 0, len(by))
	for k, v := range by {
		out = append(out, count{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Registry is a registry with the Go runtime's and the process's own
// collectors, and cs.
func Registry(cs ...prometheus.Collector) (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	all := append([]prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}, cs...)
	for _, c := range all {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering metrics, %w", err)
		}
	}
	return reg, nil
}

// SDK is where a Temporal client's own metrics (temporal_*: requests,
// polls, task latencies, workers' slots) go: the SDK's OpenTelemetry
// handler (go.temporal.io/sdk/contrib/opentelemetry), whose meter the OTel
// Prometheus exporter reads into reg, beside msm's own.
func SDK(reg prometheus.Registerer) (client.MetricsHandler, error) {
	exp, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo(), otelprom.WithoutTargetInfo())
	if err != nil {
		return nil, fmt.Errorf("exporting the Temporal SDK's metrics, %w", err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
	return opentelemetry.NewMetricsHandler(opentelemetry.MetricsHandlerOptions{
		Meter:                mp.Meter("temporal-sdk-go"),
		UseMonotonicCounters: true,
		OnError:              func(error) {}, // a metric the SDK could not record is not worth stopping for
	}), nil
}

// Serve serves reg's metrics on http://addr/metrics until ctx ends. It
// returns once it listens (an address in use fails at once, naming it) and
// the address it listens on (addr may ask for port 0).
func Serve(ctx context.Context, addr string, reg *prometheus.Registry) (string, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("serving metrics on %s (--metrics-addr; empty turns it off), %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = l.Close()
		}
	}()
	return l.Addr().String(), nil
}
