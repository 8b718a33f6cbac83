package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	procfs "github.com/msm-project/msm/internal/proc"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// TestServicesPastTheirLimitsAreKilledAndRecovered (issue 14, acceptance
// 4): three MicroServices of the catalog, once loaded and healthy, fork-bomb
// within their pids limit, allocate past their memory limit, or leave a
// child in a session of its own (setsid) and exit. Each is killed (or
// dies), its container is reported failed with why and recovered: the
// service is back at its replicas on a new container, and no process of the
// failed one is left, the setsid child included. The node, and the
// container of a service that behaved, are untouched: same processes.
func TestServicesPastTheirLimitsAreKilledAndRecovered(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("MicroServices run as users of their own only under a node that runs as root")
	}
	c := newCluster(t, spec{servers: 1, slots: 8, services: map[string]int{"web": 1}, order: []string{"web"}})
	// The triggers: a file a misbehaving service waits for, and removes
	// (so that its replacement behaves).
	triggers, err := os.MkdirTemp("", "msm-e2e-triggers-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(triggers) })
	require.NoError(t, os.Chmod(triggers, 0o777))
	bad := []struct{ name, limits, then, want string }{
		{"bomb", "{pids: 48}", `while :; do sleep 1000 & done`, "limits.pids"},
		{"hog", "{memory: 64Mi}", `{ head -c 100M /dev/zero; sleep 1000; } | tail`, "past its memory limit of 64 MiB (limits.memory)"},
		{"escape", "", `setsid sleep 1000 < /dev/null > /dev/null 2>&1 & kill $$`, "exited"},
	}
	yaml := c.catalogYAML(spec{servers: 1, slots: 8, services: map[string]int{"web": 1}, order: []string{"web"}})
	for _, b := range bad {
		// The sh in the background is the demo's child; $$ is the demo.
		script := fmt.Sprintf(`(while [ ! -e %[1]s ]; do sleep 0.1; done; rm -f %[1]s; %[2]s) & exec %[3]s --port={{.Port}} --name={{.Service}}`,
			filepath.Join(triggers, b.name), b.then, bins.demo)
		yaml += fmt.Sprintf("  - name: %s\n    command: /bin/sh\n    args: [\"-c\", %q]\n    replicas: {min: 1, initial: 1, max: 2}\n", b.name, script)
		if b.limits != "" {
			yaml += "    limits: " + b.limits + "\n"
		}
	}
	require.NoError(t, c.h.WriteCatalog(yaml))
	c.start("s1", "node", "--server", "s1", "--state-dir", filepath.Join(c.dir, "s1"))
	c.start("worker", "worker", "--catalog", c.catalog)
	before := c.waitFor("every service healthy", 60*time.Second, func(st workflows.Status) bool {
		return converged(0)(st) && st.Count("loaded") == 4
	})
	victims := map[string]string{} // service -> container
	var web string
	for _, ct := range before.Containers {
		if ct.Service == "web" {
			web = ct.ID
		} else {
			victims[ct.Service] = ct.ID
		}
	}
	require.Len(t, victims, 3, "%+v", before.Containers)
	node, webProcs := c.nodeAndProcsOf(web)
	require.NotZero(t, node)
	require.Len(t, webProcs, 2, "web's agent and MicroService")
	for _, b := range bad {
		uid := agentapi.ServiceUID(c.manager, victims[b.name])
		require.NotEmpty(t, procfs.UserProcesses(uid), "%s runs as its container's user", b.name)
		require.NoError(t, os.WriteFile(filepath.Join(triggers, b.name), nil, 0o644))
	}
	began := time.Now()
	st := c.waitFor("each failed container recovered", 90*time.Second, func(st workflows.Status) bool {
		if !converged(0)(st) || st.Count("loaded") != 4 {
			return false
		}
		for _, id := range victims {
			if stateOf(st, id) != "failed" {
				return false
			}
		}
		return true
	})
	figure(t, "3 services past their limits → each replaced", time.Since(began))
	for _, b := range bad {
		id := victims[b.name]
		var reason string
		replaced := false
		for _, ct := range st.Containers {
			if ct.ID == id {
				reason = ct.Error
			}
			if ct.Service == b.name && ct.State == "loaded" && ct.ID != id {
				replaced = true
			}
		}
		t.Logf("%s: %s", b.name, reason)
		assert.Contains(t, reason, b.want, "why %s failed", b.name)
		assert.True(t, replaced, "%s has a new container", b.name)
		uid := agentapi.ServiceUID(c.manager, id)
		deadline := time.Now().Add(10 * time.Second)
		for len(procfs.UserProcesses(uid)) > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		assert.Empty(t, procfs.UserProcesses(uid), "no process of %s's failed container is left", b.name)
		for _, p := range c.hostProcs() {
			assert.NotEqual(t, id, p.container, "the failed container's agent is gone")
		}
	}
	assert.Equal(t, "loaded", stateOf(st, web), "web's container is untouched")
	nodeAfter, webAfter := c.nodeAndProcsOf(web)
	assert.Equal(t, node, nodeAfter, "the node is the same process")
	assert.Equal(t, webProcs, webAfter, "web's processes are the same")
	c.requireInvariants(30 * time.Second)
}

// nodeAndProcsOf returns the PID of s1's node and the sorted PIDs of
// container's agent and MicroService.
func (c *cluster) nodeAndProcsOf(container string) (int, []int) {
	node := c.h.Cmd("s1").Process.Pid
	if syscall.Kill(node, 0) != nil {
		node = 0 // gone
	}
	var pids []int
	for _, p := range c.hostProcs() {
		if p.container == container {
			pids = append(pids, p.pid)
		}
	}
	uid := agentapi.ServiceUID(c.manager, container)
	pids = append(pids, procfs.UserProcesses(uid)...)
	slices.Sort(pids)
	return node, slices.Compact(pids)
}
