// Package pgcatalog keeps the catalog in PostgreSQL: the schema of its two
// tables, Import of a validated catalog into them, and Source, which watches
// them while the Manager runs.
//
// A row holds a piece of the YAML schema as JSON, with the YAML field names.
// Source turns the rows back into one YAML document and hands it to
// catalog.Parse, so a catalog in PostgreSQL is decoded, defaulted and
// validated by exactly the rules (and messages) of a catalog file; only the
// problems' places are renamed after the rows, e.g.
// "postgres:msm_services[web]: spec.replicas: min 7 is greater than max 6".
package pgcatalog

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gopkg.in/yaml.v3"

	"github.com/msm-project/msm/catalog"
)

// Channel is the LISTEN/NOTIFY channel the tables' trigger notifies on every
// change.
const Channel = "msm_catalog"

// Schema creates the tables and triggers; running it again changes nothing.
// The advisory lock keeps two processes migrating at once from tripping over
// each other's CREATE (IF NOT EXISTS does not guard against that); its key
// is "msm" in ASCII.
const Schema = `
SELECT pg_advisory_xact_lock(7172973);

CREATE TABLE IF NOT EXISTS msm_manager (
	id   int PRIMARY KEY DEFAULT 1 CHECK (id = 1),
	spec jsonb NOT NULL
);

CREATE TABLE IF NOT EXISTS msm_services (
	name       text PRIMARY KEY,
	spec       jsonb NOT NULL,
	position   int NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION msm_catalog_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('msm_catalog', '');
	RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION msm_services_touch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END $$;

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'msm_manager'::regclass AND tgname = 'msm_catalog_notify') THEN
		CREATE TRIGGER msm_catalog_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON msm_manager
			FOR EACH STATEMENT EXECUTE FUNCTION msm_catalog_notify();
	END IF;
	IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'msm_services'::regclass AND tgname = 'msm_catalog_notify') THEN
		CREATE TRIGGER msm_catalog_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON msm_services
			FOR EACH STATEMENT EXECUTE FUNCTION msm_catalog_notify();
	END IF;
	IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'msm_services'::regclass AND tgname = 'msm_services_touch') THEN
		CREATE TRIGGER msm_services_touch BEFORE UPDATE ON msm_services
			FOR EACH ROW EXECUTE FUNCTION msm_services_touch();
	END IF;
END $$;
`

// Conn is what Migrate and Import need of a database handle: *pgx.Conn,
// *pgxpool.Pool and pgx.Tx all have it.
type Conn interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Migrate creates the catalog's tables and triggers if they are missing.
func Migrate(ctx context.Context, conn Conn) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return migrate(ctx, tx) })
}

func migrate(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, Schema); err != nil {
		return fmt.Errorf("creating the catalog tables, %w", err)
	}
	return nil
}

// Import replaces the tables' content with c, in one transaction, creating
// the tables first if they are missing. c is defaulted (on a copy) and
// validated first; an invalid c returns its *catalog.Error and changes
// nothing. Rows that do not change are not written, so their updated_at
// keeps telling when they last did.
func Import(ctx context.Context, conn Conn, c *catalog.Catalog) error {
	d := *c
	d.Manager.Servers = slices.Clone(c.Manager.Servers)
	d.Services = slices.Clone(c.Services)
	d.Default()
	if ps := d.Validate(); len(ps) > 0 {
		return &catalog.Error{Problems: ps}
	}
	r, err := toRows(&d)
	if err != nil {
		return err
	}
	// What is written must read back as a valid catalog, or every Source
	// would reject it.
	if _, err := r.parse(); err != nil {
		return err
	}
	names := make([]string, len(r.services))
	for i, s := range r.services {
		names[i] = s.name
	}
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := migrate(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO msm_manager (id, spec) VALUES (1, $1)
			ON CONFLICT (id) DO UPDATE SET spec = excluded.spec
			WHERE msm_manager.spec IS DISTINCT FROM excluded.spec`, r.manager); err != nil {
			return fmt.Errorf("writing msm_manager, %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM msm_services WHERE NOT (name = ANY($1))`, names); err != nil {
			return fmt.Errorf("deleting from msm_services, %w", err)
		}
		for i, s := range r.services {
			if _, err := tx.Exec(ctx, `
				INSERT INTO msm_services (name, spec, position) VALUES ($1, $2, $3)
				ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, position = excluded.position
				WHERE (msm_services.spec, msm_services.position) IS DISTINCT FROM (excluded.spec, excluded.position)`,
				s.name, s.spec, i); err != nil {
				return fmt.Errorf("writing msm_services[%s], %w", s.name, err)
			}
		}
		return nil
	})
}

// Source is a catalog in PostgreSQL, watched through LISTEN msm_catalog and
// polled as a fallback (a NOTIFY is lost while the connection is down, and
// a trigger may be disabled).
type Source struct {
	// DSN is a PostgreSQL connection string, a URL
	// (postgres://user:pass@host:5432/db) or key=value pairs.
	DSN string
	// Every is the poll interval (default 2 s).
	Every time.Duration
}

// Retries of a lost connection wait from minBackoff, doubling up to
// maxBackoff; ioTimeout bounds one connect or read, so that a server that
// stopped answering counts as lost rather than hanging the watch.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 15 * time.Second
	ioTimeout  = 15 * time.Second
)

// String returns the DSN without its password.
func (s Source) String() string { return redact(s.DSN) }

// Watch implements catalog.Source. The first read happens after LISTEN, so
// no change falls between them. A change is noticed by the rows' content, so
// a NOTIFY, or an UPDATE that writes the same spec, changes nothing.
//
// A failed read (the connection lost, the tables gone) goes to reject once
// per outage, and the connection is retried with backoff; the first good
// read after it applies the catalog again even if it did not change, as
// catalog.File does, so whoever shows the source's state sees it recover.
func (s Source) Watch(ctx context.Context, apply func(*catalog.Catalog), reject func(error)) error {
	every := s.Every
	if every <= 0 {
		every = 2 * time.Second
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	r, err := s.read(ctx, conn)
	if err != nil {
		return err
	}
	c, err := r.parse()
	if err != nil {
		return err
	}
	apply(c)
	last := r.sum()

	backoff := minBackoff
	failing := false
	fail := func(err error) {
		if conn != nil {
			conn.Close(context.Background())
			conn = nil
		}
		if !failing {
			failing = true
			last = [sha256.Size]byte{}
			reject(err)
		}
	}
	for {
		if conn == nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			if conn, err = s.connect(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				fail(err)
				continue
			}
		} else {
			// Wakes on a NOTIFY, or after every to poll. A timeout leaves
			// the connection usable.
			wctx, cancel := context.WithTimeout(ctx, every)
			_, err := conn.WaitForNotification(wctx)
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			if err != nil && !pgconn.Timeout(err) {
				fail(fmt.Errorf("listening on %s, %w", s, err))
				continue
			}
		}
		r, err := s.read(ctx, conn)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fail(err)
			continue
		}
		failing, backoff = false, minBackoff
		sum := r.sum()
		if sum == last {
			continue
		}
		last = sum
		if c, err := r.parse(); err != nil {
			reject(err)
		} else {
			apply(c)
		}
	}
}

// connect opens the watch's own connection and listens on Channel.
func (s Source) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.DSN)
	if err != nil {
		return nil, fmt.Errorf("reading the PostgreSQL DSN %s, %w", s, err)
	}
	// Names the connection in pg_stat_activity, unless the DSN does.
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "msm-catalog"
	}
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s, %w", s, err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("listening on %s, %w", s, err)
	}
	return conn, nil
}

// read reads both tables in one snapshot.
func (s Source) read(ctx context.Context, conn *pgx.Conn) (rows, error) {
	ctx, cancel := context.WithTimeout(ctx, ioTimeout)
	defer cancel()
	var r rows
	err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT spec::text FROM msm_manager WHERE id = 1`).Scan(&r.manager)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		q, err := tx.Query(ctx, `SELECT name, spec::text FROM msm_services ORDER BY position, name`)
		if err != nil {
			return err
		}
		r.services, err = pgx.CollectRows(q, func(q pgx.CollectableRow) (row, error) {
			var x row
			err := q.Scan(&x.name, &x.spec)
			return x, err
		})
		return err
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
			return rows{}, fmt.Errorf("reading the catalog from %s, %w; load one with `msm catalog import FILE --postgres DSN`, which creates the tables", s, err)
		}
		return rows{}, fmt.Errorf("reading the catalog from %s, %w", s, err)
	}
	return r, nil
}

// rows is a catalog as the tables hold it: JSON text.
type rows struct {
	manager  string // "" when msm_manager has no row
	services []row  // in order of position
}

type row struct{ name, spec string }

// sum identifies the rows' content. jsonb's text form is canonical, so
// rewriting a spec with other spacing or key order does not change it.
func (r rows) sum() [sha256.Size]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%q\n", r.manager)
	for _, s := range r.services {
		fmt.Fprintf(h, "%q %q\n", s.name, s.spec)
	}
	return [sha256.Size]byte(h.Sum(nil))
}

// Labels of problems: the "file" is the row.
const (
	managerFile  = "postgres:msm_manager"
	servicesFile = "postgres:msm_services"
)

func serviceFile(name string) string { return servicesFile + "[" + name + "]" }

// parse turns the rows into one YAML catalog and parses it, renaming each
// problem's place after its row and column.
func (r rows) parse() (*catalog.Catalog, error) {
	var early []catalog.Problem
	root := mapping()
	mgr := mapping()
	if r.manager != "" {
		v, err := decodeJSON(r.manager)
		if err != nil {
			return nil, fmt.Errorf("reading msm_manager.spec, %w", err)
		}
		mgr = toNode(v)
	}
	addPair(root, "manager", mgr)
	services := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, s := range r.services {
		v, err := decodeJSON(s.spec)
		if err != nil {
			return nil, fmt.Errorf("reading msm_services[%s].spec, %w", s.name, err)
		}
		n := toNode(v)
		if n.Kind == yaml.MappingNode {
			// The name column names the service; a name in spec that
			// disagrees would silently lose, so it is a problem.
			item := mapping()
			addPair(item, "name", scalar("!!str", s.name))
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, val := n.Content[i], n.Content[i+1]
				if k.Value == "name" {
					if val.Value != s.name || val.Kind != yaml.ScalarNode {
						early = append(early, catalog.Problem{File: serviceFile(s.name), Field: "spec.name",
							Message: fmt.Sprintf("spec names the service %s but the row's name is %q; rename a service in the name column, and leave name out of spec", jsonText(v.(map[string]any)["name"]), s.name)})
					}
					continue
				}
				item.Content = append(item.Content, k, val)
			}
			n = item
		}
		services.Content = append(services.Content, n)
	}
	addPair(root, "services", services)
	data, err := yaml.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("writing the catalog rows as YAML, %w", err)
	}
	c, err := catalog.Parse(data, "postgres")
	var cerr *catalog.Error
	switch {
	case errors.As(err, &cerr):
		ps := early
		for _, p := range cerr.Problems {
			ps = append(ps, r.place(p))
		}
		return nil, &catalog.Error{Problems: ps}
	case err != nil:
		return nil, err
	case len(early) > 0:
		return nil, &catalog.Error{Problems: early}
	}
	return c, nil
}

var (
	serviceField = regexp.MustCompile(`^services\[(\d+)\](?:\.(.*))?$`)
	// The lines are of the YAML written from the rows, which nobody sees.
	lineRef = regexp.MustCompile(` \(line \d+\)`)
)

// place renames a problem of the YAML written from the rows after the row
// and column it comes from: "services[1].replicas" of web becomes
// postgres:msm_services[web], field spec.replicas.
func (r rows) place(p catalog.Problem) catalog.Problem {
	p.Line = 0
	p.Message = lineRef.ReplaceAllString(p.Message, "")
	switch m := serviceField.FindStringSubmatch(p.Field); {
	case p.Field == "manager" || strings.HasPrefix(p.Field, "manager."):
		p.File, p.Field = managerFile, "spec"+strings.TrimPrefix(p.Field, "manager")
	case m != nil:
		i, _ := strconv.Atoi(m[1])
		if i < len(r.services) {
			p.File = serviceFile(r.services[i].name)
		} else {
			p.File = servicesFile
		}
		switch m[2] {
		case "":
			p.Field = "spec"
		case "name":
			p.Field = "name"
		default:
			p.Field = "spec." + m[2]
		}
	case p.Field == "services":
		p.File, p.Field = servicesFile, ""
	default:
		p.File = "postgres"
	}
	return p
}

// toRows writes c as rows: each spec is the YAML encoding of its part of the
// catalog, as JSON, without the values left empty.
func toRows(c *catalog.Catalog) (rows, error) {
	var r rows
	var err error
	if r.manager, err = specJSON(c.Manager); err != nil {
		return rows{}, fmt.Errorf("writing the manager section as JSON, %w", err)
	}
	for _, s := range c.Services {
		spec, err := specJSON(s)
		if err != nil {
			return rows{}, fmt.Errorf("writing service %s as JSON, %w", s.Name, err)
		}
		r.services = append(r.services, row{name: s.Name, spec: spec})
	}
	return r, nil
}

// specJSON encodes v through YAML, so that the JSON has the YAML names and
// forms ("2s", "21000-21099") that Parse reads. The name is left out: it is
// a column of its own.
func specJSON(v any) (string, error) {
	y, err := yaml.Marshal(v)
	if err != nil {
		return "", err
	}
	var m map[string]any
	if err := yaml.Unmarshal(y, &m); err != nil {
		return "", err
	}
	delete(m, "name")
	b, err := json.Marshal(prune(m))
	return string(b), err
}

// prune drops empty strings, lists and mappings, which Parse reads as left
// out anyway.
func prune(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if x = prune(x); empty(x) {
				delete(v, k)
			} else {
				v[k] = x
			}
		}
	case []any:
		for i := range v {
			v[i] = prune(v[i])
		}
	}
	return v
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case map[string]any:
		return len(v) == 0
	case []any:
		return len(v) == 0
	}
	return false
}

// decodeJSON keeps numbers as written, so 3 stays an integer and 1.5 does
// not pass for one.
func decodeJSON(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// toNode builds the YAML node of a decoded JSON value, its keys sorted.
func toNode(v any) *yaml.Node {
	switch v := v.(type) {
	case map[string]any:
		n := mapping()
		for _, k := range slices.Sorted(maps.Keys(v)) {
			addPair(n, k, toNode(v[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, x := range v {
			n.Content = append(n.Content, toNode(x))
		}
		return n
	case string:
		return scalar("!!str", v)
	case json.Number:
		if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return scalar("!!int", string(v))
		}
		return scalar("!!float", string(v))
	case bool:
		return scalar("!!bool", strconv.FormatBool(v))
	default:
		return scalar("!!null", "null")
	}
}

func mapping() *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"} }

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

func addPair(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, scalar("!!str", key), v)
}

var (
	urlPassword = regexp.MustCompile(`^([a-z]+://[^:@/]*):[^@]*@`)
	kvPassword  = regexp.MustCompile(`(^|\s+)(ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)`)
)

// redact removes the password (and the client key's sslpassword) from a
// DSN, in either form, including a URL's query (?password=), which libpq
// accepts too.
func redact(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return urlPassword.ReplaceAllString(dsn, "$1@")
		}
		if u.User != nil {
			u.User = url.User(u.User.Username())
		}
		if q := u.Query(); q.Has("password") || q.Has("sslpassword") {
			q.Del("password")
			q.Del("sslpassword")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return strings.TrimSpace(kvPassword.ReplaceAllString(dsn, ""))
}
