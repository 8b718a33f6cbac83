package agent_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/agent"
	"github.com/msm-project/msm/catalog"
	"github.com/msm-project/msm/workflows/agentapi"
)

// confinedAgent is an agent of container id that confines its services
// through msm-agent, as a node running as root starts it.
func confinedAgent(t *testing.T, id string) *agent.Agent {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("confinement to a user of its own needs the agent to run as root")
	}
	a, err := agent.New(agent.Config{Container: id, Server: "s1", Manager: "m",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Shim: []string{shim}})
	require.NoError(t, err)
	return a
}

// userProcs lists the live processes of uid.
func userProcs(t *testing.T, uid uint32) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		st := string(b)
		if strings.Contains(st, fmt.Sprintf("\nUid:\t%d\t", uid)) && !strings.Contains(st, "State:\tZ") {
			cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			out = append(out, e.Name()+" "+strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
	return out
}

// shService runs script with sh, then the demo in its place.
func shService(name, script string, limits catalog.Limits) catalog.Service {
	return catalog.Service{Name: name, Command: "/bin/sh",
		Args:   []string{"-c", script + "\nexec " + demo + " --port={{.Port}} --name={{.Service}}"},
		Health: catalog.HealthCheck{Path: "/healthz", Timeout: time.Second}, Limits: &limits}
}

// TestConfinedServiceRunsAsItsOwnUser (issue 14, acceptances 1 and 4):
// a MicroService runs as its container's user, cannot read its agent's
// environment, and a child it leaves in a session of its own (setsid)
// goes with it when it is unloaded.
func TestConfinedServiceRunsAsItsOwnUser(t *testing.T) {
	const id = "m-c7"
	a := confinedAgent(t, id)
	uid := agentapi.ServiceUID("m", id)
	require.GreaterOrEqual(t, uid, uint32(agentapi.ServiceUIDBase))
	require.Empty(t, userProcs(t, uid), "a process of that user from elsewhere")
	// Not t.TempDir: its parent is readable by this user only.
	dir, err := os.MkdirTemp("", "msm-confined-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	t.Cleanup(func() { _ = a.UnloadService(context.Background(), id) })
	script := fmt.Sprintf(`id -u > %[1]s/uid
cat /proc/$PPID/environ > %[1]s/environ 2> %[1]s/environ.err || echo refused > %[1]s/refused
setsid sleep 1000 < /dev/null > /dev/null 2>&1 &`, dir)
	port := freePort(t)
	in := agentapi.LoadServiceInput{Container: id, Server: "s1", Address: "127.0.0.1", Port: port,
		Service: shService(uniqueName("confined"), script, catalog.Limits{})}
	_, err = load(t, a, in, nil)
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(dir, "uid"))
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatUint(uint64(uid), 10), strings.TrimSpace(string(got)))
	_, err = os.Stat(filepath.Join(dir, "refused"))
	assert.NoError(t, err, "the service read its agent's environment")
	env, _ := os.ReadFile(filepath.Join(dir, "environ"))
	assert.Empty(t, env)
	procs := userProcs(t, uid)
	assert.Len(t, procs, 2, "the demo and the setsid child: %q", procs)

	require.NoError(t, a.UnloadService(context.Background(), id))
	assert.Empty(t, userProcs(t, uid), "every process of the container is gone, the setsid child too")
}

// TestConfinedServiceLimits: a fork bomb within its pids limit, and a
// service that needs more memory than its limit, fail to load, and leave
// no process behind.
func TestConfinedServiceLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		limits catalog.Limits
		want   string
	}{
		{"fork bomb", `b() { b | b & }; b`, catalog.Limits{Pids: 32}, "exited before it was healthy"},
		{"memory", `:`, catalog.Limits{Memory: "64Mi"}, "exited before it was healthy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const id = "m-c8"
			a := confinedAgent(t, id)
			uid := agentapi.ServiceUID("m", id)
			in := agentapi.LoadServiceInput{Container: id, Server: "s1", Address: "127.0.0.1", Port: freePort(t),
				Service: shService(uniqueName("limited"), tc.script, tc.limits)}
			_, err := load(t, a, in, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			deadline := time.Now().Add(5 * time.Second)
			for len(userProcs(t, uid)) > 0 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			assert.Empty(t, userProcs(t, uid), "every process of the container is gone")
		})
	}
}
