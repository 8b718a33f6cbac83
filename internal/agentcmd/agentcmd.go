// Package agentcmd is the container agent's command line, shared by `msm
// agent` and the lean msm-agent binary (cmd/msm-agent). A node starts one
// agent per container, so msm-agent links this package and not the rest of
// msm: no Temporal SDK (internal/wire speaks to Temporal), no cloud SDK, no
// Docker client, no PostgreSQL.
package agentcmd

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/msm-project/msm/agent"
	"github.com/msm-project/msm/internal/clicore"
	"github.com/msm-project/msm/internal/codec"
	"github.com/msm-project/msm/internal/heartbeat"
	"github.com/msm-project/msm/internal/traces"
	"github.com/msm-project/msm/internal/trust"
	"github.com/msm-project/msm/internal/wire"
	"github.com/msm-project/msm/workflows/agentapi"
)

// Main runs msm-agent with args and returns the exit status.
func Main(args []string, stderr io.Writer, getenv func(string) string) int {
	err := Run("msm-agent", args, stderr, getenv)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, clicore.ErrUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "msm-agent: %v\n", err)
		return 1
	}
}

// Run parses the agent's flags, for the command name its usage shows, and
// serves the container until SIGINT or SIGTERM.
func Run(name string, args []string, stderr io.Writer, getenv func(string) string) error {
	if len(args) > 0 && args[0] == agent.ExecConfined {
		return agent.ExecConfinedMain(args[1:]) // returns only on error
	}
	var t clicore.Temporal
	fs := clicore.Flags(name, stderr, getenv, &t)
	container := fs.String("container", getenv("MSM_CONTAINER"), "container `ID` (MSM_CONTAINER)")
	server := fs.String("server", getenv("MSM_SERVER"), "server `name` (MSM_SERVER)")
	if err := clicore.Parse(fs, args); err != nil {
		return err
	}
	if *container == "" {
		fmt.Fprintf(stderr, "%s: --container ID is required; agents are normally started by `msm node`\n", name)
		return clicore.ErrUsage
	}
	if err := t.CheckLogFormat(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return clicore.ErrUsage
	}
	// Its container's key comes first, before anything can take long: the
	// node wrote it into a pipe only this process holds.
	ckey, codecKeys, err := readKeys(getenv(agentapi.KeyFDEnv))
	if err != nil {
		return err
	}
	if lines := getenv(agentapi.KeyEnv); lines != "" && !ckey.Valid() && len(codecKeys) == 0 {
		if ckey, codecKeys, err = agentapi.ParseKeyLines(lines); err != nil {
			return fmt.Errorf("%s: %w", agentapi.KeyEnv, err)
		}
		os.Unsetenv(agentapi.KeyEnv)
	}
	if t.CodecKeyFile != "" && len(codecKeys) == 0 {
		if codecKeys, err = trust.ReadKeys(t.CodecKeyFile); err != nil {
			return fmt.Errorf("--codec-key-file: %w", err)
		}
	}
	var cdc *codec.Codec
	if len(codecKeys) > 0 {
		if cdc, err = codec.New(codecKeys...); err != nil {
			return fmt.Errorf("the codec keys, %w", err)
		}
	}
	// An agent is a sidecar that waits on RPCs and one MicroService: one P
	// starts it with less CPU.
	runtime.GOMAXPROCS(1)
	key, err := t.APIKey(getenv)
	if err != nil {
		return err
	}
	ctx, stop := clicore.Interrupted()
	defer stop()
	host, _ := os.Hostname()
	cl, err := wire.Dial(ctx, wire.Options{
		Address: t.Address, Namespace: t.Namespace, TLS: t.TLS, CA: t.TLSCA, APIKey: key, Cert: t.TLSCert, Key: t.TLSKey,
		Identity: fmt.Sprintf("%d@%s@%s", os.Getpid(), host, *container),
		Wait:     time.Minute, Log: t.SDKLogger(stderr), Codec: cdc,
	})
	if err != nil {
		return err
	}
	defer cl.Close()
	shim, err := shimOf(name)
	if err != nil {
		return err
	}
	var image *agentapi.ImageCommand
	if v := getenv(agentapi.ImageEnv); v != "" {
		image = &agentapi.ImageCommand{}
		if err := json.Unmarshal([]byte(v), image); err != nil {
			return fmt.Errorf("%s (the image's command, from the node): %w", agentapi.ImageEnv, err)
		}
	}
	spans := traces.FromEnv("msm-agent", getenv)
	defer spans.Flush()
	a, err := agent.New(agent.Config{Container: *container, Server: *server, Manager: t.Manager, Log: t.Logger(stderr), Key: ckey, Shim: shim,
		Cgroup: getenv(agentapi.CgroupEnv), Traces: spans, Heartbeat: getenv(heartbeat.Env), Image: image,
		Reports: getenv(agentapi.ReportsEnv)})
	if err != nil {
		return err
	}
	return a.Run(ctx, cl)
}

// readKeys reads the container key and the codec keys from the file
// descriptor fd names (agentapi.KeyLines) and closes it; none ("" fd) when
// the node has neither.
func readKeys(fd string) (trust.Key, []trust.Key, error) {
	if fd == "" {
		return trust.Key{}, nil, nil
	}
	n, err := strconv.Atoi(fd)
	if err != nil || n < 3 {
		return trust.Key{}, nil, fmt.Errorf("%s=%q is not a file descriptor above 2", agentapi.KeyFDEnv, fd)
	}
	f := os.NewFile(uintptr(n), "agent keys")
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return trust.Key{}, nil, fmt.Errorf("reading the agent's keys from fd %d, %w", n, err)
	}
	ck, codecKeys, err := agentapi.ParseKeyLines(string(b))
	if err != nil {
		return trust.Key{}, nil, fmt.Errorf("the agent's keys on fd %d, %w", n, err)
	}
	return ck, codecKeys, nil
}

// shimOf is how this binary is run as the agent named name ("msm-agent",
// or "msm agent"): the confining shim is this binary with the same words.
func shimOf(name string) ([]string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the agent's binary, %w", err)
	}
	words := strings.Fields(name)
	return append([]string{self}, words[1:]...), nil
}
