package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"

	"github.com/msm-project/msm/internal/codec"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows"
)

// TestCatalogChangeRollsWeb runs `msm dev` (what `make dev` runs) on the
// example catalog and changes web's env in the catalog file: every web
// instance is replaced, one at a time, and sampled every 50 ms web never
// has fewer instances answering than desired; afterwards every web
// process has the new env. Then a revision whose command fails: the roll
// stops after one instance, the old instances serve on, it is rolled back,
// and status says why.
func TestCatalogChangeRollsWeb(t *testing.T) {
	d := newDev(t, "")
	example, err := os.ReadFile(filepath.Join(d.root, "examples", "catalog.yaml"))
	require.NoError(t, err)
	d.catalog = filepath.Join(d.dir, "catalog.yaml")
	require.NoError(t, os.WriteFile(d.catalog, example, 0o644))
	r := d.start()
	d.waitHealthy(r, func(workflows.Status) bool { return true })
	cl := d.client()
	before := webEnv(t, d, cl, "LOG_LEVEL")
	require.Len(t, before, 2)
	for _, v := range before {
		require.Equal(t, "info", v)
	}

	edit := func(old, new string) {
		b, err := os.ReadFile(d.catalog)
		require.NoError(t, err)
		require.Contains(t, string(b), old)
		require.NoError(t, os.WriteFile(d.catalog, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644))
	}
	// 1. web's env changes: the roll replaces both instances.
	s := sampleWeb(t, cl, d.manager)
	edit("LOG_LEVEL: info", "LOG_LEVEL: debug")
	ro := waitRollout(t, cl, d.manager, 120*time.Second, workflows.RollDone)
	s.stop()
	assert.Equal(t, 2, ro.Total)
	assert.Equal(t, 2, ro.Fresh)
	t.Logf("roll done in %s; %d samples, fewest answering %d of desired %d",
		ro.Ended.Sub(ro.Started).Round(100*time.Millisecond), s.samples.Load(), s.fewest.Load(), s.desired.Load())
	require.Greater(t, s.samples.Load(), int32(20), "the sampler saw the roll")
	assert.GreaterOrEqual(t, s.fewest.Load(), s.desired.Load(), "web never had fewer instances answering than desired")
	after := webEnv(t, d, cl, "LOG_LEVEL")
	require.Len(t, after, 2)
	for c, v := range after {
		assert.Equal(t, "debug", v, "%s's process has the new env", c)
	}
	for c := range before {
		assert.NotContains(t, after, c, "%s, of the old revision, is replaced", c)
	}
	st, err := starter.Status(context.Background(), cl, d.manager)
	require.NoError(t, err)
	assert.Len(t, eventsMatching(st, `msm/`+d.manager+`/roll/web/[0-9]+: `), 2, "one Roll operation per instance")

	// 2. A revision whose command fails: one instance tried, rolled back.
	s = sampleWeb(t, cl, d.manager)
	edit(`args: ["--port={{.Port}}", "--name={{.Service}}"]`, `args: ["--port={{.Port}}", "--name={{.Service}}", "--no-such-flag"]`)
	ro = waitRollout(t, cl, d.manager, 120*time.Second, workflows.RollRolledBack)
	s.stop()
	t.Logf("rolled back: %s; %d samples, fewest answering %d", ro.Error, s.samples.Load(), s.fewest.Load())
	assert.GreaterOrEqual(t, s.fewest.Load(), s.desired.Load(), "the old instances served on")
	assert.Contains(t, ro.Error, "no-such-flag", "why the revision failed")
	assert.Equal(t, 2, ro.Fresh, "both instances run the revision rolled back to")
	st, err = starter.Status(context.Background(), cl, d.manager)
	require.NoError(t, err)
	assert.Len(t, eventsMatching(st, `^container .* failed to load web`), 1, "the roll stopped after one instance")
	assert.Len(t, eventsMatching(st, `^roll of web to revision `+ro.To+` failed, rolling back to revision `+ro.From), 1)
	for c, v := range webEnv(t, d, cl, "LOG_LEVEL") {
		assert.Equal(t, "debug", v, "%s runs the revision rolled back to", c)
	}
	out, err := d.msm("status")
	require.NoError(t, err, out)
	assert.Contains(t, out, "ROLLOUT web: rolled back, revision "+ro.From+" → "+ro.To)
	out, err = d.msm("rollout", "status", "web")
	require.NoError(t, err, out)
	assert.Contains(t, out, "web: revision "+ro.From+" → "+ro.To+": rolled back")
	assert.Contains(t, out, "the new revision failed: ")
	assert.Contains(t, out, "no-such-flag")

	if os.Getenv("MSM_UPDATE_TESTDATA") != "" {
		h := d.historyClient()
		saveHistoryOf(t, h, workflows.ManagerID(d.manager), "../../workflows/testdata/manager-roll.json")
		steps := eventsMatching(st, `^msm/`+d.manager+`/roll/web/[0-9]+: `)
		require.NotEmpty(t, steps)
		id, _, _ := strings.Cut(steps[0], ":")
		saveHistoryOf(t, h, id, "../../workflows/testdata/roll.json")
	}
}

// client is a Temporal client of the dev setup, reading its encrypted
// payloads with its codec key.
func (d *dev) client() client.Client {
	c, err := codec.Load(filepath.Join(d.dir, ".msm", "keys", "codec"))
	require.NoError(d.t, err)
	cl, err := starter.Dial(context.Background(), starter.Options{Address: d.address, Codec: c, Wait: 10 * time.Second})
	require.NoError(d.t, err)
	d.t.Cleanup(cl.Close)
	return cl
}

// historyClient reads histories with their payloads decrypted, as the
// replayer needs them (a test's histories are of test keys).
func (d *dev) historyClient() client.Client {
	c, err := codec.Load(filepath.Join(d.dir, ".msm", "keys", "codec"))
	require.NoError(d.t, err)
	icpt, err := converter.NewPayloadCodecGRPCClientInterceptor(converter.PayloadCodecGRPCClientInterceptorOptions{
		Codecs: []converter.PayloadCodec{starter.PayloadCodec(c)}})
	require.NoError(d.t, err)
	cl, err := client.Dial(client.Options{HostPort: d.address,
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(icpt)}}})
	require.NoError(d.t, err)
	d.t.Cleanup(cl.Close)
	return cl
}

// webEnv is, per loaded web container, the value of name in its
// MicroService's process environment.
func webEnv(t *testing.T, d *dev, cl client.Client, name string) map[string]string {
	t.Helper()
	st, err := starter.Status(context.Background(), cl, d.manager)
	require.NoError(t, err)
	out := map[string]string{}
	procs := managerProcs(d.manager)
	for _, c := range st.Containers {
		if c.Service != "web" || c.State != "loaded" {
			continue
		}
		for _, p := range procs {
			if p.container != c.ID || p.agent {
				continue
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.pid))
			require.NoError(t, err)
			for _, kv := range strings.Split(string(b), "\x00") {
				if v, ok := strings.CutPrefix(kv, name+"="); ok {
					out[c.ID] = v
				}
			}
		}
	}
	return out
}

// webSampler counts, every 50 ms, the web instances that answer on
// their ports against web's desired.
type webSampler struct {
	samples, fewest, desired atomic.Int32
	done                     chan struct{}
	wg                       sync.WaitGroup
}

func sampleWeb(t *testing.T, cl client.Client, manager string) *webSampler {
	s := &webSampler{done: make(chan struct{})}
	s.fewest.Store(100)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.done:
				return
			case <-tick.C:
			}
			st, err := starter.Status(context.Background(), cl, manager)
			if err != nil {
				continue
			}
			var desired int32
			for _, sv := range st.Services {
				if sv.Name == "web" {
					desired = int32(sv.Desired)
				}
			}
			var answering int32
			for _, c := range st.Containers {
				if c.Service == "web" && c.State == "loaded" && c.Healthy {
					if code, _, err := get(fmt.Sprintf("http://127.0.0.1:%d/healthz", c.Port)); err == nil && code == 200 {
						answering++
					}
				}
			}
			s.samples.Add(1)
			s.desired.Store(desired)
			if answering < s.fewest.Load() {
				s.fewest.Store(answering)
			}
		}
	}()
	t.Cleanup(s.stop)
	return s
}

func (s *webSampler) stop() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	s.wg.Wait()
}

// waitRollout waits until web's last roll is in state.
func waitRollout(t *testing.T, cl client.Client, manager string, within time.Duration, state string) workflows.RolloutStatus {
	t.Helper()
	var last []workflows.RolloutStatus
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		rs, err := starter.Rollouts(context.Background(), cl, manager, "web")
		if err == nil && len(rs) == 1 && rs[0].State == state && !rs[0].Ended.IsZero() {
			return rs[0]
		}
		last = rs
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("web's roll not %s within %s: %+v", state, within, last)
	return workflows.RolloutStatus{}
}

// eventsMatching are the status's events that match the expression.
func eventsMatching(st workflows.Status, expr string) []string {
	re := regexp.MustCompile(expr)
	var out []string
	for _, e := range st.Events {
		if re.MatchString(e.Message) {
			out = append(out, e.Message)
		}
	}
	return out
}
