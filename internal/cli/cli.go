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
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"

	"github.com/msm-project/msm/internal/clicore"
	"github.com/msm-project/msm/internal/codec"
	"github.com/msm-project/msm/internal/tracing"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/internal/version"
	"github.com/msm-project/msm/providers/docker"
	"github.com/msm-project/msm/starter"
	"github.com/msm-project/msm/workflows/agentapi"
)

const usage = `msm — MicroService Manager on Temporal

Usage:
  msm dev      [--catalog FILE]     run everything on this machine: Temporal dev server (Web UI :8233),
                                    the Manager, a node agent per local server; Ctrl-C stops it all
  msm worker   --catalog FILE       run the Manager (workflows + manager-side activities)
  msm node     --server NAME        run the node agent of one server
  msm agent    --container ID ...   run one container agent (started by the node agent)
  msm status   [-o table|json]      show servers, containers and services
  msm why      SERVICE              why a service is where it is now, and its last decisions
  msm events   [-f] [--service S]   the Manager's decisions (trigger, figures, why, outcome); -f follows
  msm extend   SERVICE [--count N]  add instances (a waiting container first, then a new process, then a new server)
  msm scale    SERVICE N            set a service's instances, within its replicas min..max
  msm drain    SERVER [--dry-run]   move a server's instances elsewhere (extend there, then destroy here), release it
  msm forget   SERVER               forget a lost server now (manager.forget_after does it later): its ports released
  msm rollout  status|pause|resume SERVICE   where a service's roll to a new revision stands; pause or resume it
  msm catalog validate FILE         check a catalog and say what to fix
  msm keys new FILE                 write a Manager's key ring (msm worker --key-file): reports are authenticated
  msm keys join-token ...           write one server's join token (msm node --join-token-file)
  msm codec-server                  decrypt payloads for the Web UI and the temporal CLI (--codec-key-file)
  msm version                       this build's msm version and the wire contract it speaks
  msm upgrade  workers [--build-id] make a build of versioned workers (msm worker --versioned) the Manager's
  msm upgrade  manager              have the Manager continue as a new run on its workers' build
  msm upgrade  agents [SERVICE...]  replace the instances whose agent is behind their node (extend, then destroy)

Common flags and their environment variables:
  --address    TEMPORAL_ADDRESS     Temporal frontend host:port (default 127.0.0.1:7233)
  --namespace  TEMPORAL_NAMESPACE   Temporal namespace (default "default")
  --manager    MSM_MANAGER          Manager name (default "local")
  --codec-key-file MSM_CODEC_KEY_FILE  encrypt payloads with these keys (msm keys new)

Run "msm COMMAND -h" for a command's flags.
`

// env is how commands read the environment (injected for tests).
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// agentCmd starts this process's container agents, once chosen.
	agentCmd []string
	// codec holds the payload keys once read (codecKeys).
	codec *[]trust.Key
	// sdkMetrics, when set, receives the Temporal SDK's metrics of the
	// clients dialled from then on (metricsRegistry).
	sdkMetrics client.MetricsHandler
	// cmd is the command running; tracing its traces, once the first dial
	// found OTEL_EXPORTER_OTLP_ENDPOINT set (Main flushes them at exit).
	cmd     string
	tracing *tracing.Tracing
	// rejectedUpdates counts the updates the Manager's validators refuse
	// on this process's worker (metricsRegistry).
	rejectedUpdates interceptor.WorkerInterceptor
}

// codecKeys are the payload keys of this process: those of
// --codec-key-file, else of docker.CodecKeysEnv (a docker kind's node
// container: removed from the environment once read, so that nothing it
// starts inherits it); none when neither is set. Read once.
func (e *env) codecKeys(c *common) ([]trust.Key, error) {
	if e.codec != nil {
		return *e.codec, nil
	}
	var keys []trust.Key
	var err error
	switch {
	case c.CodecKeyFile != "":
		if keys, err = trust.ReadKeys(c.CodecKeyFile); err != nil {
			return nil, fmt.Errorf("--codec-key-file: %w", err)
		}
	case e.getenv(docker.CodecKeysEnv) != "":
		if keys, err = trust.ParseKeys(e.getenv(docker.CodecKeysEnv), docker.CodecKeysEnv); err != nil {
			return nil, err
		}
		os.Unsetenv(docker.CodecKeysEnv)
	}
	e.codec = &keys
	return keys, nil
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
		"why":     e.why,
		"events":  e.events,
		"extend":  e.extend,
		"scale":   e.scale,
		"drain":   e.drain,
		"forget":  e.forget,
		"rollout": e.rollout,
		"catalog": e.catalog,
		"keys":    e.keys,

		"codec-server": e.codecServer,
		"version":      e.version,
		"upgrade":      e.upgrade,
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
	e.cmd = args[0]
	err := run(args[1:])
	if e.tracing != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if serr := e.tracing.Shutdown(ctx); serr != nil {
			fmt.Fprintf(stderr, "msm %s: exporting the last traces: %v\n", args[0], serr)
		}
		cancel()
	}
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

// version prints this build's version and wire contract: what its nodes
// and agents report, and `msm status` shows.
func (e *env) version(args []string) error {
	fs := e.flags("version", nil)
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "msm %s (wire contract %d)\n", version.Get(), agentapi.Wire)
	return nil
}

// errUsage is returned after a flag error was already printed.
var errUsage = clicore.ErrUsage

// exitError is a failure whose explanation was already printed.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// common are the flags every Temporal-facing command takes.
type common = clicore.Temporal

// flags is the flag set of command name, with c's flags unless c is nil.
func (e *env) flags(name string, c *common) *flag.FlagSet {
	return clicore.Flags("msm "+name, e.stderr, e.getenv, c)
}

func parse(fs *flag.FlagSet, args []string) error { return clicore.Parse(fs, args) }

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

func (e *env) logger(c *common) *slog.Logger { return c.Logger(e.stderr) }

// dial connects to Temporal with c's settings, retrying for up to wait; the
// SDK logs to stderr.
func (e *env) dial(ctx context.Context, c *common, wait time.Duration) (client.Client, error) {
	if err := c.CheckLogFormat(); err != nil {
		return nil, err
	}
	key, err := c.APIKey(e.getenv)
	if err != nil {
		return nil, err
	}
	var cdc *codec.Codec
	keys, err := e.codecKeys(c)
	if err != nil {
		return nil, err
	}
	if len(keys) > 0 {
		if cdc, err = codec.New(keys...); err != nil {
			return nil, fmt.Errorf("the payload keys, %w", err)
		}
	}
	if e.tracing == nil && tracing.Enabled(e.getenv) {
		if e.tracing, err = tracing.Setup(ctx, "msm "+e.cmd); err != nil {
			return nil, err
		}
	}
	var icpts []interceptor.ClientInterceptor
	if e.tracing != nil {
		icpts = append(icpts, e.tracing.Client)
	}
	return starter.Dial(ctx, starter.Options{
		Address: c.Address, Namespace: c.Namespace, Wait: wait, Log: c.SDKLogger(e.stderr),
		TLS: c.TLS, CA: c.TLSCA, APIKey: key, Cert: c.TLSCert, Key: c.TLSKey, Codec: cdc, Metrics: e.sdkMetrics,
		Interceptors: icpts,
	})
}

// interrupted returns a context that ends on SIGINT or SIGTERM.
func interrupted() (context.Context, context.CancelFunc) { return clicore.Interrupted() }
