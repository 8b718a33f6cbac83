// Package cli implements the msm command: one file per subcommand. Commands
// take their IO streams and environment lookup, so tests run the real CLI.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/msm-project/msm/starter"
)

const usage = `msm — MicroService Manager on Temporal

Usage:
  msm dev      [--catalog FILE]     run everything on this machine: Temporal dev server (Web UI :8233),
                                    the Manager, a node agent per local server; Ctrl-C stops it all
  msm worker   --catalog FILE       run the Manager (workflows + manager-side activities)
  msm node     --server NAME        run the node agent of one server
  msm agent    --container ID ...   run one container agent (started by the node agent)
  msm status   [-o table|json]      show servers, containers and services
  msm extend   SERVICE [--count N]  add instances (a waiting container first, then a new process, then a new server)
  msm scale    SERVICE N            set a service's instances, within its replicas min..max
  msm drain    SERVER [--dry-run]   move a server's instances elsewhere (extend there, then destroy here), release it
  msm catalog validate FILE         check a catalog and say what to fix

Common flags and their environment variables:
  --address    TEMPORAL_ADDRESS     Temporal frontend host:port (default 127.0.0.1:7233)
  --namespace  TEMPORAL_NAMESPACE   Temporal namespace (default "default")
  --manager    MSM_MANAGER          Manager name (default "local")

Run "msm COMMAND -h" for a command's flags.
`

// env is how commands read the environment (injected for tests).
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// Main runs msm with args and returns the exit status.
func Main(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmds := map[string]func([]string) error{
		"dev":     e.dev,
		"worker":  e.worker,
		"node":    e.node,
		"agent":   e.agent,
		"status":  e.status,
		"extend":  e.extend,
		"scale":   e.scale,
		"drain":   e.drain,
		"catalog": e.catalog,
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	run, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "msm: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	err := run(args[1:])
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		var quiet *exitError
		if !errors.As(err, &quiet) {
			fmt.Fprintf(stderr, "msm %s: %v\n", args[0], err)
		}
		return 1
	}
}

// errUsage is returned after a flag error was already printed.
var errUsage = errors.New("usage")

// exitError is a failure whose explanation was already printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// common are the flags every Temporal-facing command takes.
type common struct {
	address, namespace, manager string
	verbose                     bool
	// tls, tlsCA and apiKeyFile reach a Temporal that needs TLS or an API
	// key (the key may also come from TEMPORAL_API_KEY).
	tls               bool
	tlsCA, apiKeyFile string
}

func (e *env) flags(name string, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet("msm "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	if c != nil {
		fs.StringVar(&c.address, "address", e.or("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend `host:port`")
		fs.StringVar(&c.namespace, "namespace", e.or("TEMPORAL_NAMESPACE", "default"), "Temporal namespace")
		fs.StringVar(&c.manager, "manager", e.or("MSM_MANAGER", "local"), "Manager name")
		fs.BoolVar(&c.verbose, "v", e.getenv("MSM_VERBOSE") != "", "log the Temporal SDK at info level")
		fs.BoolVar(&c.tls, "tls", e.getenv("TEMPORAL_TLS") == "true", "dial Temporal over TLS (TEMPORAL_TLS=true)")
		fs.StringVar(&c.tlsCA, "tls-ca", e.getenv("TEMPORAL_TLS_CA_PATH"), "CA bundle `file` to trust for Temporal's TLS (TEMPORAL_TLS_CA_PATH; default the system roots)")
		fs.StringVar(&c.apiKeyFile, "api-key-file", e.getenv("TEMPORAL_API_KEY_FILE"), "`file` holding the Temporal API key (TEMPORAL_API_KEY_FILE; or the key itself in TEMPORAL_API_KEY)")
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}

func (e *env) or(key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}

// durationOr reads a duration from the environment, or def when unset or
// unreadable.
func (e *env) durationOr(key string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(e.getenv(key)); err == nil {
		return d
	}
	return def
}

func (e *env) logger(c *common) *slog.Logger {
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// sdkLogger is quieter: the SDK logs every poll at info level.
func (e *env) sdkLogger(c *common) *slog.Logger {
	level := slog.LevelWarn
	if c.verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
}

// temporalEnv passes c's Temporal settings on to a child process (agents).
func (e *env) temporalEnv(c *common) []string {
	env := []string{"TEMPORAL_ADDRESS=" + c.address, "TEMPORAL_NAMESPACE=" + c.namespace}
	if c.tls {
		env = append(env, "TEMPORAL_TLS=true")
	}
	if c.tlsCA != "" {
		env = append(env, "TEMPORAL_TLS_CA_PATH="+c.tlsCA)
	}
	if c.apiKeyFile != "" {
		env = append(env, "TEMPORAL_API_KEY_FILE="+c.apiKeyFile)
	}
	return env
}

func (e *env) dial(ctx context.Context, c *common, wait time.Duration) (client.Client, error) {
	key := e.getenv("TEMPORAL_API_KEY")
	if c.apiKeyFile != "" {
		b, err := os.ReadFile(c.apiKeyFile)
		if err != nil {
			return nil, fmt.Errorf("reading the Temporal API key, %w", err)
		}
		key = strings.TrimSpace(string(b))
	}
	return starter.Dial(ctx, starter.Options{
		Address: c.address, Namespace: c.namespace, Wait: wait, Log: e.sdkLogger(c),
		TLS: c.tls, CA: c.tlsCA, APIKey: key,
	})
}

// interrupted returns a context that ends on SIGINT or SIGTERM.
func interrupted() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
