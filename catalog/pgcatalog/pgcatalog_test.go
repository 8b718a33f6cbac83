package pgcatalog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/catalog"
)

const example = "../../examples/catalog.yaml"

// prompt is how long a change may take to arrive through NOTIFY; the tests
// that rely on NOTIFY poll once a minute, so a poll cannot pass for it.
const prompt = 5 * time.Second

// event is one call of apply (c) or reject (err).
type event struct {
	c   *catalog.Catalog
	err error
}

// watcher runs Source.Watch for one test.
type watcher struct {
	events chan event
	done   chan error // Watch's result
}

// watch starts src.Watch and waits for its first apply; it stops it when
// the test ends.
func watch(t *testing.T, src Source) (*watcher, *catalog.Catalog) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{events: make(chan event, 100), done: make(chan error, 1)}
	go func() {
		w.done <- src.Watch(ctx,
			func(c *catalog.Catalog) { w.events <- event{c: c} },
			func(err error) { w.events <- event{err: err} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-w.done:
			assert.NoError(t, err, "Watch's result")
		case <-time.After(5 * time.Second):
			t.Error("Watch did not return after its context ended")
		}
	})
	return w, w.next(t, prompt).c
}

// next returns the next event, failing the test if none comes within d.
func (w *watcher) next(t *testing.T, d time.Duration) event {
	t.Helper()
	select {
	case e := <-w.events:
		return e
	case err := <-w.done:
		t.Fatalf("Watch returned %v before the event", err)
	case <-time.After(d):
		t.Fatalf("no apply or reject within %s", d)
	}
	return event{}
}

// applied returns the next event, which must be an apply.
func (w *watcher) applied(t *testing.T, d time.Duration) *catalog.Catalog {
	t.Helper()
	e := w.next(t, d)
	require.NoError(t, e.err, "reject called where apply was expected")
	return e.c
}

// quiet checks that nothing is applied or rejected for d.
func (w *watcher) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case e := <-w.events:
		t.Fatalf("unexpected event: catalog %v, error %v", e.c != nil, e.err)
	case <-time.After(d):
	}
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func run(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	_, err := conn.Exec(context.Background(), sql, args...)
	require.NoError(t, err, sql)
}

// imported returns a fresh database holding examples/catalog.yaml, a
// connection to it, and the catalog as catalog.Load reads it.
func imported(t *testing.T) (dsn string, conn *pgx.Conn, want *catalog.Catalog) {
	t.Helper()
	dsn = newDB(t)
	conn = connect(t, dsn)
	want, err := catalog.Load(example)
	require.NoError(t, err)
	require.NoError(t, Import(context.Background(), conn, want))
	return dsn, conn, want
}

func service(t *testing.T, c *catalog.Catalog, name string) *catalog.Service {
	t.Helper()
	for i := range c.Services {
		if c.Services[i].Name == name {
			return &c.Services[i]
		}
	}
	return nil
}

func names(c *catalog.Catalog) []string {
	var out []string
	for _, s := range c.Services {
		out = append(out, s.Name)
	}
	return out
}

func TestImportThenWatchAppliesTheYAMLCatalog(t *testing.T) {
	t.Parallel()
	dsn, _, want := imported(t)
	_, got := watch(t, Source{DSN: dsn, Every: time.Minute})
	assert.Equal(t, want, got)
}

func TestImportWritesYAMLNamesAsJSON(t *testing.T) {
	t.Parallel()
	_, conn, _ := imported(t)
	var spec map[string]any
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT spec FROM msm_services WHERE name = 'web'`).Scan(&spec))
	assert.Equal(t, "bin/demo", spec["command"])
	assert.Equal(t, []any{"--port={{.Port}}", "--name={{.Service}}"}, spec["args"])
	assert.Equal(t, map[string]any{"min": float64(1), "initial": float64(2), "max": float64(6)}, spec["replicas"])
	assert.Equal(t, "2s", spec["health"].(map[string]any)["interval"])
	assert.NotContains(t, spec, "name", "the name is a column")
	assert.NotContains(t, spec, "image", "empty values are left out")

	var mgr map[string]any
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT spec FROM msm_manager`).Scan(&mgr))
	assert.Equal(t, "standalone", mgr["kind"])
	assert.Equal(t, "21000-21099", mgr["servers"].([]any)[0].(map[string]any)["ports"])

	var order []string
	rows, err := conn.Query(context.Background(), `SELECT name FROM msm_services ORDER BY position`)
	require.NoError(t, err)
	order, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"web", "api"}, order)
}

func TestUpdateIsAppliedThroughNotify(t *testing.T) {
	t.Parallel()
	dsn, conn, want := imported(t)
	w, _ := watch(t, Source{DSN: dsn, Every: time.Minute})

	run(t, conn, `UPDATE msm_services SET spec = jsonb_set(spec, '{replicas,max}', '5') WHERE name = 'web'`)
	got := w.applied(t, prompt)
	service(t, want, "web").Replicas.Max = 5
	assert.Equal(t, want, got)
}

func TestDeleteAndInsertAreApplied(t *testing.T) {
	t.Parallel()
	dsn, conn, _ := imported(t)
	w, _ := watch(t, Source{DSN: dsn, Every: time.Minute})

	run(t, conn, `DELETE FROM msm_services WHERE name = 'api'`)
	assert.Equal(t, []string{"web"}, names(w.applied(t, prompt)))

	run(t, conn, `INSERT INTO msm_services (name, spec, position) VALUES ('jobs', $1, 5)`,
		`{"command": "bin/demo", "args": ["--port={{.Port}}"], "replicas": {"min": 1, "max": 2}, "health": {"interval": "3s"}}`)
	got := w.applied(t, prompt)
	assert.Equal(t, []string{"web", "jobs"}, names(got))
	jobs := service(t, got, "jobs")
	assert.Equal(t, catalog.Replicas{Min: 1, Initial: 1, Max: 2}, jobs.Replicas, "defaults apply: initial = min")
	assert.Equal(t, 3*time.Second, jobs.Health.Interval)
	assert.Equal(t, catalog.DefaultHealthPath, jobs.Health.Path)
}

func TestInvalidChangeIsRejectedAndTheLastValidStays(t *testing.T) {
	t.Parallel()
	dsn, conn, want := imported(t)
	w, _ := watch(t, Source{DSN: dsn, Every: time.Minute})

	run(t, conn, `UPDATE msm_services SET spec = jsonb_set(spec, '{replicas,min}', '7') WHERE name = 'web'`)
	e := w.next(t, prompt)
	require.Nil(t, e.c, "apply called with an invalid catalog")
	var cerr *catalog.Error
	require.ErrorAs(t, e.err, &cerr)
	require.Len(t, cerr.Problems, 1, "%v", cerr)
	assert.Equal(t, catalog.Problem{File: "postgres:msm_services[web]", Field: "spec.replicas",
		Message: "min 7 is greater than max 6; lower min or raise max"}, cerr.Problems[0])
	assert.Equal(t, "postgres:msm_services[web]: spec.replicas: min 7 is greater than max 6; lower min or raise max", e.err.Error())

	// The same invalid rows are not reported again on the next NOTIFY.
	run(t, conn, `UPDATE msm_services SET position = position WHERE name = 'web'`)
	w.quiet(t, time.Second)

	// Fixed: the catalog in force was never left.
	run(t, conn, `UPDATE msm_services SET spec = jsonb_set(spec, '{replicas,min}', '1') WHERE name = 'web'`)
	assert.Equal(t, want, w.applied(t, prompt))
}

func TestProblemsNameTheRowAndField(t *testing.T) {
	for _, tc := range []struct {
		name, sql string
		want      []string
	}{
		{"type error", `UPDATE msm_services SET spec = jsonb_set(spec, '{health,interval}', '5') WHERE name = 'api'`,
			[]string{`postgres:msm_services[api]: spec.health.interval: 5 has no unit; write a duration such as "2s" or "500ms"`}},
		{"unknown field", `UPDATE msm_services SET spec = spec || '{"replics": 2}' WHERE name = 'api'`,
			[]string{`postgres:msm_services[api]: spec.replics: unknown field "replics"; did you mean "replicas"?`}},
		{"bad name", `UPDATE msm_services SET name = 'API_1' WHERE name = 'api'`,
			[]string{`postgres:msm_services[API_1]: name: "API_1" is not a valid service name; use up to 63 lowercase letters, digits and '-', starting and ending with a letter or digit (it becomes part of task queue names)`}},
		{"spec names another service", `UPDATE msm_services SET spec = spec || '{"name": "other"}' WHERE name = 'api'`,
			[]string{`postgres:msm_services[api]: spec.name: spec names the service "other" but the row's name is "api"; rename a service in the name column, and leave name out of spec`}},
		{"spec not an object", `UPDATE msm_services SET spec = '[1]' WHERE name = 'api'`,
			[]string{`postgres:msm_services[api]: spec: expected a mapping with the fields name, command, `}},
		{"manager", `UPDATE msm_manager SET spec = jsonb_set(spec, '{kind}', '"k8s"')`,
			[]string{`postgres:msm_manager: spec.kind: "k8s" is not a kind of Manager; use one of standalone, docker, ec2, azure, simulated`}},
		{"no services", `DELETE FROM msm_services`,
			[]string{`postgres:msm_services: the catalog has no services; list at least one MicroService under services`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn, conn, _ := imported(t)
			w, _ := watch(t, Source{DSN: dsn, Every: time.Minute})
			run(t, conn, tc.sql)
			e := w.next(t, prompt)
			require.Error(t, e.err)
			if want := strings.Join(tc.want, "\n"); strings.HasSuffix(want, " ") {
				assert.True(t, strings.HasPrefix(e.err.Error(), want), e.err.Error())
			} else {
				assert.Equal(t, want, e.err.Error())
			}
		})
	}
}

func TestPollingPicksUpChangesWithoutNotify(t *testing.T) {
	t.Parallel()
	dsn, conn, _ := imported(t)
	run(t, conn, `ALTER TABLE msm_services DISABLE TRIGGER msm_catalog_notify`)
	w, _ := watch(t, Source{DSN: dsn, Every: 200 * time.Millisecond})

	run(t, conn, `UPDATE msm_services SET spec = jsonb_set(spec, '{replicas,max}', '3') WHERE name = 'api'`)
	assert.Equal(t, 3, service(t, w.applied(t, prompt), "api").Replicas.Max)
	// Unchanged rows apply nothing, however often they are polled.
	w.quiet(t, time.Second)
}

func TestLostConnectionIsReportedOnceAndRetried(t *testing.T) {
	t.Parallel()
	dsn, conn, _ := imported(t)
	w, _ := watch(t, Source{DSN: dsn, Every: time.Minute})

	// The database refuses connections and the watch's is cut: every retry
	// fails, and the outage is still reported once.
	var db string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT current_database()`).Scan(&db))
	admin := connect(t, server.DSN("postgres")) // a database may not lock itself out
	run(t, admin, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS false`)
	kill := `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'msm-catalog' AND datname = $1`
	var n int
	require.NoError(t, admin.QueryRow(context.Background(), kill, db).Scan(&n))
	require.Equal(t, 1, n, "the watch's connection")
	e := w.next(t, prompt)
	require.Error(t, e.err)
	assert.Contains(t, e.err.Error(), "terminating connection")
	run(t, conn, `UPDATE msm_services SET spec = jsonb_set(spec, '{replicas,max}', '3') WHERE name = 'api'`)
	w.quiet(t, 2*time.Second) // retries at 0.25, 0.5 and 1 s fail
	log, err := os.ReadFile(filepath.Join(server.Dir(), "postgres.log"))
	require.NoError(t, err)
	refused := strings.Count(string(log), `database "`+db+`" is not currently accepting connections`)
	assert.GreaterOrEqual(t, refused, 2, "the watch retried while the database refused connections")

	// Back: the first read applies the catalog again (as catalog.File does
	// after a read error), with the change made while the watch was away.
	run(t, admin, `ALTER DATABASE `+db+` ALLOW_CONNECTIONS true`)
	assert.Equal(t, 3, service(t, w.applied(t, prompt), "api").Replicas.Max)

	// And it listens again.
	run(t, conn, `UPDATE msm_services SET spec = jsonb_set(spec, '{replicas,max}', '4') WHERE name = 'api'`)
	assert.Equal(t, 4, service(t, w.applied(t, prompt), "api").Replicas.Max)
	w.quiet(t, 500*time.Millisecond)
}

func TestWatchFailsWhenTheFirstReadFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	apply := func(*catalog.Catalog) { t.Error("apply called") }
	reject := func(err error) { t.Error("reject called:", err) }

	dsn := newDB(t)
	err := Source{DSN: dsn}.Watch(ctx, apply, reject)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "msm catalog import FILE --postgres DSN", "a database without the tables says how to fill it")
	assert.NotContains(t, err.Error(), pgPassword)

	conn := connect(t, dsn)
	require.NoError(t, Migrate(ctx, conn))
	err = Source{DSN: dsn}.Watch(ctx, apply, reject)
	var cerr *catalog.Error
	require.ErrorAs(t, err, &cerr, "empty tables are an invalid catalog")

	bad := strings.Replace(dsn, pgPassword, "wrong", 1)
	err = Source{DSN: bad}.Watch(ctx, apply, reject)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "wrong")
}

func TestMigrateTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := connect(t, newDB(t))
	require.NoError(t, Migrate(ctx, conn))
	require.NoError(t, Migrate(ctx, conn))
	var triggers int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'msm_%'`).Scan(&triggers))
	assert.Equal(t, 3, triggers)
}

func TestImportTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, conn, want := imported(t)
	var before, after time.Time
	q := `SELECT max(updated_at) FROM msm_services`
	require.NoError(t, conn.QueryRow(ctx, q).Scan(&before))
	require.NoError(t, Import(ctx, conn, want))
	require.NoError(t, conn.QueryRow(ctx, q).Scan(&after))
	assert.Equal(t, before, after, "unchanged rows are not written")

	// A changed service is, and only it.
	changed, err := catalog.Load(example)
	require.NoError(t, err)
	changed.Services[1].Replicas.Max = 2
	require.NoError(t, Import(ctx, conn, changed))
	var touched []string
	rows, err := conn.Query(ctx, `SELECT name FROM msm_services WHERE updated_at > $1`, before)
	require.NoError(t, err)
	touched, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"api"}, touched)
}

func TestImportReplacesTheContent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn, conn, want := imported(t)
	w, _ := watch(t, Source{DSN: dsn, Every: time.Minute})

	smaller := *want
	smaller.Services = []catalog.Service{want.Services[1]}
	require.NoError(t, Import(ctx, conn, &smaller))
	assert.Equal(t, &smaller, w.applied(t, prompt), "one apply per Import: it is one transaction")
	w.quiet(t, 500*time.Millisecond)
}

func TestImportRejectsAnInvalidCatalog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, conn, want := imported(t)
	bad := *want
	bad.Services = []catalog.Service{want.Services[0]}
	bad.Services[0].Replicas.Min = 9
	err := Import(ctx, conn, &bad)
	var cerr *catalog.Error
	require.ErrorAs(t, err, &cerr)
	assert.Equal(t, "services[0].replicas", cerr.Problems[0].Field)

	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM msm_services`).Scan(&n))
	assert.Equal(t, 2, n, "nothing was written")
}

func TestStringHidesThePassword(t *testing.T) {
	for _, tc := range []struct{ dsn, want string }{
		{"postgres://msm:s3cret@db.example:5432/msm?sslmode=require", "postgres://msm@db.example:5432/msm?sslmode=require"},
		{"postgresql://msm:p%40ss@db/msm", "postgresql://msm@db/msm"},
		{"postgres://db/msm?user=msm&password=s3cret", "postgres://db/msm?user=msm"},
		{"postgres://msm@db/msm", "postgres://msm@db/msm"},
		{"host=db user=msm password=s3cret dbname=msm", "host=db user=msm dbname=msm"},
		{"host=db password='s3 cret' dbname=msm", "host=db dbname=msm"},
		{"password = s3cret host=db", "host=db"},
		{"host=db sslkey=k sslpassword=s3cret", "host=db sslkey=k"},
		{"postgres://db/msm?sslpassword=s3cret", "postgres://db/msm"},
		{"postgres://msm:s3cret@db:bad-port/msm", "postgres://msm@db:bad-port/msm"},
	} {
		got := Source{DSN: tc.dsn}.String()
		assert.Equal(t, tc.want, got, tc.dsn)
		assert.NotContains(t, got, "s3", tc.dsn)
		assert.NotContains(t, got, "p%40ss", tc.dsn)
	}
	assert.Implements(t, (*catalog.Source)(nil), Source{})
}

func TestErrorsAreCatalogErrors(t *testing.T) {
	// Problems from rows carry no line: the YAML they were read from is
	// not anybody's file.
	r := rows{manager: `{"kind": "docker", "node": {"temporal": "host.docker.internal:7233"}, "servers": [{"name": "local", "address": "127.0.0.1", "slots": 2, "ports": "21000-21009"}]}`,
		services: []row{{name: "web", spec: `{"replicas": {"max": 1}}`}}}
	_, err := r.parse()
	var cerr *catalog.Error
	require.True(t, errors.As(err, &cerr))
	for _, p := range cerr.Problems {
		assert.Zero(t, p.Line, p.String())
	}
	assert.Equal(t, `postgres:msm_services[web]: spec.command: the docker kind starts services as processes inside manager.docker.image and needs a command; set command to the program to run there, e.g. "/usr/local/bin/demo", or set image to the service's own image`, err.Error())
}
