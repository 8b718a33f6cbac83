package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/msm-project/msm/workflows"
)

// The files of deploy/ (deploy/README.md) that docker-compose.yml mounts.
const (
	dashboardFile  = "../../deploy/grafana/msm.json"
	prometheusFile = "../../deploy/prometheus/prometheus.yml"
	datasourceFile = "../../deploy/grafana/provisioning/datasources/prometheus.yml"
	providerFile   = "../../deploy/grafana/provisioning/dashboards/msm.yml"
)

// sdkMetrics are Temporal SDK metrics the worker exports, by how the SDK
// records them (go.temporal.io/sdk, internal/common/metrics/constants.go;
// the e2e dev test sees temporal_request_total and
// temporal_workflow_completed_total in the worker's scrape). They go
// through SDK as the worker's do, so the exporter's suffixes (_total,
// _seconds) are its own, not guessed here.
var sdkMetrics = struct{ counters, timers, gauges []string }{
	counters: []string{"temporal_request", "temporal_request_failure", "temporal_long_request", "temporal_long_request_failure",
		"temporal_workflow_completed", "temporal_workflow_failed", "temporal_workflow_canceled", "temporal_workflow_continue_as_new",
		"temporal_workflow_task_queue_poll_succeed", "temporal_workflow_task_queue_poll_empty", "temporal_workflow_task_execution_failed",
		"temporal_activity_execution_failed", "temporal_activity_poll_no_task", "temporal_worker_start", "temporal_poller_start",
		"temporal_sticky_cache_hit", "temporal_sticky_cache_miss"},
	timers: []string{"temporal_request_latency", "temporal_long_request_latency", "temporal_workflow_endtoend_latency",
		"temporal_workflow_task_execution_latency", "temporal_workflow_task_schedule_to_start_latency", "temporal_workflow_task_replay_latency",
		"temporal_activity_execution_latency", "temporal_activity_schedule_to_start_latency", "temporal_activity_succeed_endtoend_latency"},
	gauges: []string{"temporal_worker_task_slots_available", "temporal_worker_task_slots_used", "temporal_num_pollers", "temporal_sticky_cache_size"},
}

// targetLabels are the labels Prometheus adds to every series it scrapes.
var targetLabels = []string{"job", "instance"}

// known is every series name a scrape of msm can hold, with its labels;
// nil labels (the SDK's) are not checked.
type known map[string][]string

// descRE reads a prometheus.Desc's String.
var descRE = regexp.MustCompile(`^Desc\{fqName: "([^"]*)", .*constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}\}$`)

// exported is what msm's collectors describe (NewManager's, NewNode's)
// and what SDK exports of sdkMetrics; a histogram is its _bucket, _sum and
// _count series.
func exported(t *testing.T) known {
	t.Helper()
	statuses := StatusFunc(func(context.Context) (workflows.Status, error) {
		return workflows.Status{Durations: []workflows.Durations{{Kind: "extend"}}}, nil
	})
	m, n := NewManager(statuses), NewNode("s1", nodeStats{})
	ch := make(chan *prometheus.Desc, 64)
	m.Describe(ch)
	n.Describe(ch)
	close(ch)
	out := known{}
	for d := range ch {
		parts := descRE.FindStringSubmatch(d.String())
		require.NotNil(t, parts, "a Desc's String: %s", d)
		labels := slices.Clone(targetLabels)
		for _, l := range strings.Split(parts[2], ",") {
			if name, _, ok := strings.Cut(l, "="); ok {
				labels = append(labels, name)
			}
		}
		for _, l := range strings.Split(parts[3], ",") {
			if l != "" {
				labels = append(labels, strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")"))
			}
		}
		out[parts[1]] = labels
	}

	// The SDK's names, and which are histograms: a status with one
	// duration and each of sdkMetrics recorded, gathered.
	reg := prometheus.NewRegistry()
	require.NoError(t, reg.Register(m))
	h, err := SDK(reg)
	require.NoError(t, err)
	for _, name := range sdkMetrics.counters {
		h.Counter(name).Inc(1)
	}
	for _, name := range sdkMetrics.timers {
		h.Timer(name).Record(0)
	}
	for _, name := range sdkMetrics.gauges {
		h.Gauge(name).Update(1)
	}
	fams, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range fams {
		name := f.GetName()
		labels, described := out[name]
		if f.GetType() != dto.MetricType_HISTOGRAM {
			if !described {
				out[name] = nil
			}
			continue
		}
		delete(out, name)
		var bucket []string
		if labels != nil {
			bucket = append(slices.Clone(labels), "le")
		}
		out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = bucket, labels, labels
	}
	return out
}

// family is the metric a series name is of: a histogram's without the
// suffix of its series.
func family(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		name = strings.TrimSuffix(name, suffix)
	}
	return name
}

// ref is a metric an expression names, with the labels it matches it on
// or groups it by.
type ref struct {
	name   string
	labels []string
}

// PromQL's words that are not metric names.
var (
	functions = words(`abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp clamp_max
		clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year days_in_month deg delta deriv
		double_exponential_smoothing end exp floor histogram_avg histogram_count histogram_fraction histogram_quantile
		histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta increase info irate label_join label_replace
		last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute month pi predict_linear
		present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort sort_by_label
		sort_by_label_desc sort_desc sqrt start stddev_over_time stdvar_over_time sum_over_time tan tanh time
		timestamp vector year`)
	aggregations = words(`sum avg min max count stddev stdvar topk bottomk quantile count_values group limitk limit_ratio`)
	grouping     = words(`by without on ignoring group_left group_right`)
	keywords     = words(`and or unless bool offset atan2 inf nan`)
)

func words(s string) map[string]bool {
	out := map[string]bool{}
	for _, w := range strings.Fields(s) {
		out[w] = true
	}
	return out
}

// token is one of a PromQL expression's: kind 'a' an identifier, '"' a
// string, '0' a number or duration, '$' a Grafana variable, else the
// character itself.
type token struct {
	kind byte
	text string
}

func isIdent(c byte, first bool) bool {
	return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || !first && '0' <= c && c <= '9'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// lex splits a PromQL expression (with Grafana's variables) into tokens.
func lex(expr string) ([]token, error) {
	var toks []token
	for i := 0; i < len(expr); {
		c, j := expr[i], i+1
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '"' || c == '\'' || c == '`':
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("string at %d not closed", i)
			}
			toks = append(toks, token{'"', expr[i+1 : j]})
			i = j + 1
			continue
		case c == '$' && j < len(expr) && expr[j] == '{':
			k := strings.IndexByte(expr[j:], '}')
			if k < 0 {
				return nil, fmt.Errorf("variable at %d not closed", i)
			}
			j += k + 1
		case c == '$':
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
		case isDigit(c) || c == '.' && j < len(expr) && isDigit(expr[j]):
			for j < len(expr) && (isIdent(expr[j], false) || expr[j] == '.') {
				j++
			}
			c = '0'
		case isIdent(c, true):
			for j < len(expr) && isIdent(expr[j], false) {
				j++
			}
			c = 'a'
		}
		toks = append(toks, token{c, expr[i:j]})
		i = j
	}
	return toks, nil
}

// closers maps each bracket's index to its closing one's.
func closers(toks []token) (map[int]int, error) {
	pair := map[byte]byte{'(': ')', '[': ']', '{': '}'}
	out := map[int]int{}
	var open []int
	for i, tk := range toks {
		switch tk.kind {
		case '(', '[', '{':
			open = append(open, i)
		case ')', ']', '}':
			if len(open) == 0 || pair[toks[open[len(open)-1]].kind] != tk.kind {
				return nil, fmt.Errorf("%q at token %d closes nothing", tk.text, i)
			}
			out[open[len(open)-1]] = i
			open = open[:len(open)-1]
		}
	}
	if len(open) > 0 {
		return nil, fmt.Errorf("%q at token %d is not closed", toks[open[0]].text, open[0])
	}
	return out, nil
}

// refs returns the metrics expr names: each identifier that is no PromQL
// function, aggregation or keyword, nor a label name in a {...} matcher or
// a by/without/on/ignoring clause; nothing in [...] (ranges, Grafana's
// $__rate_interval). Each has the labels of its matchers and of the by or
// without clauses of the aggregations around it. A word before "(" that
// is no function is returned too: a misspelled function is reported as
// what it is, a name msm does not export.
func refs(expr string) ([]ref, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	closing, err := closers(toks)
	if err != nil {
		return nil, err
	}
	is := func(i int, kind byte) bool { return i < len(toks) && toks[i].kind == kind }
	// clause reads a by/without (...) clause at i: its labels and end.
	clause := func(i int) ([]string, int, bool) {
		if !is(i, 'a') || !(toks[i].text == "by" || toks[i].text == "without") || !is(i+1, '(') {
			return nil, 0, false
		}
		var labels []string
		for _, tk := range toks[i+2 : closing[i+1]] {
			if tk.kind == 'a' {
				labels = append(labels, tk.text)
			}
		}
		return labels, closing[i+1], true
	}
	type scope struct {
		from, to int
		labels   []string
	}
	var (
		out    []ref
		at     []int
		scopes []scope
		skip   = map[int]int{} // clauses already read, to their end
	)
	for i := 0; i < len(toks); i++ {
		if end, ok := skip[i]; ok {
			i = end
			continue
		}
		tk := toks[i]
		switch {
		case tk.kind == '[':
			i = closing[i]
		case tk.kind == '{':
			name, labels := matchers(toks[i+1 : closing[i]])
			out, at = append(out, ref{name, labels}), append(at, i)
			i = closing[i]
		case tk.kind != 'a' || keywords[tk.text]:
		case grouping[tk.text]:
			if is(i+1, '(') {
				i = closing[i+1]
			}
		case aggregations[tk.text]:
			// sum [by (...)] (body) [by (...)]
			j := i + 1
			labels, end, ok := clause(j)
			if ok {
				skip[j], j = end, end+1
			}
			if !is(j, '(') {
				return nil, fmt.Errorf("%s without its argument", tk.text)
			}
			body := closing[j]
			if more, end, ok := clause(body + 1); ok {
				labels, skip[body+1] = append(labels, more...), end
			}
			scopes = append(scopes, scope{j, body, labels})
		case functions[tk.text] && is(i+1, '('):
		default:
			r := ref{name: tk.text}
			if is(i+1, '{') {
				name, labels := matchers(toks[i+2 : closing[i+1]])
				if name != "" {
					r.name = name
				}
				r.labels = labels
			}
			out, at = append(out, r), append(at, i)
			if is(i+1, '{') {
				i = closing[i+1]
			}
		}
	}
	for _, s := range scopes {
		for k, i := range at {
			if s.from < i && i < s.to {
				out[k].labels = append(out[k].labels, s.labels...)
			}
		}
	}
	return out, nil
}

// matchers reads the inside of a {...} selector: the labels it matches
// on, and the metric __name__ names.
func matchers(toks []token) (name string, labels []string) {
	for i, tk := range toks {
		if tk.kind != 'a' || i+1 >= len(toks) || toks[i+1].kind != '=' && toks[i+1].kind != '!' {
			continue
		}
		if tk.text == "__name__" {
			if i+2 < len(toks) && toks[i+1].kind == '=' && toks[i+2].kind == '"' {
				name = toks[i+2].text
			}
			continue
		}
		labels = append(labels, tk.text)
	}
	return name, labels
}

// problems says what in expr is not exported: a name msm does not
// export, a label an msm_ metric does not have.
func problems(expr string, k known) []string {
	rs, err := refs(expr)
	if err != nil {
		return []string{"parsing, " + err.Error()}
	}
	if len(rs) == 0 {
		return []string{"names no metric"}
	}
	var out []string
	for _, r := range rs {
		labels, ok := k[r.name]
		switch {
		case r.name == "":
			out = append(out, "a selector names no metric")
		case !ok:
			out = append(out, fmt.Sprintf("%s is not a metric msm exports", r.name))
		case labels != nil:
			for _, l := range r.labels {
				if !slices.Contains(labels, l) {
					out = append(out, fmt.Sprintf("%s has no label %s (only %s)", r.name, l, strings.Join(labels, ", ")))
				}
			}
		}
	}
	return out
}

func TestExpressionProblems(t *testing.T) {
	k := exported(t)
	for _, tc := range []struct {
		name     string
		expr     string
		refs     []ref
		problems []string
	}{
		{"grouped", "sum by (service) (msm_service_ready_instances)",
			[]ref{{"msm_service_ready_instances", []string{"service"}}}, nil},
		{"histogram", "histogram_quantile(0.95, sum by (kind, le) (rate(msm_operation_duration_seconds_bucket[$__rate_interval])))",
			[]ref{{"msm_operation_duration_seconds_bucket", []string{"kind", "le"}}}, nil},
		{"ratio", `sum(increase(msm_extensions_total{source="warm_pool"}[$__range])) / sum(increase(msm_extensions_total[1h])) * 100`,
			[]ref{{"msm_extensions_total", []string{"source"}}, {"msm_extensions_total", nil}}, nil},
		{"trailing by, on, offset", "sum(rate(msm_operations_total[5m])) by (kind) > 0 and on (kind) msm_decisions_total offset 1h",
			[]ref{{"msm_operations_total", []string{"kind"}}, {"msm_decisions_total", nil}}, nil},
		{"strings and __name__", `label_replace({__name__="msm_unplaced_instances", reason!=""}, "service", "pool", "service", "")`,
			[]ref{{"msm_unplaced_instances", []string{"reason"}}}, nil},
		{"sdk", "sum by (operation) (rate(temporal_request_total[${__rate_interval}]))",
			[]ref{{"temporal_request_total", []string{"operation"}}}, nil},
		{"misspelled metric", `sum by (service) (rate(msm_extnsions_total{source="warm_pool"}[5m]))`,
			[]ref{{"msm_extnsions_total", []string{"source", "service"}}}, []string{"msm_extnsions_total is not a metric msm exports"}},
		{"misspelled function", "histgram_quantile(0.5, msm_operation_duration_seconds_bucket)",
			[]ref{{"histgram_quantile", nil}, {"msm_operation_duration_seconds_bucket", nil}}, []string{"histgram_quantile is not a metric msm exports"}},
		{"histogram by its own name", "msm_operation_duration_seconds",
			[]ref{{"msm_operation_duration_seconds", nil}}, []string{"msm_operation_duration_seconds is not a metric msm exports"}},
		{"unknown label", `sum by (server) (msm_containers{stat="loaded"})`,
			[]ref{{"msm_containers", []string{"stat", "server"}}}, []string{
				"msm_containers has no label stat (only job, instance, state)",
				"msm_containers has no label server (only job, instance, state)"}},
		{"const label", `msm_node_container_starts_total{server="s1", result="failed", job="msm"}`,
			[]ref{{"msm_node_container_starts_total", []string{"server", "result", "job"}}}, nil},
		{"not closed", "sum(rate(msm_operations_total[5m])", nil, []string{`parsing, "(" at token 1 is not closed`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.refs != nil {
				got, err := refs(tc.expr)
				require.NoError(t, err)
				assert.Equal(t, tc.refs, got)
			}
			assert.Equal(t, tc.problems, problems(tc.expr, k))
		})
	}
}

// panel is what the test reads of a Grafana panel; a row holds its
// panels when it is collapsed.
type panel struct {
	Title      string
	Type       string
	Datasource *struct{ Type, UID string }
	Targets    []struct {
		Expr       string
		Datasource *struct{ Type, UID string }
	}
	Panels []panel
}

type dashboard struct {
	UID           string
	Title         string
	SchemaVersion int
	Templating    struct {
		List []struct{ Name, Type, Query string }
	}
	Panels []panel
}

// expr is one of the dashboard's queries, and its panel's title.
type expr struct{ panel, expr string }

func readDashboard(t *testing.T) (dashboard, []expr) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d))
	var exprs []expr
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if p.Type != "row" {
				if assert.NotNil(t, p.Datasource, "panel %q has a data source", p.Title) {
					assert.Equal(t, "${datasource}", p.Datasource.UID, "panel %q: the dashboard's data source", p.Title)
				}
				assert.NotEmpty(t, p.Targets, "panel %q has queries", p.Title)
			}
			for _, tg := range p.Targets {
				if assert.NotNil(t, tg.Datasource, "a query of %q has a data source", p.Title) {
					assert.Equal(t, "${datasource}", tg.Datasource.UID, "a query of %q: the dashboard's data source", p.Title)
				}
				exprs = append(exprs, expr{p.Title, tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, exprs
}

// TestDashboardNamesExportedMetrics: every query of the Grafana dashboard
// of deploy/ names metrics msm exports, with labels they have.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	d, exprs := readDashboard(t)
	assert.Equal(t, "msm", d.UID)
	assert.GreaterOrEqual(t, d.SchemaVersion, 39)
	assert.Contains(t, d.Templating.List, struct{ Name, Type, Query string }{"datasource", "datasource", "prometheus"},
		"a data source variable, of Prometheus data sources")
	require.NotEmpty(t, exprs)
	k := exported(t)
	for _, e := range exprs {
		assert.Empty(t, problems(e.expr, k), "panel %q: %s", e.panel, e.expr)
	}
}

// TestDashboardShowsEveryMetric: each msm_ metric is on the dashboard, and
// the Temporal SDK's too; a metric added to msm needs a panel.
func TestDashboardShowsEveryMetric(t *testing.T) {
	_, exprs := readDashboard(t)
	shown := map[string]bool{}
	for _, e := range exprs {
		rs, err := refs(e.expr)
		require.NoError(t, err, e.expr)
		for _, r := range rs {
			shown[family(r.name)] = true
		}
	}
	var missing []string
	for name := range exported(t) {
		if strings.HasPrefix(name, "msm_") && !shown[family(name)] && !slices.Contains(missing, family(name)) {
			missing = append(missing, family(name))
		}
	}
	sort.Strings(missing)
	assert.Empty(t, missing, "msm metrics no panel shows")
	sdk := false
	for name := range shown {
		sdk = sdk || strings.HasPrefix(name, "temporal_")
	}
	assert.True(t, sdk, "a panel of the Temporal SDK's metrics")
}

// decode reads a YAML file into v, refusing keys v does not have.
func decode(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(v), file)
}

// TestDeployConfigParses: Prometheus scrapes msm where docker-compose.yml
// serves it, and Grafana's provisioning finds that Prometheus and the
// dashboard.
func TestDeployConfigParses(t *testing.T) {
	var prom struct {
		Global struct {
			ScrapeInterval     string `yaml:"scrape_interval"`
			EvaluationInterval string `yaml:"evaluation_interval"`
		}
		ScrapeConfigs []struct {
			JobName        string `yaml:"job_name"`
			ScrapeInterval string `yaml:"scrape_interval"`
			StaticConfigs  []struct {
				Targets []string
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decode(t, prometheusFile, &prom)
	require.Len(t, prom.ScrapeConfigs, 1)
	job := prom.ScrapeConfigs[0]
	assert.Equal(t, "msm", job.JobName)
	assert.Equal(t, "15s", job.ScrapeInterval)
	require.Len(t, job.StaticConfigs, 1)
	assert.Equal(t, []string{"msm:9464"}, job.StaticConfigs[0].Targets)

	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, Access, URL string
			IsDefault                    bool `yaml:"isDefault"`
			Editable                     bool
			JSONData                     struct {
				TimeInterval string `yaml:"timeInterval"`
			} `yaml:"jsonData"`
		}
	}
	decode(t, datasourceFile, &ds)
	assert.Equal(t, 1, ds.APIVersion)
	require.Len(t, ds.Datasources, 1)
	assert.Equal(t, "prometheus", ds.Datasources[0].Type)
	assert.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL)
	assert.True(t, ds.Datasources[0].IsDefault)
	assert.Equal(t, job.ScrapeInterval, ds.Datasources[0].JSONData.TimeInterval, "$__rate_interval spans enough scrapes")

	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type            string
			DisableDeletion       bool `yaml:"disableDeletion"`
			AllowUIUpdates        bool `yaml:"allowUiUpdates"`
			UpdateIntervalSeconds int  `yaml:"updateIntervalSeconds"`
			Options               struct {
				Path                      string
				FoldersFromFilesStructure bool `yaml:"foldersFromFilesStructure"`
			}
		}
	}
	decode(t, providerFile, &dp)
	assert.Equal(t, 1, dp.APIVersion)
	require.Len(t, dp.Providers, 1)
	assert.Equal(t, "file", dp.Providers[0].Type)
	assert.Equal(t, "/var/lib/grafana/dashboards", dp.Providers[0].Options.Path, "where docker-compose.yml mounts msm.json")
}
