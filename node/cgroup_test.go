package node

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msm-project/msm/internal/cgroup"
	"github.com/msm-project/msm/workflows"
	"github.com/msm-project/msm/workflows/agentapi"
)

// TestContainersInCgroups: with a cgroup, each container's agent starts in
// <container>/agent and is told its container's cgroup; a process it
// leaves in a session of its own is in that cgroup too, and stopping the
// container kills it and removes the cgroup.
func TestContainersInCgroups(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("making cgroups needs root")
	}
	root := cgroup.Root
	if !cgroup.V2(root) {
		root = t.TempDir()
		if err := syscall.Mount("none", root, "cgroup2", 0, ""); err != nil {
			t.Skipf("no cgroup v2 here: %v", err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(root, syscall.MNT_DETACH) })
	}
	f := newFixture(t)
	base, err := cgroup.Make(root, "msm-node-test/"+f.prefix+"s")
	require.NoError(t, err)
	t.Cleanup(func() { _ = cgroup.Group{Path: filepath.Dir(base.Path)}.Remove() })
	told := filepath.Join(f.dir, "told")
	n, err := New(Config{Server: "s", Manager: "m", StateDir: filepath.Join(f.dir, "state"),
		AgentCommand: []string{"/bin/sh", "-c", `echo "$` + agentapi.CgroupEnv + `" > ` + told + `; setsid sleep 1000 < /dev/null > /dev/null 2>&1 & exec sleep 1000`, "agent"},
		Log:          slog.New(slog.DiscardHandler), Cgroup: &base})
	require.NoError(t, err)
	id := f.id("c1")
	res, err := start(t, n, id, freePort(t))
	require.NoError(t, err)

	cg := cgroup.Group{Path: filepath.Join(base.Path, id)}
	waitFor(t, "the agent and its setsid child in the container's cgroup", func() bool { return len(cg.Procs()) == 2 })
	agentProcs, err := os.ReadFile(filepath.Join(cg.Path, "agent", "cgroup.procs"))
	require.NoError(t, err)
	assert.Contains(t, strings.Fields(string(agentProcs)), strconv.Itoa(res.PID), "the agent starts in <container>/agent")
	b, err := os.ReadFile(told)
	require.NoError(t, err)
	assert.Equal(t, cg.Path, strings.TrimSpace(string(b)), "the agent is told its container's cgroup")
	procs := cg.Procs()

	require.NoError(t, n.StopContainer(context.Background(), workflows.StopContainerInput{Container: id}))
	for _, pid := range procs {
		waitFor(t, "every process of the container gone", func() bool { return !aliveNow(pid) })
	}
	_, err = os.Stat(cg.Path)
	assert.ErrorIs(t, err, os.ErrNotExist, "the container's cgroup is removed")
}
