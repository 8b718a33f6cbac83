// Package pgtest runs a real PostgreSQL server for tests, from the Debian
// package's binaries (installed with apt-get when missing and running as
// root). Never a mock.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// The superuser the server is created with; a password, so that DSNs are
// like real ones.
const (
	pgUser     = "msm"
	pgPassword = "s3cret-pw"
)

// Server is a running test PostgreSQL.
type Server = pgServer

// Start starts a server on a free port of 127.0.0.1.
func Start() (*Server, error) { return startPostgres() }

// DSN is the URL of database db on the server.
func (s *pgServer) DSN(db string) string { return s.dsn(db) }

// Stop stops the server and removes its data.
func (s *pgServer) Stop() { s.stop() }

var databases atomic.Int64

// NewDB creates an empty database and returns its DSN.
func (s *pgServer) NewDB(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), databases.Add(1))
	conn, err := pgx.Connect(ctx, s.dsn("postgres"))
	if err != nil {
		return "", fmt.Errorf("connecting to the test server, %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("creating database %s, %w", name, err)
	}
	return s.dsn(name), nil
}

// Bin is the directory of the server binaries in use.
func (s *pgServer) Bin() string { return s.bin }

// Port is the server's port.
func (s *pgServer) Port() int { return s.port }

// pgServer is a postgres process on a data directory of its own.
type pgServer struct {
	bin  string // the directory of initdb and postgres
	dir  string // temporary: data, sockets, log
	port int
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// dsn is the URL of database db on the server.
func (s *pgServer) dsn(db string) string {
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", pgUser, pgPassword, s.port, db)
}

// binDir finds the PostgreSQL server binaries, newest version first.
func binDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if isFile(filepath.Join(d, "initdb")) && isFile(filepath.Join(d, "postgres")) {
			return d
		}
	}
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// install installs Debian's postgresql package, refreshing the package
// lists first only if apt cannot find it.
func install() error {
	if os.Geteuid() != 0 {
		return errors.New("the PostgreSQL server is not installed (no /usr/lib/postgresql/*/bin/initdb) and only root can install it; run: apt-get install -y postgresql")
	}
	apt := func(args ...string) ([]byte, error) {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	out, err := apt("install", "-y", "postgresql")
	if err != nil {
		if _, err := apt("update"); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
		out, err = apt("install", "-y", "postgresql")
	}
	if err != nil {
		return fmt.Errorf("apt-get install -y postgresql: %w\n%s", err, out)
	}
	return nil
}

// startPostgres initdbs a temporary data directory and runs postgres on it,
// on a free port of 127.0.0.1 with its unix socket in the same directory.
// PostgreSQL refuses to run as root, so as root it runs as the postgres
// user the Debian package creates.
func startPostgres() (*pgServer, error) {
	bin := binDir()
	if bin == "" {
		if err := install(); err != nil {
			return nil, err
		}
		if bin = binDir(); bin == "" {
			return nil, errors.New("apt-get installed postgresql but there is no /usr/lib/postgresql/*/bin/initdb")
		}
	}
	var cred *syscall.Credential
	dir, err := os.MkdirTemp("", "pgcatalog-")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running PostgreSQL as root is refused and there is no postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		// The postgres user must reach dir through its parents.
		for p := filepath.Dir(dir); p != "/"; p = filepath.Dir(p) {
			if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o001 == 0 {
				return nil, fmt.Errorf("the postgres user cannot reach %s: %s is not searchable by others; set TMPDIR elsewhere", dir, p)
			}
		}
	}
	as := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true}
		return cmd
	}
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(pgPassword+"\n"), 0o644); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	initdb := as("initdb", "-D", data, "-U", pgUser, "--pwfile="+pwfile, "--auth=scram-sha-256",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", strings.Join(initdb.Args, " "), err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// Durability is of no use to a throwaway server; speed is.
	cmd := as("postgres", "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off")
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL // no server outlives a killed test binary
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	s := &pgServer{bin: bin, dir: dir, port: port, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// waitReady waits until the server accepts a connection.
func (s *pgServer) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn, err := pgx.Connect(ctx, s.dsn("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
			return fmt.Errorf("postgres exited at start: %s\n%s", s.cmd.ProcessState, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
			return fmt.Errorf("postgres did not accept connections within %s: %v\n%s", timeout, err, log)
		}
	}
}

// stop shuts the server down (SIGINT: fast shutdown, then SIGKILL) and
// removes its directory.
func (s *pgServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	_ = os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Dir is the server's temporary directory (data, sockets, postgres.log).
func (s *pgServer) Dir() string { return s.dir }
