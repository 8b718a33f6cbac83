package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/catalog/pgcatalog"
)

func (e *env) catalog(args []string) error {
	if len(args) > 0 && args[0] == "import" {
		return e.catalogImport(args[1:])
	}
	if len(args) == 0 || args[0] != "validate" {
		fmt.Fprintln(e.stderr, "usage: msm catalog validate FILE | msm catalog import FILE --postgres DSN")
		return errUsage
	}
	fs := e.flags("catalog validate", nil)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(e.stderr, "usage: msm catalog validate FILE")
		return errUsage
	}
	path := fs.Arg(0)
	cat, err := e.loadCatalog(path, false)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d services, %d servers)\n", path, len(cat.Services), len(cat.Manager.Servers))
	return nil
}

// loadCatalog loads and validates a catalog, printing every problem and a
// count of them. starts says the command would have started something,
// which the count line then says it did not.
func (e *env) loadCatalog(path string, starts bool) (*catalog.Catalog, error) {
	cat, err := catalog.Load(path)
	if err == nil {
		return cat, nil
	}
	var cerr *catalog.Error
	if errors.As(err, &cerr) {
		fmt.Fprintln(e.stderr, cerr.Error())
		summary := fmt.Sprintf("%s: %d problem", path, len(cerr.Problems))
		if len(cerr.Problems) != 1 {
			summary += "s"
		}
		if starts {
			summary += "; nothing was started"
		}
		fmt.Fprintln(e.stderr, summary)
		return nil, &exitError{code: 1}
	}
	return nil, err
}

// catalogImport is `msm catalog import FILE --postgres DSN`: it loads a
// YAML catalog into the PostgreSQL tables (created if missing), replacing
// what they held; a running worker on that DSN picks it up.
func (e *env) catalogImport(args []string) error {
	fs := e.flags("catalog import", nil)
	dsn := fs.String("postgres", e.getenv("MSM_POSTGRES"), "PostgreSQL `DSN`, postgres://user:pass@host:port/db (MSM_POSTGRES)")
	const usage = "usage: msm catalog import FILE --postgres DSN"
	path, rest, err := e.parseWithService(fs, args, usage)
	if err != nil {
		return err
	}
	if len(rest) != 0 || *dsn == "" {
		fmt.Fprintln(e.stderr, usage)
		return errUsage
	}
	cat, err := e.loadCatalog(path, false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		return fmt.Errorf("connecting to %s, %w", pgcatalog.Source{DSN: *dsn}, err)
	}
	defer conn.Close(context.Background())
	if err := pgcatalog.Import(ctx, conn, cat); err != nil {
		return fmt.Errorf("importing %s, %w", path, err)
	}
	fmt.Fprintf(e.stdout, "%s: imported %d services into %s\n", path, len(cat.Services), pgcatalog.Source{DSN: *dsn})
	return nil
}
