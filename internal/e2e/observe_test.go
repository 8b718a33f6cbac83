package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/metrics"
	"github.com/msm-project/msm/workflows"
)

// observeCatalog is the example catalog's services on two servers of 4
// slots, web up to 8 instances: a drain of one server fits on the other,
// and web at its max does not fit on both.
const observeCatalog = `manager:
  kind: standalone
  warm_pool: 1
  servers:
    - {name: local-1, address: 127.0.0.1, slots: 4, ports: 21200-21299}
    - {name: local-2, address: 127.0.0.1, slots: 4, ports: 21300-21399}
services:
  - name: web
    command: bin/demo
    args: ["--port={{.Port}}", "--name={{.Service}}"%s]
    replicas: {initial: 2, min: 1, max: 8}
    scaling: {cooldown: 5m}
    # A broken revision (below) is not rolled back: the roll stops and the
    # next crash's replacements run it, so web backs off.
    update: {auto_rollback: false}
  - name: api
    command: bin/demo
    args: ["--port={{.Port}}", "--name={{.Service}}"]
    replicas: {initial: 1, min: 1, max: 2}
`

// follower is a running `msm events -f`: each record it prints, with when
// the test read it.
type follower struct {
	mu   sync.Mutex
	seen []followed
}

type followed struct {
	r  workflows.Record
	at time.Time
}

// find returns the first record printed that ok accepts.
func (f *follower) find(ok func(workflows.Record) bool) (followed, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.seen {
		if ok(s.r) {
			return s, true
		}
	}
	return followed{}, false
}

// TestOperatorSeesCountsWhyAndEvents runs `msm dev` and, as an operator
// would, scrapes its /metrics around a drain, an extension and a killed
// MicroService (each counter moves by exactly its events, with the right
// labels), asks `msm why web` when healthy, in cooldown, at max with no
// room and in crash-loop back-off, and follows `msm events -f`.
func TestOperatorSeesCountsWhyAndEvents(t *testing.T) {
	dir := t.TempDir()
	catalogPath := filepath.Join(dir, "catalog.yaml")
	write := func(extraArgs string) {
		require.NoError(t, os.WriteFile(catalogPath, []byte(strings.Replace(observeCatalog, "%s", extraArgs, 1)), 0o644))
	}
	write("")
	d := newDev(t, catalogPath)
	// One worker: the counters of refused updates are kept by the worker
	// that ran the validator, and msm dev's /metrics is its own worker's
	// (a second worker's are on its own page; docs/observability.md).
	d.env = append(d.env, "MSM_WORKERS=1")
	r := d.start()
	d.waitHealthy(r, func(workflows.Status) bool { return true })

	why := func(want ...string) string {
		t.Helper()
		out, err := d.msm("why", "web")
		require.NoError(t, err, out)
		for _, w := range want {
			assert.Contains(t, out, w)
		}
		return out
	}
	why("web: 2/2 ready, desired 2 (replicas 1..8)", "  - healthy: 2/2 instance(s) ready")

	// msm events -f, from now on.
	f := &follower{}
	ev := exec.Command(bins.msm, "events", "-f", "-o", "json", "--last", "1")
	ev.Env = d.env
	stdout, err := ev.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, ev.Start())
	t.Cleanup(func() { _ = ev.Process.Kill(); _ = ev.Wait() })
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec workflows.Record
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				f.mu.Lock()
				f.seen = append(f.seen, followed{rec, time.Now()})
				f.mu.Unlock()
			}
		}
	}()

	// The worker reads the Manager's status once a second at most for its
	// scrapes: one scrape after another waits that long.
	var last time.Time
	scrape := func() metrics.Families {
		t.Helper()
		time.Sleep(time.Until(last.Add(1100 * time.Millisecond)))
		last = time.Now()
		fams, err := metrics.Scrape(context.Background(), d.metricsURL)
		require.NoError(t, err)
		return fams
	}
	// moved asserts each counter moved by exactly its delta between two
	// scrapes (a counter not yet exported counts as 0).
	type delta struct {
		name   string
		labels []string
		by     float64
	}
	moved := func(what string, before, after metrics.Families, ds ...delta) {
		t.Helper()
		for _, dl := range ds {
			b, _ := before.Value(dl.name, dl.labels...)
			a, _ := after.Value(dl.name, dl.labels...)
			assert.Equal(t, dl.by, a-b, "%s: %s%v went from %v to %v", what, dl.name, dl.labels, b, a)
		}
	}
	settled := func(what string, ok func(workflows.Status) bool) workflows.Status {
		t.Helper()
		return d.waitFor(r, what, 60*time.Second, func(st workflows.Status) bool { return st.Operations == 0 && ok(st) })
	}
	loadedOn := func(st workflows.Status, server string) map[string]int {
		n := map[string]int{}
		for _, c := range st.Containers {
			if c.Server == server && c.State == "loaded" {
				n[c.Service]++
			}
		}
		return n
	}

	// A drain of local-1, where all began (a listed server is taken only
	// once those in use are full): its instances rearranged onto local-2,
	// then removed here, the server released.
	st, err := d.status()
	require.NoError(t, err)
	onL1 := loadedOn(st, "local-1")
	require.Equal(t, map[string]int{"web": 2, "api": 1}, onL1, "%+v", st.Containers)
	m0 := scrape()
	out, err := d.msm("drain", "local-1")
	require.NoError(t, err, out)
	settled("local-1 drained and released", func(st workflows.Status) bool {
		for _, s := range st.Servers {
			if s.ID == "local-1" {
				return false
			}
		}
		return converged(1)(st)
	})
	m1 := scrape()
	moved("drain", m0, m1,
		delta{"msm_decisions_total", []string{"kind", "drain"}, 1},
		delta{"msm_operations_total", []string{"kind", "rearrange", "result", "ok"}, 1},
		delta{"msm_shrinks_total", []string{"service", "web"}, 2},
		delta{"msm_shrinks_total", []string{"service", "api"}, 1},
		delta{"msm_recoveries_total", []string{"service", "web", "cause", "exit"}, 0},
	)

	// msm status --watch, into a pipe: a new frame on each change.
	watch := exec.Command(bins.msm, "status", "--watch", "--interval", "200ms")
	watch.Env = d.env
	watched := &syncBuffer{}
	watch.Stdout, watch.Stderr = watched, watched
	require.NoError(t, watch.Start())
	t.Cleanup(func() { _ = watch.Process.Kill(); _ = watch.Wait() })
	// Its first frame, before the extension (which can be done before a
	// first query answers: a CI run drew web at 3 only).
	require.Eventually(t, func() bool { return regexp.MustCompile(`(?m)^web +2 +2$`).MatchString(watched.String()) },
		10*time.Second, 50*time.Millisecond, "msm status --watch drew web at 2:\n%s", watched)

	// An operator's extension takes the waiting container.
	began := time.Now()
	out, err = d.msm("extend", "web")
	require.NoError(t, err, out)
	asked := time.Since(began)
	st = settled("web extended to 3", func(st workflows.Status) bool { return converged(1)(st) && st.Services[0].Ready == 3 })
	m2 := scrape()
	moved("extension", m1, m2,
		delta{"msm_extensions_total", []string{"service", "web", "trigger", "operator", "source", "warm_pool"}, 1},
		delta{"msm_operations_total", []string{"kind", "extend", "result", "ok"}, 1},
		delta{"msm_decisions_total", []string{"kind", "extend"}, 2}, // desired 2 → 3, and its operation
		delta{"msm_recoveries_total", []string{"service", "web", "cause", "exit"}, 0},
	)
	// msm events -f printed the decision within a second of it being made.
	var dec followed
	require.Eventually(t, func() bool {
		var ok bool
		dec, ok = f.find(func(r workflows.Record) bool {
			return r.Kind == workflows.RecordExtend && r.Message == "extend web from 2 to 3 instance(s)"
		})
		return ok
	}, 5*time.Second, 50*time.Millisecond, "msm events -f printed the extension")
	lag := dec.at.Sub(dec.r.Time)
	figure(t, "decision made → printed by msm events -f", lag)
	assert.Less(t, lag, time.Second, "printed within 1 s of the decision (msm extend took %s)", asked)
	assert.Equal(t, "operator: extend", dec.r.Trigger)
	op, ok := f.find(func(r workflows.Record) bool { return r.Kind == workflows.RecordExtend && r.Op != "" })
	require.True(t, ok)
	assert.Contains(t, op.r.Why, "1 from the warm pool")
	why("web: 3/3 ready", "  - healthy: 3/3 instance(s) ready", "  - in cooldown until ", "scaling.cooldown 5m0s")
	require.Eventually(t, func() bool { return regexp.MustCompile(`(?m)^web +3 +3$`).MatchString(watched.String()) },
		5*time.Second, 100*time.Millisecond, "msm status --watch drew web at 3:\n%s", watched)
	frames := strings.Count(watched.String(), "\n--- ") + 1
	assert.GreaterOrEqual(t, frames, 2, "a frame before the extension and one after")
	assert.Less(t, frames, 40, "a frame per change, not per poll")
	// msm dev goes on printing a progress line on each change after the
	// catalog was first healthy.
	assert.Eventually(t, func() bool {
		_, after, ok := strings.Cut(r.out.String(), "services healthy in")
		return ok && strings.Contains(after, "] web 3/3, api 1/1, warm pool 1\n")
	}, 5*time.Second, 100*time.Millisecond, "msm dev's progress after the first healthy fleet:\n%s", r.out)
	require.NoError(t, watch.Process.Signal(syscall.SIGINT))
	assert.NoError(t, watch.Wait(), "Ctrl-C ends msm status --watch with 0")

	// A killed MicroService is recovered.
	victim := ""
	for _, c := range st.Containers {
		if c.Service == "web" && c.State == "loaded" {
			victim = c.ID
			break
		}
	}
	pid := 0
	for _, p := range managerProcs(d.manager) {
		if p.container == victim && !p.agent {
			pid = p.pid
		}
	}
	require.NotZero(t, pid, "the MicroService process of %s", victim)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	settled("web recovered", func(st workflows.Status) bool { return converged(1)(st) && stateOf(st, victim) == "failed" })
	m3 := scrape()
	moved("killed MicroService", m2, m3,
		delta{"msm_recoveries_total", []string{"service", "web", "cause", "exit"}, 1},
		delta{"msm_operations_total", []string{"kind", "recover", "result", "ok"}, 1},
		delta{"msm_extensions_total", []string{"service", "web", "trigger", "operator", "source", "warm_pool"}, 0},
	)
	var sdk int
	for name := range m3 {
		if strings.HasPrefix(name, "temporal_") {
			sdk++
		}
	}
	assert.NotZero(t, sdk, "the Temporal SDK's own metrics")

	// At its max, with no room for all of it.
	out, err = d.msm("scale", "web", "8")
	require.NoError(t, err, out)
	d.waitFor(r, "web placed as far as it goes", 60*time.Second, func(st workflows.Status) bool {
		return st.Operations == 0 && len(st.Unplaced) > 0 && st.Services[0].Ready == 7
	})
	why("at its max of 8 instance(s)", "no room for 1 instance(s) (no_room)", "in cooldown until ")
	// At its max, an extension is refused, and counted by the worker.
	out, err = d.msm("extend", "web")
	require.Error(t, err)
	assert.Contains(t, out, "web already has its max of 8 instance(s)")
	m4 := scrape()
	v, _ := m4.Value("msm_unplaced_instances", "service", "web", "reason", "no_room")
	assert.Equal(t, 1.0, v, "the unplaced instance, by reason")
	moved("refused update", m3, m4, delta{"msm_rejected_updates_total", []string{"update", "extend"}, 1})

	// Back down, then a catalog whose web no longer starts: its roll stops
	// at the first instance (no auto_rollback), the next crash of web is
	// replaced by instances that fail in turn, and web backs off.
	out, err = d.msm("scale", "web", "2")
	require.NoError(t, err, out)
	settled("web back to 2", func(st workflows.Status) bool { return converged(1)(st) && st.Services[0].Ready == 2 })
	write(`, "--no-such-flag"`)
	d.waitFor(r, "the new catalog applied", 30*time.Second, func(st workflows.Status) bool {
		v, _ := scrape().Value("msm_catalog_reloads_total", "result", "applied")
		return v == 2
	})
	st, err = d.status()
	require.NoError(t, err)
	victim, pid = "", 0
	for _, c := range st.Containers {
		if c.Service == "web" && c.State == "loaded" {
			victim = c.ID
		}
	}
	for _, p := range managerProcs(d.manager) {
		if p.container == victim && !p.agent {
			pid = p.pid
		}
	}
	require.NotZero(t, pid, "the MicroService process of %s", victim)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	d.waitFor(r, "web in crash-loop back-off", 60*time.Second, func(st workflows.Status) bool {
		return st.Services[0].RetryAt != nil && st.Services[0].Failures >= 3
	})
	why("crash-loop back-off until ", "failed attempt(s)", "no-such-flag")
	d.stop(r)
}
