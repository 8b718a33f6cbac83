package pgcatalog

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/msm-project/msm/internal/pgtest"
)

// The tests share one real PostgreSQL server, started by TestMain from the
// binaries of the Debian package (installed with apt-get if missing), and
// each test gets a database of its own.
var (
	server   *pgtest.Server
	noServer string // why there is no server; tests skip with it
)

// The superuser the server is created with; a password, so that DSNs are
// like real ones (String must hide it).
const (
	pgPassword = "s3cret-pw" // pgtest's, which String must hide
)

func TestMain(m *testing.M) {
	flag.Parse()
	// A fuzzing run (and each of its workers, which run TestMain too) needs
	// no database: the fuzz targets are pure.
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" {
		os.Exit(m.Run())
	}
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		os.Exit(m.Run())
	}
	var err error
	start := time.Now()
	server, err = pgtest.Start()
	if err != nil {
		if os.Getenv("CI") == "true" {
			fmt.Fprintf(os.Stderr, "pgcatalog: the tests need a real PostgreSQL server and none could be started: %v\n", err)
			os.Exit(1)
		}
		noServer = "no PostgreSQL server for the tests (with CI=true this fails): " + err.Error()
	} else if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "pgcatalog: PostgreSQL from %s on 127.0.0.1:%d, ready in %s\n", server.Bin(), server.Port(), time.Since(start).Round(time.Millisecond))
	}
	code := m.Run()
	if server != nil {
		server.Stop()
	}
	os.Exit(code)
}

// newDB creates an empty database for one test and returns its DSN.
func newDB(t *testing.T) string {
	t.Helper()
	if server == nil {
		t.Skip(noServer)
	}
	dsn, err := server.NewDB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}
